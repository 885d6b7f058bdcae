// Layer norm over the last dim of a C-contiguous (R, N) float32/float64 array,
// forward and backward (the Python backend flattens the normalized dims into N).
//
//   forward   mean = sum_j x_j / N, var = sum_j (x_j - mean)^2 / N (two passes),
//             rstd = 1 / sqrt(var + eps), y_j = (x_j - mean) rstd w_j + b_j;
//             mean and rstd (R,) are saved for backward.
//   backward  xh_j = (x_j - mean) rstd, gh_j = g_j w_j,
//             gx_j = rstd (gh_j - sum_k gh_k / N - xh_j sum_k gh_k xh_k / N),
//             gw_j = sum_r g_rj xh_rj, gb_j = sum_r g_rj.
//
// Work split. Row kernels (forward, gx): one warp per row for N <= 1024 (4 rows
// per 128-thread block), one 256-thread block per row above; shuffle reductions
// (row_reduce.cuh). gw/gb, deterministic in two passes: (1) a (ceil(N/32), P)
// grid of 32x8-thread blocks; block (cx, p) owns columns 32cx..32cx+31 and
// the rows of chunk p (P = min(ceil(R/64), 256) chunks); thread (tx, ty)
// walks rows ty, ty+8, ... of the chunk for its column (coalesced across tx),
// then the 8 partials are summed in shared memory in a fixed order into
// partial[p][c]. (2) one thread per column sums partial[0..P-1][c] in order.
// Launched on the device's default stream, asynchronously.
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

constexpr int kColTile = 32, kRowLanes = 8;
constexpr long long kRowsPerChunk = 64, kMaxChunks = 256;

template <bool Block, typename T>
__global__ void layer_norm_fwd_kernel(const T* __restrict__ x, const T* __restrict__ w,
                                      const T* __restrict__ b, T* __restrict__ y,
                                      T* __restrict__ mean_out, T* __restrict__ rstd_out,
                                      long long R, long long N, T eps) {
    const Group<Block> grp;
    for (long long r = grp.row; r < R; r += grp.row_step) {
        const T* xr = x + r * N;
        T* yr = y + r * N;
        T s = 0;
        for (long long j = grp.tid; j < N; j += grp.stride) s += xr[j];
        const T mean = group_reduce<Block>(s, rows::SumOp{}, T(0)) / T(N);
        T q = 0;
        for (long long j = grp.tid; j < N; j += grp.stride) {
            const T d = xr[j] - mean;
            q += d * d;
        }
        const T var = group_reduce<Block>(q, rows::SumOp{}, T(0)) / T(N);
        const T rstd = T(1) / sqrt(var + eps);
        for (long long j = grp.tid; j < N; j += grp.stride) {
            T v = (xr[j] - mean) * rstd;
            if (w) v *= w[j];
            if (b) v += b[j];
            yr[j] = v;
        }
        if (grp.tid == 0) {
            mean_out[r] = mean;
            rstd_out[r] = rstd;
        }
    }
}

template <bool Block, typename T>
__global__ void layer_norm_bwd_dx_kernel(const T* __restrict__ g, const T* __restrict__ x,
                                         const T* __restrict__ mean, const T* __restrict__ rstd,
                                         const T* __restrict__ w, T* __restrict__ gx, long long R,
                                         long long N) {
    const Group<Block> grp;
    for (long long r = grp.row; r < R; r += grp.row_step) {
        const T* gr = g + r * N;
        const T* xr = x + r * N;
        const T mu = mean[r], rs = rstd[r];
        T a = 0, c = 0;  // sum gh, sum gh xh
        for (long long j = grp.tid; j < N; j += grp.stride) {
            const T gh = w ? gr[j] * w[j] : gr[j];
            a += gh;
            c += gh * (xr[j] - mu) * rs;
        }
        a = group_reduce<Block>(a, rows::SumOp{}, T(0)) / T(N);
        c = group_reduce<Block>(c, rows::SumOp{}, T(0)) / T(N);
        for (long long j = grp.tid; j < N; j += grp.stride) {
            const T gh = w ? gr[j] * w[j] : gr[j];
            gx[r * N + j] = rs * (gh - a - (xr[j] - mu) * rs * c);
        }
    }
}

