// The layer-norm loops (see layernorm.h), included by layernorm.cpp (portable
// build) and by layernorm_avx2.cpp / layernorm_avx512.cpp (built with those
// ISA flags). Everything in the unnamed namespace has internal linkage (one
// copy per ISA build), and no out-of-line std:: template is called here.
//
// Per row r of N values (the row, 1.5-6 KB at the usual widths, stays in L1
// between the passes):
//   forward:  pass 1 sum x -> mean; pass 2 sum (x - mean)^2 -> var (biased);
//             pass 3 y = (x - mean) rstd w + b,  rstd = 1 / sqrt(var + eps).
//   backward: pass 1 a = sum wg, c = sum wg xhat (wg = gy w, xhat = (x - mean) rstd);
//             pass 2 gx = rstd (wg - a / N - xhat c / N), with the row's gy xhat and
//             gy added into its block's gw / gb partials in the same walk (one pass
//             fewer than a separate partials loop: 0.75 -> 0.67 ms at 4096 x 384).
// The row sums run in T as vectorized reductions (omp simd); the block
// partials of gw / gb are added across blocks in double.
//
// Work split: forward rows in contiguous runs per thread; backward in blocks
// of rows_per_block(R) rows (a function of R only), blocks in contiguous runs
// per thread, then one thread adds the block partials in block order.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <new>

#include "cpu/layernorm.h"
#include "cpu/parallel_runs.h"

#if defined(_OPENMP)
#define NNFORGE_LN_PRAGMA(x) _Pragma(#x)
#else
#define NNFORGE_LN_PRAGMA(x)
#endif

