// Batch normalization on CUDA, forward (train / eval) and backward, and the
// running-statistics update (see batchnorm.h for the equations).
//
// Layout: x (N, C, S) C-contiguous; channel c's M = N S values are the N runs
// x[n, c, 0:S] (stride C S between runs).
//
// Per-channel reductions (the statistics: Welford (n, mean, m2) accumulators;
// the backward: (sum gy, sum gy (x - mean))) run in two kernels, both
// deterministic (fixed split, fixed merge order, no float atomics):
//   1. partials, one of two layouts:
//      planar  (S >= 32): grid (C, P); block (c, p) owns the p-th contiguous
//              chunk of channel c's M values (enumerated m = n S + s), its 256
//              threads stride over it (coalesced along s); warp shuffles then
//              shared memory merge the 256 accumulators -> partial[c][p].
//      column  (S < 32, e.g. (N, C) inputs): x seen as (N, C S) rows; grid
//              (ceil(C S / 32), P), block (32, 8): thread (tx, ty) walks rows
//              ty, ty + 8, ... of row chunk p for column j = 32 bx + tx
//              (coalesced along j); the 8 accumulators of a column merge in
//              shared memory -> partial[c][p S + s] (j = c S + s).
//      P is chosen from the shape only (about 1024 blocks in all, chunks of at
//      least 4096 values / 64 rows), so results never depend on the GPU.
//   2. finish: one 256-thread block per channel merges its K partials (each
//      thread a strided subset in order, then the block tree) and thread 0
//      writes the per-channel results and coefficients.
// Elementwise passes (y, gx): one thread per element, grid-stride, c = (i / S) % C
// in 32-bit math when the array has fewer than 2^32 elements.
// Expected bottleneck: memory bandwidth; training forward reads x twice and
// writes y once, the backward reads gy and x twice and writes gx once.
// Launched on the device's default stream, asynchronously.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "cuda/batchnorm.h"
#include "cuda/check.cuh"
#include "cuda/context.cuh"
#include "cuda/dispatch.cuh"

namespace nnforge {
namespace cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kColTile = 32, kRowLanes = 8;
constexpr long long kPlanarMinS = 32;
constexpr long long kTargetBlocks = 1024, kMinChunk = 4096, kMinRows = 64, kMaxChunks = 1024;

// ---------------------------------------------------------------- accumulators
// Plain structs (no constructors): they live in __shared__ arrays.
template <typename T>
struct Welford {
    T n, mean, m2;
    static __device__ Welford zero() { return {T(0), T(0), T(0)}; }
    __device__ void add(T v) {
        n += T(1);
        const T d = v - mean;
        mean += d / n;
        m2 += d * (v - mean);
    }
    // Chan et al.'s pairwise merge.
    __device__ void merge(const Welford& o) {
        if (o.n == T(0)) return;
        if (n == T(0)) {
            *this = o;
            return;
        }
        const T tot = n + o.n, d = o.mean - mean, f = o.n / tot;
        mean += d * f;
        m2 += o.m2 + d * d * n * f;
        n = tot;
    }
    __device__ Welford shfl_down(int delta) const {
        return {__shfl_down_sync(0xffffffffu, n, delta),
                __shfl_down_sync(0xffffffffu, mean, delta),
                __shfl_down_sync(0xffffffffu, m2, delta)};
    }
};

template <typename T>
struct GradSums {
    T a, b;  // sum gy, sum gy (x - mean)
    static __device__ GradSums zero() { return {T(0), T(0)}; }
    __device__ void merge(const GradSums& o) {
        a += o.a;
        b += o.b;
    }
    __device__ GradSums shfl_down(int delta) const {
        return {__shfl_down_sync(0xffffffffu, a, delta),
                __shfl_down_sync(0xffffffffu, b, delta)};
    }
};

// What the partial kernels accumulate: value(c) is a per-channel constant,
// add() folds element `off` (of channel c) into the accumulator.
template <typename T>
struct StatsPolicy {
    using Acc = Welford<T>;
    const T* x;
    __device__ T channel(long long) const { return T(0); }
    __device__ void add(Acc& a, long long off, T) const { a.add(x[off]); }
};

template <typename T>
struct GradPolicy {
    using Acc = GradSums<T>;
    const T* g;
    const T* x;
    const T* mean;
    __device__ T channel(long long c) const { return mean[c]; }
    __device__ void add(Acc& a, long long off, T m) const {
        const T gv = g[off];
        a.a += gv;
        a.b += gv * (x[off] - m);
    }
};

// Tree merge within a warp: lane 0 ends with the warp's result (fixed order).
template <typename Acc>
__device__ __forceinline__ Acc warp_merge(Acc v) {
#pragma unroll
    for (int d = 16; d > 0; d >>= 1) {
        const Acc o = v.shfl_down(d);
        v.merge(o);
    }
    return v;
}

// The whole block's merge (blockDim.x a multiple of 32, at most 1024); the
// result is valid in thread 0. Every thread of the block must call it.
template <typename Acc>
__device__ Acc block_merge(Acc v) {
    __shared__ Acc partial[32];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int warps = blockDim.x / 32;
    v = warp_merge(v);
    __syncthreads();  // partial[] may still be read by a previous call
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < warps ? partial[lane] : Acc::zero();
        v = warp_merge(v);
    }
    return v;
}

