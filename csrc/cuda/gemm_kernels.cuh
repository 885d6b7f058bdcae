// What the GEMM kernels share (gemm_simt.cu, gemm_tc.cu, gemm.cu): the
// problem as pointers and element strides, the epilogue, and the launchers.
//
//   C[b](m, n) = act(alpha * sum_k A[b](m, k) B[b](k, n) + beta * C[b](m, n) + bias(n))
//
// A[b](m, k) lives at a + b * a_sb + m * a_sm + k * a_sk (strides in elements;
// a stride 0 broadcasts), likewise B and C. When beta == 0, C is never read
// (it may hold nan). Acc is the accumulation type: double for double, float
// otherwise.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "cuda/dispatch.cuh"
#include "cuda/gemm.h"

namespace nnforge {
namespace cuda {

template <typename T>
struct GemmParams {
    using Acc = typename Compute<T>::type;
    std::int64_t batch = 0, m = 0, n = 0, k = 0;
    const T* a = nullptr;
    std::int64_t a_sb = 0, a_sm = 0, a_sk = 0;
    const T* b = nullptr;
    std::int64_t b_sb = 0, b_sk = 0, b_sn = 0;
    T* c = nullptr;
    std::int64_t c_sb = 0, c_sm = 0, c_sn = 0;
    const T* bias = nullptr;  // (n,), stride bias_s
    std::int64_t bias_s = 0;
    Acc alpha = Acc(1), beta = Acc(0);
    GemmActivation act = GemmActivation::none;
};

template <typename Acc>
__device__ __forceinline__ Acc gemm_activate(Acc x, GemmActivation act) {
    switch (act) {
        case GemmActivation::relu:
            return x > Acc(0) ? x : Acc(0);  // nan > 0 is false: relu(nan) = 0 as the CPU kernel
        case GemmActivation::gelu:
            return Acc(0.5) * x * (Acc(1) + erf(x * Acc(0.70710678118654752440)));
        case GemmActivation::gelu_tanh: {
            const Acc u = Acc(0.79788456080286535588) * (x + Acc(0.044715) * x * x * x);
            return Acc(0.5) * x * (Acc(1) + tanh(u));
        }
        default:
            return x;
    }
}

// The epilogue of one output element (m, n) of batch item `bi`, in range.
template <typename T>
__device__ __forceinline__ void gemm_store(const GemmParams<T>& p, std::int64_t bi,
                                           std::int64_t m, std::int64_t n,
                                           typename GemmParams<T>::Acc acc) {
    using Acc = typename GemmParams<T>::Acc;
    T* dst = p.c + bi * p.c_sb + m * p.c_sm + n * p.c_sn;
    Acc v = p.alpha * acc;
    if (p.beta != Acc(0)) v += p.beta * convert<Acc>(*dst);
    if (p.bias) v += convert<Acc>(p.bias[n * p.bias_s]);
    *dst = convert<T>(gemm_activate(v, p.act));
}

// gemm_simt.cu: T = float, double, bf16, f16.
template <typename T>
void launch_gemm_simt(const GemmParams<T>& p, cudaStream_t stream);

// gemm_tc.cu: T = bf16, f16 (m16n8k16) or float (tf32, m16n8k8). The caller checks
// gemm_tc_layout_ok first.
template <typename T>
void launch_gemm_tc(const GemmParams<T>& p, cudaStream_t stream);

// Whether the tensor-core kernel can read these operands with 16-byte copies:
// for A, a_sk == 1 or a_sm == 1 (the other stride, and a_sb, multiples of
// 16 bytes), start 16-byte aligned; B likewise.
template <typename T>
bool gemm_tc_layout_ok(const GemmParams<T>& p);

// gemm_wgmma.cu (sm_90a, TMA + wgmma): bf16/fp16, A K-major (a_sk == 1), B K-major
// (b_sk == 1) or N-major (b_sn == 1), row/batch strides multiples of 8 elements (batch
// stride 0 allowed), 16-byte aligned starts; `why` (when given) receives the rule a
// refused layout breaks. Available when the device is compute capability 9.0 and this
// build holds the sm_90a kernel body (probed once).
template <typename T>
bool gemm_wgmma_layout_ok(const GemmParams<T>& p, std::string* why = nullptr);
template <typename T>
void launch_gemm_wgmma(const GemmParams<T>& p, cudaStream_t stream);
bool gemm_wgmma_available(int device);

}  // namespace cuda
}  // namespace nnforge
