// 2-D convolution (conv.h): shape checks, the choice of algorithm, and the
// GEMM paths, forward and backward side by side. The direct path for one
// input channel per group is in conv_direct.cpp.
//
// Notation: P = OH OW output positions, G groups, Cg = C_in / G, Cog =
// C_out / G, K = Cg kh kw. For sample n and group g, W_g is w's (Cog x K)
// block, X_g the group's Cg input planes and dY_g the group's Cog output
// planes (Cog x P); col(X_g) is the K x P im2col matrix:
//   col[(ci kh + i) kw + j, oh OW + ow] = X_g[ci, oh sh - pt + i dh, ow sw - pl + j dw]
// (zero outside the input). Then
//   forward          Y_g  = W_g col(X_g) + b             (Cog x P)
//   backward_input   dX_g = col2im(W_g^T dY_g)           (col2im adds each column
//                                                          entry back where im2col took it)
//   backward_weight  dW_g = sum_n dY_g col(X_g)^T,  db = sum_{n, p} dY
//
// im2col runs on blocks of whole output rows sized so a block of columns
// (K x rows OW) stays in L2 (kColumnBytes): the GEMM then reads it in place
// while it is hot; samples smaller than that are grouped, up to
// kMaxSamplesPerBlock side by side, so the GEMM gets wide enough operands
// (Y and dY of such a block go through a scratch matrix). For 1x1 kernels
// with stride 1 and no padding col(X_g) = X_g and the GEMM reads x itself
// (pointwise: no copy at all).
//
// Work split (the GEMM runs single-threaded inside these tasks, so each
// element is computed by one fixed sequence of operations):
//   forward          one task per (sample, group, block of rows): disjoint Y blocks
//   backward_input   one task per (sample, group): its col2im writes only dX_g
//   backward_weight  the (sample, block) items cut into at most kWeightSlices
//                    consecutive slices (a number fixed by the shape, not by the
//                    thread count); one task per (slice, group) sums its items
//                    into its own dW copy, and the copies are added in slice
//                    order at the end: no races, and the same bits for any
//                    thread count.
// With fewer tasks than threads, the tasks run one after another and the GEMM
// splits each product among the threads instead (its results do not depend
// on the thread count either).
//
// Algorithm choice (conv2d_algorithm), from measurements on a 2-core AVX-512
// Zen 4 (float32, one thread, ms; bench/conv.py times the cases beside PyTorch):
//   pointwise  every 1x1 stride-1 unpadded shape: no copy beats any copy
//              (256->64 on 28x28, batch 8: forward 2.5 pointwise vs 2.6 oneDNN);
//   direct     one input channel per group (depthwise; C_in = 1): no column
//              matrix, and a GEMM with K = kh kw is too thin to run near peak.
//              Depthwise 3x3, 128 channels, 28x28, batch 8: forward 0.5 direct
//              vs 7.8 im2col, input grad 0.6 vs 2.3, weight grad 0.6 vs 2.1;
//              LeNet's 1->6 5x5 on 28x28, batch 64: forward 0.27 vs 0.52,
//              input grad 0.42 vs 0.49, weight grad 0.50 vs 0.47 (a tie: kept
//              direct, one algorithm per shape);
//   im2col     everything else (64->64 3x3 on 56x56 runs the GEMM at ~90% of
//              its own speed on plain products: 19.7 ms forward, 94 GFLOP/s).
//              The forward is Y = W col (the GEMM reads col in place as its B,
//              no packing; 15-35% faster than the transposed product);
//   implicit   (forward only, chosen under `automatic`, reported as im2col)
//              stride 1 with at most 32 output channels per group: the implicit
//              GEMM of conv_direct.cpp, no column matrix. LeNet's 6->16 5x5 on
//              14x14, batch 64: 0.43 ms vs 0.66 im2col; 3->32 3x3 on 32x32,
//              batch 32: 0.94 vs 1.01 (loaded machine, one thread). Tried and
//              dropped for the input gradient (flipped kernel): with C_in = 3 or
//              6 output channels the register block is mostly empty, 2-3x slower.
// Not done: Winograd F(2x2, 3x3).
#include "cpu/conv.h"

#include <cstring>
#include <limits>
#include <stdexcept>

#include "cpu/conv_internal.h"
#include "cpu/gemm/gemm.h"

