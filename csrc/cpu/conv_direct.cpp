// The direct convolution (conv.h, ConvAlgorithm::direct): groups with one
// input channel each (depthwise, any channel multiplier m = C_out / G; or a
// single input channel, like LeNet's first layer). Output channel co reads
// input channel g = co / m only, so each (sample, channel) plane is its own
// small 2-D problem, run by the vectorized plane loops of conv_kernels.h:
//
//   forward          y[n, co] = b[co] + corr(pad(x[n, g]), w[co])
//   backward_input   dx[n, g] = sum_{co in g} corr(spread(dy[n, co]), flip(w[co]))
//                    where spread() puts dy[o] at o * stride + (k - 1) dil - pad
//                    (zeros between and around): the transposed convolution as
//                    a stride-1 correlation with the flipped kernel
//   backward_weight  dw[co, i, j] = sum_n sum_{oh, ow} dy[n, co, oh, ow] *
//                    pad(x[n, g])[oh sh + i dh, ow sw + j dw]
//
// The plane loops read a zero-padded copy of the input plane (built here, in
// each thread's scratch buffer) with slack rows and columns, so they need no
// bounds tests. Work split: forward and backward_input take one task per
// (sample, group) plane; backward_weight one per output channel, which sums
// over the samples in order (no shared accumulators: the same bits whatever
// the thread count).
//
// The file also holds the implicit-GEMM forward (any channel counts, stride
// 1, few output channels per group; its section at the end), which shares the
// padded-plane buffers and the per-ISA kernels.
#include "cpu/conv_internal.h"
#include "cpu/conv_kernels.h"

