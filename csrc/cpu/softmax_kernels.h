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
// float uses exp_vec (vec_math.h, within 2 ulp of std::exp); double std::exp.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "cpu/layernorm_parallel.h"
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
template <typename T>
void sm_row_forward(const T* x, int64_t n, bool log, T* y) {
    T m = -std::numeric_limits<T>::infinity();
    NNFORGE_SM_PRAGMA(omp simd reduction(max : m))
    for (int64_t k = 0; k < n; ++k) m = x[k] > m ? x[k] : m;
    T s = T(0);
    if (log) {
        NNFORGE_SM_PRAGMA(omp simd reduction(+ : s))
        for (int64_t k = 0; k < n; ++k) s += exp_vec(x[k] - m);
        const T ls = std::log(s);
        NNFORGE_SM_PRAGMA(omp simd)
        for (int64_t k = 0; k < n; ++k) y[k] = (x[k] - m) - ls;
        return;
    }
    NNFORGE_SM_PRAGMA(omp simd reduction(+ : s))
    for (int64_t k = 0; k < n; ++k) {
        const T e = exp_vec(x[k] - m);
        y[k] = e;
        s += e;
    }
    const T inv = T(1) / s;
    NNFORGE_SM_PRAGMA(omp simd)
    for (int64_t k = 0; k < n; ++k) y[k] *= inv;
}

template <typename T>
void sm_row_backward(const T* gy, const T* y, int64_t n, bool log, T* gx) {
    T d = T(0);
    if (log) {
        NNFORGE_SM_PRAGMA(omp simd reduction(+ : d))
        for (int64_t k = 0; k < n; ++k) d += gy[k];
        NNFORGE_SM_PRAGMA(omp simd)
        for (int64_t k = 0; k < n; ++k) gx[k] = gy[k] - exp_vec(y[k]) * d;
        return;
    }
    NNFORGE_SM_PRAGMA(omp simd reduction(+ : d))
    for (int64_t k = 0; k < n; ++k) d += gy[k] * y[k];
    NNFORGE_SM_PRAGMA(omp simd)
    for (int64_t k = 0; k < n; ++k) gx[k] = y[k] * (gy[k] - d);
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

// body(off, len) for every row (inner = 1, len = 1) or tile of len positions,
// off the offset of its first element; rows / tiles split among threads.
template <typename Body>
void sm_for_each(SoftmaxShape s, const Body& body) {
    if (s.inner == 1) {
        parallel_runs(s.outer, s.outer * s.n, kSoftmaxParallelMin,
                      [&](int64_t begin, int64_t end) {
                          for (int64_t r = begin; r < end; ++r) body(r * s.n, int64_t{1});
                      });
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
        if (s.inner == 1) {
            sm_row_forward(x + off, s.n, log, y + off);
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
            sm_row_backward(gy + off, y + off, s.n, log, gx + off);
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
