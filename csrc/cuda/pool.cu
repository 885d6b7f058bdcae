// Max / average / adaptive pooling on CUDA, forward and backward (see pool.h
// for the semantics, which are the CPU twin's, cpu/pool_kernels.h).
//
// Layout: x (planes, ih, iw) and y (planes, oh, ow), C-contiguous, planes = N C.
//
// Work split: every kernel is a grid-stride loop with one thread per element
// it writes, int64 index math throughout:
//   forwards          one thread per output (p, i, j): loops over its window
//                     (kh kw taps), reads in bounds only.
//   avg / adaptive    one thread per input (p, h, w): gathers the outputs
//   backward          whose windows hold (h, w) (rows i in [i_lo, i_hi],
//                     columns alike), sum_i (sum_j gy[i, j] / div(i, j)), in
//                     the CPU's order: deterministic, no atomics.
//   max backward      gx zeroed, then one thread per output adds gy into
//                     gx[idx] with atomicAdd (see pool.h on determinism);
//                     bad indices are counted into a device counter that the
//                     host reads back.
// Threads of a warp handle consecutive outputs (consecutive j), so the loads
// of one tap are strided by sw and the stores are coalesced. The expected
// bottleneck is memory bandwidth (each input is read by about kh kw / (sh sw)
// windows, mostly hitting L1/L2).
// Launched on the device's default stream, asynchronously.
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda/check.cuh"
#include "cuda/context.cuh"
#include "cuda/copy.h"
#include "cuda/dispatch.cuh"
#include "cuda/pool.h"