// ---------------------------------------------------------------- partial kernels
// Planar: block (c = blockIdx.x, p = blockIdx.y) over values [p chunk, (p+1) chunk)
// of channel c, m = n S + s. Writes partial[c P + p].
template <typename T, typename Policy>
__global__ void planar_partial_kernel(Policy pol, typename Policy::Acc* __restrict__ partial,
                                      long long N, long long C, long long S, long long chunk) {
    using Acc = typename Policy::Acc;
    const long long c = blockIdx.x, p = blockIdx.y, P = gridDim.y;
    const long long M = N * S;
    const long long m0 = p * chunk;
    const long long m1 = m0 + chunk < M ? m0 + chunk : M;
    const T cv = pol.channel(c);
    Acc acc = Acc::zero();
    long long m = m0 + threadIdx.x;
    if (m < m1) {
        long long n = m / S, s = m % S;
        const long long dn = blockDim.x / S, ds = blockDim.x % S;
        while (m < m1) {
            pol.add(acc, (n * C + c) * S + s, cv);
            m += blockDim.x;
            n += dn;
            s += ds;
            if (s >= S) {
                s -= S;
                ++n;
            }
        }
    }
    acc = block_merge(acc);
    if (threadIdx.x == 0) partial[c * P + p] = acc;
}

// Column: (N, C S) rows; block (bx, p), threads (tx, ty): column j = 32 bx + tx, rows
// r0 + ty, r0 + ty + 8, ... < r1 of chunk p. Writes partial[c (P S) + p S + s].
template <typename T, typename Policy>
__global__ void column_partial_kernel(Policy pol, typename Policy::Acc* __restrict__ partial,
                                      long long N, long long C, long long S,
                                      long long chunk_rows) {
    using Acc = typename Policy::Acc;
    __shared__ Acc tile[kRowLanes][kColTile + 1];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const long long CS = C * S;
    const long long j = static_cast<long long>(blockIdx.x) * kColTile + tx;
    const long long p = blockIdx.y, P = gridDim.y;
    const long long r0 = p * chunk_rows;
    const long long r1 = r0 + chunk_rows < N ? r0 + chunk_rows : N;
    Acc acc = Acc::zero();
    const long long c = j / S, s = j % S;
    if (j < CS) {
        const T cv = pol.channel(c);
        for (long long r = r0 + ty; r < r1; r += kRowLanes) pol.add(acc, r * CS + j, cv);
    }
    tile[ty][tx] = acc;
    __syncthreads();
    if (ty == 0 && j < CS) {
        for (int k = 1; k < kRowLanes; ++k) acc.merge(tile[k][tx]);
        partial[c * (P * S) + p * S + s] = acc;
    }
}

// ---------------------------------------------------------------- finish kernels
// Per channel (grid-stride over channels, one block each): merge partial[c K .. c K + K).
template <typename Acc>
__device__ Acc merge_channel(const Acc* __restrict__ partial, long long c, long long K) {
    Acc acc = Acc::zero();
    for (long long k = threadIdx.x; k < K; k += blockDim.x) acc.merge(partial[c * K + k]);
    return block_merge(acc);
}

