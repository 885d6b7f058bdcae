// erf and GELU on the CPU (see activation.h; the GELU loops and their
// formulas are in activation_kernels.h).
//
// Dispatch: on x86-64 CPUs with AVX-512 (best_isa() == avx512) the GELU build
// from activation_avx512.cpp runs, with AVX2 + FMA the one from
// activation_avx2.cpp, elsewhere this file's portable build; they differ only
// in vector width (and fused multiply-add rounding). erf runs std::erf.
#include "cpu/activation.h"

#include "common/cpu_features.h"
#include "cpu/activation_kernels.h"

namespace nnforge {

#if defined(__x86_64__) || defined(_M_X64)
namespace activation_detail {
template <typename T>
void gelu_forward_avx2(const T* x, T* y, int64_t n, bool tanh_approx);
template <typename T>
void gelu_backward_avx2(const T* g, const T* x, T* dx, int64_t n, bool tanh_approx);
template <typename T>
void gelu_forward_avx512(const T* x, T* y, int64_t n, bool tanh_approx);
template <typename T>
void gelu_backward_avx512(const T* g, const T* x, T* dx, int64_t n, bool tanh_approx);
}  // namespace activation_detail
#define NNFORGE_ACT_DISPATCH(name, kernel, ...)                    \
    switch (best_isa()) {                                          \
        case Isa::avx512:                                          \
            activation_detail::name##_avx512<T>(__VA_ARGS__);      \
            return;                                                \
        case Isa::avx2:                                            \
            activation_detail::name##_avx2<T>(__VA_ARGS__);        \
            return;                                                \
        default:                                                   \
            kernel<T>(__VA_ARGS__);                                \
    }
#else
#define NNFORGE_ACT_DISPATCH(name, kernel, ...) kernel<T>(__VA_ARGS__);
#endif

template <typename T>
void erf_forward(const T* x, T* y, int64_t n) {
    parallel_chunks(n, [=](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) y[i] = std::erf(x[i]);
    });
}

template <typename T>
void gelu_forward(const T* x, T* y, int64_t n, bool tanh_approx) {
    NNFORGE_ACT_DISPATCH(gelu_forward, gelu_forward_kernel, x, y, n, tanh_approx)
}

template <typename T>
void gelu_backward(const T* g, const T* x, T* dx, int64_t n, bool tanh_approx) {
    NNFORGE_ACT_DISPATCH(gelu_backward, gelu_backward_kernel, g, x, dx, n, tanh_approx)
}

#undef NNFORGE_ACT_DISPATCH

template void erf_forward<float>(const float*, float*, int64_t);
template void erf_forward<double>(const double*, double*, int64_t);
template void gelu_forward<float>(const float*, float*, int64_t, bool);
template void gelu_forward<double>(const double*, double*, int64_t, bool);
template void gelu_backward<float>(const float*, const float*, float*, int64_t, bool);
template void gelu_backward<double>(const double*, const double*, double*, int64_t, bool);

}  // namespace nnforge
