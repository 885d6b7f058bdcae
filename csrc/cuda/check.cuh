// Checking every CUDA runtime call and every kernel launch.
//
//   NNF_CUDA_CHECK(cudaMemcpyAsync(...), "cudaMemcpyAsync(host to device)");
//   my_kernel<<<grid, block, 0, stream>>>(...);
//   check_launch("add_broadcast", dtype_name);   // "cuda: kernel add_broadcast<float> ..."
//
// A failed call throws CudaError naming the call (or kernel) and the CUDA error
// string. Launch errors (bad configuration, no kernel image for this GPU) are
// caught right after the launch; errors that happen while a kernel runs
// (illegal address, ...) surface at the next synchronizing call, which names
// itself: the message then says that an earlier asynchronous kernel may be the
// culprit (run with CUDA_LAUNCH_BLOCKING=1 to pin it down).
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "cuda/errors.h"

namespace nnforge {
namespace cuda {

[[noreturn]] void throw_cuda_error(cudaError_t err, const std::string& what);

inline void check(cudaError_t err, const char* what) {
    if (err != cudaSuccess) throw_cuda_error(err, what);
}

// After a <<<...>>> launch: throws "cuda: kernel NAME<DTYPE> launch failed: ...".
void check_launch(const char* kernel, const char* dtype = nullptr);

}  // namespace cuda
}  // namespace nnforge

#define NNF_CUDA_CHECK(call, what) ::nnforge::cuda::check((call), (what))
