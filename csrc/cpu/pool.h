// Pooling on the CPU (csrc/cpu/pool.cpp; the loops are in pool_kernels.h).
//
// Layout: NCHW, C-contiguous; every kernel sees the input as `planes` = N*C
// independent (ih, iw) planes and the output as (oh, ow) planes. 1-D pooling
// is 2-D pooling with ih = oh = kh = sh = dh = 1 and ph = 0. T is float or
// double. The callers (bindings/pool.cpp) check the geometry (sizes >= 0,
// kernel/stride/dilation >= 1, padding in [0, kernel/2], output sizes from
// PyTorch's rule) before running a kernel; the kernels clip every window to
// the input, so any geometry that passes those checks reads in bounds.
//
// Work split: planes are shared among OpenMP threads (a static split from
// kPoolParallelMin input elements up); each plane's result depends only on
// that plane, so the thread count never changes a result.
#pragma once

#include <cstdint>

namespace nnforge {

constexpr int64_t kPoolParallelMin = 32768;

struct PoolGeom {
    int64_t planes = 0;          // N * C
    int64_t ih = 0, iw = 0;      // input plane
    int64_t oh = 0, ow = 0;      // output plane
    int64_t kh = 1, kw = 1;      // kernel
    int64_t sh = 1, sw = 1;      // stride
    int64_t ph = 0, pw = 0;      // padding (implicit -inf for max, 0 for average)
    int64_t dh = 1, dw = 1;      // dilation (max pooling only)
};

// y[p, i, j] = max over the window's taps x[p, h, w] (NaN wins: a window with a
// NaN gives NaN). idx (may be null) gets the flat position h * iw + w within the
// plane: the first maximum in row-major window order (ties: the earliest tap, as
// PyTorch), the last NaN when there is one. A window with no tap inside the
// input gives -inf and index -1.
template <typename T>
void max_pool2d_forward(const T* x, T* y, int64_t* idx, const PoolGeom& g);

// gx = 0, then gx[p, idx[p, i]] += gy[p, i] for every output position (also the
// backward of adaptive max pooling). Only planes, ih*iw and oh*ow of g are used.
// Returns how many indices were outside [0, ih*iw) (skipped; -1 is not counted).
template <typename T>
int64_t max_pool2d_backward(const T* gy, const int64_t* idx, T* gx, const PoolGeom& g);

// Average pooling, PyTorch's windows and divisors: a window covers rows
// [h0, h1) = [i sh - ph, min(i sh - ph + kh, ih + ph)) (columns alike), clipped
// to the input for the sum. Divisor: divisor_override when > 0; else the
// unclipped window size (h1 - h0)(w1 - w0) with count_include_pad, the clipped
// one without. A window with no element inside the input gives 0.
template <typename T>
void avg_pool2d_forward(const T* x, T* y, const PoolGeom& g, bool count_include_pad,
                        int64_t divisor_override);

// gx[p, h, w] = sum over the windows holding (h, w) of gy[p, i, j] / divisor(i, j).
template <typename T>
void avg_pool2d_backward(const T* gy, T* gx, const PoolGeom& g, bool count_include_pad,
                         int64_t divisor_override);

// Adaptive pooling: output row i covers input rows [floor(i ih / oh), ceil((i + 1) ih / oh))
// (columns alike); kernel, stride, padding and dilation of g are ignored.
template <typename T>
void adaptive_avg_pool2d_forward(const T* x, T* y, const PoolGeom& g);
template <typename T>
void adaptive_avg_pool2d_backward(const T* gy, T* gx, const PoolGeom& g);
// Maximum and its index as max_pool2d_forward (idx may be null); backward: max_pool2d_backward.
template <typename T>
void adaptive_max_pool2d_forward(const T* x, T* y, int64_t* idx, const PoolGeom& g);

}  // namespace nnforge
