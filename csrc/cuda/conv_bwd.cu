// Convolution backward (conv.h has the forward equation): the input gradient
// and the weight/bias gradients, each an implicit GEMM over the tiles of
// conv_gemm.cuh; no float atomics anywhere (deterministic bits).
//
// Input gradient, for group g (blockIdx.z), input pixels m = (n, h, w) as rows:
//   dX_g (M x Cg) = A (M x K') B (K' x Cg) (+ b per input channel),
//   M = N H W, K' = Cog kh kw, k' = (co, i, j)
//   A[m, k'] = dy[n, g Cog + co, oh, ow]  where oh sh = h + pt - i dh and
//              ow sw = w + pl - j dw (exact division, 0 <= oh < OH, 0 <= ow < OW;
//              zero otherwise: the output positions whose window covers (h, w))
//   B[k', ci] = w[g Cog + co, ci, i, j]
// Grid (ceil(M / BM), ceil(Cg / BN), G), A row-fast (a warp gathers for 32
// consecutive input pixels). With stride s > 1 only 1 / (sh sw) of A's entries
// are non-zero: correct, but the FMAs on the zeros are wasted.
//
// Weight gradient, for group g: the transposed product, filter taps as rows:
//   dW_g^T (K x Cog) = A (K x R) B (R x Cog),  R = N OH OW, r = (n, oh, ow)
//   A[k, r] = x[n, g Cg + ci, oh sh - pt + i dh, ow sw - pl + j dw]   (k = (ci, i, j))
//   B[r, co] = dy[n, g Cog + co, oh, ow]
// Both depth-fast: a thread keeps one r offset within the tile and walks r
// forward by BK per tile, carrying (n, oh OW + ow) along (no 64-bit division in
// the loop). R is cut into S splits of whole depth tiles (S fixed by the shape:
// enough blocks to fill a GPU, the partials bounded); grid (tiles, S, G); split
// s writes its full dW tile into partial[s] and a second kernel adds the S
// partials in order (S = 1 writes dW directly).
// Bias gradient: one block per channel; thread t sums (n, p) for p = t, t + 256,
// ... in a fixed order, then a shared-memory tree: fixed order, no atomics.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

#include "cuda/check.cuh"
#include "cuda/context.cuh"
#include "cuda/conv.h"
#include "cuda/copy.h"
#include "cuda/conv_gemm.cuh"
#include "cuda/dispatch.cuh"

