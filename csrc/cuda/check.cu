// Error checking (see check.cuh) and byte formatting (see errors.h).
#include "cuda/check.cuh"

#include <cstdio>

namespace nnforge {
namespace cuda {

std::string format_bytes(std::size_t n) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = static_cast<double>(n);
    int u = 0;
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        ++u;
    }
    char buf[48];
    if (u == 0) {
        std::snprintf(buf, sizeof buf, "%zu B", n);
    } else {
        std::snprintf(buf, sizeof buf, "%.2f %s", v, units[u]);
    }
    return buf;
}

void throw_cuda_error(cudaError_t err, const std::string& what) {
    // Clear a non-sticky error so the next call does not report it again
    // (sticky ones, such as an illegal address, stay until the process ends).
    cudaGetLastError();
    std::string msg = "cuda: " + what + " failed: " + cudaGetErrorName(err) + " (" +
                      cudaGetErrorString(err) + ")";
    if (err == cudaErrorIllegalAddress || err == cudaErrorLaunchFailure ||
        err == cudaErrorMisalignedAddress || err == cudaErrorAssert) {
        msg += "; the failing kernel may be an earlier asynchronous launch "
               "(rerun with CUDA_LAUNCH_BLOCKING=1 to find it)";
    }
    throw CudaError(msg);
}

void check_launch(const char* kernel, const char* dtype) {
    const cudaError_t err = cudaGetLastError();
    if (err == cudaSuccess) return;
    std::string what = std::string("kernel ") + kernel;
    if (dtype != nullptr) what += std::string("<") + dtype + ">";
    throw_cuda_error(err, what + " launch");
}

}  // namespace cuda
}  // namespace nnforge
