// Layer normalization on the CPU (csrc/cpu/layernorm.cpp; the loops are in
// layernorm_kernels.h), fused per row: statistics, normalization and the
// affine map in one pass over a row that stays in cache, forward and backward.
//
// Layout: x, y, gy, gx are (R, N) C-contiguous: R rows (every leading dim
// flattened) of N values (the normalized trailing dims flattened); weight,
// bias, gw, gb are (N,); mean and rstd are (R,). weight and bias may each be
// null (w = 1, b = 0). T is float or double.
//
// Work split: rows are shared among OpenMP threads (contiguous static chunks,
// from kLayerNormParallelMin elements up). A row's statistics are computed by
// one thread; gw and gb are summed in fixed blocks of rows (the block size
// depends on R only) and the block sums added in a fixed order, so the thread
// count never changes a result.
#pragma once

#include <cstdint>

namespace nnforge {

constexpr int64_t kLayerNormParallelMin = 32768;

// Forward, two passes for the statistics (no E[x^2] - E[x]^2 cancellation):
//   mean_r = sum_j x_rj / N,   var_r = sum_j (x_rj - mean_r)^2 / N   (biased)
//   rstd_r = 1 / sqrt(var_r + eps)
//   y_rj = (x_rj - mean_r) rstd_r w_j + b_j
// Writes y, mean (R,) and rstd (R,).
template <typename T>
void layer_norm_forward(const T* x, const T* w, const T* b, int64_t rows, int64_t n, double eps,
                        T* y, T* mean, T* rstd);

// Backward, given the forward's mean and rstd. With xhat = (x - mean) rstd and
// wg_j = gy_j w_j, per row (the Jacobian of the normalization applied to wg):
//   gx_j = rstd (wg_j - sum_k wg_k / N - xhat_j sum_k wg_k xhat_k / N)
// and over rows: gw_j = sum_r gy_rj xhat_rj,  gb_j = sum_r gy_rj.
// gx, gw, gb may each be null (not wanted).
template <typename T>
void layer_norm_backward(const T* gy, const T* x, const T* mean, const T* rstd, const T* w,
                         int64_t rows, int64_t n, T* gx, T* gw, T* gb);

}  // namespace nnforge