namespace nnforge {
namespace layernorm_detail {

// The kernels of one ISA build (layernorm.cpp picks a set once).
template <typename T>
struct LayerNormKernels {
    void (*forward)(const T*, const T*, const T*, int64_t, int64_t, double, T*, T*, T*);
    void (*backward)(const T*, const T*, const T*, const T*, const T*, int64_t, int64_t, T*, T*,
                     T*);
};

// Defined in layernorm_avx2.cpp / layernorm_avx512.cpp (x86-64 only).
void get_layernorm_kernels_avx2(LayerNormKernels<float>* k);
void get_layernorm_kernels_avx2(LayerNormKernels<double>* k);
void get_layernorm_kernels_avx512(LayerNormKernels<float>* k);
void get_layernorm_kernels_avx512(LayerNormKernels<double>* k);

}  // namespace layernorm_detail

namespace {

// Rows per block of the backward's gw / gb partial sums: at most ~64 blocks,
// at least 8 rows each; depends on R only (never on the thread count).
inline int64_t ln_rows_per_block(int64_t rows) {
    const int64_t per = (rows + 63) / 64;
    return per < 8 ? 8 : per;
}

// An owning buffer from malloc (see the header comment on std:: templates).
template <typename U>
struct LnBuffer {
    U* p;
    explicit LnBuffer(int64_t count) {
        const size_t c = static_cast<size_t>(count > 0 ? count : 1);
        p = static_cast<U*>(std::malloc(sizeof(U) * c));
        if (p == nullptr) throw std::bad_alloc();
    }
    ~LnBuffer() { std::free(p); }
    LnBuffer(const LnBuffer&) = delete;
    LnBuffer& operator=(const LnBuffer&) = delete;
};

template <typename T>
T ln_row_sum(const T* x, int64_t n) {
    T acc = T(0);
    NNFORGE_LN_PRAGMA(omp simd reduction(+ : acc))
    for (int64_t j = 0; j < n; ++j) acc += x[j];
    return acc;
}

// The statistics of rows x0 and x1 together: their two reductions are
// independent chains in one loop, so one row's adds fill the other's latency
// (a 384-wide row is only 24 AVX-512 adds, each waiting for the last). Each
// row's sums are formed in the same order as ln_row_sum / ln_row_sq_dev.
template <typename T>
void ln_row_sum2(const T* x0, const T* x1, int64_t n, T* s0, T* s1) {
    T a0 = T(0), a1 = T(0);
    NNFORGE_LN_PRAGMA(omp simd reduction(+ : a0, a1))
    for (int64_t j = 0; j < n; ++j) {
        a0 += x0[j];
        a1 += x1[j];
    }
    *s0 = a0;
    *s1 = a1;
}

template <typename T>
void ln_row_sq_dev2(const T* x0, const T* x1, int64_t n, T mu0, T mu1, T* s0, T* s1) {
    T a0 = T(0), a1 = T(0);
    NNFORGE_LN_PRAGMA(omp simd reduction(+ : a0, a1))
    for (int64_t j = 0; j < n; ++j) {
        const T d0 = x0[j] - mu0, d1 = x1[j] - mu1;
        a0 += d0 * d0;
        a1 += d1 * d1;
    }
    *s0 = a0;
    *s1 = a1;
}

template <typename T>
T ln_row_sq_dev(const T* x, int64_t n, T mu) {
    T acc = T(0);
    NNFORGE_LN_PRAGMA(omp simd reduction(+ : acc))
    for (int64_t j = 0; j < n; ++j) {
        const T d = x[j] - mu;
        acc += d * d;
    }
    return acc;
}

// y = (x - mu) rs [* w] [+ b] over one row.
template <typename T, bool kW, bool kB>
void ln_row_normalize(const T* x, const T* w, const T* b, int64_t n, T mu, T rs, T* y) {
    NNFORGE_LN_PRAGMA(omp simd)
    for (int64_t j = 0; j < n; ++j) {
        T v = (x[j] - mu) * rs;
        if (kW) v *= w[j];
        if (kB) v += b[j];
        y[j] = v;
    }
}

template <typename T, bool kW, bool kB>
void ln_forward_rows(const T* x, const T* w, const T* b, int64_t rows, int64_t n, double eps,
                     T* y, T* mean, T* rstd) {
    parallel_runs(rows, rows * n, kLayerNormParallelMin, [&](int64_t begin, int64_t end) {
        int64_t r = begin;
        for (; r + 1 < end; r += 2) {  // two rows at a time (see ln_row_sum2)
            const T* x0 = x + r * n;
            const T* x1 = x0 + n;
            T s0, s1;
            ln_row_sum2(x0, x1, n, &s0, &s1);
            const T mu0 = T(double(s0) / double(n)), mu1 = T(double(s1) / double(n));
            ln_row_sq_dev2(x0, x1, n, mu0, mu1, &s0, &s1);
            const T rs0 = T(1.0 / std::sqrt(double(s0) / double(n) + eps));
            const T rs1 = T(1.0 / std::sqrt(double(s1) / double(n) + eps));
            mean[r] = mu0, mean[r + 1] = mu1;
            rstd[r] = rs0, rstd[r + 1] = rs1;
            ln_row_normalize<T, kW, kB>(x0, w, b, n, mu0, rs0, y + r * n);
            ln_row_normalize<T, kW, kB>(x1, w, b, n, mu1, rs1, y + (r + 1) * n);
        }
        for (; r < end; ++r) {
            const T* xr = x + r * n;
            const T mu = T(double(ln_row_sum(xr, n)) / double(n));
            const double var = double(ln_row_sq_dev(xr, n, mu)) / double(n);
            const T rs = T(1.0 / std::sqrt(var + eps));
            mean[r] = mu;
            rstd[r] = rs;
            ln_row_normalize<T, kW, kB>(xr, w, b, n, mu, rs, y + r * n);
        }
    });
}

template <typename T>
void forward_kernel(const T* x, const T* w, const T* b, int64_t rows, int64_t n, double eps, T* y,
                    T* mean, T* rstd) {
    if (w && b) {
        ln_forward_rows<T, true, true>(x, w, b, rows, n, eps, y, mean, rstd);
    } else if (w) {
        ln_forward_rows<T, true, false>(x, w, b, rows, n, eps, y, mean, rstd);
    } else if (b) {
        ln_forward_rows<T, false, true>(x, w, b, rows, n, eps, y, mean, rstd);
    } else {
        ln_forward_rows<T, false, false>(x, w, b, rows, n, eps, y, mean, rstd);
    }
}

// One row of the backward: pass 1 the sums a, c (when kGx); pass 2 gx (when
// kGx) and the row's gy xhat / gy added into pw / pb (when kParts).
template <typename T, bool kW, bool kGx, bool kParts>
void ln_backward_row(const T* __restrict__ gy, const T* __restrict__ x, const T* __restrict__ w,
                     int64_t n, T mu, T rs, T* __restrict__ gx, T* __restrict__ pw,
                     T* __restrict__ pb) {
    T am = T(0), cm = T(0);
    if (kGx) {
        T a = T(0), c = T(0);
        NNFORGE_LN_PRAGMA(omp simd reduction(+ : a, c))
        for (int64_t j = 0; j < n; ++j) {
            const T wg = kW ? gy[j] * w[j] : gy[j];
            a += wg;
            c += wg * (x[j] - mu);
        }
        const T inv_n = T(1.0 / double(n));
        am = a * inv_n;
        cm = c * rs * inv_n;
    }
    NNFORGE_LN_PRAGMA(omp simd)
    for (int64_t j = 0; j < n; ++j) {
        const T xhat = (x[j] - mu) * rs;
        if (kGx) {
            const T wg = kW ? gy[j] * w[j] : gy[j];
            gx[j] = rs * (wg - am - xhat * cm);
        }
        if (kParts) {
            pw[j] += gy[j] * xhat;
            pb[j] += gy[j];
        }
    }
}

template <typename T, bool kW, bool kGx, bool kParts>
void ln_backward_blocks(const T* gy, const T* x, const T* mean, const T* rstd, const T* w,
                        int64_t rows, int64_t n, T* gx, T* parts) {
    const int64_t per = ln_rows_per_block(rows);
    const int64_t blocks = (rows + per - 1) / per;
    parallel_runs(blocks, rows * n, kLayerNormParallelMin, [&](int64_t begin, int64_t end) {
        for (int64_t blk = begin; blk < end; ++blk) {
            T* pw = kParts ? parts + blk * 2 * n : nullptr;
            T* pb = kParts ? pw + n : nullptr;
            if (kParts) {
                for (int64_t j = 0; j < 2 * n; ++j) pw[j] = T(0);
            }
            const int64_t r_end = (blk + 1) * per < rows ? (blk + 1) * per : rows;
            for (int64_t r = blk * per; r < r_end; ++r) {
                ln_backward_row<T, kW, kGx, kParts>(gy + r * n, x + r * n, w, n, mean[r],
                                                    rstd[r], kGx ? gx + r * n : nullptr, pw, pb);
            }
        }
    });
}

template <typename T, bool kW>
void ln_backward_dispatch(const T* gy, const T* x, const T* mean, const T* rstd, const T* w,
                          int64_t rows, int64_t n, T* gx, T* parts) {
    if (gx && parts) {
        ln_backward_blocks<T, kW, true, true>(gy, x, mean, rstd, w, rows, n, gx, parts);
    } else if (gx) {
        ln_backward_blocks<T, kW, true, false>(gy, x, mean, rstd, w, rows, n, gx, parts);
    } else if (parts) {
        ln_backward_blocks<T, kW, false, true>(gy, x, mean, rstd, w, rows, n, gx, parts);
    }
}

template <typename T>
void backward_kernel(const T* gy, const T* x, const T* mean, const T* rstd, const T* w,
                     int64_t rows, int64_t n, T* gx, T* gw, T* gb) {
    const bool need_parts = gw != nullptr || gb != nullptr;
    const int64_t per = ln_rows_per_block(rows);
    const int64_t blocks = (rows + per - 1) / per;
    LnBuffer<T> parts(need_parts ? blocks * 2 * n : 0);
    T* p = need_parts ? parts.p : nullptr;
    if (w) {
        ln_backward_dispatch<T, true>(gy, x, mean, rstd, w, rows, n, gx, p);
    } else {
        ln_backward_dispatch<T, false>(gy, x, mean, rstd, w, rows, n, gx, p);
    }
    if (!need_parts) return;
    // gw, gb: the block partials added in block order, in double.
    LnBuffer<double> acc(2 * n);
    for (int64_t j = 0; j < 2 * n; ++j) acc.p[j] = 0.0;
    for (int64_t blk = 0; blk < blocks; ++blk) {
        const T* pr = p + blk * 2 * n;
        NNFORGE_LN_PRAGMA(omp simd)
        for (int64_t j = 0; j < 2 * n; ++j) acc.p[j] += double(pr[j]);
    }
    for (int64_t j = 0; j < n; ++j) {
        if (gw) gw[j] = T(acc.p[j]);
        if (gb) gb[j] = T(acc.p[n + j]);
    }
}

template <typename T>
layernorm_detail::LayerNormKernels<T> make_layernorm_kernels() {
    layernorm_detail::LayerNormKernels<T> k;
    k.forward = &forward_kernel<T>;
    k.backward = &backward_kernel<T>;
    return k;
}

}  // namespace
}  // namespace nnforge
