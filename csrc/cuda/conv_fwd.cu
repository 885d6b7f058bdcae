// Convolution forward as an implicit GEMM (conv.h has the equation), and the
// geometry checks every conv kernel shares.
//
// For group g (blockIdx.z), with output pixels m = (n, oh, ow) as rows:
//   Y_g (M x Cog) = A (M x K) B (K x Cog) + b,   M = N OH OW, K = Cg kh kw
//   A[m, k] = x[n, g Cg + ci, oh sh - pt + i dh, ow sw - pl + j dw]   (k = (ci, i, j);
//             zero outside the input)
//   B[k, co] = w[g Cog + co, ci, i, j]        (w's row g Cog + co is K contiguous entries)
// A is never formed: each thread gathers its A entries from x while loading a
// tile (row-fast: a warp reads 32 consecutive output pixels, so consecutive
// x addresses for stride 1); B is read depth-fast along w's rows. Block tile
// BM x BN (pixels x output channels; see conv_gemm.cuh), grid (ceil(M / BM),
// ceil(Cog / BN), G); the epilogue adds the bias and writes y in NCHW (a warp
// writes runs of consecutive pixels of one channel plane).
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

template <class Cfg, typename T = typename Cfg::type>
__global__ void __launch_bounds__(Cfg::NT)
    conv_fwd_kernel(const T* __restrict__ x, const T* __restrict__ w,
                    const T* __restrict__ bias, T* __restrict__ y, Dims d, long long M) {
    __shared__ __align__(16) T as[Cfg::BK][Cfg::LdA];
    __shared__ __align__(16) T bs[Cfg::BK][Cfg::LdB];
    const int tid = threadIdx.x;
    const int tm = tid % (Cfg::BM / Cfg::TM), tn = tid / (Cfg::BM / Cfg::TM);
    const int g = blockIdx.z;
    const long long m0 = static_cast<long long>(blockIdx.x) * Cfg::BM;
    const int c0 = blockIdx.y * Cfg::BN;
    const int K = d.cg * d.khw;

    // This thread's A row (row-fast: fixed for the whole loop).
    const long long m = m0 + tid % Cfg::BM;
    const bool m_ok = m < M;
    int ih0 = 0, iw0 = 0;
    const T* xg = x;
    if (m_ok) {
        const long long n = m / d.p;
        const int p = static_cast<int>(m - n * d.p);
        const int oh = p / d.ow;
        ih0 = oh * d.sh - d.pt;
        iw0 = (p - oh * d.ow) * d.sw - d.pl;
        xg = x + (n * d.c_in + static_cast<long long>(g) * d.cg) * d.hw;
    }
    const T* wg = w + static_cast<long long>(g) * d.cog * K;

    auto load = [&](int kt, T (&ra)[Cfg::ALoads], T (&rb)[Cfg::BLoads]) {
#pragma unroll
        for (int j = 0; j < Cfg::ALoads; ++j) {
            const int k = kt * Cfg::BK + (tid + j * Cfg::NT) / Cfg::BM;
            T v = T(0);
            if (m_ok && k < K) {
                const int ci = k / d.khw, r = k - ci * d.khw;
                const int i = r / d.kw;
                const int ih = ih0 + i * d.dh, iw = iw0 + (r - i * d.kw) * d.dw;
                if (ih >= 0 && ih < d.h && iw >= 0 && iw < d.w)
                    v = xg[static_cast<long long>(ci) * d.hw + ih * d.w + iw];
            }
            ra[j] = v;
        }
#pragma unroll
        for (int j = 0; j < Cfg::BLoads; ++j) {
            const int e = tid + j * Cfg::NT;
            const int k = kt * Cfg::BK + e % Cfg::BK, co = c0 + e / Cfg::BK;
            T v = T(0);
            if (e < Cfg::BN * Cfg::BK && co < d.cog && k < K)
                v = wg[static_cast<long long>(co) * K + k];
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
        const long long n = mr / d.p;
        const int p = static_cast<int>(mr - n * d.p);
        T* yp = y + (n * d.c_out + static_cast<long long>(g) * d.cog) * d.p + p;
#pragma unroll
        for (int c = 0; c < Cfg::TN; ++c) {
            const int co = c0 + tn * Cfg::TN + c;
            if (co < d.cog) {
                T v = acc[r][c];
                if (bias) v += bias[g * d.cog + co];
                yp[static_cast<long long>(co) * d.p] = v;
            }
        }
    }
}

template <class Cfg, typename T = typename Cfg::type>
void launch_forward(const T* x, const T* w, const T* b, T* y, const Dims& d, long long M,
                    int groups, cudaStream_t stream) {
    const long long bx = (M + Cfg::BM - 1) / Cfg::BM;
    const long long by = (d.cog + Cfg::BN - 1) / Cfg::BN;
    if (bx > std::numeric_limits<int>::max() || by > 65535) {
        throw std::invalid_argument("cuda.conv2d_forward: the output is too large for one launch");
    }
    conv_fwd_kernel<Cfg><<<dim3(static_cast<unsigned>(bx), static_cast<unsigned>(by), groups),
                           Cfg::NT, 0, stream>>>(x, w, b, y, d, M);
    check_launch("conv2d_forward", type_name<T>());
}

std::string pair_str(Pair p) {
    return "(" + std::to_string(p[0]) + ", " + std::to_string(p[1]) + ")";
}

bool fits(std::int64_t v, std::int64_t lim) { return v >= 0 && v <= lim; }

}  // namespace

