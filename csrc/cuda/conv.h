// CUDA 2-D convolution, host-side view (bindings include this; no CUDA
// headers). The CPU twin is cpu/conv.h; the same equations, NCHW:
//
//   y[n, co, oh, ow] = b[co] + sum_{ci, i, j} w[co, ci, i, j] *
//                      x[n, g Cg + ci, oh sh - pt + i dh, ow sw - pl + j dw]
//
// x (N, C_in, H, W), w (C_out, Cg, kh, kw), y (N, C_out, OH, OW); g = co / Cog
// is co's group, Cg = C_in / G, Cog = C_out / G; x outside [0, H) x [0, W)
// reads as zero (pt rows of padding on top, pl columns on the left; the
// bottom/right padding is implied by OH, OW). conv1d is this with H = 1.
//
//   forward          y  = conv(x, w) + b                       (conv_fwd.cu)
//   backward_input   dx = conv^T(dy, w) (+ b per input channel: this is
//                    conv_transpose2d's forward)                (conv_bwd.cu)
//   backward_weight  dw = sum_n dy_n (x) x_n, db = sum_{n, oh, ow} dy
//                                                               (conv_bwd.cu)
//
// Every array is a C-contiguous DeviceArray of one dtype on one device (the
// Python backend, backend/cuda_conv.py, makes them so). float32 and float64 run
// the SIMT implicit GEMMs (conv_fwd.cu, conv_bwd.cu; fp32/fp64 FMAs, no TF32).
// bfloat16 and float16 run the tensor-core kernels (conv_tc.cu: mma.sync with
// fp32 accumulation, one rounding of each result) on sm_80+ when
// conv_tc_suitable; otherwise (depthwise, thin groups, older GPUs) they are
// computed in float32 by the SIMT kernels and rounded back.
// Results are deterministic: no float atomics.
// Argument errors throw std::invalid_argument naming the op and the shapes.
#pragma once

#include <array>
#include <cstdint>

#include "cuda/device_array.h"

namespace nnforge {
namespace cuda {

using Pair = std::array<std::int64_t, 2>;  // (h, w)
using Pads = std::array<std::int64_t, 4>;  // (top, bottom, left, right)

// A checked convolution geometry (every size positive but the batch; the
// output no larger than the padded input allows; the 32-bit per-plane and
// per-filter sizes the kernels index with below 2^31).
struct ConvGeometry {
    std::int64_t n = 0, c_in = 0, h = 0, w = 0;  // input
    std::int64_t c_out = 0, kh = 0, kw = 0;      // weight (c_out, c_in / groups, kh, kw)
    std::int64_t oh = 0, ow = 0;                 // output
    std::int64_t sh = 1, sw = 1, pt = 0, pl = 0, dh = 1, dw = 1, groups = 1;
};

// Checks the geometry; out_hw (-1, -1) means the largest output the padded
// input allows (the forward), else the given size (the gradients: dy's).
ConvGeometry conv_geometry(const char* op, std::int64_t n, std::int64_t c_in, Pair in_hw,
                           const Shape& weight_shape, Pair out_hw, Pair stride, Pads padding,
                           Pair dilation, std::int64_t groups);

DeviceArray conv2d_forward(const DeviceArray& x, const DeviceArray& w, const DeviceArray* bias,
                           Pair stride, Pads padding, Pair dilation, std::int64_t groups);

DeviceArray conv2d_backward_input(const DeviceArray& dy, const DeviceArray& w,
                                  const DeviceArray* bias, Pair input_size, Pair stride,
                                  Pads padding, Pair dilation, std::int64_t groups);

struct ConvWeightGrads {
    bool has_dw = false, has_db = false;
    DeviceArray dw, db;  // (C_out, Cg, kh, kw), (C_out,) where asked for
};
ConvWeightGrads conv2d_backward_weight(const DeviceArray& x, const DeviceArray& dy,
                                       Pair kernel_size, Pair stride, Pads padding,
                                       Pair dilation, std::int64_t groups, bool need_weight,
                                       bool need_bias);

// The tensor-core path (conv_tc.cu), for bf16/f16 arrays already checked by the
// entry points above. conv_tc_suitable: sm_80+, and not both Cg < 8 and Cog < 8
// (depthwise and thin groups go through float32 SIMT).
bool conv_tc_suitable(const ConvGeometry& g, int device);
DeviceArray conv2d_forward_tc(const DeviceArray& x, const DeviceArray& w, const DeviceArray* bias,
                              const ConvGeometry& g);
DeviceArray conv2d_backward_input_tc(const DeviceArray& dy, const DeviceArray& w,
                                     const DeviceArray* bias, const ConvGeometry& g);
// dw (C_out, Cg, kh, kw) of dtype x.dtype, preallocated; g.n > 0.
void conv2d_backward_weight_tc(const DeviceArray& x, const DeviceArray& dy, DeviceArray& dw,
                               const ConvGeometry& g);

}  // namespace cuda
}  // namespace nnforge
