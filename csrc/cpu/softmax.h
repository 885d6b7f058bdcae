// Softmax and log-softmax on the CPU over one dim (csrc/cpu/softmax.cpp; the
// loops are in softmax_kernels.h), forward and backward, each fused into one
// walk over a row (or a tile of rows) that stays in cache.
//
// Layout: x, y, gy, gx are (outer, N, inner) C-contiguous, the softmax taken
// over N: element (o, k, i) at (o N + k) inner + i. inner = 1 is the last-dim
// case (rows of N contiguous values); inner > 1 is any other dim, walked in
// tiles of up to 256 consecutive positions i whose N values are read as N
// short contiguous runs (vectorized across i). T is float or double.
//
// Work split: rows (inner = 1) or tiles (inner > 1) in contiguous runs per
// OpenMP thread, from kSoftmaxParallelMin elements up; a row is always
// computed by one thread, so the thread count never changes a result.
#pragma once

#include <cstdint>

namespace nnforge {

constexpr int64_t kSoftmaxParallelMin = 32768;

struct SoftmaxShape {
    int64_t outer = 0, n = 0, inner = 1;
};

// With m = max_k x_k (stable: every exp argument is <= 0) and s = sum_k e^(x_k - m):
//   softmax:      y_k = e^(x_k - m) / s
//   log_softmax:  y_k = (x_k - m) - log s
// A row of all -inf, or one holding +inf or nan, gives nan (as PyTorch does).
template <typename T>
void softmax_forward(const T* x, SoftmaxShape s, bool log, T* y);

// Vector-Jacobian products, from the forward's output y:
//   softmax:      gx_k = y_k (gy_k - sum_j gy_j y_j)
//   log_softmax:  gx_k = gy_k - e^(y_k) sum_j gy_j
template <typename T>
void softmax_backward(const T* gy, const T* y, SoftmaxShape s, bool log, T* gx);

}  // namespace nnforge