namespace nnforge {

using conv_detail::for_each_task;
using conv_detail::thread_count;

namespace {

constexpr int64_t kColumnBytes = 512 * 1024;  // one block of im2col columns
constexpr int64_t kWeightSlices = 8;          // partial dW copies (see above)
constexpr int64_t kMaxSamplesPerBlock = 16;   // small samples grouped per block

bool mul_ok(int64_t a, int64_t b) {
    return a >= 0 && b >= 0 && (b == 0 || a <= std::numeric_limits<int64_t>::max() / b);
}

bool is_pointwise(const Conv2dShape& s) {
    return s.kh == 1 && s.kw == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_top == 0 &&
           s.pad_left == 0 && s.oh == s.h && s.ow == s.w;
}

bool is_direct(const Conv2dShape& s) { return s.c_in == s.groups; }

struct Dims {
    int64_t p, cg, cog, k;  // P, Cg, Cog, K
};

Dims dims_of(const Conv2dShape& s) {
    const int64_t cg = s.c_in / s.groups;
    return {s.oh * s.ow, cg, s.c_out / s.groups, cg * s.kh * s.kw};
}

// How the im2col path cuts the output positions into blocks whose columns
// (K x cols) fit kColumnBytes: a sample larger than that is cut into blocks of
// `rows` output rows; smaller samples are grouped, `samples` whole samples per
// block (their columns side by side; Y and dY then go through a scratch
// matrix). Fixed by the shape alone, never by the thread count.
struct Blocking {
    int64_t rows = 1;      // output rows per block (OH when samples > 1)
    int64_t per_sample = 1;  // blocks per sample (1 when samples > 1)
    int64_t samples = 1;   // samples per block
    int64_t count = 0;     // blocks in all
    // Block b: samples [n0, n1), rows [r0, r1) of each.
    void get(int64_t b, int64_t n, int64_t oh, int64_t& n0, int64_t& n1, int64_t& r0,
             int64_t& r1) const {
        if (samples > 1) {
            n0 = b * samples, n1 = n0 + samples < n ? n0 + samples : n;
            r0 = 0, r1 = oh;
        } else {
            n0 = b / per_sample, n1 = n0 + 1;
            r0 = (b % per_sample) * rows, r1 = r0 + rows < oh ? r0 + rows : oh;
        }
    }
};

template <typename T>
Blocking blocking_for(const Conv2dShape& s, const Dims& d, bool pointwise) {
    Blocking bl;
    const int64_t row_bytes = d.k * s.ow * static_cast<int64_t>(sizeof(T));
    if (pointwise) {
        bl.rows = s.oh;
    } else {
        bl.rows = row_bytes > 0 ? kColumnBytes / row_bytes : s.oh;
        if (bl.rows < 1) bl.rows = 1;
        if (bl.rows >= s.oh) {
            bl.rows = s.oh;
            const int64_t sample_bytes = row_bytes * s.oh;
            bl.samples = sample_bytes > 0 ? kColumnBytes / sample_bytes : 1;
            if (bl.samples > kMaxSamplesPerBlock) bl.samples = kMaxSamplesPerBlock;
            if (bl.samples > s.n) bl.samples = s.n;
            if (bl.samples < 1) bl.samples = 1;
        }
    }
    bl.per_sample = (s.oh + bl.rows - 1) / bl.rows;
    bl.count = bl.samples > 1 ? (s.n + bl.samples - 1) / bl.samples : s.n * bl.per_sample;
    return bl;
}

// col (K x (r1 - r0) OW, row stride ld) = the im2col columns of output rows
// [r0, r1) for one group's input planes xg (Cg x H x W).
template <typename T>
void im2col(const T* xg, const Conv2dShape& s, int64_t cg, int64_t r0, int64_t r1, T* col,
            int64_t ld) {
    for (int64_t ci = 0; ci < cg; ++ci) {
        const T* plane = xg + ci * s.h * s.w;
        for (int64_t i = 0; i < s.kh; ++i) {
            for (int64_t j = 0; j < s.kw; ++j) {
                T* row = col + ((ci * s.kh + i) * s.kw + j) * ld;
                // Output columns ow whose input column ow sw - pl + j dw lies in [0, W).
                const int64_t shift = j * s.dil_w - s.pad_left;
                int64_t lo = shift >= 0 ? 0 : (-shift + s.stride_w - 1) / s.stride_w;
                int64_t hi = s.w - 1 - shift < 0 ? 0 : (s.w - 1 - shift) / s.stride_w + 1;
                if (hi > s.ow) hi = s.ow;
                if (lo > hi) lo = hi;
                for (int64_t oh = r0; oh < r1; ++oh) {
                    T* dst = row + (oh - r0) * s.ow;
                    const int64_t ih = oh * s.stride_h - s.pad_top + i * s.dil_h;
                    if (ih < 0 || ih >= s.h) {
                        conv_detail::zero_n(dst, s.ow);
                        continue;
                    }
                    const T* src = plane + ih * s.w + shift;
                    for (int64_t ow = 0; ow < lo; ++ow) dst[ow] = T(0);
                    if (s.stride_w == 1) {
                        conv_detail::copy_n(dst + lo, src + lo, hi - lo);
                    } else {
                        for (int64_t ow = lo; ow < hi; ++ow) dst[ow] = src[ow * s.stride_w];
                    }
                    for (int64_t ow = hi; ow < s.ow; ++ow) dst[ow] = T(0);
                }
            }
        }
    }
}

// The adjoint of im2col: dxg[ci, ih, iw] += col entry for every place im2col read it.
template <typename T>
void col2im(const T* col, int64_t ld, const Conv2dShape& s, int64_t cg, int64_t r0, int64_t r1,
            T* dxg) {
    for (int64_t ci = 0; ci < cg; ++ci) {
        T* plane = dxg + ci * s.h * s.w;
        for (int64_t i = 0; i < s.kh; ++i) {
            for (int64_t j = 0; j < s.kw; ++j) {
                const T* row = col + ((ci * s.kh + i) * s.kw + j) * ld;
                const int64_t shift = j * s.dil_w - s.pad_left;
                int64_t lo = shift >= 0 ? 0 : (-shift + s.stride_w - 1) / s.stride_w;
                int64_t hi = s.w - 1 - shift < 0 ? 0 : (s.w - 1 - shift) / s.stride_w + 1;
                if (hi > s.ow) hi = s.ow;
                for (int64_t oh = r0; oh < r1; ++oh) {
                    const int64_t ih = oh * s.stride_h - s.pad_top + i * s.dil_h;
                    if (ih < 0 || ih >= s.h) continue;
                    const T* src = row + (oh - r0) * s.ow;
                    T* dst = plane + ih * s.w + shift;
                    if (s.stride_w == 1) {
                        for (int64_t ow = lo; ow < hi; ++ow) dst[ow] += src[ow];
                    } else {
                        for (int64_t ow = lo; ow < hi; ++ow) dst[ow * s.stride_w] += src[ow];
                    }
                }
            }
        }
    }
}

GemmOptions gemm_options(const ConvOptions& o, int threads) {
    GemmOptions g;
    g.force_isa = o.force_isa;
    g.isa = o.isa;
    g.threads = threads;
    return g;
}

// The GEMM threads inside a task: 1 when the tasks themselves run in
// parallel, else all of them.
int inner_threads(int64_t tasks, int threads) { return tasks >= threads ? 1 : threads; }

// Fills each of `planes` planes of `size` elements with value[plane] (or 0).
template <typename T>
void fill_planes(T* out, int64_t planes, int64_t size, const T* value) {
    for (int64_t c = 0; c < planes; ++c) {
        const T v = value ? value[c] : T(0);
        T* p = out + c * size;
        for (int64_t e = 0; e < size; ++e) p[e] = v;
    }
}

// The group's dY (or Y) columns of block samples [n0, n1), rows [r0, r1),
// copied to / from a Cog x cols matrix m (row stride cols).
template <typename T>
void gather_rows(const T* y, const Conv2dShape& s, const Dims& d, int64_t g, int64_t n0,
                 int64_t n1, T* m, int64_t cols) {
    for (int64_t n = n0; n < n1; ++n)
        for (int64_t co = 0; co < d.cog; ++co)
            conv_detail::copy_n(m + co * cols + (n - n0) * d.p,
                                y + (n * s.c_out + g * d.cog + co) * d.p, d.p);
}

template <typename T>
void scatter_rows(const T* m, int64_t cols, const Conv2dShape& s, const Dims& d, int64_t g,
                  int64_t n0, int64_t n1, T* y) {
    for (int64_t n = n0; n < n1; ++n)
        for (int64_t co = 0; co < d.cog; ++co)
            conv_detail::copy_n(y + (n * s.c_out + g * d.cog + co) * d.p,
                                m + co * cols + (n - n0) * d.p, d.p);
}

// The block's columns: x itself for pointwise (ld = P), else im2col into col.
template <typename T>
const T* block_columns(const T* x, const Conv2dShape& s, const Dims& d, int64_t g, int64_t n0,
                       int64_t n1, int64_t r0, int64_t r1, bool pointwise, T* col, int64_t& ld) {
    const int64_t per = (r1 - r0) * s.ow;
    if (pointwise) {
        ld = d.p;
        return x + (n0 * s.c_in + g * d.cg) * s.h * s.w + r0 * s.ow;
    }
    ld = (n1 - n0) * per;
    for (int64_t n = n0; n < n1; ++n)
        im2col(x + (n * s.c_in + g * d.cg) * s.h * s.w, s, d.cg, r0, r1, col + (n - n0) * per, ld);
    return col;
}

// ---------------------------------------------------------------- forward
template <typename T>
void gemm_forward(const T* x, const T* w, const T* bias, T* y, const Conv2dShape& s,
                  const ConvOptions& o, bool pointwise) {
    const Dims d = dims_of(s);
    const Blocking bl = blocking_for<T>(s, d, pointwise);
    const int64_t cols_max = bl.samples * bl.rows * s.ow;
    const int64_t tasks = bl.count * s.groups;
    const int threads = thread_count(o);
    const GemmOptions go = gemm_options(o, inner_threads(tasks, threads));
    const int64_t scratch =
        (pointwise ? 0 : d.k * cols_max) + (bl.samples > 1 ? d.cog * cols_max : 0);
    for_each_task<T>(tasks, tasks >= threads ? threads : 1, scratch, [&](int64_t t, T* buf) {
        const int64_t g = t % s.groups, b = t / s.groups;
        int64_t n0, n1, r0, r1;
        bl.get(b, s.n, s.oh, n0, n1, r0, r1);
        const int64_t cols = (n1 - n0) * (r1 - r0) * s.ow;
        int64_t ld = 0;
        const T* col = block_columns(x, s, d, g, n0, n1, r0, r1, pointwise, buf, ld);
        T* tmp = buf + (pointwise ? 0 : d.k * cols_max);
        // Y_g[:, block] = W_g col + b: the GEMM reads the columns (its B, rows
        // contiguous) in place, without packing them (measured faster than the
        // transposed product col^T W_g^T, which packs col). Its bias epilogue is
        // per column, so b goes in first, as C with beta = 1.
        GemmArgs<T> a;
        a.m = d.cog, a.n = cols, a.k = d.k;
        a.a = w + g * d.cog * d.k, a.rs_a = d.k, a.cs_a = 1;
        a.b = col, a.rs_b = ld, a.cs_b = 1;
        if (bl.samples > 1) {
            a.c = tmp, a.rs_c = cols, a.cs_c = 1;
        } else {
            a.c = y + (n0 * s.c_out + g * d.cog) * d.p + r0 * s.ow, a.rs_c = d.p, a.cs_c = 1;
        }
        if (bias) {
            for (int64_t co = 0; co < d.cog; ++co) {
                T* row = a.c + co * a.rs_c;
                const T v = bias[g * d.cog + co];
                for (int64_t e = 0; e < cols; ++e) row[e] = v;
            }
            a.beta = T(1);
        }
        gemm(a, go);
        if (bl.samples > 1) scatter_rows(tmp, cols, s, d, g, n0, n1, y);
    });
}

// ---------------------------------------------------------------- backward w.r.t. input
template <typename T>
void gemm_backward_input(const T* dy, const T* w, const T* bias, T* dx, const Conv2dShape& s,
                         const ConvOptions& o, bool pointwise) {
    const Dims d = dims_of(s);
    const Blocking bl = blocking_for<T>(s, d, pointwise);
    const int64_t cols_max = bl.samples * bl.rows * s.ow;
    // One task per (group of samples, group): the blocks of one sample run in
    // order inside its task, since their col2im sums overlap in dX.
    const int64_t sample_sets = bl.samples > 1 ? bl.count : s.n;
    const int64_t tasks = sample_sets * s.groups;
    const int threads = thread_count(o);
    const GemmOptions go = gemm_options(o, inner_threads(tasks, threads));
    const int64_t scratch =
        pointwise ? 0 : d.k * cols_max + (bl.samples > 1 ? d.cog * cols_max : 0);
    for_each_task<T>(tasks, tasks >= threads ? threads : 1, scratch, [&](int64_t t, T* buf) {
        const int64_t g = t % s.groups, set = t / s.groups;
        const T* wg = w + g * d.cog * d.k;
        const T* bg = bias ? bias + g * d.cg : nullptr;
        if (pointwise) {
            // dX_g^T = dY_g^T W_g (+ b as the per-column bias of the transpose).
            T* dxg = dx + (set * s.c_in + g * d.cg) * s.h * s.w;
            GemmArgs<T> a;
            a.m = d.p, a.n = d.cg, a.k = d.cog;
            a.a = dy + (set * s.c_out + g * d.cog) * d.p, a.rs_a = 1, a.cs_a = d.p;
            a.b = wg, a.rs_b = d.k, a.cs_b = 1;
            a.c = dxg, a.rs_c = 1, a.cs_c = d.p;
            a.bias = bg;
            gemm(a, go);
            return;
        }
        const int64_t first = bl.samples > 1 ? set : set * bl.per_sample;
        const int64_t last = bl.samples > 1 ? set + 1 : first + bl.per_sample;
        for (int64_t b = first; b < last; ++b) {
            int64_t n0, n1, r0, r1;
            bl.get(b, s.n, s.oh, n0, n1, r0, r1);
            const int64_t per = (r1 - r0) * s.ow, cols = (n1 - n0) * per;
            const T* dyb = dy + (n0 * s.c_out + g * d.cog) * d.p + r0 * s.ow;
            int64_t ldy = d.p;
            if (bl.samples > 1) {
                T* tmp = buf + d.k * cols_max;
                gather_rows(dy, s, d, g, n0, n1, tmp, cols);
                dyb = tmp, ldy = cols;
            }
            // columns (K x cols) = W_g^T dY_g[:, block]
            GemmArgs<T> a;
            a.m = d.k, a.n = cols, a.k = d.cog;
            a.a = wg, a.rs_a = 1, a.cs_a = d.k;
            a.b = dyb, a.rs_b = ldy, a.cs_b = 1;
            a.c = buf, a.rs_c = cols, a.cs_c = 1;
            gemm(a, go);
            for (int64_t n = n0; n < n1; ++n) {
                T* dxg = dx + (n * s.c_in + g * d.cg) * s.h * s.w;
                if (r0 == 0) fill_planes(dxg, d.cg, s.h * s.w, bg);
                col2im(buf + (n - n0) * per, cols, s, d.cg, r0, r1, dxg);
            }
        }
    });
}

// ---------------------------------------------------------------- backward w.r.t. weight
template <typename T>
void gemm_backward_weight(const T* x, const T* dy, T* dw, const Conv2dShape& s,
                          const ConvOptions& o, bool pointwise) {
    const Dims d = dims_of(s);
    const Blocking bl = blocking_for<T>(s, d, pointwise);
    const int64_t cols_max = bl.samples * bl.rows * s.ow;
    const int64_t items = bl.count;
    const int64_t slices = items < kWeightSlices ? items : kWeightSlices;
    const int64_t tasks = slices * s.groups;
    const int64_t wsize = s.c_out * d.k;  // one full dW
    std::unique_ptr<T[]> partial(new T[static_cast<std::size_t>((slices - 1) * wsize + 1)]);
    const int threads = thread_count(o);
    const GemmOptions go = gemm_options(o, inner_threads(tasks, threads));
    const int64_t scratch =
        (pointwise ? 0 : d.k * cols_max) + (bl.samples > 1 ? d.cog * cols_max : 0);
    for_each_task<T>(tasks, tasks >= threads ? threads : 1, scratch, [&](int64_t t, T* buf) {
        const int64_t g = t % s.groups, slice = t / s.groups;
        const int64_t first = slice * items / slices, last = (slice + 1) * items / slices;
        T* out = (slice == 0 ? dw : partial.get() + (slice - 1) * wsize) + g * d.cog * d.k;
        for (int64_t item = first; item < last; ++item) {
            int64_t n0, n1, r0, r1;
            bl.get(item, s.n, s.oh, n0, n1, r0, r1);
            const int64_t cols = (n1 - n0) * (r1 - r0) * s.ow;
            int64_t ld = 0;
            const T* col = block_columns(x, s, d, g, n0, n1, r0, r1, pointwise, buf, ld);
            const T* dyb = dy + (n0 * s.c_out + g * d.cog) * d.p + r0 * s.ow;
            int64_t ldy = d.p;
            if (bl.samples > 1) {
                T* tmp = buf + (pointwise ? 0 : d.k * cols_max);
                gather_rows(dy, s, d, g, n0, n1, tmp, cols);
                dyb = tmp, ldy = cols;
            }
            // dW_g (+)= dY_g[:, block] col^T
            GemmArgs<T> a;
            a.m = d.cog, a.n = d.k, a.k = cols;
            a.a = dyb, a.rs_a = ldy, a.cs_a = 1;
            a.b = col, a.rs_b = 1, a.cs_b = ld;
            a.beta = item == first ? T(0) : T(1);
            a.c = out, a.rs_c = d.k, a.cs_c = 1;
            gemm(a, go);
        }
    });
    // dw = slice 0 + slice 1 + ... in slice order, element-wise.
    if (slices > 1) {
        const int64_t chunk = 4096;
        for_each_task<T>((wsize + chunk - 1) / chunk, threads, 0, [&](int64_t t, T*) {
            const int64_t e0 = t * chunk, e1 = e0 + chunk < wsize ? e0 + chunk : wsize;
            for (int64_t sl = 1; sl < slices; ++sl) {
                const T* p = partial.get() + (sl - 1) * wsize;
                for (int64_t e = e0; e < e1; ++e) dw[e] += p[e];
            }
        });
    }
}

// db[co] = sum over samples (in order) of the sum of dy's plane (n, co), each
// plane summed in kLanes interleaved partial sums (vectorizable, fixed order).
template <typename T>
void bias_grad(const T* dy, T* db, const Conv2dShape& s, const ConvOptions& o) {
    constexpr int kLanes = 16;
    const int64_t p = s.oh * s.ow;
    for_each_task<T>(s.c_out, thread_count(o), 0, [&](int64_t co, T*) {
        T total = T(0);
        for (int64_t n = 0; n < s.n; ++n) {
            const T* plane = dy + (n * s.c_out + co) * p;
            T acc[kLanes] = {};
            const int64_t full = p - p % kLanes;
            for (int64_t e = 0; e < full; e += kLanes)
                for (int l = 0; l < kLanes; ++l) acc[l] += plane[e + l];
            for (int64_t e = full; e < p; ++e) acc[e - full] += plane[e];
            T sum = T(0);
            for (int l = 0; l < kLanes; ++l) sum += acc[l];
            total += sum;
        }
        db[co] = total;
    });
}

}  // namespace

// ---------------------------------------------------------------- shapes and choice
int64_t conv_output_size(int64_t in, int64_t k, int64_t stride, int64_t pad_begin,
                         int64_t pad_end, int64_t dil) {
    const int64_t span = in + pad_begin + pad_end - dil * (k - 1) - 1;
    if (span < 0) return 0;
    return span / stride + 1;
}

const char* conv2d_shape_error(const Conv2dShape& s) {
    if (s.n < 0 || s.c_in < 1 || s.h < 1 || s.w < 1 || s.c_out < 1 || s.kh < 1 || s.kw < 1)
        return "sizes must be positive (the batch may be 0)";
    if (s.oh < 1 || s.ow < 1) return "the output would be empty";
    if (s.stride_h < 1 || s.stride_w < 1) return "stride must be positive";
    if (s.dil_h < 1 || s.dil_w < 1) return "dilation must be positive";
    if (s.pad_top < 0 || s.pad_left < 0) return "padding must be non-negative";
    if (s.groups < 1 || s.c_in % s.groups || s.c_out % s.groups)
        return "groups must be positive and divide both channel counts";
    const int64_t big = int64_t(1) << 40;
    const int64_t dims[] = {s.n, s.c_in, s.h, s.w, s.c_out, s.kh, s.kw, s.oh, s.ow,
                            s.stride_h, s.stride_w, s.pad_top, s.pad_left, s.dil_h, s.dil_w};
    for (int64_t v : dims)
        if (v > big) return "a size is too large";
    // Every product the kernels form stays below 2^62.
    const int64_t lim = int64_t(1) << 62;
    int64_t xs = s.n, ys = s.n, ws = s.c_out;
    if (!mul_ok(xs, s.c_in) || !mul_ok(xs *= s.c_in, s.h) || !mul_ok(xs *= s.h, s.w) ||
        !mul_ok(ys, s.c_out) || !mul_ok(ys *= s.c_out, s.oh) || !mul_ok(ys *= s.oh, s.ow) ||
        !mul_ok(ws, s.kh) || !mul_ok(ws *= s.kh, s.kw) || !mul_ok(ws *= s.kw, s.c_in) ||
        !mul_ok(s.oh, s.stride_h) || !mul_ok(s.ow, s.stride_w) || !mul_ok(s.kh, s.dil_h) ||
        !mul_ok(s.kw, s.dil_w) || xs * s.w > lim || ys * s.ow > lim || ws > lim)
        return "the tensors are too large";
    return "";
}

ConvAlgorithm conv2d_algorithm(const Conv2dShape& s, ConvPass pass, ConvAlgorithm requested) {
    (void)pass;
    switch (requested) {
        case ConvAlgorithm::im2col:
            return requested;
        case ConvAlgorithm::pointwise:
            if (!is_pointwise(s))
                throw std::invalid_argument(
                    "the pointwise algorithm needs a 1x1 kernel, stride 1 and no padding");
            return requested;
        case ConvAlgorithm::direct:
            if (!is_direct(s))
                throw std::invalid_argument(
                    "the direct algorithm needs one input channel per group (groups == C_in)");
            return requested;
        case ConvAlgorithm::automatic:
            break;
    }
    if (is_pointwise(s)) return ConvAlgorithm::pointwise;
    if (is_direct(s)) return ConvAlgorithm::direct;
    return ConvAlgorithm::im2col;
}

// ---------------------------------------------------------------- entry points
template <typename T>
void conv2d_forward(const T* x, const T* w, const T* bias, T* y, const Conv2dShape& s,
                    const ConvOptions& o) {
    if (s.n == 0) return;
    const ConvAlgorithm a = conv2d_algorithm(s, ConvPass::forward, o.algorithm);
    if (a == ConvAlgorithm::direct) {
        conv_detail::direct_forward(x, w, bias, y, s, o);
    } else if (a == ConvAlgorithm::im2col && o.algorithm == ConvAlgorithm::automatic &&
               conv_detail::implicit_gemm_applies(s)) {
        conv_detail::implicit_gemm_forward(x, w, bias, y, s, o);
    } else {
        gemm_forward(x, w, bias, y, s, o, a == ConvAlgorithm::pointwise);
    }
}

template <typename T>
void conv2d_backward_input(const T* dy, const T* w, const T* bias, T* dx, const Conv2dShape& s,
                           const ConvOptions& o) {
    if (s.n == 0) return;
    const ConvAlgorithm a = conv2d_algorithm(s, ConvPass::backward_input, o.algorithm);
    if (a == ConvAlgorithm::direct) {
        conv_detail::direct_backward_input(dy, w, bias, dx, s, o);
    } else {
        gemm_backward_input(dy, w, bias, dx, s, o, a == ConvAlgorithm::pointwise);
    }
}

template <typename T>
void conv2d_backward_weight(const T* x, const T* dy, T* dw, T* db, const Conv2dShape& s,
                            const ConvOptions& o) {
    if (s.n == 0) {
        const int64_t wsize = s.c_out * (s.c_in / s.groups) * s.kh * s.kw;
        if (dw) std::memset(dw, 0, sizeof(T) * static_cast<std::size_t>(wsize));
        if (db) std::memset(db, 0, sizeof(T) * static_cast<std::size_t>(s.c_out));
        return;
    }
    if (dw) {
        const ConvAlgorithm a = conv2d_algorithm(s, ConvPass::backward_weight, o.algorithm);
        if (a == ConvAlgorithm::direct) {
            conv_detail::direct_backward_weight(x, dy, dw, s, o);
        } else {
            gemm_backward_weight(x, dy, dw, s, o, a == ConvAlgorithm::pointwise);
        }
    }
    if (db) bias_grad(dy, db, s, o);
}

#define NNFORGE_CONV(T)                                                                       \
    template void conv2d_forward<T>(const T*, const T*, const T*, T*, const Conv2dShape&,     \
                                    const ConvOptions&);                                      \
    template void conv2d_backward_input<T>(const T*, const T*, const T*, T*,                  \
                                           const Conv2dShape&, const ConvOptions&);           \
    template void conv2d_backward_weight<T>(const T*, const T*, T*, T*, const Conv2dShape&,   \
                                            const ConvOptions&);
NNFORGE_CONV(float)
NNFORGE_CONV(double)
#undef NNFORGE_CONV

}  // namespace nnforge
