// 2-D convolution on the CPU, NCHW, float and double (csrc/cpu/conv.cpp and
// conv_direct.cpp; the vectorized plane loops in conv_kernels.h).
//
//   y[n, co, oh, ow] = b[co] + sum_{ci, i, j} w[co, ci, i, j] *
//                      x[n, g*Cg + ci, oh*sh - pt + i*dh, ow*sw - pl + j*dw]
//
// x (N, C_in, H, W), w (C_out, C_in/G, kh, kw), y (N, C_out, OH, OW), all
// C-contiguous; g = co / (C_out/G) is the group of output channel co, Cg =
// C_in/G; x outside [0, H) x [0, W) reads as zero (zero padding: pt rows on
// top, pl columns on the left; the bottom/right padding is implied by OH, OW,
// which may be smaller than what the padded input allows, as the transposed
// convolution's output_padding needs). conv1d is this with H = 1.
//
// The three kernels and their algorithms (chosen per shape, see conv.cpp):
//   forward          y = conv(x, w) + b
//   backward_input   dx = conv^T(dy, w) (+ an optional per-channel bias: this
//                    is also conv_transpose2d's forward)
//   backward_weight  dw = sum_n dy_n (x) x_n,  db = sum_{n, oh, ow} dy
// Every kernel gives the same bits whatever the thread count.
#pragma once

#include <cstdint>

#include "common/cpu_features.h"

namespace nnforge {

struct Conv2dShape {
    int64_t n = 0, c_in = 0, h = 0, w = 0;  // input x
    int64_t c_out = 0, kh = 0, kw = 0;      // weight (c_out, c_in / groups, kh, kw)
    int64_t oh = 0, ow = 0;                 // output y
    int64_t stride_h = 1, stride_w = 1;
    int64_t pad_top = 0, pad_left = 0;
    int64_t dil_h = 1, dil_w = 1;
    int64_t groups = 1;
};

// The largest output size the padded input allows along one axis:
// floor((in + pad_begin + pad_end - dil (k - 1) - 1) / stride) + 1, or <= 0
// when the dilated kernel is larger than the padded input.
int64_t conv_output_size(int64_t in, int64_t k, int64_t stride, int64_t pad_begin,
                         int64_t pad_end, int64_t dil);

// An empty string when the shape is valid (positive sizes, channels divisible
// by groups, outputs within what the padded input allows, products fitting
// int64), else what is wrong.
const char* conv2d_shape_error(const Conv2dShape& s);

// How a kernel computes:
//   im2col     columns of x (C_in/G kh kw rows, blocks of output rows) times
//              w over the GEMM (gemm/gemm.h), any shape
//   pointwise  1x1, stride 1, no padding: x itself is the GEMM operand
//   direct     one input channel per group (depthwise, or C_in = 1): each
//              (sample, channel) plane convolved with vectorized loops
enum class ConvAlgorithm { automatic, im2col, pointwise, direct };

enum class ConvPass { forward, backward_input, backward_weight };

struct ConvOptions {
    bool force_isa = false;  // use `isa` instead of best_isa() (GEMM and plane loops)
    Isa isa = Isa::scalar;
    ConvAlgorithm algorithm = ConvAlgorithm::automatic;
    int threads = 0;  // 0: get_num_threads()
};

// The algorithm a pass runs for this shape: `requested` when it applies
// (automatic: the measured choice), else throws std::invalid_argument.
ConvAlgorithm conv2d_algorithm(const Conv2dShape& s, ConvPass pass, ConvAlgorithm requested);

// y = conv(x, w) + bias (bias may be null).
template <typename T>
void conv2d_forward(const T* x, const T* w, const T* bias, T* y, const Conv2dShape& s,
                    const ConvOptions& options = ConvOptions{});

// dx = dL/dx for dy = dL/dy, plus bias[ci] on every element of channel ci
// when bias is not null (conv_transpose2d's bias).
template <typename T>
void conv2d_backward_input(const T* dy, const T* w, const T* bias, T* dx, const Conv2dShape& s,
                           const ConvOptions& options = ConvOptions{});

// dw = dL/dw and db = dL/db (either may be null: not computed).
template <typename T>
void conv2d_backward_weight(const T* x, const T* dy, T* dw, T* db, const Conv2dShape& s,
                            const ConvOptions& options = ConvOptions{});

}  // namespace nnforge
