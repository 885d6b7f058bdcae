// Fused cross entropy on the CPU (csrc/cpu/loss.cpp): log-softmax and the
// negative log-likelihood of class indices in one pass, forward and backward.
//
// Layout: logits z of shape (N, C, D) C-contiguous (D = product of the extra
// dims d1 d2 ..., 1 for plain (N, C)); targets y and every per-position array
// of shape (N, D); the optional class weights w of shape (C,). T is float or
// double. Targets must be in [0, C) or equal ignore_index: the callers check
// (cross_entropy_first_bad_target) before running a kernel.
#pragma once

#include <cstdint>

namespace nnforge {

// Elements (N C D) below which a kernel runs on the calling thread only.
constexpr int64_t kLossParallelMin = 131072;  // ~50 us of work on one core

struct CrossEntropyShape {
    int64_t n = 0;  // batch
    int64_t c = 0;  // classes
    int64_t d = 1;  // positions per sample (extra dims)
};

// The flat position of the first target outside [0, C) that is not
// ignore_index, or -1 when all are good.
int64_t cross_entropy_first_bad_target(const int64_t* y, CrossEntropyShape s,
                                       int64_t ignore_index);

// Per position p = (n, j), with e = smoothing, w_y = w[y] (1 without weights,
// 0 where y == ignore_index) and W = sum_c w_c (C without weights):
//   lse[p]  = log sum_c exp z[n, c, j]
//   wy[p]   = w_y
//   loss[p] = (1 - e) w_y (lse - z[n, y, j]) + (e / C) [y valid] (W lse - sum_c w_c z[n, c, j])
template <typename T>
void cross_entropy_forward(const T* z, const int64_t* y, const T* w, CrossEntropyShape s,
                           int64_t ignore_index, double smoothing, T* loss, T* lse, T* wy);

// dL/dz for an upstream gradient g[p] per position (already divided by the
// normalizer for 'mean'), with p = softmax(z) = exp(z - lse):
//   gz[n, c, j] = g [ p ((1 - e) w_y + (e / C) [y valid] W) - (1 - e) w_y [c = y]
//                     - (e / C) [y valid] w_c ]
// which is g (p - q) without weights, q the smoothed one-hot target.
template <typename T>
void cross_entropy_backward(const T* z, const int64_t* y, const T* w, const T* lse, const T* wy,
                            const T* g, CrossEntropyShape s, int64_t ignore_index,
                            double smoothing, T* gz);

}  // namespace nnforge