namespace nnforge {
namespace cuda {
namespace {

using conv::Dims;

// ---------------------------------------------------------------- input gradient
template <class Cfg, typename T = typename Cfg::type>
__global__ void __launch_bounds__(Cfg::NT)
    conv_bwd_input_kernel(const T* __restrict__ dy, const T* __restrict__ w,
                          const T* __restrict__ bias, T* __restrict__ dx, Dims d, long long M) {
    __shared__ __align__(16) T as[Cfg::BK][Cfg::LdA];
    __shared__ __align__(16) T bs[Cfg::BK][Cfg::LdB];
    const int tid = threadIdx.x;
    const int tm = tid % (Cfg::BM / Cfg::TM), tn = tid / (Cfg::BM / Cfg::TM);
    const int g = blockIdx.z;
    const long long m0 = static_cast<long long>(blockIdx.x) * Cfg::BM;
    const int c0 = blockIdx.y * Cfg::BN;
    const int K = d.cog * d.khw;

    // This thread's A row: input pixel (n, h, w), as padded coordinates.
    const long long m = m0 + tid % Cfg::BM;
    const bool m_ok = m < M;
    int hp = 0, wp = 0;
    const T* dyg = dy;
    if (m_ok) {
        const long long n = m / d.hw;
        const int q = static_cast<int>(m - n * d.hw);
        const int h = q / d.w;
        hp = h + d.pt;
        wp = q - h * d.w + d.pl;
        dyg = dy + (n * d.c_out + static_cast<long long>(g) * d.cog) * d.p;
    }
    const T* wg = w + static_cast<long long>(g) * d.cog * d.cg * d.khw;

    auto load = [&](int kt, T (&ra)[Cfg::ALoads], T (&rb)[Cfg::BLoads]) {
#pragma unroll
        for (int j = 0; j < Cfg::ALoads; ++j) {
            const int k = kt * Cfg::BK + (tid + j * Cfg::NT) / Cfg::BM;
            T v = T(0);
            if (m_ok && k < K) {
                const int co = k / d.khw, r = k - co * d.khw;
                const int i = r / d.kw;
                const int th = hp - i * d.dh, tw = wp - (r - i * d.kw) * d.dw;
                if (th >= 0 && tw >= 0) {
                    const int oh = th / d.sh, ow = tw / d.sw;
                    if (oh * d.sh == th && ow * d.sw == tw && oh < d.oh && ow < d.ow)
                        v = dyg[static_cast<long long>(co) * d.p + oh * d.ow + ow];
                }
            }
            ra[j] = v;
        }
#pragma unroll
        for (int j = 0; j < Cfg::BLoads; ++j) {
            const int e = tid + j * Cfg::NT;
            const int k = kt * Cfg::BK + e % Cfg::BK, ci = c0 + e / Cfg::BK;
            T v = T(0);
            if (e < Cfg::BN * Cfg::BK && ci < d.cg && k < K) {
                const int co = k / d.khw, r = k - co * d.khw;
                v = wg[(static_cast<long long>(co) * d.cg + ci) * d.khw + r];
            }
            rb[j] = v;
        }
    };

    T acc[Cfg::TM][Cfg::TN] = {};
    conv::gemm_mainloop<Cfg, true>(0, (K + Cfg::BK - 1) / Cfg::BK, load, as, bs, acc, tid, tm,
                                   tn);

#pragma unroll
    for (int r = 0; r < Cfg::TM; ++r) {
        const long long mr = m0 + Cfg::row_of(tm, r);
        if (mr >= M) continue;
        const long long n = mr / d.hw;
        const int q = static_cast<int>(mr - n * d.hw);
        T* dxp = dx + (n * d.c_in + static_cast<long long>(g) * d.cg) * d.hw + q;
#pragma unroll
        for (int c = 0; c < Cfg::TN; ++c) {
            const int ci = c0 + tn * Cfg::TN + c;
            if (ci < d.cg) {
                T v = acc[r][c];
                if (bias) v += bias[g * d.cg + ci];
                dxp[static_cast<long long>(ci) * d.hw] = v;
            }
        }
    }
}

// ---------------------------------------------------------------- weight gradient
// Block (tile = blockIdx.x, split s = blockIdx.y, group g = blockIdx.z) sums
// depth tiles [s chunk, min((s + 1) chunk, nkt)) of R into out[s] (C_out x K).
template <class Cfg, typename T = typename Cfg::type>
__global__ void __launch_bounds__(Cfg::NT)
    conv_bwd_weight_kernel(const T* __restrict__ x, const T* __restrict__ dy,
                           T* __restrict__ out, Dims d, int tiles_m, int chunk, int nkt) {
    __shared__ __align__(16) T as[Cfg::BK][Cfg::LdA];
    __shared__ __align__(16) T bs[Cfg::BK][Cfg::LdB];
    const int tid = threadIdx.x;
    const int tm = tid % (Cfg::BM / Cfg::TM), tn = tid / (Cfg::BM / Cfg::TM);
    const int g = blockIdx.z, s = blockIdx.y;
    const int k0 = (blockIdx.x % tiles_m) * Cfg::BM;
    const int c0 = (blockIdx.x / tiles_m) * Cfg::BN;
    const int K = d.cg * d.khw;
    const int kt0 = s * chunk;  // < nkt; kt0 + chunk may pass INT_MAX
    const int kt1 = static_cast<int>(min(static_cast<long long>(nkt),
                                         static_cast<long long>(kt0) + chunk));

    // This thread's A rows (filter taps k0 + e / BK): where each reads in a plane.
    long long x_off[Cfg::ALoads];
    int i_off[Cfg::ALoads], j_off[Cfg::ALoads];
    bool k_ok[Cfg::ALoads];
#pragma unroll
    for (int j = 0; j < Cfg::ALoads; ++j) {
        const int k = k0 + (tid + j * Cfg::NT) / Cfg::BK;
        k_ok[j] = k < K;
        const int kk = k_ok[j] ? k : 0;
        const int ci = kk / d.khw, r = kk - ci * d.khw;
        const int i = r / d.kw;
        x_off[j] = static_cast<long long>(ci) * d.hw;
        i_off[j] = i * d.dh - d.pt;
        j_off[j] = (r - i * d.kw) * d.dw - d.pl;
    }
    // This thread's depth index r = (n, p), advanced by BK per tile.
    const long long r_first = static_cast<long long>(kt0) * Cfg::BK + tid % Cfg::BK;
    long long n = r_first / d.p;
    int p = static_cast<int>(r_first - n * d.p);

    auto load = [&](int, T (&ra)[Cfg::ALoads], T (&rb)[Cfg::BLoads]) {
        const bool r_ok = n < d.n;
        const int oh = p / d.ow;
        const int ihb = oh * d.sh, iwb = (p - oh * d.ow) * d.sw;
        const T* xn = x + (n * d.c_in + static_cast<long long>(g) * d.cg) * d.hw;
#pragma unroll
        for (int j = 0; j < Cfg::ALoads; ++j) {
            T v = T(0);
            const int ih = ihb + i_off[j], iw = iwb + j_off[j];
            if (r_ok && k_ok[j] && ih >= 0 && ih < d.h && iw >= 0 && iw < d.w)
                v = xn[x_off[j] + ih * d.w + iw];
            ra[j] = v;
        }
        const T* dyn = dy + (n * d.c_out + static_cast<long long>(g) * d.cog) * d.p + p;
#pragma unroll
        for (int j = 0; j < Cfg::BLoads; ++j) {
            const int e = tid + j * Cfg::NT;
            const int co = c0 + e / Cfg::BK;
            T v = T(0);
            if (r_ok && e < Cfg::BN * Cfg::BK && co < d.cog)
                v = dyn[static_cast<long long>(co) * d.p];
            rb[j] = v;
        }
        p += Cfg::BK;
        while (p >= d.p) {
            p -= d.p;
            ++n;
        }
    };

    T acc[Cfg::TM][Cfg::TN] = {};
    conv::gemm_mainloop<Cfg, false>(kt0, kt1, load, as, bs, acc, tid, tm, tn);

    T* dst = out + static_cast<long long>(s) * d.c_out * K;
#pragma unroll
    for (int r = 0; r < Cfg::TM; ++r) {
        const int k = k0 + Cfg::row_of(tm, r);
        if (k >= K) continue;
#pragma unroll
        for (int c = 0; c < Cfg::TN; ++c) {
            const int co = c0 + tn * Cfg::TN + c;
            if (co < d.cog)
                dst[(static_cast<long long>(g) * d.cog + co) * K + k] = acc[r][c];
        }
    }
}

// dw[e] = sum_{s < S} partial[s][e], s in order.
template <typename T>
__global__ void conv_bwd_weight_finish_kernel(const T* __restrict__ partial, T* __restrict__ dw,
                                              long long numel, int splits) {
    for (long long e = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; e < numel;
         e += static_cast<long long>(gridDim.x) * blockDim.x) {
        T v = partial[e];
        for (int s = 1; s < splits; ++s) v += partial[s * numel + e];
        dw[e] = v;
    }
}

constexpr int kBiasThreads = 256;

// db[c] = sum_{n, p} dy[n, c, p]: block c (grid-stride over channels).
// Accumulates in Compute<T> (float for bf16/f16), rounds once.
template <typename T>
__global__ void __launch_bounds__(kBiasThreads)
    conv_bias_grad_kernel(const T* __restrict__ dy, T* __restrict__ db, long long N, int C,
                          int P) {
    using A = typename Compute<T>::type;
    __shared__ A part[kBiasThreads];
    for (int c = blockIdx.x; c < C; c += gridDim.x) {
        A v = A(0);
        for (long long n = 0; n < N; ++n) {
            const T* row = dy + (n * C + c) * static_cast<long long>(P);
            for (int p = threadIdx.x; p < P; p += kBiasThreads) v += convert<A>(row[p]);
        }
        part[threadIdx.x] = v;
        __syncthreads();
        for (int half = kBiasThreads / 2; half > 0; half /= 2) {
            if (threadIdx.x < half) part[threadIdx.x] += part[threadIdx.x + half];
            __syncthreads();
        }
        if (threadIdx.x == 0) db[c] = convert<T>(part[0]);
        __syncthreads();  // part is rewritten for the next channel
    }
}

// ---------------------------------------------------------------- host side
constexpr long long kTargetBlocks = 1024;       // weight-gradient blocks to aim for
constexpr long long kMinTilesPerSplit = 16;     // depth tiles (BK r values each) per split
constexpr long long kPartialCap = 1LL << 25;    // elements of all partial dW copies
constexpr long long kMaxSplits = 65535;

template <class Cfg, typename T = typename Cfg::type>
void launch_backward_input(const T* dy, const T* w, const T* b, T* dx, const Dims& d, long long M,
                           int groups, cudaStream_t stream) {
    const long long bx = (M + Cfg::BM - 1) / Cfg::BM;
    const long long by = (d.cg + Cfg::BN - 1) / Cfg::BN;
    if (bx > std::numeric_limits<int>::max() || by > 65535) {
        throw std::invalid_argument(
            "cuda.conv2d_backward_input: the input is too large for one launch");
    }
    conv_bwd_input_kernel<Cfg><<<dim3(static_cast<unsigned>(bx), static_cast<unsigned>(by),
                                      groups),
                                 Cfg::NT, 0, stream>>>(dy, w, b, dx, d, M);
    check_launch("conv2d_backward_input", type_name<T>());
}

template <class Cfg, typename T = typename Cfg::type>
void launch_backward_weight(const T* x, const T* dy, T* dw, const Dims& d, int groups,
                            int device, cudaStream_t stream) {
    const long long K = static_cast<long long>(d.cg) * d.khw;
    const long long tiles_m = (K + Cfg::BM - 1) / Cfg::BM;
    const long long tiles_n = (d.cog + Cfg::BN - 1) / Cfg::BN;
    const long long R = d.n * d.p;
    const long long nkt = (R + Cfg::BK - 1) / Cfg::BK;
    const long long numel = static_cast<long long>(d.c_out) * K;
    if (tiles_m * tiles_n > std::numeric_limits<int>::max() ||
        nkt > std::numeric_limits<int>::max() - 1) {
        throw std::invalid_argument(
            "cuda.conv2d_backward_weight: the problem is too large for one launch");
    }
    const long long base = tiles_m * tiles_n * groups;
    long long splits = (kTargetBlocks + base - 1) / base;
    splits = std::min(splits, (nkt + kMinTilesPerSplit - 1) / kMinTilesPerSplit);
    splits = std::min(splits, kPartialCap / numel);
    splits = std::min(splits, kMaxSplits);
    splits = std::max(splits, 1LL);
    const long long chunk = (nkt + splits - 1) / splits;
    splits = (nkt + chunk - 1) / chunk;  // no empty split

    DeviceArray partial;
    T* out = dw;
    if (splits > 1) {
        const DType dt = sizeof(T) == sizeof(double) ? DType::Float64 : DType::Float32;
        partial = DeviceArray::empty({splits, numel}, dt, device);
        out = static_cast<T*>(partial.data());
    }
    conv_bwd_weight_kernel<Cfg>
        <<<dim3(static_cast<unsigned>(tiles_m * tiles_n), static_cast<unsigned>(splits), groups),
           Cfg::NT, 0, stream>>>(x, dy, out, d, static_cast<int>(tiles_m),
                                 static_cast<int>(chunk), static_cast<int>(nkt));
    check_launch("conv2d_backward_weight", type_name<T>());
    if (splits > 1) {
        const int threads = 256;
        conv_bwd_weight_finish_kernel<T>
            <<<grid_for(numel, threads, device), threads, 0, stream>>>(
                out, dw, numel, static_cast<int>(splits));
        check_launch("conv2d_backward_weight_finish", type_name<T>());
    }
}

bool is_reduced(DType dt) { return dt == DType::BFloat16 || dt == DType::Float16; }

void check_4d(const char* op, const char* arg, const DeviceArray& a, const DeviceArray* like) {
    const std::string o = std::string(op) + ": " + arg;
    if (a.ndim() != 4 || !a.is_contiguous())
        throw std::invalid_argument(o + " must be a C-contiguous 4-D array, got " + a.describe());
    if (a.dtype != DType::Float32 && a.dtype != DType::Float64 && !is_reduced(a.dtype))
        throw std::invalid_argument(o + " must be float32, float64, bfloat16 or float16, got " +
                                    a.describe());
    if (like && (a.dtype != like->dtype || a.device != like->device))
        throw std::invalid_argument(o + " " + a.describe() + " must have the dtype and device of " +
                                    like->describe());
}

template <typename F> void dispatch_f32_f64(DType dt, F&& f) {
    if (dt == DType::Float64) f(double{});
    else f(float{});
}

}  // namespace

DeviceArray conv2d_backward_input(const DeviceArray& dy, const DeviceArray& w,
                                  const DeviceArray* bias, Pair input_size, Pair stride,
                                  Pads padding, Pair dilation, std::int64_t groups) {
    const char* op = "cuda.conv2d_backward_input";
    check_4d(op, "grad_output", dy, nullptr);
    check_4d(op, "weight", w, &dy);
    if (dy.shape[1] != w.shape[0])
        throw std::invalid_argument(std::string(op) + ": grad_output of shape " +
                                    shape_str(dy.shape) + " has " + std::to_string(dy.shape[1]) +
                                    " channels, weight of shape " + shape_str(w.shape) +
                                    " gives " + std::to_string(w.shape[0]));
    if (groups < 1) throw std::invalid_argument(std::string(op) + ": groups must be positive");
    const ConvGeometry g = conv_geometry(op, dy.shape[0], w.shape[1] * groups, input_size,
                                         w.shape, {dy.shape[2], dy.shape[3]}, stride, padding,
                                         dilation, groups);
    if (bias && (bias->ndim() != 1 || bias->shape[0] != g.c_in || !bias->is_contiguous() ||
                 bias->dtype != dy.dtype || bias->device != dy.device))
        throw std::invalid_argument(std::string(op) + ": bias must be a contiguous (" +
                                    std::to_string(g.c_in) + ",) array like grad_output " +
                                    dy.describe() + ", got " + bias->describe());
    if (is_reduced(dy.dtype) && g.n > 0) {
        if (conv_tc_suitable(g, dy.device)) return conv2d_backward_input_tc(dy, w, bias, g);
        // Depthwise / thin groups / pre-sm_80: float32 SIMT, rounded once.
        DeviceArray bf;
        if (bias) bf = astype(*bias, DType::Float32);
        return astype(conv2d_backward_input(astype(dy, DType::Float32),
                                            astype(w, DType::Float32), bias ? &bf : nullptr,
                                            input_size, stride, padding, dilation, groups),
                      dy.dtype);
    }
    DeviceArray dx = DeviceArray::empty({g.n, g.c_in, g.h, g.w}, dy.dtype, dy.device);
    const long long M = g.n * g.h * g.w;
    if (M == 0) return dx;
    DeviceGuard guard(dy.device);
    cudaStream_t stream = default_stream(dy.device);
    const Dims d = conv::make_dims(g);
    dispatch_f32_f64(dy.dtype, [&](auto tag) {
        using T = decltype(tag);
        const T* dyp = static_cast<const T*>(dy.data());
        const T* wp = static_cast<const T*>(w.data());
        const T* bp = bias ? static_cast<const T*>(bias->data()) : nullptr;
        T* dxp = static_cast<T*>(dx.data());
        const int G = static_cast<int>(groups);
        if (d.cg <= conv::kNarrowCols)
            launch_backward_input<typename conv::Narrow<T>::type>(dyp, wp, bp, dxp, d, M, G,
                                                                  stream);
        else
            launch_backward_input<typename conv::Wide<T>::type>(dyp, wp, bp, dxp, d, M, G, stream);
    });
    return dx;
}

ConvWeightGrads conv2d_backward_weight(const DeviceArray& x, const DeviceArray& dy,
                                       Pair kernel_size, Pair stride, Pads padding,
                                       Pair dilation, std::int64_t groups, bool need_weight,
                                       bool need_bias) {
    const char* op = "cuda.conv2d_backward_weight";
    check_4d(op, "x", x, nullptr);
    check_4d(op, "grad_output", dy, &x);
    if (dy.shape[0] != x.shape[0])
        throw std::invalid_argument(std::string(op) + ": grad_output of shape " +
                                    shape_str(dy.shape) + " and x of shape " + shape_str(x.shape) +
                                    " differ in batch size");
    if (groups < 1) throw std::invalid_argument(std::string(op) + ": groups must be positive");
    const Shape ws = {dy.shape[1], x.shape[1] / groups, kernel_size[0], kernel_size[1]};
    const ConvGeometry g = conv_geometry(op, x.shape[0], x.shape[1], {x.shape[2], x.shape[3]}, ws,
                                         {dy.shape[2], dy.shape[3]}, stride, padding, dilation,
                                         groups);
    ConvWeightGrads out;
    out.has_dw = need_weight;
    out.has_db = need_bias;
    if (need_weight) out.dw = DeviceArray::empty(ws, x.dtype, x.device);
    if (need_bias) out.db = DeviceArray::empty({g.c_out}, x.dtype, x.device);
    if (!need_weight && !need_bias) return out;
    DeviceGuard guard(x.device);
    cudaStream_t stream = default_stream(x.device);
    if (g.n == 0) {  // empty sums
        if (need_weight)
            NNF_CUDA_CHECK(cudaMemsetAsync(out.dw.data(), 0, out.dw.nbytes(), stream),
                           "cudaMemsetAsync(conv2d_backward_weight dw)");
        if (need_bias)
            NNF_CUDA_CHECK(cudaMemsetAsync(out.db.data(), 0, out.db.nbytes(), stream),
                           "cudaMemsetAsync(conv2d_backward_weight db)");
        return out;
    }
    if (is_reduced(x.dtype)) {
        if (!conv_tc_suitable(g, x.device)) {
            // Depthwise / thin groups / pre-sm_80: float32 SIMT, rounded once.
            ConvWeightGrads f = conv2d_backward_weight(
                astype(x, DType::Float32), astype(dy, DType::Float32), kernel_size, stride,
                padding, dilation, groups, need_weight, need_bias);
            if (need_weight) out.dw = astype(f.dw, x.dtype);
            if (need_bias) out.db = astype(f.db, x.dtype);
            return out;
        }
        if (need_weight) conv2d_backward_weight_tc(x, dy, out.dw, g);
        if (need_bias) {
            const int blocks = static_cast<int>(std::min<long long>(g.c_out, 65535));
            auto bias_grad = [&](auto tag) {
                using T = decltype(tag);
                conv_bias_grad_kernel<T><<<blocks, kBiasThreads, 0, stream>>>(
                    static_cast<const T*>(dy.data()), static_cast<T*>(out.db.data()), g.n,
                    static_cast<int>(g.c_out), static_cast<int>(g.oh * g.ow));
                check_launch("conv2d_backward_bias", type_name<T>());
            };
            if (x.dtype == DType::BFloat16) bias_grad(bf16{});
            else bias_grad(f16{});
        }
        return out;
    }
    const Dims d = conv::make_dims(g);
    dispatch_f32_f64(x.dtype, [&](auto tag) {
        using T = decltype(tag);
        const T* xp = static_cast<const T*>(x.data());
        const T* dyp = static_cast<const T*>(dy.data());
        const int G = static_cast<int>(groups);
        if (need_weight) {
            T* dwp = static_cast<T*>(out.dw.data());
            if (d.cog <= conv::kNarrowCols)
                launch_backward_weight<typename conv::Narrow<T>::type>(xp, dyp, dwp, d, G,
                                                                       x.device, stream);
            else
                launch_backward_weight<typename conv::Wide<T>::type>(xp, dyp, dwp, d, G,
                                                                     x.device, stream);
        }
        if (need_bias) {
            const int blocks = static_cast<int>(std::min<long long>(g.c_out, 65535));
            conv_bias_grad_kernel<T><<<blocks, kBiasThreads, 0, stream>>>(
                dyp, static_cast<T*>(out.db.data()), g.n, d.c_out, d.p);
            check_launch("conv2d_backward_bias", type_name<T>());
        }
    });
    return out;
}

}  // namespace cuda
}  // namespace nnforge
