// Batch normalization on the CPU (csrc/cpu/batchnorm.cpp; the loops are in
// batchnorm_kernels.h), fused per channel: statistics, normalization and the
// affine map in one task per channel, forward and backward.
//
// Layout: x, y, gy, gx of shape (N, C, S) C-contiguous (S = product of the
// spatial dims, 1 for an (N, C) input); per-channel arrays of shape (C,).
// Channel c's values are the N runs x[n, c, 0:S]; M = N S values per channel.
// weight and bias may be null (affine=False: w = 1, b = 0). T is float or double.
//
// Work split: channels are shared among OpenMP threads (static split, from
// kBatchNormParallelMin elements up) when S > 1; each channel's statistics are
// summed by one thread in a fixed order, so the thread count never changes a
// result. For S = 1 one thread walks the rows, vectorized across channels.
#pragma once

#include <cstdint>

namespace nnforge {

constexpr int64_t kBatchNormParallelMin = 32768;

struct BatchNormShape {
    int64_t n = 0, c = 0, s = 1;
};

// Training forward, two passes for the statistics (no E[x^2] - E[x]^2):
//   mean_c = sum x / M,   var_c = sum (x - mean_c)^2 / M   (biased, for normalizing)
//   invstd_c = 1 / sqrt(var_c + eps)
//   y = (x - mean_c) invstd_c w_c + b_c
// Writes y, mean (C,), invstd (C,) and var (C,) (biased; the caller forms the
// unbiased M / (M - 1) var_c for the running average). M must be >= 1.
template <typename T>
void batch_norm_forward_train(const T* x, const T* w, const T* b, BatchNormShape s, double eps,
                              T* y, T* mean, T* invstd, T* var);

// Evaluation forward with given statistics: y = (x - mean_c) / sqrt(var_c + eps) w_c + b_c.
template <typename T>
void batch_norm_forward_eval(const T* x, const T* w, const T* b, const T* mean, const T* var,
                             BatchNormShape s, double eps, T* y);

// Backward, given the mean and invstd the forward normalized with. With
// xhat = (x - mean_c) invstd_c, per channel:
//   gb_c = sum gy,   gw_c = sum gy xhat
//   training (batch statistics, which depend on x):
//     gx = w_c invstd_c / M (M gy - gb_c - xhat gw_c)
//   evaluation (fixed statistics): gx = w_c invstd_c gy
// gx, gw, gb may each be null (not wanted).
template <typename T>
void batch_norm_backward(const T* gy, const T* x, const T* w, const T* mean, const T* invstd,
                         BatchNormShape s, bool training, T* gx, T* gw, T* gb);

}  // namespace nnforge