ConvGeometry conv_geometry(const char* op, std::int64_t n, std::int64_t c_in, Pair in_hw,
                           const Shape& ws, Pair out_hw, Pair stride, Pads padding,
                           Pair dilation, std::int64_t groups) {
    const std::string o = std::string(op) + ": ";
    if (ws.size() != 4) {
        throw std::invalid_argument(o + "weight must be 4-D (C_out, C_in / groups, kh, kw), got " +
                                    shape_str(ws));
    }
    if (stride[0] < 1 || stride[1] < 1)
        throw std::invalid_argument(o + "stride must be positive, got " + pair_str(stride));
    if (dilation[0] < 1 || dilation[1] < 1)
        throw std::invalid_argument(o + "dilation must be positive, got " + pair_str(dilation));
    for (std::int64_t p : padding)
        if (p < 0) throw std::invalid_argument(o + "padding must be non-negative");
    if (groups < 1) throw std::invalid_argument(o + "groups must be positive");
    ConvGeometry g;
    g.n = n, g.c_in = c_in, g.h = in_hw[0], g.w = in_hw[1];
    g.c_out = ws[0], g.kh = ws[2], g.kw = ws[3];
    g.sh = stride[0], g.sw = stride[1], g.pt = padding[0], g.pl = padding[2];
    g.dh = dilation[0], g.dw = dilation[1], g.groups = groups;
    if (n < 0 || c_in < 1 || g.h < 1 || g.w < 1 || g.c_out < 1 || g.kh < 1 || g.kw < 1)
        throw std::invalid_argument(o + "sizes must be positive, got input (" +
                                    std::to_string(n) + ", " + std::to_string(c_in) + ", " +
                                    std::to_string(g.h) + ", " + std::to_string(g.w) +
                                    ") and weight " + shape_str(ws));
    if (c_in % groups || g.c_out % groups || ws[1] * groups != c_in)
        throw std::invalid_argument(o + "weight of shape " + shape_str(ws) + " needs " +
                                    std::to_string(ws[1] * groups) + " input channels and " +
                                    "output channels divisible by groups=" +
                                    std::to_string(groups) + ", got " + std::to_string(c_in) +
                                    " input channels");
    // Everything one coordinate or one plane/filter index can reach fits in int.
    const std::int64_t lim = (std::int64_t(1) << 30) - 1;
    const std::int64_t dims[] = {c_in, g.c_out, g.h, g.w, g.kh, g.kw, g.sh, g.sw, g.pt,
                                 padding[1], g.pl, padding[3], g.dh, g.dw};
    for (std::int64_t v : dims)
        if (!fits(v, lim)) throw std::invalid_argument(o + "a size is too large");
    const std::int64_t span_h = g.dh * (g.kh - 1) + 1, span_w = g.dw * (g.kw - 1) + 1;
    const std::int64_t pad_h = g.h + g.pt + padding[1], pad_w = g.w + g.pl + padding[3];
    if (!fits(span_h, lim) || !fits(span_w, lim) || !fits(pad_h, lim) || !fits(pad_w, lim))
        throw std::invalid_argument(o + "a size is too large");
    if (span_h > pad_h || span_w > pad_w)
        throw std::invalid_argument(o + "kernel " + pair_str({g.kh, g.kw}) + " with dilation " +
                                    pair_str(dilation) + " is larger than the padded input " +
                                    pair_str({pad_h, pad_w}));
    const std::int64_t most_h = (pad_h - span_h) / g.sh + 1, most_w = (pad_w - span_w) / g.sw + 1;
    g.oh = out_hw[0] < 0 ? most_h : out_hw[0];
    g.ow = out_hw[1] < 0 ? most_w : out_hw[1];
    if (g.oh < 1 || g.ow < 1 || g.oh > most_h || g.ow > most_w)
        throw std::invalid_argument(o + "output size " + pair_str({g.oh, g.ow}) +
                                    " does not fit the input size " + pair_str(in_hw) +
                                    " (at most " + pair_str({most_h, most_w}) + ")");
    const std::int64_t cg = c_in / groups, cog = g.c_out / groups;
    if (!fits(g.h * g.w, lim) || !fits(g.oh * g.ow, lim) || !fits(cg * g.kh * g.kw, lim) ||
        !fits(cog * g.kh * g.kw, lim) || groups > 65535)
        throw std::invalid_argument(o + "a plane, a filter or the group count is too large");
    // Whole tensors (64-bit products; the factors are below 2^30 and n is a real dim).
    const double big = 4.0e18;
    if (static_cast<double>(n) * static_cast<double>(std::max(c_in, g.c_out)) *
            static_cast<double>(std::max(g.h * g.w, g.oh * g.ow)) > big)
        throw std::invalid_argument(o + "the tensors are too large");
    return g;
}

