// Fused cross entropy (log-softmax + weighted, label-smoothed NLL of class
// indices), forward and backward, and row logsumexp. Equations and layout in
// loss.h; they are the CPU kernels' (csrc/cpu/loss_kernels.h), term for term.
//
// Work split
//   forward, D == 1 (plain (N, C) logits): one row of C logits per group, a
//     warp (C <= 1024, 4 rows per 128-thread block) or a 256-thread block
//     (C > 1024); lane l reads classes l, l+32, ... (coalesced); max, sum of
//     exp and sum_c w_c z_c are group reductions (row_reduce.cuh, fixed order:
//     deterministic); thread 0 of the group finishes the position.
//   forward, D > 1 ((N, C, d1, ...) logits): one thread per position (n, j),
//     looping over the C classes at stride D; neighbouring threads read
//     neighbouring j, so every load is coalesced. Two passes over the classes
//     (max, then sum of exp); the second mostly hits L1/L2.
//   backward: elementwise over the N C D logits, one thread per element
//     (grid-stride), each recomputing its position's two scalars from g, wy
//     and the target (cached loads); 32-bit index math below 2^31 elements.
//   weight sum W (label smoothing with class weights): one block, double
//     partial sums in a fixed order, written to a one-element device array.
// Bad targets: atomicMin of the flat position into a device-side uint64 flag;
// the host reads the flag back once per forward call (the one synchronization).
// Everything runs on the device's default stream.
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "cuda/check.cuh"
#include "cuda/context.cuh"
#include "cuda/copy.h"
#include "cuda/dispatch.cuh"
#include "cuda/loss.h"
#include "cuda/row_reduce.cuh"

