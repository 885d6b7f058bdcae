// CUDA fused cross entropy and row logsumexp, host-side view (bindings include
// this; no CUDA headers). Same equations as the CPU kernels (csrc/cpu/loss.h).
//
// Layout: logits z (N, C, D) C-contiguous float32/float64 (D = product of the
// extra dims, 1 for plain (N, C)); targets y (N, D) int64 C-contiguous; every
// per-position array (N, D); optional class weights w (C,). For position
// p = (n, j), e = smoothing, w_y = w[y] (1 without weights, 0 at ignore_index),
// W = sum_c w_c (C without weights):
//   lse[p]  = log sum_c exp z[n, c, j]
//   wy[p]   = w_y
//   loss[p] = (1 - e) w_y (lse - z[n, y, j]) + (e / C) [y valid] (W lse - sum_c w_c z[n, c, j])
//   gz[n, c, j] = g[p] [ exp(z - lse) ((1 - e) w_y + (e / C) W) - (1 - e) w_y [c = y]
//                        - (e / C) w_c ]     (0 where y == ignore_index)
// A target outside [0, C) that is not ignore_index: the forward kernel records
// the first such position in a device-side flag, read back once per call (one
// synchronization per forward); the result reports it (bad_position >= 0) and
// its loss is 0. The backward never reads out of bounds for such a target.
//
// logsumexp_rows: out[r] = m + log sum_j exp(x[r, j] - m), m = max_j x[r, j]
// (nan wins), m taken as 0 when it is +-inf or nan (numpy / the CPU backend:
// a row of -inf gives -inf, a row holding +inf gives +inf, nan gives nan; an
// empty row gives -inf). x is a C-contiguous (R, N) float32/float64 array.
// Argument errors throw std::invalid_argument naming the op and the shapes.
#pragma once

#include <cstdint>

#include "cuda/device_array.h"

namespace nnforge {
namespace cuda {

struct CrossEntropyForward {
    DeviceArray loss, lse, wy;       // (N, D) each, z's dtype
    std::int64_t bad_position = -1;  // flat (n * D + j) of the first bad target, or -1
    std::int64_t bad_target = 0;     // its value
};

CrossEntropyForward cross_entropy_forward(const DeviceArray& z, const DeviceArray& target,
                                          const DeviceArray* weight, std::int64_t ignore_index,
                                          double smoothing);

// g, lse, wy: (N, D) arrays of z's dtype.
DeviceArray cross_entropy_backward(const DeviceArray& z, const DeviceArray& target,
                                   const DeviceArray* weight, const DeviceArray& lse,
                                   const DeviceArray& wy, const DeviceArray& g,
                                   std::int64_t ignore_index, double smoothing);

DeviceArray logsumexp_rows(const DeviceArray& x);  // (R, N) -> (R,)

}  // namespace cuda
}  // namespace nnforge