namespace nnforge {
namespace conv_detail {

template <typename T>
PlaneKernels<T> plane_kernels_portable() {
    return make_plane_kernels<T>();
}

namespace {

template <typename T>
PlaneKernels<T> plane_kernels_for(Isa isa) {
#if defined(__x86_64__) || defined(_M_X64)
    if (isa == Isa::avx512) return plane_kernels_avx512<T>();
    if (isa == Isa::avx2) return plane_kernels_avx2<T>();
#endif
    (void)isa;
    return plane_kernels_portable<T>();
}

// A buffer that holds an output plane's whole receptive field plus the slack
// the plane loops read past its edge (kPlaneRows rows, kMaxLanes columns).
struct Buffer {
    int64_t rows = 0, cols = 0;
    int64_t size() const { return rows * cols; }
};

Buffer buffer_for(int64_t oh, int64_t ow, int64_t kh, int64_t kw, int64_t sh, int64_t sw,
                  int64_t dh, int64_t dw) {
    const int64_t rows_out = (oh + kPlaneRows - 1) / kPlaneRows * kPlaneRows;
    const int64_t cols_out = (ow + kMaxLanes - 1) / kMaxLanes * kMaxLanes;
    return {(rows_out - 1) * sh + (kh - 1) * dh + 1, (cols_out - 1) * sw + (kw - 1) * dw + 1};
}

// dst (b.rows x b.cols) = zeros, then dst[r0 + r sr, c0 + c sc] = src[r, c]
// (src rows x cols) wherever that lands inside dst. r0, c0 may be negative.
template <typename T>
void spread(const T* src, int64_t rows, int64_t cols, T* dst, const Buffer& b, int64_t r0,
            int64_t c0, int64_t sr, int64_t sc) {
    zero_n(dst, b.size());
    // Source columns whose destination column lies in [0, b.cols).
    int64_t c_lo = c0 >= 0 ? 0 : (-c0 + sc - 1) / sc;
    int64_t c_hi = b.cols - 1 - c0 < 0 ? 0 : (b.cols - 1 - c0) / sc + 1;
    if (c_hi > cols) c_hi = cols;
    if (c_lo >= c_hi) return;
    for (int64_t r = 0; r < rows; ++r) {
        const int64_t dr = r0 + r * sr;
        if (dr < 0) continue;
        if (dr >= b.rows) break;
        const T* s = src + r * cols;
        T* d = dst + dr * b.cols;
        if (sc == 1) {
            copy_n(d + c0 + c_lo, s + c_lo, c_hi - c_lo);
        } else {
            for (int64_t c = c_lo; c < c_hi; ++c) d[c0 + c * sc] = s[c];
        }
    }
}

}  // namespace

template <typename T>
void direct_forward(const T* x, const T* w, const T* bias, T* y, const Conv2dShape& s,
                    const ConvOptions& o) {
    const PlaneKernels<T> k = plane_kernels_for<T>(isa_of(o));
    const int64_t m = s.c_out / s.groups, taps = s.kh * s.kw;
    const Buffer b = buffer_for(s.oh, s.ow, s.kh, s.kw, s.stride_h, s.stride_w, s.dil_h, s.dil_w);
    const PlaneGeom g{s.oh, s.ow, s.kh, s.kw, s.stride_h, s.stride_w, s.dil_h, s.dil_w, b.cols};
    for_each_task<T>(s.n * s.groups, thread_count(o), b.size(), [&](int64_t task, T* buf) {
        const int64_t n = task / s.groups, ci = task % s.groups;
        spread(x + (n * s.c_in + ci) * s.h * s.w, s.h, s.w, buf, b, s.pad_top, s.pad_left, 1, 1);
        for (int64_t co = ci * m; co < (ci + 1) * m; ++co) {
            k.forward(buf, w + co * taps, bias ? bias[co] : T(0), false,
                      y + (n * s.c_out + co) * s.oh * s.ow, g);
        }
    });
}

template <typename T>
void direct_backward_input(const T* dy, const T* w, const T* bias, T* dx, const Conv2dShape& s,
                           const ConvOptions& o) {
    const PlaneKernels<T> k = plane_kernels_for<T>(isa_of(o));
    const int64_t m = s.c_out / s.groups, taps = s.kh * s.kw;
    const Buffer b = buffer_for(s.h, s.w, s.kh, s.kw, 1, 1, s.dil_h, s.dil_w);
    const PlaneGeom g{s.h, s.w, s.kh, s.kw, 1, 1, s.dil_h, s.dil_w, b.cols};
    const int64_t r0 = (s.kh - 1) * s.dil_h - s.pad_top, c0 = (s.kw - 1) * s.dil_w - s.pad_left;
    for_each_task<T>(s.n * s.groups, thread_count(o), b.size() + taps, [&](int64_t task, T* buf) {
        const int64_t n = task / s.groups, ci = task % s.groups;
        T* flipped = buf + b.size();
        T* out = dx + (n * s.c_in + ci) * s.h * s.w;
        for (int64_t co = ci * m; co < (ci + 1) * m; ++co) {
            spread(dy + (n * s.c_out + co) * s.oh * s.ow, s.oh, s.ow, buf, b, r0, c0, s.stride_h,
                   s.stride_w);
            for (int64_t t = 0; t < taps; ++t) flipped[t] = w[co * taps + taps - 1 - t];
            const bool first = co == ci * m;
            k.forward(buf, flipped, first && bias ? bias[ci] : T(0), !first, out, g);
        }
    });
}

template <typename T>
void direct_backward_weight(const T* x, const T* dy, T* dw, const Conv2dShape& s,
                            const ConvOptions& o) {
    const PlaneKernels<T> k = plane_kernels_for<T>(isa_of(o));
    const int64_t m = s.c_out / s.groups, taps = s.kh * s.kw;
    const Buffer b = buffer_for(s.oh, s.ow, s.kh, s.kw, s.stride_h, s.stride_w, s.dil_h, s.dil_w);
    // dy's plane copied with rows padded by zeros to whole vectors (kMaxLanes).
    const Buffer bd{s.oh, (s.ow + kMaxLanes - 1) / kMaxLanes * kMaxLanes};
    PlaneGeom g{s.oh, s.ow, s.kh, s.kw, s.stride_h, s.stride_w, s.dil_h, s.dil_w, b.cols};
    g.ldy = bd.cols;
    for_each_task<T>(s.c_out, thread_count(o), b.size() + bd.size(), [&](int64_t co, T* buf) {
        const int64_t ci = co / m;
        T* dyp = buf + b.size();
        T* out = dw + co * taps;
        for (int64_t t = 0; t < taps; ++t) out[t] = T(0);
        for (int64_t n = 0; n < s.n; ++n) {
            spread(x + (n * s.c_in + ci) * s.h * s.w, s.h, s.w, buf, b, s.pad_top, s.pad_left, 1,
                   1);
            spread(dy + (n * s.c_out + co) * s.oh * s.ow, s.oh, s.ow, dyp, bd, 0, 0, 1, 1);
            k.weight(buf, dyp, out, g);
        }
    });
}

// ---------------------------------------------------------------- implicit GEMM forward
// Any groups, stride 1 (dilation allowed): per (sample, group) task, the
// group's input planes are copied once into a zero-padded buffer xp (Cg x Hp x
// Wp, Hp = OH + (kh - 1) dh, Wp = OW + (kw - 1) dw). On the "wide" output grid
// of OH x Wp positions p = oh Wp + ow, tap t = (ci, i, j) reads
// xp[off[t] + p] with off[t] = ci Hp Wp + i dh Wp + j dw: every tap is one
// contiguous vector load, so the product W_g (Cog x K) * columns runs with no
// column matrix at all (the kernel, conv_kernels.h, holds a block of output
// channels in registers). Columns ow >= OW of the wide grid are computed and
// dropped when the valid ones are copied to y. Each task writes only its own
// y planes and runs the same operations whatever the thread count.
namespace {

struct ImplicitGeom {
    int64_t hp, wp, np, k, xsize, blocks, cogp;
};

ImplicitGeom implicit_geom(const Conv2dShape& s, int lanes, int cb) {
    ImplicitGeom m;
    const int64_t cg = s.c_in / s.groups, cog = s.c_out / s.groups;
    m.hp = s.oh + (s.kh - 1) * s.dil_h;
    m.wp = s.ow + (s.kw - 1) * s.dil_w;
    m.np = (s.oh * m.wp + lanes - 1) / lanes * lanes;
    m.k = cg * s.kh * s.kw;
    const int64_t last =
        (cg - 1) * m.hp * m.wp + (s.kh - 1) * s.dil_h * m.wp + (s.kw - 1) * s.dil_w;
    m.xsize = last + m.np > cg * m.hp * m.wp ? last + m.np : cg * m.hp * m.wp;
    m.blocks = (cog + cb - 1) / cb;
    m.cogp = m.blocks * cb;
    return m;
}

}  // namespace

// Chosen (automatic only) where it measured faster than im2col + GEMM: at
// most 32 output channels per group (two register blocks), a wide grid at
// most 1.5x the real one, and per-thread buffers within 1 MiB of floats.
bool implicit_gemm_applies(const Conv2dShape& s) {
    if (s.stride_h != 1 || s.stride_w != 1) return false;
    const int64_t cog = s.c_out / s.groups;
    if (cog > 32) return false;
    const ImplicitGeom m = implicit_geom(s, 16, 16);
    if (2 * m.wp > 3 * s.ow) return false;
    return m.k <= 1024 && m.xsize + m.cogp * m.np <= (int64_t(1) << 18);
}

template <typename T>
void implicit_gemm_forward(const T* x, const T* w, const T* bias, T* y, const Conv2dShape& s,
                           const ConvOptions& o) {
    const PlaneKernels<T> kern = plane_kernels_for<T>(isa_of(o));
    const int64_t cb = kern.cb, cg = s.c_in / s.groups, cog = s.c_out / s.groups;
    const ImplicitGeom m = implicit_geom(s, kern.lanes, kern.cb);
    // Weights and bias packed per (group, block): [t][c], zero past Cog.
    std::unique_ptr<T[]> wpk(new T[static_cast<std::size_t>(s.groups * m.cogp * m.k)]);
    std::unique_ptr<T[]> bpk(new T[static_cast<std::size_t>(s.groups * m.cogp)]);
    std::unique_ptr<int64_t[]> off(new int64_t[static_cast<std::size_t>(m.k)]);
    for (int64_t g = 0; g < s.groups; ++g) {
        for (int64_t co = 0; co < m.cogp; ++co) {
            const bool real = co < cog;
            bpk[g * m.cogp + co] = real && bias ? bias[g * cog + co] : T(0);
            T* dst = wpk.get() + (g * m.blocks + co / cb) * m.k * cb + co % cb;
            const T* src = w + (g * cog + co) * m.k;
            for (int64_t t = 0; t < m.k; ++t) dst[t * cb] = real ? src[t] : T(0);
        }
    }
    for (int64_t ci = 0, t = 0; ci < cg; ++ci)
        for (int64_t i = 0; i < s.kh; ++i)
            for (int64_t j = 0; j < s.kw; ++j, ++t)
                off[t] = ci * m.hp * m.wp + i * s.dil_h * m.wp + j * s.dil_w;
    const Buffer plane{m.hp, m.wp};
    const int64_t scratch = m.xsize + m.cogp * m.np;
    for_each_task<T>(s.n * s.groups, thread_count(o), scratch, [&](int64_t task, T* buf) {
        const int64_t n = task / s.groups, g = task % s.groups;
        T* out = buf + m.xsize;
        for (int64_t ci = 0; ci < cg; ++ci)
            spread(x + (n * s.c_in + g * cg + ci) * s.h * s.w, s.h, s.w, buf + ci * plane.size(),
                   plane, s.pad_top, s.pad_left, 1, 1);
        zero_n(buf + cg * plane.size(), m.xsize - cg * plane.size());
        kern.implicit(buf, off.get(), m.k, wpk.get() + g * m.cogp * m.k, bpk.get() + g * m.cogp,
                      m.blocks, out, m.np, m.np);
        for (int64_t co = 0; co < cog; ++co) {
            T* yp = y + (n * s.c_out + g * cog + co) * s.oh * s.ow;
            for (int64_t r = 0; r < s.oh; ++r)
                copy_n(yp + r * s.ow, out + co * m.np + r * m.wp, s.ow);
        }
    });
}

#define NNFORGE_CONV_DIRECT(T)                                                                  \
    template PlaneKernels<T> plane_kernels_portable<T>();                                       \
    template void direct_forward<T>(const T*, const T*, const T*, T*, const Conv2dShape&,       \
                                    const ConvOptions&);                                        \
    template void direct_backward_input<T>(const T*, const T*, const T*, T*,                    \
                                           const Conv2dShape&, const ConvOptions&);             \
    template void direct_backward_weight<T>(const T*, const T*, T*, const Conv2dShape&,         \
                                            const ConvOptions&);                                \
    template void implicit_gemm_forward<T>(const T*, const T*, const T*, T*,                    \
                                           const Conv2dShape&, const ConvOptions&);
NNFORGE_CONV_DIRECT(float)
NNFORGE_CONV_DIRECT(double)
#undef NNFORGE_CONV_DIRECT

}  // namespace conv_detail
}  // namespace nnforge
