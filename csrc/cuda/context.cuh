// The device context for kernel files: the default stream of a device, its
// properties (multiprocessor count for grid sizing), and a guard that makes a
// device current for a scope and restores the previous one.
#pragma once

#include <cuda_runtime.h>

#include "cuda/context.h"

namespace nnforge {
namespace cuda {

cudaStream_t default_stream(int device);
const cudaDeviceProp& device_props(int device);

class DeviceGuard {
public:
    explicit DeviceGuard(int device);
    ~DeviceGuard();
    DeviceGuard(const DeviceGuard&) = delete;
    DeviceGuard& operator=(const DeviceGuard&) = delete;

private:
    int previous_;
};

// Blocks for a grid-stride loop over n items: enough to fill every
// multiprocessor several times over, never more than the items need.
int grid_for(long long n, int threads, int device);

}  // namespace cuda
}  // namespace nnforge