namespace nnforge {
namespace cuda {
namespace {

using rows::Group;
using rows::group_reduce;

constexpr unsigned long long kNoBadTarget = ~0ull;
constexpr int kThreads = 256;

// The scalars every position shares (loss.h's e, 1 - e, e / C).
template <typename T>
struct CeParams {
    long long n, c, d;
    long long ignore_index;
    T keep;       // 1 - e
    T spread;     // e / C (0 when C == 0)
    bool smooth;  // e > 0
};

// Loss of one position from its lse, its logit at the target and sum_c w_c z_c;
// `zt` is z at class t of this position (read only when t is in range).
template <typename T>
__device__ __forceinline__ void finish_position(long long pos, T l, const T* z_pos,
                                                long long class_stride, T wz, const long long* y,
                                                const T* w, const T* big_w,
                                                const CeParams<T>& P, T* loss, T* lse, T* wy,
                                                unsigned long long* bad) {
    const long long t = y[pos];
    const bool valid = t != P.ignore_index;
    const bool in_range = t >= 0 && t < P.c;
    lse[pos] = l;
    if (valid && !in_range) {
        atomicMin(bad, static_cast<unsigned long long>(pos));
        wy[pos] = T(0);
        loss[pos] = T(0);
        return;
    }
    const T w_y = !valid ? T(0) : (w ? w[t] : T(1));
    wy[pos] = w_y;
    T out = T(0);
    if (valid) {
        out = P.keep * w_y * (l - z_pos[t * class_stride]);
        if (P.smooth) {
            const T W = big_w ? *big_w : T(P.c);
            out += P.spread * (W * l - wz);
        }
    }
    loss[pos] = out;
}

// D == 1: one group (warp or block) per row of C logits.
template <bool Block, typename T>
__global__ void ce_fwd_rows_kernel(const T* __restrict__ z, const long long* __restrict__ y,
                                   const T* __restrict__ w, const T* __restrict__ big_w,
                                   CeParams<T> P, T* __restrict__ loss, T* __restrict__ lse,
                                   T* __restrict__ wy, unsigned long long* bad) {
    const Group<Block> grp;
    const long long C = P.c;
    for (long long r = grp.row; r < P.n; r += grp.row_step) {
        const T* zr = z + r * C;
        T m = -INFINITY;
        for (long long k = grp.tid; k < C; k += grp.stride) m = rows::max_nan(m, zr[k]);
        m = group_reduce<Block>(m, rows::MaxOp{}, T(-INFINITY));
        T s = 0;
        for (long long k = grp.tid; k < C; k += grp.stride) s += exp(zr[k] - m);
        s = group_reduce<Block>(s, rows::SumOp{}, T(0));
        T wz = 0;
        if (P.smooth) {  // uniform over the group: every thread takes the same branch
            for (long long k = grp.tid; k < C; k += grp.stride) wz += (w ? w[k] : T(1)) * zr[k];
            wz = group_reduce<Block>(wz, rows::SumOp{}, T(0));
        }
        if (grp.tid == 0) finish_position(r, m + log(s), zr, 1, wz, y, w, big_w, P, loss, lse, wy, bad);
    }
}

// D > 1: one thread per position (n, j); class k of it at z[(n C + k) D + j].
template <typename T>
__global__ void ce_fwd_cols_kernel(const T* __restrict__ z, const long long* __restrict__ y,
                                   const T* __restrict__ w, const T* __restrict__ big_w,
                                   CeParams<T> P, T* __restrict__ loss, T* __restrict__ lse,
                                   T* __restrict__ wy, unsigned long long* bad) {
    const long long positions = P.n * P.d;
    const long long C = P.c, D = P.d;
    for (long long pos = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
         pos < positions; pos += static_cast<long long>(gridDim.x) * blockDim.x) {
        const long long n = pos / D, j = pos - n * D;
        const T* zp = z + n * C * D + j;
        T m = -INFINITY;
        for (long long k = 0; k < C; ++k) m = rows::max_nan(m, zp[k * D]);
        T s = 0, wz = 0;
        for (long long k = 0; k < C; ++k) {
            const T v = zp[k * D];
            s += exp(v - m);
            if (P.smooth) wz += (w ? w[k] : T(1)) * v;
        }
        finish_position(pos, m + log(s), zp, D, wz, y, w, big_w, P, loss, lse, wy, bad);
    }
}

// Elementwise gradient; I is the index type (unsigned 32-bit below 2^31 elements).
template <typename T, typename I>
__global__ void ce_bwd_kernel(const T* __restrict__ z, const long long* __restrict__ y,
                              const T* __restrict__ w, const T* __restrict__ big_w,
                              const T* __restrict__ lse, const T* __restrict__ wy,
                              const T* __restrict__ g, CeParams<T> P, T* __restrict__ gz) {
    const I C = static_cast<I>(P.c), D = static_cast<I>(P.d);
    const I total = static_cast<I>(P.n) * C * D;
    const T W = big_w ? *big_w : T(P.c);
    for (I i = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; i < total;
         i += static_cast<I>(gridDim.x) * blockDim.x) {
        const I j = i % D;
        const I nc = i / D;
        const I k = nc % C;
        const I pos = (nc / C) * D + j;
        const long long t = y[pos];
        const bool valid = t != P.ignore_index;
        const T gv = valid ? g[pos] : T(0);
        const T w_y = wy[pos];
        const T a = gv * (P.keep * w_y + P.spread * W);  // multiplies p_k
        const T v = gv * P.spread;                       // multiplies w_k
        T out = exp(z[i] - lse[pos]) * a - (w ? w[k] : T(1)) * v;
        if (valid && t == static_cast<long long>(k)) out -= gv * P.keep * w_y;
        gz[i] = out;
    }
}

// W = sum_c w_c in double, one block, fixed order.
template <typename T>
__global__ void weight_sum_kernel(const T* __restrict__ w, long long c, T* __restrict__ out) {
    double s = 0.0;
    for (long long k = threadIdx.x; k < c; k += blockDim.x) s += static_cast<double>(w[k]);
    s = group_reduce<true>(s, rows::SumOp{}, 0.0);
    if (threadIdx.x == 0) out[0] = static_cast<T>(s);
}

template <bool Block, typename T>
__global__ void lse_rows_kernel(const T* __restrict__ x, T* __restrict__ out, long long R,
                                long long N) {
    const Group<Block> grp;
    for (long long r = grp.row; r < R; r += grp.row_step) {
        const T* xr = x + r * N;
        T m = -INFINITY;
        for (long long j = grp.tid; j < N; j += grp.stride) m = rows::max_nan(m, xr[j]);
        m = group_reduce<Block>(m, rows::MaxOp{}, T(-INFINITY));
        if (!isfinite(m)) m = T(0);
        T s = 0;
        for (long long j = grp.tid; j < N; j += grp.stride) s += exp(xr[j] - m);
        s = group_reduce<Block>(s, rows::SumOp{}, T(0));
        if (grp.tid == 0) out[r] = log(s) + m;
    }
}

// ---------------------------------------------------------------- host side
std::string op_name(const char* op) { return std::string("cuda.") + op; }

void check_float_c(const char* op, const char* arg, const DeviceArray& a, int ndim) {
    if (a.dtype != DType::Float32 && a.dtype != DType::Float64) {
        throw std::invalid_argument(op_name(op) + ": " + arg + " must be float32 or float64, got " +
                                    a.describe());
    }
    if (a.ndim() != ndim || !a.is_contiguous()) {
        throw std::invalid_argument(op_name(op) + ": " + arg + " must be a C-contiguous " +
                                    std::to_string(ndim) + "-d array, got " + a.describe());
    }
}

void check_like(const char* op, const char* arg, const DeviceArray& a, const Shape& shape,
                DType dtype, int device) {
    if (a.shape != shape || a.dtype != dtype || a.device != device || !a.is_contiguous()) {
        throw std::invalid_argument(op_name(op) + ": " + arg + " must be a C-contiguous " +
                                    dtype_name(dtype) + " array of shape " + shape_str(shape) +
                                    " on cuda:" + std::to_string(device) + ", got " +
                                    a.describe());
    }
}

// Checks z (N, C, D), target (N, D) int64 and weight (C,); returns (N, D).
Shape check_ce_args(const char* op, const DeviceArray& z, const DeviceArray& target,
                    const DeviceArray* weight) {
    check_float_c(op, "z", z, 3);
    const Shape pos{z.shape[0], z.shape[2]};
    check_like(op, "target", target, pos, DType::Int64, z.device);
    if (weight) check_like(op, "weight", *weight, Shape{z.shape[1]}, z.dtype, z.device);
    return pos;
}

template <typename T>
CeParams<T> make_params(const DeviceArray& z, std::int64_t ignore_index, double smoothing) {
    CeParams<T> P;
    P.n = z.shape[0];
    P.c = z.shape[1];
    P.d = z.shape[2];
    P.ignore_index = ignore_index;
    P.keep = T(1.0 - smoothing);
    P.spread = P.c > 0 ? T(smoothing / double(P.c)) : T(0);
    P.smooth = smoothing > 0.0;
    return P;
}

// W on the device when it is needed (smoothing with weights), else absent.
template <typename T>
bool weight_sum(const DeviceArray* weight, double smoothing, cudaStream_t stream,
                DeviceArray& out) {
    if (!weight || !(smoothing > 0.0)) return false;
    out = DeviceArray::empty(Shape{1}, weight->dtype, weight->device);
    weight_sum_kernel<T><<<1, kThreads, 0, stream>>>(static_cast<const T*>(weight->data()),
                                                     weight->shape[0],
                                                     static_cast<T*>(out.data()));
    check_launch("cross_entropy_weight_sum", type_name<T>());
    return true;
}

template <typename F>
void dispatch_f32_f64(DType dt, F&& f) {
    if (dt == DType::Float64) f(double{});
    else f(float{});
}

const void* data_or_null(const DeviceArray* a) { return a ? a->data() : nullptr; }

}  // namespace

CrossEntropyForward cross_entropy_forward(const DeviceArray& z, const DeviceArray& target,
                                          const DeviceArray* weight, std::int64_t ignore_index,
                                          double smoothing) {
    const char* op = "cross_entropy_forward";
    const Shape pos = check_ce_args(op, z, target, weight);
    CrossEntropyForward r;
    r.loss = DeviceArray::empty(pos, z.dtype, z.device);
    r.lse = DeviceArray::empty(pos, z.dtype, z.device);
    r.wy = DeviceArray::empty(pos, z.dtype, z.device);
    const long long positions = pos[0] * pos[1];
    if (positions == 0) return r;
    DeviceGuard guard(z.device);
    cudaStream_t stream = default_stream(z.device);
    DeviceArray flag = DeviceArray::empty(Shape{1}, DType::Int64, z.device);
    NNF_CUDA_CHECK(cudaMemsetAsync(flag.data(), 0xFF, sizeof(unsigned long long), stream),
                   "cudaMemsetAsync (cross_entropy flag)");
    auto* bad = static_cast<unsigned long long*>(flag.data());
    dispatch_f32_f64(z.dtype, [&](auto tag) {
        using T = decltype(tag);
        const CeParams<T> P = make_params<T>(z, ignore_index, smoothing);
        DeviceArray wsum;
        const T* big_w = weight_sum<T>(weight, smoothing, stream, wsum)
                             ? static_cast<const T*>(wsum.data()) : nullptr;
        const T* zp = static_cast<const T*>(z.data());
        const auto* yp = static_cast<const long long*>(target.data());
        const T* wp = static_cast<const T*>(data_or_null(weight));
        T* lp = static_cast<T*>(r.loss.data());
        T* sp = static_cast<T*>(r.lse.data());
        T* wyp = static_cast<T*>(r.wy.data());
        if (P.d == 1) {
            const bool block = P.c > rows::kWarpRowMaxCols;
            const int threads = block ? rows::kBlockRowThreads : rows::kWarpRowsThreads;
            const int grid = rows::grid_rows(P.n, block);
            if (block) {
                ce_fwd_rows_kernel<true, T><<<grid, threads, 0, stream>>>(zp, yp, wp, big_w, P, lp, sp, wyp, bad);
            } else {
                ce_fwd_rows_kernel<false, T><<<grid, threads, 0, stream>>>(zp, yp, wp, big_w, P, lp, sp, wyp, bad);
            }
        } else {
            ce_fwd_cols_kernel<T><<<grid_for(positions, kThreads, z.device), kThreads, 0, stream>>>(
                zp, yp, wp, big_w, P, lp, sp, wyp, bad);
        }
        check_launch(op, type_name<T>());
        // wsum is returned to the allocator's cache here while the kernel may still
        // read it; the caching allocator hands memory out again only in stream order
        // on this same stream, so a later writer runs after this kernel.
    });
    unsigned long long first_bad = kNoBadTarget;
    to_host(flag, &first_bad);  // synchronizes: the one read-back of the call
    if (first_bad != kNoBadTarget) {
        r.bad_position = static_cast<std::int64_t>(first_bad);
        const std::int64_t elem = target.offset / 8 + r.bad_position;  // contiguous target
        to_host(target.as_strided(Shape{1}, Shape{1}, elem), &r.bad_target);
    }
    return r;
}

DeviceArray cross_entropy_backward(const DeviceArray& z, const DeviceArray& target,
                                   const DeviceArray* weight, const DeviceArray& lse,
                                   const DeviceArray& wy, const DeviceArray& g,
                                   std::int64_t ignore_index, double smoothing) {
    const char* op = "cross_entropy_backward";
    const Shape pos = check_ce_args(op, z, target, weight);
    check_like(op, "lse", lse, pos, z.dtype, z.device);
    check_like(op, "wy", wy, pos, z.dtype, z.device);
    check_like(op, "g", g, pos, z.dtype, z.device);
    DeviceArray gz = DeviceArray::empty(z.shape, z.dtype, z.device);
    const long long total = z.numel();
    if (total == 0) return gz;
    DeviceGuard guard(z.device);
    cudaStream_t stream = default_stream(z.device);
    dispatch_f32_f64(z.dtype, [&](auto tag) {
        using T = decltype(tag);
        const CeParams<T> P = make_params<T>(z, ignore_index, smoothing);
        DeviceArray wsum;
        const T* big_w = weight_sum<T>(weight, smoothing, stream, wsum)
                             ? static_cast<const T*>(wsum.data()) : nullptr;
        const int grid = grid_for(total, kThreads, z.device);
        const auto* args_z = static_cast<const T*>(z.data());
        const auto* yp = static_cast<const long long*>(target.data());
        const T* wp = static_cast<const T*>(data_or_null(weight));
        const auto* lp = static_cast<const T*>(lse.data());
        const auto* wyp = static_cast<const T*>(wy.data());
        const auto* gp = static_cast<const T*>(g.data());
        T* out = static_cast<T*>(gz.data());
        if (total < (1LL << 31)) {
            ce_bwd_kernel<T, unsigned><<<grid, kThreads, 0, stream>>>(args_z, yp, wp, big_w, lp, wyp, gp, P, out);
        } else {
            ce_bwd_kernel<T, unsigned long long><<<grid, kThreads, 0, stream>>>(args_z, yp, wp, big_w, lp, wyp, gp, P, out);
        }
        check_launch(op, type_name<T>());
    });
    return gz;
}

DeviceArray logsumexp_rows(const DeviceArray& x) {
    const char* op = "logsumexp";
    check_float_c(op, "x", x, 2);
    const long long R = x.shape[0], N = x.shape[1];
    DeviceArray out = DeviceArray::empty(Shape{R}, x.dtype, x.device);
    if (R == 0) return out;
    DeviceGuard guard(x.device);
    cudaStream_t stream = default_stream(x.device);
    dispatch_f32_f64(x.dtype, [&](auto tag) {
        using T = decltype(tag);
        const bool block = N > rows::kWarpRowMaxCols;
        const int threads = block ? rows::kBlockRowThreads : rows::kWarpRowsThreads;
        const T* xp = static_cast<const T*>(x.data());
        T* op_ = static_cast<T*>(out.data());
        if (block) {
            lse_rows_kernel<true, T><<<rows::grid_rows(R, true), threads, 0, stream>>>(xp, op_, R, N);
        } else {
            lse_rows_kernel<false, T><<<rows::grid_rows(R, false), threads, 0, stream>>>(xp, op_, R, N);
        }
        check_launch(op, type_name<T>());
    });
    return out;
}

}  // namespace cuda
}  // namespace nnforge