// Statistics: mean, var (biased), invstd and the scale k = w invstd, all (C,).
template <typename T>
__global__ void stats_finish_kernel(const Welford<T>* __restrict__ partial, long long K,
                                    long long C, long long M, double eps,
                                    const T* __restrict__ w, T* __restrict__ mean,
                                    T* __restrict__ var, T* __restrict__ invstd,
                                    T* __restrict__ scale) {
    for (long long c = blockIdx.x; c < C; c += gridDim.x) {
        const Welford<T> acc = merge_channel(partial, c, K);
        if (threadIdx.x == 0) {
            const double v = static_cast<double>(acc.m2) / static_cast<double>(M);
            const double is = 1.0 / sqrt(v + eps);
            mean[c] = acc.mean;
            var[c] = T(v);
            invstd[c] = T(is);
            scale[c] = T((w ? static_cast<double>(w[c]) : 1.0) * is);
        }
    }
}

// gx = k1 gy - k2 - k3 (x - mean) coefficients of channel c, from its two sums.
template <typename T>
__device__ __forceinline__ void grad_coefs(long long c, double sdy, double sdyx, double M,
                                           bool training, const T* w, const T* invstd,
                                           T* coef, long long C) {
    const double is = static_cast<double>(invstd[c]);
    const double a = (w ? static_cast<double>(w[c]) : 1.0) * is;
    coef[c] = T(a);
    coef[C + c] = training ? T(a * sdy / M) : T(0);
    coef[2 * C + c] = training ? T(a * is * is * sdyx / M) : T(0);
}

template <typename T>
__global__ void grad_finish_kernel(const GradSums<T>* __restrict__ partial, long long K,
                                   long long C, long long M, bool training,
                                   const T* __restrict__ w, const T* __restrict__ invstd,
                                   T* __restrict__ gw, T* __restrict__ gb, T* __restrict__ coef) {
    for (long long c = blockIdx.x; c < C; c += gridDim.x) {
        const GradSums<T> acc = merge_channel(partial, c, K);
        if (threadIdx.x == 0) {
            const double sdy = static_cast<double>(acc.a), sdyx = static_cast<double>(acc.b);
            if (gb) gb[c] = acc.a;
            if (gw) gw[c] = T(sdyx * static_cast<double>(invstd[c]));
            if (coef) grad_coefs(c, sdy, sdyx, static_cast<double>(M), training, w, invstd, coef, C);
        }
    }
}

// Eval-mode coefficients without sums: k1 = w invstd, k2 = k3 = 0.
template <typename T>
__global__ void grad_coef_eval_kernel(long long C, const T* __restrict__ w,
                                      const T* __restrict__ invstd, T* __restrict__ coef) {
    for (long long c = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; c < C;
         c += static_cast<long long>(gridDim.x) * blockDim.x) {
        grad_coefs(c, 0.0, 0.0, 1.0, false, w, invstd, coef, C);
    }
}

// Eval-mode scale k = w / sqrt(var + eps) (in double, as the CPU twin).
template <typename T>
__global__ void eval_scale_kernel(long long C, const T* __restrict__ w, const T* __restrict__ var,
                                  double eps, T* __restrict__ scale) {
    for (long long c = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; c < C;
         c += static_cast<long long>(gridDim.x) * blockDim.x) {
        scale[c] = T((w ? static_cast<double>(w[c]) : 1.0) /
                     sqrt(static_cast<double>(var[c]) + eps));
    }
}

// ---------------------------------------------------------------- elementwise
// y = (x - mean_c) k_c + b_c over all N C S elements; I: the index type.
template <typename T, typename I>
__global__ void affine_kernel(const T* __restrict__ x, const T* __restrict__ mean,
                              const T* __restrict__ scale, const T* __restrict__ b,
                              T* __restrict__ y, I total, I C, I S) {
    const I stride = static_cast<I>(gridDim.x) * blockDim.x;
    for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
        const I c = (i / S) % C;
        y[i] = (x[i] - mean[c]) * scale[c] + (b ? b[c] : T(0));
    }
}

// gx = k1 gy - k2 - k3 (x - mean_c); coef = (k1, k2, k3) as (3, C).
template <typename T, typename I>
__global__ void grad_input_kernel(const T* __restrict__ gy, const T* __restrict__ x,
                                  const T* __restrict__ mean, const T* __restrict__ coef,
                                  T* __restrict__ gx, I total, I C, I S) {
    const I stride = static_cast<I>(gridDim.x) * blockDim.x;
    for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
        const I c = (i / S) % C;
        gx[i] = coef[c] * gy[i] - coef[C + c] - coef[2 * C + c] * (x[i] - mean[c]);
    }
}

