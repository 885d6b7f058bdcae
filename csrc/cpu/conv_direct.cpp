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

#define NNFORGE_CONV_DIRECT(T)                                                                  \
    template PlaneKernels<T> plane_kernels_portable<T>();                                       \
    template void direct_forward<T>(const T*, const T*, const T*, T*, const Conv2dShape&,       \
                                    const ConvOptions&);                                        \
    template void direct_backward_input<T>(const T*, const T*, const T*, T*,                    \
                                           const Conv2dShape&, const ConvOptions&);             \
    template void direct_backward_weight<T>(const T*, const T*, T*, const Conv2dShape&,         \
                                            const ConvOptions&);
NNFORGE_CONV_DIRECT(float)
NNFORGE_CONV_DIRECT(double)
#undef NNFORGE_CONV_DIRECT

}  // namespace conv_detail
}  // namespace nnforge