// Pass 1 of gw/gb: partial[0][p][c] = sum over chunk p of g xh, partial[1][p][c] = of g.
template <typename T>
__global__ void layer_norm_bwd_partial_kernel(const T* __restrict__ g, const T* __restrict__ x,
                                              const T* __restrict__ mean,
                                              const T* __restrict__ rstd, T* __restrict__ partial,
                                              long long R, long long N, long long chunk_rows) {
    __shared__ T sw[kRowLanes][kColTile + 1], sb[kRowLanes][kColTile + 1];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const long long c = static_cast<long long>(blockIdx.x) * kColTile + tx;
    const long long p = blockIdx.y, P = gridDim.y;
    const long long r0 = p * chunk_rows;
    const long long r1 = r0 + chunk_rows < R ? r0 + chunk_rows : R;
    T aw = 0, ab = 0;
    if (c < N) {
        for (long long r = r0 + ty; r < r1; r += kRowLanes) {
            const T gv = g[r * N + c];
            aw += gv * (x[r * N + c] - mean[r]) * rstd[r];
            ab += gv;
        }
    }
    sw[ty][tx] = aw;
    sb[ty][tx] = ab;
    __syncthreads();
    if (ty == 0 && c < N) {
        for (int k = 1; k < kRowLanes; ++k) {
            aw += sw[k][tx];
            ab += sb[k][tx];
        }
        partial[p * N + c] = aw;
        partial[(P + p) * N + c] = ab;
    }
}

// Pass 2: gw[c] = sum_p partial[0][p][c], gb[c] = sum_p partial[1][p][c], in order.
template <typename T>
__global__ void layer_norm_bwd_finish_kernel(const T* __restrict__ partial, T* __restrict__ gw,
                                             T* __restrict__ gb, long long P, long long N) {
    for (long long c = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; c < N;
         c += static_cast<long long>(gridDim.x) * blockDim.x) {
        T aw = 0, ab = 0;
        for (long long p = 0; p < P; ++p) {
            aw += partial[p * N + c];
            ab += partial[(P + p) * N + c];
        }
        if (gw) gw[c] = aw;
        if (gb) gb[c] = ab;
    }
}

std::string op_arg(const char* op, const char* arg) { return std::string(op) + ": " + arg; }

void check_rows(const char* op, const char* arg, const DeviceArray& a) {
    if (a.ndim() != 2 || !a.is_contiguous()) {
        throw std::invalid_argument(op_arg(op, arg) +
                                    " must be a C-contiguous (rows, cols) array, got " +
                                    a.describe());
    }
    if (a.dtype != DType::Float32 && a.dtype != DType::Float64) {
        throw std::invalid_argument(op_arg(op, arg) + " must be float32 or float64, got " +
                                    a.describe());
    }
}

// a must be a contiguous 1-D array of `n` elements with x's dtype and device.
void check_vec(const char* op, const char* arg, const DeviceArray* a, long long n,
               const DeviceArray& x) {
    if (!a) return;
    if (a->ndim() != 1 || a->shape[0] != n || !a->is_contiguous() || a->dtype != x.dtype ||
        a->device != x.device) {
        throw std::invalid_argument(op_arg(op, arg) + " must be a contiguous (" +
                                    std::to_string(n) + ",) array like x " + x.describe() +
                                    ", got " + a->describe());
    }
}

template <typename T> const T* ptr(const DeviceArray* a) {
    return a ? static_cast<const T*>(a->data()) : nullptr;
}

template <typename F>
void dispatch_f32_f64(DType dt, F&& f) {
    if (dt == DType::Float64) f(double{});
    else f(float{});
}

}  // namespace

LayerNormForward layer_norm_rows_forward(const DeviceArray& x, const DeviceArray* weight,
                                         const DeviceArray* bias, double eps) {
    const char* op = "cuda.layer_norm_forward";
    check_rows(op, "x", x);
    const long long R = x.shape[0], N = x.shape[1];
    check_vec(op, "weight", weight, N, x);
    check_vec(op, "bias", bias, N, x);
    if (N == 0 && R > 0) throw std::invalid_argument(std::string(op) + ": empty normalized dims");
    LayerNormForward out{DeviceArray::empty(x.shape, x.dtype, x.device),
                         DeviceArray::empty({R}, x.dtype, x.device),
                         DeviceArray::empty({R}, x.dtype, x.device)};
    if (R == 0) return out;
    DeviceGuard guard(x.device);
    cudaStream_t stream = default_stream(x.device);
    dispatch_f32_f64(x.dtype, [&](auto tag) {
        using T = decltype(tag);
        const bool block = N > rows::kWarpRowMaxCols;
        auto args = [&](auto kernel, int threads) {
            kernel<<<rows::grid_rows(R, block), threads, 0, stream>>>(
                static_cast<const T*>(x.data()), ptr<T>(weight), ptr<T>(bias),
                static_cast<T*>(out.y.data()), static_cast<T*>(out.mean.data()),
                static_cast<T*>(out.rstd.data()), R, N, static_cast<T>(eps));
        };
        if (block) args(layer_norm_fwd_kernel<true, T>, rows::kBlockRowThreads);
        else args(layer_norm_fwd_kernel<false, T>, rows::kWarpRowsThreads);
        check_launch("layer_norm_forward", type_name<T>());
    });
    return out;
}