// ---------------------------------------------------------------- running statistics
// R: the buffer's storage type, Q = Compute<R> its arithmetic type (numpy's:
// float16 math rounds through float32), St: the statistic's type. The decay
// 1 - momentum is the numpy code's Python float: NEP 50 rounds it to float16
// for a float16 buffer (0.9 -> 0.8999), while ml_dtypes' bfloat16 multiplies
// by it unrounded; float32/float64 round it to their own type.
template <typename R, typename St>
__global__ void update_running_kernel(R* __restrict__ run, long long run_stride,
                                      const St* __restrict__ stat, long long C, double momentum,
                                      double factor) {
    using Q = typename Compute<R>::type;
    Q decay = static_cast<Q>(1.0 - momentum);
    if constexpr (std::is_same<R, f16>::value) decay = __half2float(__double2half(1.0 - momentum));
    for (long long c = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; c < C;
         c += static_cast<long long>(gridDim.x) * blockDim.x) {
        R* r = run + c * run_stride;
        const R kept = convert<R>(convert<Q>(*r) * decay);
        const R add = convert<R>(momentum * (static_cast<double>(stat[c]) * factor));
        *r = convert<R>(convert<Q>(kept) + convert<Q>(add));
    }
}

// ---------------------------------------------------------------- host side
[[noreturn]] void fail(const char* op, const std::string& what) {
    throw std::invalid_argument(std::string(op) + ": " + what);
}

void check_nsc(const char* op, const char* arg, const DeviceArray& a) {
    if (a.dtype != DType::Float32 && a.dtype != DType::Float64) {
        fail(op, std::string(arg) + " must be float32 or float64, got " + a.describe());
    }
    if (a.ndim() != 3) fail(op, std::string(arg) + " must be 3-D (N, C, S), got " + a.describe());
    if (!a.is_contiguous()) fail(op, std::string(arg) + " must be C-contiguous, got " + a.describe());
}

// A contiguous (C,) array like x (dtype, device), when given (or required).
void check_channel(const char* op, const char* arg, const DeviceArray* a, const DeviceArray& x) {
    if (!a) return;
    const long long C = x.shape[1];
    if (a->ndim() != 1 || a->shape[0] != C || !a->is_contiguous() || a->dtype != x.dtype ||
        a->device != x.device) {
        fail(op, std::string(arg) + " " + a->describe() + " does not match x " + x.describe() +
                     ": expected a contiguous (" + std::to_string(C) + ",) array of x's dtype");
    }
}

template <typename T> const T* cptr(const DeviceArray* a) {
    return a ? static_cast<const T*>(a->data()) : nullptr;
}
template <typename T> const T* cptr(const DeviceArray& a) { return static_cast<const T*>(a.data()); }
template <typename T> T* mptr(const DeviceArray& a) { return static_cast<T*>(a.data()); }

template <typename F>
void dispatch_f32_f64(DType dt, F&& f) {
    if (dt == DType::Float64) f(double{});
    else f(float{});
}

int capped_grid(long long blocks) {
    if (blocks > (1LL << 20)) blocks = 1LL << 20;
    return static_cast<int>(blocks < 1 ? 1 : blocks);
}

long long ceil_div(long long a, long long b) { return (a + b - 1) / b; }

