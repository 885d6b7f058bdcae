// The softmax / log-softmax loops (see softmax.h), included by softmax.cpp
// (portable build) and by softmax_avx2.cpp / softmax_avx512.cpp (built with
// those ISA flags). Internal linkage throughout (one copy per ISA build), and
// no out-of-line std:: template is called here.
//
// Per row of N values (inner = 1), three passes over the row in L1:
//   forward:  m = max x;  softmax: y = e^(x - m), s = sum y, then y *= 1 / s;
//             log-softmax: s = sum e^(x - m), then y = (x - m) - log s.
//   backward: softmax: d = sum gy y, gx = y (gy - d);
//             log-softmax: d = sum gy, gx = gy - e^y d.
// inner > 1: the same passes over a tile of up to kSoftmaxTile positions, the
// per-position m, s, d held in small arrays and every loop vectorized across
// the tile's positions (N runs of contiguous memory, like the NCHW loss path).
// float uses exp_vec (vec_math.h, within 2 ulp of std::exp) and, for short
// rows' log s, sm_log_sum (within 2 ulp of std::log); double std::exp, std::log.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "cpu/parallel_runs.h"
#include "cpu/softmax.h"
#include "cpu/vec_math.h"

#if defined(_OPENMP)
#define NNFORGE_SM_PRAGMA(x) _Pragma(#x)
#else
#define NNFORGE_SM_PRAGMA(x)
#endif

