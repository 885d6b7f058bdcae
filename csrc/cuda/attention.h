// Fused scaled dot-product attention on the GPU, host-side view (bindings
// include this). Same equations and conventions as the CPU kernel
// (cpu/attention.h):
//
//   S = scale Q K^T + M,  P = softmax_rows(S),  O = (P o Z / (1 - p)) V,
//   lse_i = log sum_j exp(S_ij)
//
// q (B, Hq, L, E), k (B, Hk, S, E), v (B, Hk, S, Ev): 4-D strided views whose
// last dim is contiguous; Hq a multiple of Hk, query head h reading key/value
// head h / (Hq / Hk). Causal is the top-left triangle (query i sees keys
// j <= i). mask: none, bool (true = takes part) or additive (q's dtype), a
// 4-D view of (B or 1, Hq or 1, L or 1, S) with stride 1 along keys (size-1
// dims broadcast). A row with every key masked gives O = 0, lse = +inf and
// zero gradients. Dropout uses the CPU kernel's counter-based hash, so both
// devices drop the same weights for one seed.
//
// dtypes: float32, float64 (head dims <= 128), bfloat16, float16 (computed in
// float32). lse is float32 (float64 for float64 inputs). Head dims E, Ev <= 256.
#pragma once

#include <cstdint>
#include <optional>
#include <tuple>

#include "cuda/device_array.h"

namespace nnforge {
namespace cuda {

struct SdpaOptions {
    bool causal = false;
    double scale = 1.0;
    double dropout_p = 0.0;
    std::uint64_t seed = 0;
    bool simt_only = false;  // skip the tensor-core kernels (tests, benchmarks)
};

// (out (B, Hq, L, Ev) in q's dtype, lse (B, Hq, L)), both C-contiguous.
std::tuple<DeviceArray, DeviceArray> sdpa_forward(const DeviceArray& q, const DeviceArray& k,
                                                  const DeviceArray& v,
                                                  const DeviceArray* mask,
                                                  const SdpaOptions& options);

// (dq, dk, dv, dmask): dq/dk/dv C-contiguous in their input's shapes and q's
// dtype; dmask (only when mask_grad, for an additive mask) the mask's shape
// with 1 wherever the mask broadcasts (its gradient summed there), mask dtype.
std::tuple<DeviceArray, DeviceArray, DeviceArray, std::optional<DeviceArray>> sdpa_backward(
    const DeviceArray& q, const DeviceArray& k, const DeviceArray& v, const DeviceArray* mask,
    const DeviceArray& out, const DeviceArray& gout, const DeviceArray& lse,
    const SdpaOptions& options, bool mask_grad);

}  // namespace cuda
}  // namespace nnforge
