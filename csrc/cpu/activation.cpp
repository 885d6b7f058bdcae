// erf and GELU on the CPU (see activation.h), forward and backward side by side.
//
// GELU(x) = x Phi(x), Phi the standard normal CDF (Hendrycks & Gimpel 2016):
//   exact:  Phi(x)  = (1 + erf(x / sqrt 2)) / 2 = erfc(-x / sqrt 2) / 2
//           (erfc keeps full relative precision in the left tail, where 1 + erf cancels)
//           GELU'(x) = Phi(x) + x phi(x),   phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
//   tanh:   GELU(x) ~ x (1 + tanh u) / 2,   u = sqrt(2/pi) (x + 0.044715 x^3)
//           GELU'(x) = (1 + tanh u) / 2 + x (1 - tanh^2 u) u' / 2,
//           u' = sqrt(2/pi) (1 + 3 * 0.044715 x^2)
// Large |x| is safe: erf and tanh saturate to +-1, exp(-x^2/2) underflows to 0,
// and the tanh form's second derivative term is dropped once tanh u is +-1
// (where u' may overflow to inf and 0 * inf would give nan).
//
// The math runs in T (float math for float32, as PyTorch's CPU kernels do).
// Threads: elementwise, so [0, n) is split into contiguous chunks, one per
// OpenMP thread, from kActivationParallelMin elements up; the result of every
// element does not depend on the split.
#include "cpu/activation.h"

#include <algorithm>
#include <cmath>

#if defined(NNFORGE_OPENMP)
#include <omp.h>
#endif

namespace nnforge {
namespace {

template <typename Body>
void parallel_chunks(int64_t n, const Body& body) {
#if defined(NNFORGE_OPENMP)
    if (n >= kActivationParallelMin && omp_get_max_threads() > 1) {
#pragma omp parallel
        {
            const int64_t threads = omp_get_num_threads();
            const int64_t t = omp_get_thread_num();
            const int64_t per = ((n + threads - 1) / threads + 63) / 64 * 64;
            const int64_t begin = std::min(n, t * per);
            const int64_t end = std::min(n, begin + per);
            if (begin < end) body(begin, end);
        }
        return;
    }
#endif
    body(int64_t{0}, n);
}

template <typename T>
struct GeluConstants {
    static constexpr T kInvSqrt2 = T(0.70710678118654752440);        // 1 / sqrt 2
    static constexpr T kInvSqrt2Pi = T(0.39894228040143267794);      // 1 / sqrt(2 pi)
    static constexpr T kSqrt2OverPi = T(0.79788456080286535588);     // sqrt(2 / pi)
    static constexpr T kCubic = T(0.044715);
};

}  // namespace

template <typename T>
void erf_forward(const T* x, T* y, int64_t n) {
    parallel_chunks(n, [=](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) y[i] = std::erf(x[i]);
    });
}

template <typename T>
void gelu_forward(const T* x, T* y, int64_t n, bool tanh_approx) {
    using K = GeluConstants<T>;
    if (tanh_approx) {
        parallel_chunks(n, [=](int64_t begin, int64_t end) {
            for (int64_t i = begin; i < end; ++i) {
                const T v = x[i];
                const T u = K::kSqrt2OverPi * (v + K::kCubic * v * v * v);
                y[i] = T(0.5) * v * (T(1) + std::tanh(u));
            }
        });
    } else {
        parallel_chunks(n, [=](int64_t begin, int64_t end) {
            for (int64_t i = begin; i < end; ++i) {
                const T v = x[i];
                y[i] = T(0.5) * v * std::erfc(-v * K::kInvSqrt2);
            }
        });
    }
}

template <typename T>
void gelu_backward(const T* g, const T* x, T* dx, int64_t n, bool tanh_approx) {
    using K = GeluConstants<T>;
    if (tanh_approx) {
        parallel_chunks(n, [=](int64_t begin, int64_t end) {
            for (int64_t i = begin; i < end; ++i) {
                const T v = x[i];
                const T v2 = v * v;
                const T t = std::tanh(K::kSqrt2OverPi * (v + K::kCubic * v2 * v));
                const T sech2 = T(1) - t * t;
                T d = T(0.5) * (T(1) + t);
                if (sech2 != T(0)) {
                    const T du = K::kSqrt2OverPi * (T(1) + T(3) * K::kCubic * v2);
                    d += T(0.5) * v * sech2 * du;
                }
                dx[i] = g[i] * d;
            }
        });
    } else {
        parallel_chunks(n, [=](int64_t begin, int64_t end) {
            for (int64_t i = begin; i < end; ++i) {
                const T v = x[i];
                const T cdf = T(0.5) * std::erfc(-v * K::kInvSqrt2);
                const T pdf = K::kInvSqrt2Pi * std::exp(T(-0.5) * v * v);
                dx[i] = g[i] * (cdf + v * pdf);
            }
        });
    }
}

template void erf_forward<float>(const float*, float*, int64_t);
template void erf_forward<double>(const double*, double*, int64_t);
template void gelu_forward<float>(const float*, float*, int64_t, bool);
template void gelu_forward<double>(const double*, double*, int64_t, bool);
template void gelu_backward<float>(const float*, const float*, float*, int64_t, bool);
template void gelu_backward<double>(const double*, const double*, double*, int64_t, bool);

}  // namespace nnforge
