// The GELU loops (see activation.h), included by activation.cpp (portable
// build) and by activation_avx2.cpp / activation_avx512.cpp (built with those
// ISA flags). Internal linkage throughout, as in loss_kernels.h, so no code
// built for a wide ISA can be picked by the linker for the portable path.
//
// GELU(x) = x Phi(x), Phi the standard normal CDF (Hendrycks & Gimpel 2016):
//   exact:  Phi(x) = erfc(-x / sqrt 2) / 2   (erfc keeps full relative precision in
//           the left tail, where 1 + erf(x / sqrt 2) cancels)
//           GELU'(x) = Phi(x) + x phi(x),   phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
//   tanh:   GELU(x) ~ x (1 + tanh u) / 2 = x s(2u),  u = sqrt(2/pi) (x + 0.044715 x^3),
//           s = sigmoid;  GELU'(x) = s(2u) + x s(2u) (1 - s(2u)) 2 u',
//           u' = sqrt(2/pi) (1 + 3 * 0.044715 x^2)
// float: branch-free forms over exp_vec and normal_tail (vec_math.h) that the
// compiler vectorizes; Phi(-|x|) = erfc(|x| / sqrt 2) / 2 and exp(-x^2 / 2) come
// from one evaluation. double: std::erfc, std::exp and std::tanh (for gradcheck-grade
// accuracy). Large |x| is safe in both: the sigmoid and erfc saturate to exact
// 0 or 1 and the derivative's second term is then exactly 0 (never 0 * inf).
#pragma once

#include <cmath>
#include <cstdint>

#include "cpu/activation.h"
#include "cpu/vec_math.h"

#if defined(NNFORGE_OPENMP)
#include <omp.h>
#endif

#if defined(_OPENMP)
#define NNFORGE_ACT_PRAGMA(x) _Pragma(#x)
#else
#define NNFORGE_ACT_PRAGMA(x)
#endif

namespace nnforge {
namespace {

template <typename T>
struct GeluConstants {
    static constexpr T kInvSqrt2 = T(0.70710678118654752440);     // 1 / sqrt 2
    static constexpr T kInvSqrt2Pi = T(0.39894228040143267794);   // 1 / sqrt(2 pi)
    static constexpr T kSqrt2OverPi = T(0.79788456080286535588);  // sqrt(2 / pi)
    static constexpr T kCubic = T(0.044715);
};

// body(begin, end) over [0, n): one contiguous chunk per OpenMP thread from
// kActivationParallelMin elements up (chunks a multiple of 64 elements).
template <typename Body>
void parallel_chunks(int64_t n, const Body& body) {
#if defined(NNFORGE_OPENMP)
    if (n >= kActivationParallelMin && omp_get_max_threads() > 1) {
#pragma omp parallel
        {
            const int64_t threads = omp_get_num_threads();
            const int64_t t = omp_get_thread_num();
            const int64_t per = ((n + threads - 1) / threads + 63) / 64 * 64;
            const int64_t begin = t * per < n ? t * per : n;
            const int64_t end = begin + per < n ? begin + per : n;
            if (begin < end) body(begin, end);
        }
        return;
    }
#endif
    body(int64_t{0}, n);
}

// ---- exact GELU: the value, and the derivative times g. With tail = Phi(-|x|),
// Phi(x) = tail for x < 0 and 1 - tail otherwise, so x Phi(x) = x tail or x - x tail.
inline float gelu_exact(float x) {
    const float x_tail = x * normal_tail(x).tail;
    return x < 0.0f ? x_tail : x - x_tail;
}

inline float gelu_exact_grad(float g, float x) {
    using K = GeluConstants<float>;
    const NormalTail n = normal_tail(x);
    const float cdf = x < 0.0f ? n.tail : 1.0f - n.tail;
    return g * (cdf + x * (K::kInvSqrt2Pi * n.gauss));  // n.gauss = exp(-x^2 / 2)
}

inline double gelu_exact(double x) {
    using K = GeluConstants<double>;
    return 0.5 * x * std::erfc(-x * K::kInvSqrt2);
}

inline double gelu_exact_grad(double g, double x) {
    using K = GeluConstants<double>;
    const double cdf = 0.5 * std::erfc(-x * K::kInvSqrt2);
    const double pdf = K::kInvSqrt2Pi * std::exp(-0.5 * x * x);
    return g * (cdf + x * pdf);
}

// ---- tanh GELU
// s(2u) for float; exactly 0 once e^(-2u) is past float's range.
inline float gelu_tanh_gate(float x) {
    using K = GeluConstants<float>;
    const float two_u = 2.0f * K::kSqrt2OverPi * (x + K::kCubic * x * x * x);
    const float s = 1.0f / (1.0f + exp_vec(-two_u));
    return -two_u > 88.0f ? 0.0f : s;
}

inline float gelu_tanh(float x) { return x * gelu_tanh_gate(x); }

inline float gelu_tanh_grad(float g, float x) {
    using K = GeluConstants<float>;
    const float s = gelu_tanh_gate(x);
    const float ds = s * (1.0f - s);  // exactly 0 where s is 0 or 1
    const float du2 = 2.0f * K::kSqrt2OverPi * (1.0f + 3.0f * K::kCubic * x * x);
    const float second = ds == 0.0f ? 0.0f : x * ds * du2;
    return g * (s + second);
}

inline double gelu_tanh(double x) {
    using K = GeluConstants<double>;
    return 0.5 * x * (1.0 + std::tanh(K::kSqrt2OverPi * (x + K::kCubic * x * x * x)));
}

inline double gelu_tanh_grad(double g, double x) {
    using K = GeluConstants<double>;
    const double x2 = x * x;
    const double t = std::tanh(K::kSqrt2OverPi * (x + K::kCubic * x2 * x));
    const double sech2 = 1.0 - t * t;
    double d = 0.5 * (1.0 + t);
    if (sech2 != 0.0) d += 0.5 * x * sech2 * K::kSqrt2OverPi * (1.0 + 3.0 * K::kCubic * x2);
    return g * d;
}

template <typename T>
void gelu_forward_kernel(const T* x, T* y, int64_t n, bool tanh_approx) {
    parallel_chunks(n, [=](int64_t begin, int64_t end) {
        if (tanh_approx) {
            NNFORGE_ACT_PRAGMA(omp simd)
            for (int64_t i = begin; i < end; ++i) y[i] = gelu_tanh(x[i]);
        } else {
            NNFORGE_ACT_PRAGMA(omp simd)
            for (int64_t i = begin; i < end; ++i) y[i] = gelu_exact(x[i]);
        }
    });
}

template <typename T>
void gelu_backward_kernel(const T* g, const T* x, T* dx, int64_t n, bool tanh_approx) {
    parallel_chunks(n, [=](int64_t begin, int64_t end) {
        if (tanh_approx) {
            NNFORGE_ACT_PRAGMA(omp simd)
            for (int64_t i = begin; i < end; ++i) dx[i] = gelu_tanh_grad(g[i], x[i]);
        } else {
            NNFORGE_ACT_PRAGMA(omp simd)
            for (int64_t i = begin; i < end; ++i) dx[i] = gelu_exact_grad(g[i], x[i]);
        }
    });
}

}  // namespace
}  // namespace nnforge