// The per-channel reduction of Policy over (N, C, S): partials then `finish`
// (called with the partial buffer and K). Requires N S >= 1 and C >= 1.
template <typename T, typename Policy, typename Finish>
void channel_reduce(const Policy& pol, long long N, long long C, long long S, int device,
                    const char* name, Finish&& finish) {
    using Acc = typename Policy::Acc;
    cudaStream_t stream = default_stream(device);
    const long long M = N * S;
    const DType dt = sizeof(T) == 8 ? DType::Float64 : DType::Float32;
    const long long fields = static_cast<long long>(sizeof(Acc) / sizeof(T));
    if (S >= kPlanarMinS) {
        long long P = std::min(ceil_div(M, kMinChunk), ceil_div(kTargetBlocks, C));
        P = std::max(1LL, std::min(P, kMaxChunks));
        const long long chunk = ceil_div(M, P);
        P = ceil_div(M, chunk);
        if (C > 0x7fffffffLL) fail(name, "too many channels");
        DeviceArray buf = DeviceArray::empty({C * P * fields}, dt, device);
        Acc* partial = reinterpret_cast<Acc*>(buf.data());
        planar_partial_kernel<T, Policy>
            <<<dim3(static_cast<unsigned>(C), static_cast<unsigned>(P)), kThreads, 0, stream>>>(
                pol, partial, N, C, S, chunk);
        check_launch(name, type_name<T>());
        finish(partial, P, buf);
    } else {
        const long long CS = C * S;
        const long long tiles = ceil_div(CS, kColTile);
        if (tiles > 0x7fffffffLL) fail(name, "too many channels");
        long long P = std::min(ceil_div(N, kMinRows), ceil_div(kTargetBlocks, tiles));
        P = std::max(1LL, std::min(P, kMaxChunks));
        const long long chunk_rows = ceil_div(N, P);
        P = ceil_div(N, chunk_rows);
        const long long K = P * S;
        DeviceArray buf = DeviceArray::empty({C * K * fields}, dt, device);
        Acc* partial = reinterpret_cast<Acc*>(buf.data());
        column_partial_kernel<T, Policy>
            <<<dim3(static_cast<unsigned>(tiles), static_cast<unsigned>(P)),
               dim3(kColTile, kRowLanes), 0, stream>>>(pol, partial, N, C, S, chunk_rows);
        check_launch(name, type_name<T>());
        finish(partial, K, buf);
    }
}

// Launches the elementwise kernel K<T, I> over `total` elements, I = 32-bit when it fits.
template <typename T, typename Launch32, typename Launch64>
void elementwise(long long total, int device, Launch32&& l32, Launch64&& l64) {
    const int grid = grid_for(total, kThreads, device);
    if (total < (1LL << 32) - static_cast<long long>(grid) * kThreads) l32(grid);
    else l64(grid);
}

}  // namespace

BatchNormTrain batch_norm_forward_train(const DeviceArray& x, const DeviceArray* weight,
                                        const DeviceArray* bias, double eps) {
    const char* op = "cuda.batch_norm_forward_train";
    check_nsc(op, "x", x);
    check_channel(op, "weight", weight, x);
    check_channel(op, "bias", bias, x);
    if (!(eps >= 0.0)) fail(op, "eps must be >= 0");
    const long long N = x.shape[0], C = x.shape[1], S = x.shape[2];
    if (N * S == 0 && C > 0) {
        fail(op, "x " + x.describe() + " has no values per channel");
    }
    BatchNormTrain out{DeviceArray::empty(x.shape, x.dtype, x.device),
                       DeviceArray::empty({C}, x.dtype, x.device),
                       DeviceArray::empty({C}, x.dtype, x.device),
                       DeviceArray::empty({C}, x.dtype, x.device)};
    if (C == 0) return out;
    DeviceGuard guard(x.device);
    cudaStream_t stream = default_stream(x.device);
    dispatch_f32_f64(x.dtype, [&](auto tag) {
        using T = decltype(tag);
        DeviceArray scale = DeviceArray::empty({C}, x.dtype, x.device);
        StatsPolicy<T> pol{cptr<T>(x)};
        channel_reduce<T>(pol, N, C, S, x.device, "batch_norm_stats",
                          [&](const Welford<T>* partial, long long K, const DeviceArray&) {
            stats_finish_kernel<T><<<capped_grid(C), kThreads, 0, stream>>>(
                partial, K, C, N * S, eps, cptr<T>(weight), mptr<T>(out.mean), mptr<T>(out.var),
                mptr<T>(out.invstd), mptr<T>(scale));
            check_launch("batch_norm_stats_finish", type_name<T>());
        });
        const long long total = N * C * S;
        elementwise<T>(total, x.device,
            [&](int grid) {
                affine_kernel<T, unsigned><<<grid, kThreads, 0, stream>>>(
                    cptr<T>(x), cptr<T>(out.mean), cptr<T>(scale), cptr<T>(bias),
                    mptr<T>(out.y), static_cast<unsigned>(total), static_cast<unsigned>(C),
                    static_cast<unsigned>(S));
            },
            [&](int grid) {
                affine_kernel<T, unsigned long long><<<grid, kThreads, 0, stream>>>(
                    cptr<T>(x), cptr<T>(out.mean), cptr<T>(scale), cptr<T>(bias),
                    mptr<T>(out.y), static_cast<unsigned long long>(total),
                    static_cast<unsigned long long>(C), static_cast<unsigned long long>(S));
            });
        check_launch("batch_norm_affine", type_name<T>());
    });
    return out;
}

