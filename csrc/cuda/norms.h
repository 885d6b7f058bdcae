// CUDA row softmax / log-softmax and layer norm, host-side view (bindings
// include this; no CUDA headers). Every array is a C-contiguous (R, N) float32
// or float64 DeviceArray: the Python backend (backend/cuda_norms.py) moves the
// softmax axis last, flattens layer norm's normalized dims into N and computes
// float16/bfloat16 in float32.
//
//   softmax      y = e^(x - m) / s,          m = max_j x_j, s = sum_j e^(x_j - m)
//   log-softmax  y = (x - m) - log s
//   backward     softmax: gx = y (g - sum_j g_j y_j); log: gx = g - e^y sum_j g_j
//   layer norm   mean, rstd = 1 / sqrt(var + eps) per row (biased var),
//                y = (x - mean) rstd w + b   (w, b: (N,) or absent)
//   backward     xh = (x - mean) rstd, gh = g w,
//                gx = rstd (gh - mean_j gh - xh mean_j(gh xh)),
//                gw = sum_r g xh, gb = sum_r g (deterministic: fixed-order partial sums)
// Argument errors throw std::invalid_argument naming the op and the shapes.
#pragma once

#include "cuda/device_array.h"

namespace nnforge {
namespace cuda {

DeviceArray softmax_rows_forward(const DeviceArray& x, bool log);
DeviceArray softmax_rows_backward(const DeviceArray& g, const DeviceArray& y, bool log);

struct LayerNormForward {
    DeviceArray y, mean, rstd;  // (R, N), (R,), (R,)
};
LayerNormForward layer_norm_rows_forward(const DeviceArray& x, const DeviceArray* weight,
                                         const DeviceArray* bias, double eps);

struct LayerNormBackward {
    bool has_gx = false, has_gw = false, has_gb = false;
    DeviceArray gx, gw, gb;  // (R, N), (N,), (N,) where asked for
};
LayerNormBackward layer_norm_rows_backward(const DeviceArray& g, const DeviceArray& x,
                                           const DeviceArray& mean, const DeviceArray& rstd,
                                           const DeviceArray* weight, bool need_gx,
                                           bool need_gw, bool need_gb);

}  // namespace cuda
}  // namespace nnforge