namespace nnforge {
namespace softmax_detail {

// The kernels of one ISA build (softmax.cpp picks a set once).
template <typename T>
struct SoftmaxKernels {
    void (*forward)(const T*, SoftmaxShape, bool, T*);
    void (*backward)(const T*, const T*, SoftmaxShape, bool, T*);
};

// Defined in softmax_avx2.cpp / softmax_avx512.cpp (x86-64 only).
void get_softmax_kernels_avx2(SoftmaxKernels<float>* k);
void get_softmax_kernels_avx2(SoftmaxKernels<double>* k);
void get_softmax_kernels_avx512(SoftmaxKernels<float>* k);
void get_softmax_kernels_avx512(SoftmaxKernels<double>* k);

}  // namespace softmax_detail

namespace {

constexpr int64_t kSoftmaxTile = 256;  // positions per tile when inner > 1

// ---------------------------------------------------------------- rows (inner = 1)
// Short rows reduce in two vectors of partial results (GCC/Clang vector
// extension at the build's register width) folded as a tree at the end: an
// `omp simd reduction` folds its lanes with a chain of scalar adds, which
// costs as much as the rest of a short row (N = 65, 16384 rows, one thread:
// softmax 1.12 -> 0.89 ms with AVX-512, 1.15 -> 0.79 ms with AVX2).
#if defined(__AVX512F__)
constexpr int kSmVectorBytes = 64;
#elif defined(__AVX__)
constexpr int kSmVectorBytes = 32;
#else
constexpr int kSmVectorBytes = 16;
#endif

template <typename T>
struct SmVec {
    typedef T type __attribute__((vector_size(kSmVectorBytes)));
    static constexpr int kLanes = kSmVectorBytes / int(sizeof(T));
};

template <typename T>
typename SmVec<T>::type sm_load(const T* p) {
    typename SmVec<T>::type v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}

// acc's lanes folded pairwise (halves, then quarters, ...), max or sum.
template <typename T, bool kMax>
T sm_fold(const typename SmVec<T>::type& acc) {
    T a[SmVec<T>::kLanes];
    __builtin_memcpy(a, &acc, sizeof a);
    for (int w = SmVec<T>::kLanes / 2; w > 0; w /= 2) {
        for (int l = 0; l < w; ++l) {
            a[l] = kMax ? (a[l + w] > a[l] ? a[l + w] : a[l]) : a[l] + a[l + w];
        }
    }
    return a[0];
}

// From kSmLongRow values up a row's reductions are plain `omp simd
// reduction` loops (their lane fold is then amortized; at N = 256 they
// measured ~5% faster than the vector-extension loops).
constexpr int64_t kSmLongRow = 128;

template <typename T>
T sm_row_max(const T* x, int64_t n) {
    using V = typename SmVec<T>::type;
    constexpr int L = SmVec<T>::kLanes;
    if (n >= kSmLongRow) {
        T m = -std::numeric_limits<T>::infinity();
        NNFORGE_SM_PRAGMA(omp simd reduction(max : m))
        for (int64_t k = 0; k < n; ++k) m = x[k] > m ? x[k] : m;
        return m;
    }
    V acc = V{} - std::numeric_limits<T>::infinity(), acc2 = acc;
    int64_t k = 0;
    for (; k + 2 * L <= n; k += 2 * L) {  // two chains of vector max
        const V v = sm_load(x + k), v2 = sm_load(x + k + L);
        acc = v > acc ? v : acc;
        acc2 = v2 > acc2 ? v2 : acc2;
    }
    for (; k + L <= n; k += L) {
        const V v = sm_load(x + k);
        acc = v > acc ? v : acc;
    }
    acc = acc2 > acc ? acc2 : acc;
    T m = sm_fold<T, true>(acc);
    for (; k < n; ++k) m = x[k] > m ? x[k] : m;
    return m;
}

// sum_k a_k (sum_k a_k b_k when kProduct).
template <typename T, bool kProduct>
T sm_row_sum(const T* a, const T* b, int64_t n) {
    using V = typename SmVec<T>::type;
    constexpr int L = SmVec<T>::kLanes;
    if (n >= kSmLongRow) {
        T s = T(0);
        NNFORGE_SM_PRAGMA(omp simd reduction(+ : s))
        for (int64_t k = 0; k < n; ++k) s += kProduct ? a[k] * b[k] : a[k];
        return s;
    }
    V acc = V{}, acc2 = V{};
    int64_t k = 0;
    for (; k + 2 * L <= n; k += 2 * L) {  // two chains of vector adds
        acc += kProduct ? sm_load(a + k) * sm_load(b + k) : sm_load(a + k);
        acc2 += kProduct ? sm_load(a + k + L) * sm_load(b + k + L) : sm_load(a + k + L);
    }
    for (; k + L <= n; k += L) acc += kProduct ? sm_load(a + k) * sm_load(b + k) : sm_load(a + k);
    T s = sm_fold<T, false>(acc + acc2);
    for (; k < n; ++k) s += kProduct ? a[k] * b[k] : a[k];
    return s;
}

// sum_k e^(x_k - m), the terms written to y. Short rows sum y afterwards
// (vector fold); long rows in the exp loop's own reduction.
template <typename T>
T sm_row_exp(const T* x, int64_t n, T m, T* y) {
    if (n < kSmLongRow) {
        NNFORGE_SM_PRAGMA(omp simd)
        for (int64_t k = 0; k < n; ++k) y[k] = exp_vec(x[k] - m);
        return sm_row_sum<T, false>(y, y, n);
    }
    T s = T(0);
    NNFORGE_SM_PRAGMA(omp simd reduction(+ : s))
    for (int64_t k = 0; k < n; ++k) {
        const T e = exp_vec(x[k] - m);
        y[k] = e;
        s += e;
    }
    return s;
}

template <typename T>
void sm_row_forward(const T* x, int64_t n, bool log, T* y) {
    const T m = sm_row_max(x, n);
    const T s = sm_row_exp(x, n, m, y);
    if (log) {
        const T ls = std::log(s);
        NNFORGE_SM_PRAGMA(omp simd)
        for (int64_t k = 0; k < n; ++k) y[k] = (x[k] - m) - ls;
        return;
    }
    const T inv = T(1) / s;
    NNFORGE_SM_PRAGMA(omp simd)
    for (int64_t k = 0; k < n; ++k) y[k] *= inv;
}

template <typename T>
void sm_row_backward(const T* gy, const T* y, int64_t n, bool log, T* gx) {
    if (log) {
        const T d = sm_row_sum<T, false>(gy, gy, n);
        NNFORGE_SM_PRAGMA(omp simd)
        for (int64_t k = 0; k < n; ++k) gx[k] = gy[k] - exp_vec(y[k]) * d;
        return;
    }
    const T d = sm_row_sum<T, true>(gy, y, n);
    NNFORGE_SM_PRAGMA(omp simd)
    for (int64_t k = 0; k < n; ++k) gx[k] = y[k] * (gy[k] - d);
}

// log s for the row sums of the log-softmax (s >= 1: the max's own term is
// e^0; or nan): s = 2^e f with f in [sqrt(1/2), sqrt(2)), log f = 2 atanh z,
// z = (f - 1) / (f + 1), |z| <= 0.172, by its odd series to z^9 (truncation
// < 3e-9 relative). Branch-free, so a loop over a group of rows vectorizes;
// double keeps std::log.
inline float sm_log_sum(float s) {
    int32_t bits;
    std::memcpy(&bits, &s, sizeof bits);
    int32_t e = ((bits >> 23) & 0xff) - 127;
    const int32_t fbits = (bits & 0x7fffff) | 0x3f800000;  // f in [1, 2)
    float f;
    std::memcpy(&f, &fbits, sizeof f);
    const bool big = f > 1.41421356f;
    f = big ? 0.5f * f : f;
    e = big ? e + 1 : e;
    const float z = (f - 1.0f) / (f + 1.0f), z2 = z * z;
    const float p = z2 * (2.0f / 3 + z2 * (2.0f / 5 + z2 * (2.0f / 7 + z2 * (2.0f / 9))));
    const float ef = float(e);
    const float r = ef * 0.693145751953125f + (2.0f * z + (z * p + ef * 1.42860682030941723e-6f));
    return s != s ? s : r;
}

inline double sm_log_sum(double s) { return std::log(s); }

// Log-softmax of `count` consecutive rows; short rows in groups of kSmLogGroup
// whose logs are taken together (one vector loop instead of a libm call per
// row: N = 65, 16384 rows, AVX-512: 0.95 -> 0.85 ms).
constexpr int64_t kSmLogGroup = 16;

template <typename T>
void sm_rows_log_forward(const T* x, int64_t n, int64_t count, T* y) {
    if (n >= kSmLongRow) {  // the log is amortized over the row; a group would leave L1
        for (int64_t r = 0; r < count; ++r) sm_row_forward(x + r * n, n, true, y + r * n);
        return;
    }
    T m[kSmLogGroup], ls[kSmLogGroup];
    for (int64_t r0 = 0; r0 < count; r0 += kSmLogGroup) {
        const int64_t g = count - r0 < kSmLogGroup ? count - r0 : kSmLogGroup;
        for (int64_t i = 0; i < g; ++i) {
            const int64_t off = (r0 + i) * n;
            m[i] = sm_row_max(x + off, n);
            ls[i] = sm_row_exp(x + off, n, m[i], y + off);  // y: scratch for the terms
        }
        for (int64_t i = g; i < kSmLogGroup; ++i) ls[i] = T(1);
        NNFORGE_SM_PRAGMA(omp simd)
        for (int64_t i = 0; i < kSmLogGroup; ++i) ls[i] = sm_log_sum(ls[i]);
        for (int64_t i = 0; i < g; ++i) {
            const int64_t off = (r0 + i) * n;
            const T mi = m[i], li = ls[i];
            NNFORGE_SM_PRAGMA(omp simd)
            for (int64_t k = 0; k < n; ++k) y[off + k] = (x[off + k] - mi) - li;
        }
    }
}

// ---------------------------------------------------------------- tiles (inner > 1)
// x, y point at position i0 of one outer index; element k of position i0 + j
// is at [k * inner + j], j < len.
template <typename T>
void sm_tile_forward(const T* x, int64_t n, int64_t inner, int64_t len, bool log, T* y) {
    T m[kSoftmaxTile], s[kSoftmaxTile];
    for (int64_t j = 0; j < len; ++j) {
        m[j] = -std::numeric_limits<T>::infinity();
        s[j] = T(0);
    }
    for (int64_t k = 0; k < n; ++k) {
        const T* xk = x + k * inner;
        NNFORGE_SM_PRAGMA(omp simd)
        for (int64_t j = 0; j < len; ++j) m[j] = xk[j] > m[j] ? xk[j] : m[j];
    }
    for (int64_t k = 0; k < n; ++k) {
        const T* xk = x + k * inner;
        T* yk = y + k * inner;
        if (log) {
            NNFORGE_SM_PRAGMA(omp simd)
            for (int64_t j = 0; j < len; ++j) s[j] += exp_vec(xk[j] - m[j]);
        } else {
            NNFORGE_SM_PRAGMA(omp simd)
            for (int64_t j = 0; j < len; ++j) {
                const T e = exp_vec(xk[j] - m[j]);
                yk[j] = e;
                s[j] += e;
            }
        }
    }
    // s becomes 1 / s (softmax) or log s (log-softmax).
    for (int64_t j = 0; j < len; ++j) s[j] = log ? std::log(s[j]) : T(1) / s[j];
    for (int64_t k = 0; k < n; ++k) {
        const T* xk = x + k * inner;
        T* yk = y + k * inner;
        if (log) {
            NNFORGE_SM_PRAGMA(omp simd)
            for (int64_t j = 0; j < len; ++j) yk[j] = (xk[j] - m[j]) - s[j];
        } else {
            NNFORGE_SM_PRAGMA(omp simd)
            for (int64_t j = 0; j < len; ++j) yk[j] *= s[j];
        }
    }
}

template <typename T>
void sm_tile_backward(const T* gy, const T* y, int64_t n, int64_t inner, int64_t len, bool log,
                      T* gx) {
    T d[kSoftmaxTile];
    for (int64_t j = 0; j < len; ++j) d[j] = T(0);
    for (int64_t k = 0; k < n; ++k) {
        const T* gk = gy + k * inner;
        const T* yk = y + k * inner;
        if (log) {
            NNFORGE_SM_PRAGMA(omp simd)
            for (int64_t j = 0; j < len; ++j) d[j] += gk[j];
        } else {
            NNFORGE_SM_PRAGMA(omp simd)
            for (int64_t j = 0; j < len; ++j) d[j] += gk[j] * yk[j];
        }
    }
    for (int64_t k = 0; k < n; ++k) {
        const T* gk = gy + k * inner;
        const T* yk = y + k * inner;
        T* ok = gx + k * inner;
        if (log) {
            NNFORGE_SM_PRAGMA(omp simd)
            for (int64_t j = 0; j < len; ++j) ok[j] = gk[j] - exp_vec(yk[j]) * d[j];
        } else {
            NNFORGE_SM_PRAGMA(omp simd)
            for (int64_t j = 0; j < len; ++j) ok[j] = yk[j] * (gk[j] - d[j]);
        }
    }
}

// body(off, len) for every run of len rows (inner = 1) or tile of len
// positions, off the offset of its first element; split among threads.
template <typename Body>
void sm_for_each(SoftmaxShape s, const Body& body) {
    if (s.inner == 1) {
        parallel_runs(s.outer, s.outer * s.n, kSoftmaxParallelMin,
                      [&](int64_t begin, int64_t end) { body(begin * s.n, end - begin); });
        return;
    }
    const int64_t per_outer = (s.inner + kSoftmaxTile - 1) / kSoftmaxTile;
    parallel_runs(s.outer * per_outer, s.outer * s.n * s.inner, kSoftmaxParallelMin,
                  [&](int64_t begin, int64_t end) {
                      for (int64_t t = begin; t < end; ++t) {
                          const int64_t o = t / per_outer;
                          const int64_t i0 = (t % per_outer) * kSoftmaxTile;
                          const int64_t len =
                              s.inner - i0 < kSoftmaxTile ? s.inner - i0 : kSoftmaxTile;
                          body(o * s.n * s.inner + i0, len);
                      }
                  });
}

template <typename T>
void forward_kernel(const T* x, SoftmaxShape s, bool log, T* y) {
    if (s.n == 0) return;
    sm_for_each(s, [&](int64_t off, int64_t len) {
        if (s.inner == 1 && log) {
            sm_rows_log_forward(x + off, s.n, len, y + off);
        } else if (s.inner == 1) {
            for (int64_t r = 0; r < len; ++r) {
                sm_row_forward(x + off + r * s.n, s.n, false, y + off + r * s.n);
            }
        } else {
            sm_tile_forward(x + off, s.n, s.inner, len, log, y + off);
        }
    });
}

template <typename T>
void backward_kernel(const T* gy, const T* y, SoftmaxShape s, bool log, T* gx) {
    if (s.n == 0) return;
    sm_for_each(s, [&](int64_t off, int64_t len) {
        if (s.inner == 1) {
            for (int64_t r = 0; r < len; ++r) {
                const int64_t o = off + r * s.n;
                sm_row_backward(gy + o, y + o, s.n, log, gx + o);
            }
        } else {
            sm_tile_backward(gy + off, y + off, s.n, s.inner, len, log, gx + off);
        }
    });
}

template <typename T>
softmax_detail::SoftmaxKernels<T> make_softmax_kernels() {
    softmax_detail::SoftmaxKernels<T> k;
    k.forward = &forward_kernel<T>;
    k.backward = &backward_kernel<T>;
    return k;
}

}  // namespace
}  // namespace nnforge
