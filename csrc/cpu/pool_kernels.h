// The pooling loops (see pool.h), included by pool.cpp (portable build) and by
// pool_avx2.cpp / pool_avx512.cpp (built with those ISA flags). Everything in
// the unnamed namespace has internal linkage, so each of those files gets its
// own copy compiled for its ISA, and no AVX-512 code can be picked by the
// linker for the portable path; for the same reason no out-of-line std::
// template is called here (no std::vector, std::min): plain loops and malloc.
//
// Max pooling, per plane and output row i (window rows h0 + k dh, h0 = i sh - ph,
// clipped to [0, ih)):
//   y[i, j] = max_{k, c} x[h0 + k dh, j sw - pw + c dw]
// taken in row-major window order with "v > m or v is NaN" (PyTorch's rule:
// first maximum wins a tie, NaN propagates). Output columns whose windows lie
// inside the row (the interior) run one input row at a time over the whole
// interior: the loop over j is the vectorized one, the kw taps are unrolled
// for the common (kw, sw) pairs; the few edge columns run a scalar loop.
//
// Average pooling is separable: the window's rows are summed into a row
// buffer (contiguous vector adds), then each output sums its kw columns of
// that buffer and divides by its divisor (constant over the interior). The
// backward mirrors it: each output row spreads gy / divisor over a zeroed row
// buffer, which is then added to the window's input rows.
//
// Work split: planes (N * C) are split statically among OpenMP threads, each
// with its own row buffer; results never depend on the thread count.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>

#include "cpu/pool.h"

#if defined(NNFORGE_OPENMP)
#include <omp.h>
#endif

