// The GELU loops (activation_kernels.h) built with AVX2 + FMA (256-bit vectors).
// activation.cpp calls these only when best_isa() says the CPU has the ISA.
// Empty on other targets, where the ISA flags are not applied.
#if defined(__AVX2__) && defined(__FMA__)

#include "cpu/activation_kernels.h"

namespace nnforge {
namespace activation_detail {

template <typename T>
void gelu_forward_avx2(const T* x, T* y, int64_t n, bool tanh_approx) {
    gelu_forward_kernel<T>(x, y, n, tanh_approx);
}

template <typename T>
void gelu_backward_avx2(const T* g, const T* x, T* dx, int64_t n, bool tanh_approx) {
    gelu_backward_kernel<T>(g, x, dx, n, tanh_approx);
}

template void gelu_forward_avx2<float>(const float*, float*, int64_t, bool);
template void gelu_forward_avx2<double>(const double*, double*, int64_t, bool);
template void gelu_backward_avx2<float>(const float*, const float*, float*, int64_t, bool);
template void gelu_backward_avx2<double>(const double*, const double*, double*, int64_t, bool);

}  // namespace activation_detail
}  // namespace nnforge

#endif
