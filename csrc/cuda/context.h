// The device context, host-side view (no CUDA headers; bindings include this).
//
// Each device has one default stream, created on first use (cudaStreamCreate:
// a blocking stream, so it also orders against the legacy default stream that
// plain cudaMemcpy uses). Every nnforge kernel and copy on that device is
// issued to it, asynchronously; the host waits only where it needs a value
// (a copy to host, .item(), synchronize()).
#pragma once

namespace nnforge {
namespace cuda {

int current_device();        // cudaGetDevice
void set_device(int device); // cudaSetDevice, validated against device_count
void synchronize(int device);  // waits for the device's default stream; -1: current device
void check_device_index(int device, const char* op);  // throws std::out_of_range

}  // namespace cuda
}  // namespace nnforge
