// The fused cross-entropy loops (loss_kernels.h) built with AVX-512 (512-bit vectors).
// loss.cpp calls these only when best_isa() says the CPU has the ISA. Empty on
// other targets, where the ISA flags are not applied.
#if defined(__AVX512F__)

#include "cpu/loss_kernels.h"

namespace nnforge {
namespace loss_detail {

template <typename T>
void cross_entropy_forward_avx512(const T* z, const int64_t* y, const T* w, CrossEntropyShape s,
                                  int64_t ignore_index, double smoothing, T* loss, T* lse, T* wy) {
    forward_kernel<T>(z, y, w, s, ignore_index, smoothing, loss, lse, wy);
}

template <typename T>
void cross_entropy_backward_avx512(const T* z, const int64_t* y, const T* w, const T* lse,
                                   const T* wy, const T* g, CrossEntropyShape s,
                                   int64_t ignore_index, double smoothing, T* gz) {
    backward_kernel<T>(z, y, w, lse, wy, g, s, ignore_index, smoothing, gz);
}

template void cross_entropy_forward_avx512<float>(const float*, const int64_t*, const float*,
                                                  CrossEntropyShape, int64_t, double, float*,
                                                  float*, float*);
template void cross_entropy_forward_avx512<double>(const double*, const int64_t*, const double*,
                                                   CrossEntropyShape, int64_t, double, double*,
                                                   double*, double*);
template void cross_entropy_backward_avx512<float>(const float*, const int64_t*, const float*,
                                                   const float*, const float*, const float*,
                                                   CrossEntropyShape, int64_t, double, float*);
template void cross_entropy_backward_avx512<double>(const double*, const int64_t*, const double*,
                                                    const double*, const double*, const double*,
                                                    CrossEntropyShape, int64_t, double, double*);

}  // namespace loss_detail
}  // namespace nnforge

#endif