namespace nnforge {
namespace cuda {
namespace {

constexpr int kThreads = 256;
constexpr std::int64_t kMaxParam = std::int64_t{1} << 31;

struct Geom {
    long long planes = 0, ih = 0, iw = 0, oh = 0, ow = 0;
    long long kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
};

__host__ __device__ __forceinline__ long long min_ll(long long a, long long b) {
    return a < b ? a : b;
}
__host__ __device__ __forceinline__ long long max_ll(long long a, long long b) {
    return a > b ? a : b;
}
// floor(a / b) for b > 0 and a of either sign.
__device__ __forceinline__ long long floor_div(long long a, long long b) {
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

// ---------------------------------------------------------------- max pooling
template <typename T, bool kIdx>
__global__ void max_fwd_kernel(const T* __restrict__ x, T* __restrict__ y,
                               long long* __restrict__ idx, Geom g, long long total) {
    const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
    for (long long q = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; q < total;
         q += stride) {
        const long long j = q % g.ow, t = q / g.ow;
        const long long i = t % g.oh, p = t / g.oh;
        const T* xp = x + p * g.ih * g.iw;
        const long long h0 = i * g.sh - g.ph, w0 = j * g.sw - g.pw;
        T m = -INFINITY;
        long long mi = -1;  // the first in-input tap until a larger value (or NaN) shows up
        for (long long k = 0; k < g.kh; ++k) {
            const long long h = h0 + k * g.dh;
            if (h < 0) continue;
            if (h >= g.ih) break;
            for (long long c = 0; c < g.kw; ++c) {
                const long long w = w0 + c * g.dw;
                if (w < 0) continue;
                if (w >= g.iw) break;
                const long long pos = h * g.iw + w;
                const T v = xp[pos];
                if (mi < 0) mi = pos;
                if (v > m || v != v) {
                    m = v;
                    mi = pos;
                }
            }
        }
        y[q] = m;
        if (kIdx) idx[q] = mi;
    }
}

// Window [start, end) of output i along an axis of `in` inputs, `out` outputs.
__device__ __forceinline__ long long adaptive_start(long long i, long long in, long long out) {
    return (i * in) / out;
}
__device__ __forceinline__ long long adaptive_end(long long i, long long in, long long out) {
    return ((i + 1) * in + out - 1) / out;
}

template <typename T, bool kIdx>
__global__ void adaptive_max_fwd_kernel(const T* __restrict__ x, T* __restrict__ y,
                                        long long* __restrict__ idx, Geom g, long long total) {
    const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
    for (long long q = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; q < total;
         q += stride) {
        const long long j = q % g.ow, t = q / g.ow;
        const long long i = t % g.oh, p = t / g.oh;
        const T* xp = x + p * g.ih * g.iw;
        const long long h0 = adaptive_start(i, g.ih, g.oh), h1 = adaptive_end(i, g.ih, g.oh);
        const long long w0 = adaptive_start(j, g.iw, g.ow), w1 = adaptive_end(j, g.iw, g.ow);
        T m = -INFINITY;
        long long mi = h0 * g.iw + w0;
        for (long long h = h0; h < h1; ++h) {
            for (long long w = w0; w < w1; ++w) {
                const T v = xp[h * g.iw + w];
                if (v > m || v != v) {
                    m = v;
                    mi = h * g.iw + w;
                }
            }
        }
        y[q] = m;
        if (kIdx) idx[q] = mi;
    }
}

// gx (zeroed) [p, idx[q]] += gy[q]; idx -1 skipped, other out-of-plane ones counted.
template <typename T>
__global__ void max_bwd_kernel(const T* __restrict__ gy, const long long* __restrict__ idx,
                               T* __restrict__ gx, unsigned long long* __restrict__ bad,
                               long long out_plane, long long in_plane, long long total) {
    const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
    for (long long q = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; q < total;
         q += stride) {
        const long long at = idx[q];
        if (at >= 0 && at < in_plane) {
            atomicAdd(gx + (q / out_plane) * in_plane + at, gy[q]);
        } else if (at != -1) {
            atomicAdd(bad, 1ULL);
        }
    }
}

// ---------------------------------------------------------------- average pooling
struct Span {
    long long lo, hi, factor;
};

// Window of output i along one axis: [lo, hi) clipped to [0, n) and the divisor
// factor (unclipped size with the padding counted, else the clipped size).
__device__ __forceinline__ Span avg_span(long long i, long long n, long long k, long long s,
                                         long long pad, bool count_include_pad) {
    const long long start = i * s - pad;
    const long long end = min_ll(start + k, n + pad);
    const long long lo = max_ll(start, 0), hi = min_ll(end, n);
    return {lo, hi, count_include_pad ? end - start : hi - lo};
}

template <typename T>
__device__ __forceinline__ T avg_divisor(long long hf, long long wf, long long divisor_override) {
    return divisor_override > 0 ? T(divisor_override) : T(hf * wf);
}

// Sum of x[h, w] over [h0, h1) x [w0, w1) of an iw-wide plane, column sums added in
// column order (the CPU's order: rows summed first, then the columns).
template <typename T>
__device__ __forceinline__ T window_sum(const T* xp, long long iw, long long h0, long long h1,
                                        long long w0, long long w1) {
    T sum = T(0);
    for (long long w = w0; w < w1; ++w) {
        T col = xp[h0 * iw + w];
        for (long long h = h0 + 1; h < h1; ++h) col += xp[h * iw + w];
        sum += col;
    }
    return sum;
}

template <typename T>
__global__ void avg_fwd_kernel(const T* __restrict__ x, T* __restrict__ y, Geom g,
                               long long total, bool count_include_pad,
                               long long divisor_override) {
    const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
    for (long long q = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; q < total;
         q += stride) {
        const long long j = q % g.ow, t = q / g.ow;
        const long long i = t % g.oh, p = t / g.oh;
        const Span hs = avg_span(i, g.ih, g.kh, g.sh, g.ph, count_include_pad);
        const Span ws = avg_span(j, g.iw, g.kw, g.sw, g.pw, count_include_pad);
        T out = T(0);
        if (hs.lo < hs.hi && ws.lo < ws.hi) {
            out = window_sum(x + p * g.ih * g.iw, g.iw, hs.lo, hs.hi, ws.lo, ws.hi) /
                  avg_divisor<T>(hs.factor, ws.factor, divisor_override);
        }
        y[q] = out;
    }
}

// Outputs along one axis whose windows [o s - pad, o s - pad + k) hold input n:
// [first, last] clipped to [0, out - 1] (empty when first > last).
__device__ __forceinline__ void covering(long long n, long long k, long long s, long long pad,
                                         long long out, long long* first, long long* last) {
    *first = max_ll(floor_div(n + pad - k, s) + 1, 0);
    *last = min_ll(floor_div(n + pad, s), out - 1);
}

template <typename T>
__global__ void avg_bwd_kernel(const T* __restrict__ gy, T* __restrict__ gx, Geom g,
                               long long total, bool count_include_pad,
                               long long divisor_override) {
    const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
    for (long long e = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
         e += stride) {
        const long long w = e % g.iw, t = e / g.iw;
        const long long h = t % g.ih, p = t / g.ih;
        const T* gp = gy + p * g.oh * g.ow;
        long long i0, i1, j0, j1;
        covering(h, g.kh, g.sh, g.ph, g.oh, &i0, &i1);
        covering(w, g.kw, g.sw, g.pw, g.ow, &j0, &j1);
        T acc = T(0);
        for (long long i = i0; i <= i1; ++i) {
            const Span hs = avg_span(i, g.ih, g.kh, g.sh, g.ph, count_include_pad);
            T row = T(0);
            for (long long j = j0; j <= j1; ++j) {
                const Span ws = avg_span(j, g.iw, g.kw, g.sw, g.pw, count_include_pad);
                row += gp[i * g.ow + j] / avg_divisor<T>(hs.factor, ws.factor, divisor_override);
            }
            acc += row;
        }
        gx[e] = acc;
    }
}

// ---------------------------------------------------------------- adaptive average pooling
template <typename T>
__global__ void adaptive_avg_fwd_kernel(const T* __restrict__ x, T* __restrict__ y, Geom g,
                                        long long total) {
    const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
    for (long long q = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; q < total;
         q += stride) {
        const long long j = q % g.ow, t = q / g.ow;
        const long long i = t % g.oh, p = t / g.oh;
        const long long h0 = adaptive_start(i, g.ih, g.oh), h1 = adaptive_end(i, g.ih, g.oh);
        const long long w0 = adaptive_start(j, g.iw, g.ow), w1 = adaptive_end(j, g.iw, g.ow);
        y[q] = window_sum(x + p * g.ih * g.iw, g.iw, h0, h1, w0, w1) / T((h1 - h0) * (w1 - w0));
    }
}

// Outputs along one axis whose adaptive windows hold input n: [first, last]; the
// closed form floor(n out / in) .. ceil((n + 1) out / in) - 1, widened by one each
// side and then checked against the windows themselves (exact in integers).
__device__ __forceinline__ void adaptive_covering(long long n, long long in, long long out,
                                                  long long* first, long long* last) {
    long long a = max_ll((n * out) / in - 1, 0);
    long long b = min_ll(((n + 1) * out + in - 1) / in, out - 1);
    while (a <= b && adaptive_end(a, in, out) <= n) ++a;
    while (b >= a && adaptive_start(b, in, out) > n) --b;
    *first = a;
    *last = b;
}

template <typename T>
__global__ void adaptive_avg_bwd_kernel(const T* __restrict__ gy, T* __restrict__ gx, Geom g,
                                        long long total) {
    const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
    for (long long e = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
         e += stride) {
        const long long w = e % g.iw, t = e / g.iw;
        const long long h = t % g.ih, p = t / g.ih;
        const T* gp = gy + p * g.oh * g.ow;
        long long i0, i1, j0, j1;
        adaptive_covering(h, g.ih, g.oh, &i0, &i1);
        adaptive_covering(w, g.iw, g.ow, &j0, &j1);
        T acc = T(0);
        for (long long i = i0; i <= i1; ++i) {
            const long long hn = adaptive_end(i, g.ih, g.oh) - adaptive_start(i, g.ih, g.oh);
            T row = T(0);
            for (long long j = j0; j <= j1; ++j) {
                const long long wn = adaptive_end(j, g.iw, g.ow) - adaptive_start(j, g.iw, g.ow);
                row += gp[i * g.ow + j] / T(hn * wn);
            }
            acc += row;
        }
        gx[e] = acc;
    }
}

// ---------------------------------------------------------------- host side
[[noreturn]] void fail(const char* op, const std::string& what) {
    throw std::invalid_argument(std::string(op) + ": " + what);
}

std::string pair_str(const PoolPair& p) {
    return "(" + std::to_string(p[0]) + ", " + std::to_string(p[1]) + ")";
}

// A C-contiguous 4-D (N, C, H, W) array of float32/float64 (or `want` when given).
void check_4d(const char* op, const char* arg, const DeviceArray& a, bool index = false) {
    if (index ? a.dtype != DType::Int64
              : (a.dtype != DType::Float32 && a.dtype != DType::Float64)) {
        fail(op, std::string(arg) + " must be " + (index ? "int64" : "float32 or float64") +
                     ", got " + a.describe());
    }
    if (a.ndim() != 4) fail(op, std::string(arg) + " must be 4-D (N, C, H, W), got " + a.describe());
    if (!a.is_contiguous()) fail(op, std::string(arg) + " must be C-contiguous, got " + a.describe());
}

void check_pair(const char* op, const char* arg, const PoolPair& p, std::int64_t min) {
    for (std::int64_t v : p) {
        if (v < min || v > kMaxParam) {
            fail(op, std::string(arg) + " must be in [" + std::to_string(min) + ", 2^31], got " +
                         pair_str(p));
        }
    }
}

// PyTorch's pooling output size along one axis (bindings/pool.cpp's rule).
long long pool_out_size(long long in, long long k, long long s, long long p, long long d,
                        bool ceil_mode) {
    const long long num = in + 2 * p - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
    long long out = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;
    if (ceil_mode && (out - 1) * s >= in + p) --out;
    return out;
}

Geom window_geom(const char* op, long long n, long long c, long long ih, long long iw,
                 const PoolPair& k, const PoolPair& s, const PoolPair& p, const PoolPair& d,
                 bool ceil_mode) {
    check_pair(op, "kernel_size", k, 1);
    check_pair(op, "stride", s, 1);
    check_pair(op, "padding", p, 0);
    check_pair(op, "dilation", d, 1);
    if (p[0] > k[0] / 2 || p[1] > k[1] / 2) {
        fail(op, "padding " + pair_str(p) + " must be at most half of kernel_size " +
                     pair_str(k));
    }
    Geom g;
    g.planes = n * c;
    g.ih = ih, g.iw = iw;
    g.kh = k[0], g.kw = k[1], g.sh = s[0], g.sw = s[1];
    g.ph = p[0], g.pw = p[1], g.dh = d[0], g.dw = d[1];
    g.oh = pool_out_size(ih, g.kh, g.sh, g.ph, g.dh, ceil_mode);
    g.ow = pool_out_size(iw, g.kw, g.sw, g.pw, g.dw, ceil_mode);
    if (g.oh < 1 || g.ow < 1) {
        fail(op, "input of size (" + std::to_string(ih) + ", " + std::to_string(iw) +
                     ") gives output size (" + std::to_string(g.oh) + ", " +
                     std::to_string(g.ow) + "), too small (kernel_size " + pair_str(k) +
                     ", stride " + pair_str(s) + ", padding " + pair_str(p) + ", dilation " +
                     pair_str(d) + ")");
    }
    return g;
}

Geom adaptive_geom(const char* op, const DeviceArray& x, const PoolPair& out) {
    check_pair(op, "output_size", out, 0);
    Geom g;
    g.planes = x.shape[0] * x.shape[1];
    g.ih = x.shape[2], g.iw = x.shape[3];
    g.oh = out[0], g.ow = out[1];
    if ((g.oh > 0 && g.ih == 0) || (g.ow > 0 && g.iw == 0)) {
        fail(op, "input " + x.describe() + " is empty along H or W");
    }
    return g;
}

DeviceArray new_planes(const DeviceArray& like, long long h, long long w, DType dt) {
    return DeviceArray::empty({like.shape[0], like.shape[1], h, w}, dt, like.device);
}

template <typename F>
void dispatch_f32_f64(DType dt, F&& f) {
    if (dt == DType::Float64) f(double{});
    else f(float{});
}

// Launches kernel<<<grid, 256>>> over `total` items (nothing when total is 0).
template <typename Kernel, typename... Args>
void launch(const char* name, const char* tname, int device, long long total, Kernel kernel,
            Args... args) {
    if (total <= 0) return;
    kernel<<<grid_for(total, kThreads, device), kThreads, 0, default_stream(device)>>>(args...);
    check_launch(name, tname);
}

// max_pool2d / adaptive_max_pool2d: y and (maybe) indices of geometry g, by `Kernel`.
template <template <typename, bool> class Kernel>
PoolWithIndices run_max(const char* name, const DeviceArray& x, const Geom& g,
                        bool return_indices) {
    PoolWithIndices out;
    out.y = new_planes(x, g.oh, g.ow, x.dtype);
    out.has_indices = return_indices;
    if (return_indices) out.indices = new_planes(x, g.oh, g.ow, DType::Int64);
    const long long total = g.planes * g.oh * g.ow;
    if (total == 0) return out;
    DeviceGuard guard(x.device);
    long long* idx = return_indices ? static_cast<long long*>(out.indices.data()) : nullptr;
    dispatch_f32_f64(x.dtype, [&](auto tag) {
        using T = decltype(tag);
        const T* xp = static_cast<const T*>(x.data());
        T* yp = static_cast<T*>(out.y.data());
        if (return_indices) {
            launch(name, type_name<T>(), x.device, total, Kernel<T, true>::fn, xp, yp, idx, g,
                   total);
        } else {
            launch(name, type_name<T>(), x.device, total, Kernel<T, false>::fn, xp, yp, idx, g,
                   total);
        }
    });
    return out;
}

template <typename T, bool I> struct MaxFwd { static constexpr auto fn = max_fwd_kernel<T, I>; };
template <typename T, bool I> struct AdaptiveMaxFwd {
    static constexpr auto fn = adaptive_max_fwd_kernel<T, I>;
};

}  // namespace

PoolWithIndices max_pool2d_forward(const DeviceArray& x, const PoolPair& kernel,
                                   const PoolPair& stride, const PoolPair& padding,
                                   const PoolPair& dilation, bool ceil_mode,
                                   bool return_indices) {
    const char* op = "cuda.max_pool2d_forward";
    check_4d(op, "x", x);
    const Geom g = window_geom(op, x.shape[0], x.shape[1], x.shape[2], x.shape[3], kernel,
                               stride, padding, dilation, ceil_mode);
    return run_max<MaxFwd>("max_pool2d_forward", x, g, return_indices);
}

DeviceArray max_pool2d_backward(const DeviceArray& gy, const DeviceArray& indices,
                                const PoolPair& input_hw) {
    const char* op = "cuda.max_pool2d_backward";
    check_4d(op, "gy", gy);
    check_4d(op, "indices", indices, true);
    if (indices.shape != gy.shape || indices.device != gy.device) {
        fail(op, "indices " + indices.describe() + " must match gy " + gy.describe());
    }
    check_pair(op, "input_hw", input_hw, 0);
    const long long planes = gy.shape[0] * gy.shape[1];
    const long long in_plane = input_hw[0] * input_hw[1], out_plane = gy.shape[2] * gy.shape[3];
    DeviceArray gx = new_planes(gy, input_hw[0], input_hw[1], gy.dtype);
    if (planes * in_plane == 0) {
        if (planes * out_plane > 0) {
            // Every index is outside an empty plane unless it is -1: check on the host.
            std::int64_t bad = 0;
            std::int64_t n = planes * out_plane;
            DeviceArray flat = indices;
            std::vector<std::int64_t> host(static_cast<size_t>(n));
            to_host(flat, host.data());
            for (std::int64_t v : host) bad += v != -1;
            if (bad) {
                throw std::out_of_range(std::string(op) + ": " + std::to_string(bad) +
                                        " indices are outside their input plane of size " +
                                        pair_str(input_hw));
            }
        }
        return gx;
    }
    DeviceGuard guard(gy.device);
    cudaStream_t stream = default_stream(gy.device);
    NNF_CUDA_CHECK(cudaMemsetAsync(gx.data(), 0, gx.nbytes(), stream), "cudaMemsetAsync(gx)");
    const long long total = planes * out_plane;
    if (total == 0) return gx;
    DeviceArray bad = DeviceArray::empty({1}, DType::Int64, gy.device);
    NNF_CUDA_CHECK(cudaMemsetAsync(bad.data(), 0, bad.nbytes(), stream), "cudaMemsetAsync(bad)");
    auto* badp = static_cast<unsigned long long*>(bad.data());
    dispatch_f32_f64(gy.dtype, [&](auto tag) {
        using T = decltype(tag);
        launch("max_pool2d_backward", type_name<T>(), gy.device, total, max_bwd_kernel<T>,
               static_cast<const T*>(gy.data()), static_cast<const long long*>(indices.data()),
               static_cast<T*>(gx.data()), badp, out_plane, in_plane, total);
    });
    std::int64_t bad_host = 0;
    to_host(bad, &bad_host);  // synchronizes
    if (bad_host) {
        throw std::out_of_range(std::string(op) + ": " + std::to_string(bad_host) +
                                " indices are outside their input plane of size " +
                                pair_str(input_hw));
    }
    return gx;
}

DeviceArray avg_pool2d_forward(const DeviceArray& x, const PoolPair& kernel,
                               const PoolPair& stride, const PoolPair& padding, bool ceil_mode,
                               bool count_include_pad, std::int64_t divisor_override) {
    const char* op = "cuda.avg_pool2d_forward";
    check_4d(op, "x", x);
    if (divisor_override < 0) fail(op, "divisor_override must be positive (0: none)");
    const Geom g = window_geom(op, x.shape[0], x.shape[1], x.shape[2], x.shape[3], kernel,
                               stride, padding, PoolPair{1, 1}, ceil_mode);
    DeviceArray y = new_planes(x, g.oh, g.ow, x.dtype);
    const long long total = g.planes * g.oh * g.ow;
    if (total == 0) return y;
    DeviceGuard guard(x.device);
    dispatch_f32_f64(x.dtype, [&](auto tag) {
        using T = decltype(tag);
        launch("avg_pool2d_forward", type_name<T>(), x.device, total, avg_fwd_kernel<T>,
               static_cast<const T*>(x.data()), static_cast<T*>(y.data()), g, total,
               count_include_pad, static_cast<long long>(divisor_override));
    });
    return y;
}

DeviceArray avg_pool2d_backward(const DeviceArray& gy, const PoolPair& input_hw,
                                const PoolPair& kernel, const PoolPair& stride,
                                const PoolPair& padding, bool ceil_mode,
                                bool count_include_pad, std::int64_t divisor_override) {
    const char* op = "cuda.avg_pool2d_backward";
    check_4d(op, "gy", gy);
    check_pair(op, "input_hw", input_hw, 0);
    if (divisor_override < 0) fail(op, "divisor_override must be positive (0: none)");
    const Geom g = window_geom(op, gy.shape[0], gy.shape[1], input_hw[0], input_hw[1], kernel,
                               stride, padding, PoolPair{1, 1}, ceil_mode);
    if (gy.shape[2] != g.oh || gy.shape[3] != g.ow) {
        fail(op, "gy " + gy.describe() + " does not have the expected output size (" +
                     std::to_string(g.oh) + ", " + std::to_string(g.ow) + ")");
    }
    DeviceArray gx = new_planes(gy, g.ih, g.iw, gy.dtype);
    const long long total = g.planes * g.ih * g.iw;
    if (total == 0) return gx;
    DeviceGuard guard(gy.device);
    dispatch_f32_f64(gy.dtype, [&](auto tag) {
        using T = decltype(tag);
        launch("avg_pool2d_backward", type_name<T>(), gy.device, total, avg_bwd_kernel<T>,
               static_cast<const T*>(gy.data()), static_cast<T*>(gx.data()), g, total,
               count_include_pad, static_cast<long long>(divisor_override));
    });
    return gx;
}

DeviceArray adaptive_avg_pool2d_forward(const DeviceArray& x, const PoolPair& output_hw) {
    const char* op = "cuda.adaptive_avg_pool2d_forward";
    check_4d(op, "x", x);
    const Geom g = adaptive_geom(op, x, output_hw);
    DeviceArray y = new_planes(x, g.oh, g.ow, x.dtype);
    const long long total = g.planes * g.oh * g.ow;
    if (total == 0) return y;
    DeviceGuard guard(x.device);
    dispatch_f32_f64(x.dtype, [&](auto tag) {
        using T = decltype(tag);
        launch("adaptive_avg_pool2d_forward", type_name<T>(), x.device, total,
               adaptive_avg_fwd_kernel<T>, static_cast<const T*>(x.data()),
               static_cast<T*>(y.data()), g, total);
    });
    return y;
}

DeviceArray adaptive_avg_pool2d_backward(const DeviceArray& gy, const PoolPair& input_hw) {
    const char* op = "cuda.adaptive_avg_pool2d_backward";
    check_4d(op, "gy", gy);
    check_pair(op, "input_hw", input_hw, 0);
    Geom g;
    g.planes = gy.shape[0] * gy.shape[1];
    g.ih = input_hw[0], g.iw = input_hw[1];
    g.oh = gy.shape[2], g.ow = gy.shape[3];
    if ((g.oh > 0 && g.ih == 0) || (g.ow > 0 && g.iw == 0)) {
        fail(op, "input_hw " + pair_str(input_hw) + " is empty");
    }
    DeviceArray gx = new_planes(gy, g.ih, g.iw, gy.dtype);
    const long long total = g.planes * g.ih * g.iw;
    if (total == 0) return gx;
    DeviceGuard guard(gy.device);
    if (g.oh == 0 || g.ow == 0) {  // no window: the gradient is 0
        NNF_CUDA_CHECK(cudaMemsetAsync(gx.data(), 0, gx.nbytes(), default_stream(gy.device)),
                       "cudaMemsetAsync(gx)");
        return gx;
    }
    dispatch_f32_f64(gy.dtype, [&](auto tag) {
        using T = decltype(tag);
        launch("adaptive_avg_pool2d_backward", type_name<T>(), gy.device, total,
               adaptive_avg_bwd_kernel<T>, static_cast<const T*>(gy.data()),
               static_cast<T*>(gx.data()), g, total);
    });
    return gx;
}

PoolWithIndices adaptive_max_pool2d_forward(const DeviceArray& x, const PoolPair& output_hw,
                                            bool return_indices) {
    const char* op = "cuda.adaptive_max_pool2d_forward";
    check_4d(op, "x", x);
    const Geom g = adaptive_geom(op, x, output_hw);
    return run_max<AdaptiveMaxFwd>("adaptive_max_pool2d_forward", x, g, return_indices);
}

}  // namespace cuda
}  // namespace nnforge