DeviceArray batch_norm_forward_eval(const DeviceArray& x, const DeviceArray* weight,
                                    const DeviceArray* bias, const DeviceArray& mean,
                                    const DeviceArray& var, double eps) {
    const char* op = "cuda.batch_norm_forward_eval";
    check_nsc(op, "x", x);
    check_channel(op, "weight", weight, x);
    check_channel(op, "bias", bias, x);
    check_channel(op, "mean", &mean, x);
    check_channel(op, "var", &var, x);
    if (!(eps >= 0.0)) fail(op, "eps must be >= 0");
    const long long N = x.shape[0], C = x.shape[1], S = x.shape[2];
    DeviceArray y = DeviceArray::empty(x.shape, x.dtype, x.device);
    const long long total = N * C * S;
    if (total == 0) return y;
    DeviceGuard guard(x.device);
    cudaStream_t stream = default_stream(x.device);
    dispatch_f32_f64(x.dtype, [&](auto tag) {
        using T = decltype(tag);
        DeviceArray scale = DeviceArray::empty({C}, x.dtype, x.device);
        eval_scale_kernel<T><<<capped_grid(ceil_div(C, kThreads)), kThreads, 0, stream>>>(
            C, cptr<T>(weight), cptr<T>(var), eps, mptr<T>(scale));
        check_launch("batch_norm_eval_scale", type_name<T>());
        elementwise<T>(total, x.device,
            [&](int grid) {
                affine_kernel<T, unsigned><<<grid, kThreads, 0, stream>>>(
                    cptr<T>(x), cptr<T>(mean), cptr<T>(scale), cptr<T>(bias), mptr<T>(y),
                    static_cast<unsigned>(total), static_cast<unsigned>(C),
                    static_cast<unsigned>(S));
            },
            [&](int grid) {
                affine_kernel<T, unsigned long long><<<grid, kThreads, 0, stream>>>(
                    cptr<T>(x), cptr<T>(mean), cptr<T>(scale), cptr<T>(bias), mptr<T>(y),
                    static_cast<unsigned long long>(total), static_cast<unsigned long long>(C),
                    static_cast<unsigned long long>(S));
            });
        check_launch("batch_norm_affine", type_name<T>());
    });
    return y;
}

