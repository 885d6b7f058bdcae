// Offsets of N operands for the i-th element of an output, over up to 8 dims.
//
// For an output of shape (s0, ..., sk) and operand strides (in elements, 0 for
// a broadcast dim), element i at multi-index (i0, ..., ik) (C order) is at
//     offset[op] = sum_d i_d * strides[op][d]
// The host builder first simplifies the problem: dims of size 1 are dropped,
// and adjacent dims d, d+1 merge when every operand has
// strides[d] == strides[d+1] * s_{d+1} (they walk memory as one dim). A
// contiguous array of any rank becomes one dim; a transposed matrix stays two.
// Dims are stored innermost first, so the device loop peels i % s_0 first.
// More than 8 dims after merging throws std::invalid_argument.
#pragma once

#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda/device_array.h"

namespace nnforge {
namespace cuda {

constexpr int kMaxDims = 8;

template <int N>
struct OffsetCalc {
    int ndim = 0;
    std::int64_t sizes[kMaxDims];       // innermost first
    std::int64_t strides[N][kMaxDims];  // innermost first, in elements

    __device__ __forceinline__ void get(std::int64_t linear, std::int64_t (&off)[N]) const {
#pragma unroll
        for (int k = 0; k < N; ++k) off[k] = 0;
#pragma unroll
        for (int d = 0; d < kMaxDims; ++d) {
            if (d == ndim) break;
            const std::int64_t i = linear % sizes[d];
            linear /= sizes[d];
#pragma unroll
            for (int k = 0; k < N; ++k) off[k] += i * strides[k][d];
        }
    }
};

// `strides[k]` has shape.size() entries (already broadcast to `shape`).
template <int N>
OffsetCalc<N> make_offset_calc(const Shape& shape, const std::array<Shape, N>& strides,
                               const char* op) {
    // Outermost first while merging, then reversed.
    std::vector<std::int64_t> sz;
    std::vector<std::array<std::int64_t, N>> st;
    for (std::size_t d = 0; d < shape.size(); ++d) {
        if (shape[d] == 1) continue;
        std::array<std::int64_t, N> s;
        for (int k = 0; k < N; ++k) s[k] = strides[k][d];
        if (!sz.empty()) {
            bool merge = true;
            for (int k = 0; k < N; ++k) merge = merge && st.back()[k] == s[k] * shape[d];
            if (merge) {
                sz.back() *= shape[d];
                st.back() = s;
                continue;
            }
        }
        sz.push_back(shape[d]);
        st.push_back(s);
    }
    if (sz.size() > static_cast<std::size_t>(kMaxDims)) {
        throw std::invalid_argument(std::string(op) + ": the arrays' layout needs " +
                                    std::to_string(sz.size()) +
                                    " dims after merging, more than the CUDA kernels' " +
                                    std::to_string(kMaxDims) + "; make an input contiguous first");
    }
    OffsetCalc<N> c;
    c.ndim = static_cast<int>(sz.size());
    for (int d = 0; d < c.ndim; ++d) {
        const int src = c.ndim - 1 - d;
        c.sizes[d] = sz[src];
        for (int k = 0; k < N; ++k) c.strides[k][d] = st[src][k];
    }
    return c;
}

}  // namespace cuda
}  // namespace nnforge
