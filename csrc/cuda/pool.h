// CUDA max / average / adaptive pooling, host-side view (bindings include this;
// no CUDA headers). Kernels in pool.cu. Every data array is a C-contiguous
// (N, C, H, W) float32/float64 DeviceArray (the Python backend, backend/cuda_pool.py,
// folds 1-D and unbatched inputs into that form and computes float16/bfloat16
// in float32); indices are int64 (N, C, OH, OW) flat positions h * W + w within
// each plane. Semantics, output sizes and checks are exactly the CPU twin's
// (cpu/pool.h, bindings/pool.cpp):
//
//   max       y = max over the window's in-input taps (row-major order,
//             "v > m or v is NaN": the first maximum wins a tie, the last NaN
//             wins); index of that tap; a window with no tap in the input
//             gives -inf and index -1.
//   max bwd   gx = 0; gx[p, idx[p, q]] += gy[p, q] (-1 skipped, other indices
//             outside the plane: std::out_of_range naming how many).
//   avg       window rows [i sh - ph, min(i sh - ph + kh, ih + ph)) (columns
//             alike), summed over its part inside the input, divided by
//             divisor_override (> 0), else the unclipped size with
//             count_include_pad, the clipped size without; no element inside: 0.
//   avg bwd   gx[h, w] = sum over the windows holding (h, w) of gy / divisor.
//   adaptive  window i: [floor(i in / out), ceil((i + 1) in / out)); mean or
//             max (+ index) over it; backward of the mean spreads gy / size.
//
// Determinism: every forward and the average backwards are fixed-order per
// output / input element (deterministic). max_pool2d_backward scatters with
// atomicAdd into a zeroed gx: when windows overlap (stride < kernel) and three
// or more outputs pick the same input the sum's order, hence its last bits,
// may vary run to run (two addends onto 0 are exact in either order).
// Its bad-index check synchronizes the stream (one int64 read back).
//
// Argument errors throw std::invalid_argument (ValueError) naming the op,
// the argument and the shapes.
#pragma once

#include <array>
#include <cstdint>

#include "cuda/device_array.h"

namespace nnforge {
namespace cuda {

using PoolPair = std::array<std::int64_t, 2>;  // (h, w)

struct PoolWithIndices {
    DeviceArray y, indices;  // indices only when has_indices
    bool has_indices = false;
};

PoolWithIndices max_pool2d_forward(const DeviceArray& x, const PoolPair& kernel,
                                   const PoolPair& stride, const PoolPair& padding,
                                   const PoolPair& dilation, bool ceil_mode,
                                   bool return_indices);
DeviceArray max_pool2d_backward(const DeviceArray& gy, const DeviceArray& indices,
                                const PoolPair& input_hw);

DeviceArray avg_pool2d_forward(const DeviceArray& x, const PoolPair& kernel,
                               const PoolPair& stride, const PoolPair& padding, bool ceil_mode,
                               bool count_include_pad, std::int64_t divisor_override);
DeviceArray avg_pool2d_backward(const DeviceArray& gy, const PoolPair& input_hw,
                                const PoolPair& kernel, const PoolPair& stride,
                                const PoolPair& padding, bool ceil_mode,
                                bool count_include_pad, std::int64_t divisor_override);

DeviceArray adaptive_avg_pool2d_forward(const DeviceArray& x, const PoolPair& output_hw);
DeviceArray adaptive_avg_pool2d_backward(const DeviceArray& gy, const PoolPair& input_hw);
PoolWithIndices adaptive_max_pool2d_forward(const DeviceArray& x, const PoolPair& output_hw,
                                            bool return_indices);

}  // namespace cuda
}  // namespace nnforge