BatchNormBackward batch_norm_backward(const DeviceArray& gy, const DeviceArray& x,
                                      const DeviceArray* weight, const DeviceArray& mean,
                                      const DeviceArray& invstd, bool training, bool need_gx,
                                      bool need_gw, bool need_gb) {
    const char* op = "cuda.batch_norm_backward";
    check_nsc(op, "x", x);
    check_nsc(op, "gy", gy);
    if (gy.shape != x.shape || gy.dtype != x.dtype || gy.device != x.device) {
        fail(op, "gy " + gy.describe() + " does not match x " + x.describe());
    }
    check_channel(op, "weight", weight, x);
    check_channel(op, "mean", &mean, x);
    check_channel(op, "invstd", &invstd, x);
    const long long N = x.shape[0], C = x.shape[1], S = x.shape[2];
    BatchNormBackward out;
    out.has_gx = need_gx;
    out.has_gw = need_gw;
    out.has_gb = need_gb;
    if (need_gx) out.gx = DeviceArray::empty(x.shape, x.dtype, x.device);
    if (need_gw) out.gw = DeviceArray::empty({C}, x.dtype, x.device);
    if (need_gb) out.gb = DeviceArray::empty({C}, x.dtype, x.device);
    if (C == 0 || !(need_gx || need_gw || need_gb)) return out;
    DeviceGuard guard(x.device);
    cudaStream_t stream = default_stream(x.device);
    const long long M = N * S;
    if (M == 0) {  // no values: gw = gb = 0 (gx is empty)
        if (need_gw) NNF_CUDA_CHECK(cudaMemsetAsync(out.gw.data(), 0, out.gw.nbytes(), stream),
                                    "cudaMemsetAsync(gw)");
        if (need_gb) NNF_CUDA_CHECK(cudaMemsetAsync(out.gb.data(), 0, out.gb.nbytes(), stream),
                                    "cudaMemsetAsync(gb)");
        return out;
    }
    dispatch_f32_f64(x.dtype, [&](auto tag) {
        using T = decltype(tag);
        DeviceArray coef;
        T* coefp = nullptr;
        if (need_gx) {
            coef = DeviceArray::empty({3, C}, x.dtype, x.device);
            coefp = mptr<T>(coef);
        }
        if (need_gw || need_gb || (need_gx && training)) {
            GradPolicy<T> pol{cptr<T>(gy), cptr<T>(x), cptr<T>(mean)};
            channel_reduce<T>(pol, N, C, S, x.device, "batch_norm_grad_sums",
                              [&](const GradSums<T>* partial, long long K, const DeviceArray&) {
                grad_finish_kernel<T><<<capped_grid(C), kThreads, 0, stream>>>(
                    partial, K, C, M, training, cptr<T>(weight), cptr<T>(invstd),
                    need_gw ? mptr<T>(out.gw) : nullptr, need_gb ? mptr<T>(out.gb) : nullptr,
                    coefp);
                check_launch("batch_norm_grad_finish", type_name<T>());
            });
        } else {
            grad_coef_eval_kernel<T><<<capped_grid(ceil_div(C, kThreads)), kThreads, 0, stream>>>(
                C, cptr<T>(weight), cptr<T>(invstd), coefp);
            check_launch("batch_norm_grad_coef", type_name<T>());
        }
        if (!need_gx) return;
        const long long total = N * C * S;
        elementwise<T>(total, x.device,
            [&](int grid) {
                grad_input_kernel<T, unsigned><<<grid, kThreads, 0, stream>>>(
                    cptr<T>(gy), cptr<T>(x), cptr<T>(mean), coefp, mptr<T>(out.gx),
                    static_cast<unsigned>(total), static_cast<unsigned>(C),
                    static_cast<unsigned>(S));
            },
            [&](int grid) {
                grad_input_kernel<T, unsigned long long><<<grid, kThreads, 0, stream>>>(
                    cptr<T>(gy), cptr<T>(x), cptr<T>(mean), coefp, mptr<T>(out.gx),
                    static_cast<unsigned long long>(total), static_cast<unsigned long long>(C),
                    static_cast<unsigned long long>(S));
            });
        check_launch("batch_norm_grad_input", type_name<T>());
    });
    return out;
}

void batch_norm_update_running_(const DeviceArray& running, const DeviceArray& stat,
                                double momentum, double factor) {
    const char* op = "cuda.batch_norm_update_running_";
    if (running.ndim() != 1 || !is_floating(running.dtype)) {
        fail(op, "running " + running.describe() + " must be a 1-D float array");
    }
    if (stat.ndim() != 1 || stat.shape[0] != running.shape[0] || !stat.is_contiguous() ||
        (stat.dtype != DType::Float32 && stat.dtype != DType::Float64) ||
        stat.device != running.device) {
        fail(op, "stat " + stat.describe() + " must be a contiguous float32/float64 array like "
                 "running " + running.describe());
    }
    const long long C = running.shape[0];
    if (C == 0) return;
    if (C > 1 && running.strides[0] == 0) {  // a broadcast view: every element is one
        fail(op, "running " + running.describe() + " is a broadcast view (stride 0)");
    }
    DeviceGuard guard(running.device);
    cudaStream_t stream = default_stream(running.device);
    const int grid = capped_grid(ceil_div(C, kThreads));
    const long long rs = running.strides[0];
    dispatch_floating(running.dtype, op, [&](auto rtag) {
        using R = decltype(rtag);
        dispatch_f32_f64(stat.dtype, [&](auto stag) {
            using St = decltype(stag);
            update_running_kernel<R, St><<<grid, kThreads, 0, stream>>>(
                static_cast<R*>(running.data()), rs, static_cast<const St*>(stat.data()), C,
                momentum, factor);
            check_launch("batch_norm_update_running", type_name<R>());
        });
    });
}

}  // namespace cuda
}  // namespace nnforge