namespace nnforge {
namespace pool_detail {

// The kernels of one ISA build, as function pointers (pool.cpp picks a set once).
template <typename T>
struct PoolKernels {
    void (*max_forward)(const T*, T*, int64_t*, const PoolGeom&);
    int64_t (*max_backward)(const T*, const int64_t*, T*, const PoolGeom&);
    void (*avg_forward)(const T*, T*, const PoolGeom&, bool, int64_t);
    void (*avg_backward)(const T*, T*, const PoolGeom&, bool, int64_t);
    void (*adaptive_avg_forward)(const T*, T*, const PoolGeom&);
    void (*adaptive_avg_backward)(const T*, T*, const PoolGeom&);
    void (*adaptive_max_forward)(const T*, T*, int64_t*, const PoolGeom&);
};

// Defined in pool_avx2.cpp / pool_avx512.cpp (x86-64 only).
void get_pool_kernels_avx2(PoolKernels<float>* k);
void get_pool_kernels_avx2(PoolKernels<double>* k);
void get_pool_kernels_avx512(PoolKernels<float>* k);
void get_pool_kernels_avx512(PoolKernels<double>* k);

}  // namespace pool_detail

namespace {

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
// floor(a / b) and ceil(a / b) for b > 0 and a of either sign.
inline int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
inline int64_t ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

// body(first_plane, end_plane, scratch): planes split statically among threads
// when the work is large; each thread gets `scratch_len` elements of its own.
template <typename T, typename Body>
void for_planes(int64_t planes, int64_t work, int64_t scratch_len, const Body& body) {
    int threads = 1;
#if defined(NNFORGE_OPENMP)
    if (work >= kPoolParallelMin && planes > 1) threads = omp_get_max_threads();
    if (threads > planes) threads = static_cast<int>(planes);
#endif
    const int64_t len = scratch_len > 0 ? scratch_len : 1;
    T* scratch = static_cast<T*>(std::malloc(sizeof(T) * static_cast<size_t>(len * threads)));
    if (scratch == nullptr) throw std::bad_alloc();
    if (threads <= 1) {
        body(int64_t{0}, planes, scratch);
    } else {
#if defined(NNFORGE_OPENMP)
#pragma omp parallel num_threads(threads)
        {
            const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
            const int64_t begin = planes * t / nt, end = planes * (t + 1) / nt;
            if (begin < end) body(begin, end, scratch + t * len);
        }
#endif
    }
    std::free(scratch);
}

template <typename T>
constexpr T neg_inf() { return -std::numeric_limits<T>::infinity(); }

// ------------------------------------------------------------------ max pooling
// The running maximum of a window and its position, PyTorch's rule ("v > m or v is
// NaN" in window order) written without branches, so that the vector loops and
// their scalar tails stay free of unpredictable jumps: m = (v > m ? v : m) is one
// max instruction; NaN is tracked aside (its last position) and wins at the end.
template <typename T>
struct MaxTap {
    T m;
    int64_t mi, ni;
    bool nan;
    MaxTap(T m0, int64_t i0) : m(m0), mi(i0), ni(i0), nan(m0 != m0) {}
    void add(T v, int64_t pos) {
        const bool gt = v > m;
        m = gt ? v : m;
        mi = gt ? pos : mi;
        const bool is_nan = v != v;
        nan = nan | is_nan;
        ni = is_nan ? pos : ni;
    }
    T value() const { return nan ? std::numeric_limits<T>::quiet_NaN() : m; }
    int64_t index() const { return nan ? ni : mi; }
};

// One input row `xr` (plane row `row_off / iw`) folded into the running maxima
// yr[j] / positions ir[j] of the interior output columns [j0, j1): taps
// xr[j sw - pw + c dw], c < kw. KW, SW: compile-time kw and sw (0: run time).
template <typename T, int KW, int SW, bool kIdx>
void max_row_interior(const T* xr, int64_t row_off, T* yr, int64_t* ir, int64_t j0, int64_t j1,
                      const PoolGeom& g) {
    const int64_t kw = KW ? KW : g.kw, sw = SW ? SW : g.sw, dw = g.dw, pw = g.pw;
    for (int64_t j = j0; j < j1; ++j) {
        MaxTap<T> t(yr[j], kIdx ? ir[j] : 0);
        const int64_t base = j * sw - pw;
        for (int64_t c = 0; c < kw; ++c) t.add(xr[base + c * dw], row_off + base + c * dw);
        yr[j] = t.value();
        if (kIdx) ir[j] = t.index();
    }
}

template <typename T, bool kIdx>
void max_row_interior_any(const T* xr, int64_t row_off, T* yr, int64_t* ir, int64_t j0,
                          int64_t j1, const PoolGeom& g) {
    if (g.kw == 2 && g.sw == 2) {
        return max_row_interior<T, 2, 2, kIdx>(xr, row_off, yr, ir, j0, j1, g);
    }
    if (g.kw == 3 && g.sw == 2) {
        return max_row_interior<T, 3, 2, kIdx>(xr, row_off, yr, ir, j0, j1, g);
    }
    if (g.kw == 3 && g.sw == 1) {
        return max_row_interior<T, 3, 1, kIdx>(xr, row_off, yr, ir, j0, j1, g);
    }
    if (g.kw == 2 && g.sw == 1) {
        return max_row_interior<T, 2, 1, kIdx>(xr, row_off, yr, ir, j0, j1, g);
    }
    max_row_interior<T, 0, 0, kIdx>(xr, row_off, yr, ir, j0, j1, g);
}

// All KH window rows at once (none clipped) for the interior columns [j0, j1):
// rows[k] is the plane offset of window row k. One pass writes each output, the
// running maximum stays in registers. Used for the common 2x2/2 and 3x3/2 windows.
template <typename T, int KH, int KW, int SW, bool kIdx>
void max_rows_fused(const T* x, const int64_t* rows, T* yr, int64_t* ir, int64_t j0, int64_t j1,
                    const PoolGeom& g) {
    const int64_t dw = g.dw, pw = g.pw;
    const T* r[KH];
    for (int k = 0; k < KH; ++k) r[k] = x + rows[k];
    for (int64_t j = j0; j < j1; ++j) {
        const int64_t base = j * SW - pw;
        MaxTap<T> t(neg_inf<T>(), rows[0] + base);
        for (int k = 0; k < KH; ++k) {
            for (int c = 0; c < KW; ++c) t.add(r[k][base + c * dw], rows[k] + base + c * dw);
        }
        yr[j] = t.value();
        if (kIdx) ir[j] = t.index();
    }
}

// The fused form when it applies (whole window inside the rows, a common shape).
template <typename T, bool kIdx>
bool max_interior_fused(const T* x, int64_t h0, int64_t k_lo, int64_t k_hi, T* yr, int64_t* ir,
                        int64_t j0, int64_t j1, const PoolGeom& g) {
    if (k_lo != 0 || k_hi != g.kh) return false;
    int64_t rows[3];
    for (int64_t k = 0; k < g.kh && k < 3; ++k) rows[k] = (h0 + k * g.dh) * g.iw;
    if (g.kh == 2 && g.kw == 2 && g.sw == 2) {
        max_rows_fused<T, 2, 2, 2, kIdx>(x, rows, yr, ir, j0, j1, g);
        return true;
    }
    if (g.kh == 3 && g.kw == 3 && g.sw == 2) {
        max_rows_fused<T, 3, 3, 2, kIdx>(x, rows, yr, ir, j0, j1, g);
        return true;
    }
    if (g.kh == 3 && g.kw == 3 && g.sw == 1) {
        max_rows_fused<T, 3, 3, 1, kIdx>(x, rows, yr, ir, j0, j1, g);
        return true;
    }
    return false;
}

// One plane: x (ih, iw) -> y (oh, ow), positions into ix when kIdx.
template <typename T, bool kIdx>
void max_pool_plane(const T* x, T* y, int64_t* ix, const PoolGeom& g) {
    // Interior columns: every tap inside [0, iw).
    const int64_t j_lo = min64(g.ow, ceil_div(g.pw, g.sw));
    const int64_t j_hi =
        max64(j_lo, min64(g.ow, floor_div(g.iw - 1 + g.pw - (g.kw - 1) * g.dw, g.sw) + 1));
    for (int64_t i = 0; i < g.oh; ++i) {
        const int64_t h0 = i * g.sh - g.ph;
        const int64_t k_lo = h0 < 0 ? ceil_div(-h0, g.dh) : 0;
        const int64_t k_hi = min64(g.kh, ceil_div(g.ih - h0, g.dh));
        T* yr = y + i * g.ow;
        int64_t* ir = kIdx ? ix + i * g.ow : nullptr;
        if (k_lo >= k_hi) {  // no row of the window inside the input
            for (int64_t j = 0; j < g.ow; ++j) {
                yr[j] = neg_inf<T>();
                if (kIdx) ir[j] = -1;
            }
            continue;
        }
        const int64_t first_row = h0 + k_lo * g.dh;
        // Edge columns: the window clipped per column, scanned in PyTorch's order.
        for (int64_t j = 0; j < g.ow; ++j) {
            if (j == j_lo) j = j_hi;
            if (j >= g.ow) break;
            const int64_t w0 = j * g.sw - g.pw;
            const int64_t c_lo = w0 < 0 ? ceil_div(-w0, g.dw) : 0;
            const int64_t c_hi = min64(g.kw, ceil_div(g.iw - w0, g.dw));
            T m = neg_inf<T>();
            int64_t mi = c_lo < c_hi ? first_row * g.iw + w0 + c_lo * g.dw : -1;
            for (int64_t k = k_lo; k < k_hi; ++k) {
                const int64_t row = h0 + k * g.dh;
                for (int64_t c = c_lo; c < c_hi; ++c) {
                    const int64_t pos = row * g.iw + w0 + c * g.dw;
                    const T v = x[pos];
                    if (v > m || v != v) {
                        m = v;
                        mi = pos;
                    }
                }
            }
            yr[j] = m;
            if (kIdx) ir[j] = mi;
        }
        if (max_interior_fused<T, kIdx>(x, h0, k_lo, k_hi, yr, ir, j_lo, j_hi, g)) continue;
        for (int64_t j = j_lo; j < j_hi; ++j) {
            yr[j] = neg_inf<T>();
            if (kIdx) ir[j] = first_row * g.iw + j * g.sw - g.pw;
        }
        for (int64_t k = k_lo; k < k_hi; ++k) {
            const int64_t row = h0 + k * g.dh;
            max_row_interior_any<T, kIdx>(x + row * g.iw, row * g.iw, yr, ir, j_lo, j_hi, g);
        }
    }
}

template <typename T>
void max_forward_kernel(const T* x, T* y, int64_t* idx, const PoolGeom& g) {
    const int64_t in_plane = g.ih * g.iw, out_plane = g.oh * g.ow;
    for_planes<T>(g.planes, g.planes * in_plane, 0, [&](int64_t p0, int64_t p1, T*) {
        for (int64_t p = p0; p < p1; ++p) {
            if (idx) {
                max_pool_plane<T, true>(x + p * in_plane, y + p * out_plane,
                                        idx + p * out_plane, g);
            } else {
                max_pool_plane<T, false>(x + p * in_plane, y + p * out_plane, nullptr, g);
            }
        }
    });
}

template <typename T>
int64_t max_backward_kernel(const T* gy, const int64_t* idx, T* gx, const PoolGeom& g) {
    const int64_t in_plane = g.ih * g.iw, out_plane = g.oh * g.ow;
    int64_t bad = 0;
    for_planes<T>(g.planes, g.planes * (in_plane + out_plane), 0,
                  [&](int64_t p0, int64_t p1, T*) {
        int64_t my_bad = 0;
        for (int64_t p = p0; p < p1; ++p) {
            T* gp = gx + p * in_plane;
            const T* gyp = gy + p * out_plane;
            const int64_t* ip = idx + p * out_plane;
            std::memset(gp, 0, sizeof(T) * static_cast<size_t>(in_plane));
            for (int64_t q = 0; q < out_plane; ++q) {
                const int64_t at = ip[q];
                if (at >= 0 && at < in_plane) {
                    gp[at] += gyp[q];
                } else if (at != -1) {
                    ++my_bad;
                }
            }
        }
        if (my_bad) {
#if defined(NNFORGE_OPENMP)
#pragma omp atomic
#endif
            bad += my_bad;
        }
    });
    return bad;
}

// ------------------------------------------------------------------ average pooling
// Window of output index i along one axis: [lo, hi) clipped to [0, n), and the
// divisor factor along that axis (unclipped size with padding counted, else clipped).
struct AvgSpan {
    int64_t lo, hi, factor;
};

inline AvgSpan avg_span(int64_t i, int64_t n, int64_t k, int64_t s, int64_t pad,
                        bool count_include_pad) {
    const int64_t start = i * s - pad;
    const int64_t end = min64(start + k, n + pad);
    const int64_t lo = max64(start, 0), hi = min64(end, n);
    return {lo, hi, count_include_pad ? end - start : hi - lo};
}

// rb[w] = sum of rows [h_lo, h_hi) of the plane x (iw wide). Returns the row to read:
// x's own row when the window has one row, else rb.
template <typename T>
const T* sum_rows(const T* x, int64_t iw, int64_t h_lo, int64_t h_hi, T* rb) {
    if (h_hi - h_lo == 1) return x + h_lo * iw;
    const T* a = x + h_lo * iw;
    const T* b = a + iw;
    for (int64_t w = 0; w < iw; ++w) rb[w] = a[w] + b[w];
    for (int64_t h = h_lo + 2; h < h_hi; ++h) {
        const T* r = x + h * iw;
        for (int64_t w = 0; w < iw; ++w) rb[w] += r[w];
    }
    return rb;
}

// yr[j] = (sum of r[j sw - pw + c], c < kw) / div over interior columns [j0, j1).
template <typename T, int KW, int SW>
void avg_row_interior(const T* r, T* yr, int64_t j0, int64_t j1, int64_t kw, int64_t sw,
                      int64_t pw, T div) {
    const int64_t k = KW ? KW : kw, s = SW ? SW : sw;
    for (int64_t j = j0; j < j1; ++j) {
        const T* w = r + j * s - pw;
        T sum = w[0];
        for (int64_t c = 1; c < k; ++c) sum += w[c];
        yr[j] = sum / div;
    }
}

template <typename T>
void avg_row_interior_any(const T* r, T* yr, int64_t j0, int64_t j1, const PoolGeom& g, T div) {
    if (g.kw == 2 && g.sw == 2) return avg_row_interior<T, 2, 2>(r, yr, j0, j1, 2, 2, g.pw, div);
    if (g.kw == 3 && g.sw == 2) return avg_row_interior<T, 3, 2>(r, yr, j0, j1, 3, 2, g.pw, div);
    if (g.kw == 3 && g.sw == 1) return avg_row_interior<T, 3, 1>(r, yr, j0, j1, 3, 1, g.pw, div);
    avg_row_interior<T, 0, 0>(r, yr, j0, j1, g.kw, g.sw, g.pw, div);
}

// Interior columns of average pooling: the whole window inside [0, iw).
inline void avg_interior(const PoolGeom& g, int64_t* j_lo, int64_t* j_hi) {
    *j_lo = min64(g.ow, ceil_div(g.pw, g.sw));
    *j_hi = max64(*j_lo, min64(g.ow, floor_div(g.iw + g.pw - g.kw, g.sw) + 1));
}

template <typename T>
T avg_divisor(int64_t hf, int64_t wf, int64_t divisor_override) {
    return divisor_override > 0 ? T(divisor_override) : T(hf * wf);
}

template <typename T>
void avg_forward_kernel(const T* x, T* y, const PoolGeom& g, bool count_include_pad,
                        int64_t divisor_override) {
    const int64_t in_plane = g.ih * g.iw, out_plane = g.oh * g.ow;
    int64_t j_lo, j_hi;
    avg_interior(g, &j_lo, &j_hi);
    for_planes<T>(g.planes, g.planes * in_plane, g.iw, [&](int64_t p0, int64_t p1, T* rb) {
        for (int64_t p = p0; p < p1; ++p) {
            const T* xp = x + p * in_plane;
            for (int64_t i = 0; i < g.oh; ++i) {
                T* yr = y + p * out_plane + i * g.ow;
                const AvgSpan hs = avg_span(i, g.ih, g.kh, g.sh, g.ph, count_include_pad);
                if (hs.lo >= hs.hi) {
                    for (int64_t j = 0; j < g.ow; ++j) yr[j] = T(0);
                    continue;
                }
                const T* r = sum_rows(xp, g.iw, hs.lo, hs.hi, rb);
                for (int64_t j = 0; j < g.ow; ++j) {
                    if (j == j_lo) j = j_hi;
                    if (j >= g.ow) break;
                    const AvgSpan ws = avg_span(j, g.iw, g.kw, g.sw, g.pw, count_include_pad);
                    T sum = T(0);
                    for (int64_t w = ws.lo; w < ws.hi; ++w) sum += r[w];
                    yr[j] = ws.lo < ws.hi ? sum / avg_divisor<T>(hs.factor, ws.factor,
                                                                 divisor_override)
                                          : T(0);
                }
                if (j_lo < j_hi) {
                    avg_row_interior_any<T>(r, yr, j_lo, j_hi, g,
                                            avg_divisor<T>(hs.factor, g.kw, divisor_override));
                }
            }
        }
    });
}

// rb[j sw - pw + c] += gy[j] / div for c < kw over interior columns [j0, j1).
template <typename T, int KW, int SW>
void avg_row_spread(const T* gr, T* rb, int64_t j0, int64_t j1, int64_t kw, int64_t sw,
                    int64_t pw, T div) {
    const int64_t k = KW ? KW : kw, s = SW ? SW : sw;
    for (int64_t j = j0; j < j1; ++j) {
        const T v = gr[j] / div;
        T* w = rb + j * s - pw;
        for (int64_t c = 0; c < k; ++c) w[c] += v;
    }
}

template <typename T>
void avg_backward_kernel(const T* gy, T* gx, const PoolGeom& g, bool count_include_pad,
                         int64_t divisor_override) {
    const int64_t in_plane = g.ih * g.iw, out_plane = g.oh * g.ow;
    int64_t j_lo, j_hi;
    avg_interior(g, &j_lo, &j_hi);
    for_planes<T>(g.planes, g.planes * in_plane, g.iw, [&](int64_t p0, int64_t p1, T* rb) {
        for (int64_t p = p0; p < p1; ++p) {
            T* gp = gx + p * in_plane;
            std::memset(gp, 0, sizeof(T) * static_cast<size_t>(in_plane));
            for (int64_t i = 0; i < g.oh; ++i) {
                const T* gr = gy + p * out_plane + i * g.ow;
                const AvgSpan hs = avg_span(i, g.ih, g.kh, g.sh, g.ph, count_include_pad);
                if (hs.lo >= hs.hi) continue;
                for (int64_t w = 0; w < g.iw; ++w) rb[w] = T(0);
                for (int64_t j = 0; j < g.ow; ++j) {
                    if (j == j_lo) j = j_hi;
                    if (j >= g.ow) break;
                    const AvgSpan ws = avg_span(j, g.iw, g.kw, g.sw, g.pw, count_include_pad);
                    if (ws.lo >= ws.hi) continue;
                    const T v = gr[j] / avg_divisor<T>(hs.factor, ws.factor, divisor_override);
                    for (int64_t w = ws.lo; w < ws.hi; ++w) rb[w] += v;
                }
                if (j_lo < j_hi) {
                    const T div = avg_divisor<T>(hs.factor, g.kw, divisor_override);
                    if (g.kw == 2 && g.sw == 2) {
                        avg_row_spread<T, 2, 2>(gr, rb, j_lo, j_hi, 2, 2, g.pw, div);
                    } else {
                        avg_row_spread<T, 0, 0>(gr, rb, j_lo, j_hi, g.kw, g.sw, g.pw, div);
                    }
                }
                for (int64_t h = hs.lo; h < hs.hi; ++h) {
                    T* row = gp + h * g.iw;
                    for (int64_t w = 0; w < g.iw; ++w) row[w] += rb[w];
                }
            }
        }
    });
}

// ------------------------------------------------------------------ adaptive pooling
inline int64_t adaptive_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
inline int64_t adaptive_end(int64_t i, int64_t in, int64_t out) {
    return ((i + 1) * in + out - 1) / out;
}

template <typename T>
void adaptive_avg_forward_kernel(const T* x, T* y, const PoolGeom& g) {
    const int64_t in_plane = g.ih * g.iw, out_plane = g.oh * g.ow;
    for_planes<T>(g.planes, g.planes * in_plane, g.iw, [&](int64_t p0, int64_t p1, T* rb) {
        for (int64_t p = p0; p < p1; ++p) {
            const T* xp = x + p * in_plane;
            for (int64_t i = 0; i < g.oh; ++i) {
                const int64_t h0 = adaptive_start(i, g.ih, g.oh), h1 = adaptive_end(i, g.ih, g.oh);
                const T* r = sum_rows(xp, g.iw, h0, h1, rb);
                T* yr = y + p * out_plane + i * g.ow;
                for (int64_t j = 0; j < g.ow; ++j) {
                    const int64_t w0 = adaptive_start(j, g.iw, g.ow);
                    const int64_t w1 = adaptive_end(j, g.iw, g.ow);
                    T sum = T(0);
                    for (int64_t w = w0; w < w1; ++w) sum += r[w];
                    yr[j] = sum / T((h1 - h0) * (w1 - w0));
                }
            }
        }
    });
}

template <typename T>
void adaptive_avg_backward_kernel(const T* gy, T* gx, const PoolGeom& g) {
    const int64_t in_plane = g.ih * g.iw, out_plane = g.oh * g.ow;
    for_planes<T>(g.planes, g.planes * in_plane, g.iw, [&](int64_t p0, int64_t p1, T* rb) {
        for (int64_t p = p0; p < p1; ++p) {
            T* gp = gx + p * in_plane;
            std::memset(gp, 0, sizeof(T) * static_cast<size_t>(in_plane));
            for (int64_t i = 0; i < g.oh; ++i) {
                const int64_t h0 = adaptive_start(i, g.ih, g.oh), h1 = adaptive_end(i, g.ih, g.oh);
                const T* gr = gy + p * out_plane + i * g.ow;
                for (int64_t w = 0; w < g.iw; ++w) rb[w] = T(0);
                for (int64_t j = 0; j < g.ow; ++j) {
                    const int64_t w0 = adaptive_start(j, g.iw, g.ow);
                    const int64_t w1 = adaptive_end(j, g.iw, g.ow);
                    const T v = gr[j] / T((h1 - h0) * (w1 - w0));
                    for (int64_t w = w0; w < w1; ++w) rb[w] += v;
                }
                for (int64_t h = h0; h < h1; ++h) {
                    T* row = gp + h * g.iw;
                    for (int64_t w = 0; w < g.iw; ++w) row[w] += rb[w];
                }
            }
        }
    });
}

template <typename T>
void adaptive_max_forward_kernel(const T* x, T* y, int64_t* idx, const PoolGeom& g) {
    const int64_t in_plane = g.ih * g.iw, out_plane = g.oh * g.ow;
    for_planes<T>(g.planes, g.planes * in_plane, 0, [&](int64_t p0, int64_t p1, T*) {
        for (int64_t p = p0; p < p1; ++p) {
            const T* xp = x + p * in_plane;
            for (int64_t i = 0; i < g.oh; ++i) {
                const int64_t h0 = adaptive_start(i, g.ih, g.oh), h1 = adaptive_end(i, g.ih, g.oh);
                for (int64_t j = 0; j < g.ow; ++j) {
                    const int64_t w0 = adaptive_start(j, g.iw, g.ow);
                    const int64_t w1 = adaptive_end(j, g.iw, g.ow);
                    T m = neg_inf<T>();
                    int64_t mi = h0 * g.iw + w0;
                    for (int64_t h = h0; h < h1; ++h) {
                        for (int64_t w = w0; w < w1; ++w) {
                            const T v = xp[h * g.iw + w];
                            if (v > m || v != v) {
                                m = v;
                                mi = h * g.iw + w;
                            }
                        }
                    }
                    const int64_t q = p * out_plane + i * g.ow + j;
                    y[q] = m;
                    if (idx) idx[q] = mi;
                }
            }
        }
    });
}

template <typename T>
pool_detail::PoolKernels<T> make_pool_kernels() {
    pool_detail::PoolKernels<T> k;
    k.max_forward = &max_forward_kernel<T>;
    k.max_backward = &max_backward_kernel<T>;
    k.avg_forward = &avg_forward_kernel<T>;
    k.avg_backward = &avg_backward_kernel<T>;
    k.adaptive_avg_forward = &adaptive_avg_forward_kernel<T>;
    k.adaptive_avg_backward = &adaptive_avg_backward_kernel<T>;
    k.adaptive_max_forward = &adaptive_max_forward_kernel<T>;
    return k;
}

}  // namespace
}  // namespace nnforge
