// Row softmax / log-softmax, forward and backward, over a C-contiguous (R, N)
// float32/float64 array (the Python backend moves the softmax axis last).
//
//   forward   m = max_j x_j (nan wins), s = sum_j e^(x_j - m)
//             softmax y_j = e^(x_j - m) / s; log-softmax y_j = x_j - m - log s
//             (a row of all -inf, or holding +inf or nan, gives nan, as PyTorch)
//   backward  softmax gx_j = y_j (g_j - sum_k g_k y_k); log gx_j = g_j - e^(y_j) sum_k g_k
//
// Work split: N <= 1024: one warp per row, 4 rows per 128-thread block; lane l
// reads elements l, l+32, ... (coalesced). N > 1024: one 256-thread block per
// row. Each pass re-reads the row from global memory (L1/L2 hits for the
// second read); reductions are warp shuffles (+ shared memory across warps, see
// row_reduce.cuh). Rows are covered by grid-stride loops. Launched on the
// device's default stream, asynchronously.
#include <cmath>
#include <stdexcept>
#include <string>

#include "cuda/check.cuh"
#include "cuda/context.cuh"
#include "cuda/dispatch.cuh"
#include "cuda/norms.h"
#include "cuda/row_reduce.cuh"

namespace nnforge {
namespace cuda {
namespace {

using rows::Group;
using rows::group_reduce;

template <bool Block, bool Log, typename T>
__global__ void softmax_fwd_kernel(const T* __restrict__ x, T* __restrict__ y, long long R,
                                   long long N) {
    const Group<Block> grp;
    for (long long r = grp.row; r < R; r += grp.row_step) {
        const T* xr = x + r * N;
        T* yr = y + r * N;
        T m = -INFINITY;
        for (long long j = grp.tid; j < N; j += grp.stride) m = rows::max_nan(m, xr[j]);
        m = group_reduce<Block>(m, rows::MaxOp{}, T(-INFINITY));
        T s = 0;
        for (long long j = grp.tid; j < N; j += grp.stride) s += exp(xr[j] - m);
        s = group_reduce<Block>(s, rows::SumOp{}, T(0));
        if constexpr (Log) {
            const T shift = m + log(s);
            for (long long j = grp.tid; j < N; j += grp.stride) yr[j] = xr[j] - shift;
        } else {
            const T inv = T(1) / s;
            for (long long j = grp.tid; j < N; j += grp.stride) yr[j] = exp(xr[j] - m) * inv;
        }
    }
}

template <bool Block, bool Log, typename T>
__global__ void softmax_bwd_kernel(const T* __restrict__ g, const T* __restrict__ y,
                                   T* __restrict__ gx, long long R, long long N) {
    const Group<Block> grp;
    for (long long r = grp.row; r < R; r += grp.row_step) {
        const T* gr = g + r * N;
        const T* yr = y + r * N;
        T* out = gx + r * N;
        T s = 0;
        for (long long j = grp.tid; j < N; j += grp.stride) s += Log ? gr[j] : gr[j] * yr[j];
        s = group_reduce<Block>(s, rows::SumOp{}, T(0));
        for (long long j = grp.tid; j < N; j += grp.stride) {
            out[j] = Log ? gr[j] - exp(yr[j]) * s : yr[j] * (gr[j] - s);
        }
    }
}

void check_rows(const char* op, const char* arg, const DeviceArray& a) {
    if (a.ndim() != 2 || !a.is_contiguous()) {
        throw std::invalid_argument(std::string(op) + ": " + arg +
                                    " must be a C-contiguous (rows, cols) array, got " +
                                    a.describe());
    }
    if (a.dtype != DType::Float32 && a.dtype != DType::Float64) {
        throw std::invalid_argument(std::string(op) + ": " + arg +
                                    " must be float32 or float64, got " + a.describe());
    }
}

template <bool Log, typename T>
void launch_fwd(const DeviceArray& x, const DeviceArray& y) {
    const long long R = x.shape[0], N = x.shape[1];
    const bool block = N > rows::kWarpRowMaxCols;
    const int threads = block ? rows::kBlockRowThreads : rows::kWarpRowsThreads;
    cudaStream_t stream = default_stream(x.device);
    const T* xp = static_cast<const T*>(x.data());
    T* yp = static_cast<T*>(y.data());
    if (block) {
        softmax_fwd_kernel<true, Log, T><<<rows::grid_rows(R, true), threads, 0, stream>>>(xp, yp, R, N);
    } else {
        softmax_fwd_kernel<false, Log, T><<<rows::grid_rows(R, false), threads, 0, stream>>>(xp, yp, R, N);
    }
    check_launch(Log ? "log_softmax_forward" : "softmax_forward", type_name<T>());
}

template <bool Log, typename T>
void launch_bwd(const DeviceArray& g, const DeviceArray& y, const DeviceArray& gx) {
    const long long R = y.shape[0], N = y.shape[1];
    const bool block = N > rows::kWarpRowMaxCols;
    const int threads = block ? rows::kBlockRowThreads : rows::kWarpRowsThreads;
    cudaStream_t stream = default_stream(y.device);
    const T* gp = static_cast<const T*>(g.data());
    const T* yp = static_cast<const T*>(y.data());
    T* op = static_cast<T*>(gx.data());
    if (block) {
        softmax_bwd_kernel<true, Log, T><<<rows::grid_rows(R, true), threads, 0, stream>>>(gp, yp, op, R, N);
    } else {
        softmax_bwd_kernel<false, Log, T><<<rows::grid_rows(R, false), threads, 0, stream>>>(gp, yp, op, R, N);
    }
    check_launch(Log ? "log_softmax_backward" : "softmax_backward", type_name<T>());
}

template <typename F>
void dispatch_f32_f64(DType dt, F&& f) {
    if (dt == DType::Float64) f(double{});
    else f(float{});
}

}  // namespace

DeviceArray softmax_rows_forward(const DeviceArray& x, bool log) {
    const char* op = log ? "cuda.log_softmax_forward" : "cuda.softmax_forward";
    check_rows(op, "x", x);
    DeviceArray y = DeviceArray::empty(x.shape, x.dtype, x.device);
    if (x.numel() == 0) return y;
    DeviceGuard guard(x.device);
    dispatch_f32_f64(x.dtype, [&](auto tag) {
        using T = decltype(tag);
        if (log) launch_fwd<true, T>(x, y);
        else launch_fwd<false, T>(x, y);
    });
    return y;
}

DeviceArray softmax_rows_backward(const DeviceArray& g, const DeviceArray& y, bool log) {
    const char* op = log ? "cuda.log_softmax_backward" : "cuda.softmax_backward";
    check_rows(op, "y", y);
    check_rows(op, "g", g);
    if (g.shape != y.shape || g.dtype != y.dtype || g.device != y.device) {
        throw std::invalid_argument(std::string(op) + ": g " + g.describe() +
                                    " must match y " + y.describe());
    }
    DeviceArray gx = DeviceArray::empty(y.shape, y.dtype, y.device);
    if (y.numel() == 0) return gx;
    DeviceGuard guard(y.device);
    dispatch_f32_f64(y.dtype, [&](auto tag) {
        using T = decltype(tag);
        if (log) launch_bwd<true, T>(g, y, gx);
        else launch_bwd<false, T>(g, y, gx);
    });
    return gx;
}

}  // namespace cuda
}  // namespace nnforge