LayerNormBackward layer_norm_rows_backward(const DeviceArray& g, const DeviceArray& x,
                                           const DeviceArray& mean, const DeviceArray& rstd,
                                           const DeviceArray* weight, bool need_gx,
                                           bool need_gw, bool need_gb) {
    const char* op = "cuda.layer_norm_backward";
    check_rows(op, "x", x);
    check_rows(op, "g", g);
    const long long R = x.shape[0], N = x.shape[1];
    if (g.shape != x.shape || g.dtype != x.dtype || g.device != x.device) {
        throw std::invalid_argument(op_arg(op, "g ") + g.describe() + " must match x " +
                                    x.describe());
    }
    check_vec(op, "mean", &mean, R, x);
    check_vec(op, "rstd", &rstd, R, x);
    check_vec(op, "weight", weight, N, x);
    LayerNormBackward out;
    out.has_gx = need_gx;
    out.has_gw = need_gw;
    out.has_gb = need_gb;
    if (need_gx) out.gx = DeviceArray::empty(x.shape, x.dtype, x.device);
    if (need_gw) out.gw = DeviceArray::empty({N}, x.dtype, x.device);
    if (need_gb) out.gb = DeviceArray::empty({N}, x.dtype, x.device);
    if (N == 0) return out;
    DeviceGuard guard(x.device);
    cudaStream_t stream = default_stream(x.device);
    dispatch_f32_f64(x.dtype, [&](auto tag) {
        using T = decltype(tag);
        const T* gp = static_cast<const T*>(g.data());
        const T* xp = static_cast<const T*>(x.data());
        const T* mp = static_cast<const T*>(mean.data());
        const T* rp = static_cast<const T*>(rstd.data());
        if (need_gx && R > 0) {
            const bool block = N > rows::kWarpRowMaxCols;
            T* gxp = static_cast<T*>(out.gx.data());
            if (block) {
                layer_norm_bwd_dx_kernel<true, T>
                    <<<rows::grid_rows(R, true), rows::kBlockRowThreads, 0, stream>>>(
                        gp, xp, mp, rp, ptr<T>(weight), gxp, R, N);
            } else {
                layer_norm_bwd_dx_kernel<false, T>
                    <<<rows::grid_rows(R, false), rows::kWarpRowsThreads, 0, stream>>>(
                        gp, xp, mp, rp, ptr<T>(weight), gxp, R, N);
            }
            check_launch("layer_norm_backward_dx", type_name<T>());
        }
        if (need_gw || need_gb) {
            long long P = (R + kRowsPerChunk - 1) / kRowsPerChunk;
            if (P > kMaxChunks) P = kMaxChunks;
            if (P < 1) P = 1;
            const long long chunk_rows = R > 0 ? (R + P - 1) / P : 0;
            DeviceArray partial = DeviceArray::empty({2, P, N}, x.dtype, x.device);
            const long long col_tiles = (N + kColTile - 1) / kColTile;
            if (col_tiles > 65535LL * 1024) {
                throw std::invalid_argument(std::string(op) + ": too many columns");
            }
            // gridDim.x is the column tile (up to 2^31 - 1), gridDim.y the chunk (<= 256).
            layer_norm_bwd_partial_kernel<T>
                <<<dim3(static_cast<unsigned>(col_tiles), static_cast<unsigned>(P)),
                   dim3(kColTile, kRowLanes), 0, stream>>>(
                    gp, xp, mp, rp, static_cast<T*>(partial.data()), R, N, chunk_rows);
            check_launch("layer_norm_backward_partial", type_name<T>());
            const int threads = 256;
            long long blocks = (N + threads - 1) / threads;
            if (blocks > (1 << 20)) blocks = 1 << 20;
            layer_norm_bwd_finish_kernel<T><<<static_cast<int>(blocks), threads, 0, stream>>>(
                static_cast<const T*>(partial.data()),
                need_gw ? static_cast<T*>(out.gw.data()) : nullptr,
                need_gb ? static_cast<T*>(out.gb.data()) : nullptr, P, N);
            check_launch("layer_norm_backward_finish", type_name<T>());
        }
    });
    return out;
}

}  // namespace cuda
}  // namespace nnforge
