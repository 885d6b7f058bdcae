// CUDA GEMM, host-side view (bindings include this; no CUDA headers).
//
//   out[b] = act(alpha * A[b] @ B[b] + beta * out[b] + bias)
//
// A is (..., M, K), B (..., K, N), out (..., M, N); the batch dims broadcast
// (numpy.matmul's rules, 2-D or more here: the Python backend handles 1-D
// operands). Any strides: a transposed operand (NT, TN, TT) is just a view
// whose last two strides are swapped, read in place. bias is (N,) (a row
// vector added to every row) or absent. A and B share one dtype, which is
// the result's: float32, float64, bfloat16 or float16 (the reduced floats
// accumulate in float32).
//
// Kernels (chosen per call by dtype, layout and the device's compute capability):
//   simt         gemm_simt.cu: any dtype, any strides; CUDA cores (fp32 FMA, fp64 for double).
//   tensor_core  gemm_tc.cu: mma.sync m16n8k16 (bf16/fp16) or m16n8k8 (tf32 for float32,
//                only when allow_tf32), sm_80+; needs each operand's innermost dim
//                contiguous (either of the last two), the other one a multiple of
//                16 bytes, and a 16-byte aligned start. Otherwise simt is used.
//   wgmma        gemm_wgmma.cu: sm_90a TMA + wgmma, bf16/fp16, A K-major (a_sk == 1), B
//                K-major or N-major, strides multiples of 16 bytes (TMA's rules). Not yet
//                run on a GPU: used only when asked for by name.
#pragma once

#include <cstdint>
#include <string>

#include "cuda/device_array.h"

namespace nnforge {
namespace cuda {

enum class GemmActivation { none, relu, gelu, gelu_tanh };
enum class GemmKernel { automatic, simt, tensor_core, wgmma };

struct GemmOptions {
    double alpha = 1.0;
    double beta = 0.0;                 // needs `out`
    const DeviceArray* bias = nullptr;  // (N,), the operands' dtype
    GemmActivation activation = GemmActivation::none;
    bool allow_tf32 = false;           // float32 on tensor cores (10-bit mantissa inputs)
    GemmKernel kernel = GemmKernel::automatic;  // for tests and benchmarks
};

// The result: `out` itself when given (the broadcast result shape, the operands'
// dtype, any strides, not overlapping A or B), else a new C-contiguous array.
// Throws std::invalid_argument naming "gemm", the argument and the shapes.
DeviceArray gemm(const DeviceArray& a, const DeviceArray& b, const GemmOptions& options,
                 const DeviceArray* out = nullptr);

// The kernel `gemm` would run for these operands ("simt", "tensor_core"),
// for tests and benchmarks.
std::string gemm_kernel_for(const DeviceArray& a, const DeviceArray& b,
                            const GemmOptions& options);

GemmActivation parse_gemm_activation(const std::string& name);  // none relu gelu gelu_tanh

}  // namespace cuda
}  // namespace nnforge
