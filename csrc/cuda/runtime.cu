// CUDA device queries for builds with CUDA (see runtime.h). The runtime is
// linked statically, so on a machine without a driver these calls fail
// cleanly and we report zero devices.
#include "cuda/runtime.h"

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace nnforge {

bool cuda_is_built() { return true; }

// Asked once per process (every kernel launch checks its device index against
// it, and cudaGetDeviceCount is a driver call). The answer cannot change
// later: CUDA fixes the visible devices (CUDA_VISIBLE_DEVICES) when it
// initializes, and a failure to initialize is permanent for the process. The
// function-local static is initialized once, thread-safely (C++11), even when
// several threads launch kernels at once.
int cuda_device_count() {
    static const int count = [] {
        int n = 0;
        if (cudaGetDeviceCount(&n) != cudaSuccess) {
            // No driver (cudaErrorInsufficientDriver) or no device
            // (cudaErrorNoDevice): clear that (non-sticky) error so later calls
            // do not see it, and report none.
            cudaGetLastError();
            return 0;
        }
        return n;
    }();
    return count;
}

std::string cuda_device_name(int index) {
    const int count = cuda_device_count();
    if (index < 0 || index >= count) {
        throw std::out_of_range("cuda.device_name: device index " + std::to_string(index) +
                                " is out of range (" + std::to_string(count) +
                                " CUDA device(s) visible)");
    }
    cudaDeviceProp prop;
    const cudaError_t err = cudaGetDeviceProperties(&prop, index);
    if (err != cudaSuccess) {
        cudaGetLastError();
        throw std::runtime_error("cuda.device_name: cudaGetDeviceProperties(" +
                                 std::to_string(index) + ") failed: " + cudaGetErrorString(err));
    }
    return std::string(prop.name);
}

}  // namespace nnforge
