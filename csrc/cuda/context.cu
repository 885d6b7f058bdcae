// Device context (see context.h / context.cuh). Streams and properties are
// created once per device and never destroyed: they live as long as the
// process, and destroying them at exit would race the CUDA runtime's own
// teardown.
#include "cuda/context.cuh"

#include <mutex>
#include <stdexcept>
#include <string>

#include "cuda/check.cuh"
#include "cuda/runtime.h"

namespace nnforge {
namespace cuda {
namespace {

constexpr int kMaxDevices = 64;

struct DeviceState {
    std::once_flag once;
    cudaStream_t stream = nullptr;
    cudaDeviceProp props{};
};

DeviceState& state(int device) {
    static DeviceState* states = new DeviceState[kMaxDevices];  // intentionally leaked
    check_device_index(device, "cuda");
    if (device >= kMaxDevices) {
        throw std::out_of_range("cuda: device index " + std::to_string(device) +
                                " is beyond the " + std::to_string(kMaxDevices) +
                                " devices nnforge supports");
    }
    DeviceState& s = states[device];
    std::call_once(s.once, [&] {
        DeviceGuard guard(device);
        NNF_CUDA_CHECK(cudaGetDeviceProperties(&s.props, device), "cudaGetDeviceProperties");
        NNF_CUDA_CHECK(cudaStreamCreate(&s.stream), "cudaStreamCreate (default stream)");
    });
    return s;
}

}  // namespace

void check_device_index(int device, const char* op) {
    const int count = cuda_device_count();
    if (device < 0 || device >= count) {
        throw std::out_of_range(std::string(op) + ": device index " + std::to_string(device) +
                                " is out of range (" + std::to_string(count) +
                                " CUDA device(s) visible)");
    }
}

int current_device() {
    int d = 0;
    NNF_CUDA_CHECK(cudaGetDevice(&d), "cudaGetDevice");
    return d;
}

void set_device(int device) {
    check_device_index(device, "cuda.set_device");
    NNF_CUDA_CHECK(cudaSetDevice(device), "cudaSetDevice");
}

cudaStream_t default_stream(int device) { return state(device).stream; }

const cudaDeviceProp& device_props(int device) { return state(device).props; }

void synchronize(int device) {
    if (device < 0) device = current_device();
    DeviceGuard guard(device);
    NNF_CUDA_CHECK(cudaStreamSynchronize(default_stream(device)),
                   "cudaStreamSynchronize (waiting for queued kernels)");
}

DeviceGuard::DeviceGuard(int device) : previous_(-1) {
    NNF_CUDA_CHECK(cudaGetDevice(&previous_), "cudaGetDevice");
    if (previous_ != device) NNF_CUDA_CHECK(cudaSetDevice(device), "cudaSetDevice");
}

DeviceGuard::~DeviceGuard() {
    int now = -1;
    if (cudaGetDevice(&now) == cudaSuccess && now != previous_ && previous_ >= 0) {
        cudaSetDevice(previous_);  // a destructor must not throw
    }
}

int grid_for(long long n, int threads, int device) {
    const long long needed = (n + threads - 1) / threads;
    const long long cap = static_cast<long long>(device_props(device).multiProcessorCount) * 8;
    const long long g = needed < cap ? needed : cap;
    return static_cast<int>(g > 0 ? g : 1);
}

}  // namespace cuda
}  // namespace nnforge