DeviceArray conv2d_forward(const DeviceArray& x, const DeviceArray& w, const DeviceArray* bias,
                           Pair stride, Pads padding, Pair dilation, std::int64_t groups) {
    const char* op = "cuda.conv2d_forward";
    const std::string o = std::string(op) + ": ";
    if (x.ndim() != 4 || !x.is_contiguous())
        throw std::invalid_argument(o + "x must be a C-contiguous (N, C, H, W) array, got " +
                                    x.describe());
    const bool reduced = x.dtype == DType::BFloat16 || x.dtype == DType::Float16;
    if (x.dtype != DType::Float32 && x.dtype != DType::Float64 && !reduced)
        throw std::invalid_argument(o + "x must be float32, float64, bfloat16 or float16, got " +
                                    x.describe());
    if (w.ndim() != 4 || !w.is_contiguous() || w.dtype != x.dtype || w.device != x.device)
        throw std::invalid_argument(o + "weight must be a C-contiguous 4-D array like x " +
                                    x.describe() + ", got " + w.describe());
    const ConvGeometry g = conv_geometry(op, x.shape[0], x.shape[1], {x.shape[2], x.shape[3]},
                                         w.shape, {-1, -1}, stride, padding, dilation, groups);
    if (bias && (bias->ndim() != 1 || bias->shape[0] != g.c_out || !bias->is_contiguous() ||
                 bias->dtype != x.dtype || bias->device != x.device))
        throw std::invalid_argument(o + "bias must be a contiguous (" + std::to_string(g.c_out) +
                                    ",) array like x " + x.describe() + ", got " +
                                    bias->describe());
    if (reduced && g.n > 0) {
        if (conv_tc_suitable(g, x.device)) return conv2d_forward_tc(x, w, bias, g);
        // Depthwise / thin groups / pre-sm_80: float32 SIMT, rounded once.
        DeviceArray bf;
        if (bias) bf = astype(*bias, DType::Float32);
        return astype(conv2d_forward(astype(x, DType::Float32), astype(w, DType::Float32),
                                     bias ? &bf : nullptr, stride, padding, dilation, groups),
                      x.dtype);
    }
    DeviceArray y = DeviceArray::empty({g.n, g.c_out, g.oh, g.ow}, x.dtype, x.device);
    const long long M = g.n * g.oh * g.ow;
    if (M == 0) return y;
    DeviceGuard guard(x.device);
    cudaStream_t stream = default_stream(x.device);
    const Dims d = conv::make_dims(g);
    auto run = [&](auto tag) {
        using T = decltype(tag);
        const T* xp = static_cast<const T*>(x.data());
        const T* wp = static_cast<const T*>(w.data());
        const T* bp = bias ? static_cast<const T*>(bias->data()) : nullptr;
        T* yp = static_cast<T*>(y.data());
        const int G = static_cast<int>(groups);
        if (d.cog <= conv::kNarrowCols)
            launch_forward<typename conv::Narrow<T>::type>(xp, wp, bp, yp, d, M, G, stream);
        else
            launch_forward<typename conv::Wide<T>::type>(xp, wp, bp, yp, d, M, G, stream);
    };
    if (x.dtype == DType::Float64) run(double{});
    else run(float{});
    return y;
}

}  // namespace cuda
}  // namespace nnforge
