// The optimizer updates built with AVX2 + FMA (the kFma = true loops of
// optim_kernels.h): 256-bit vectors, and multiply-adds that round once as in
// PyTorch's vectorized CPU kernels. optim.cpp calls these only when
// best_isa() says the CPU has AVX2 and FMA. Empty on other targets, where
// the ISA flags are not applied.
#if defined(__AVX2__) && defined(__FMA__)

#include "cpu/optim_kernels.h"

namespace nnforge {
namespace optim_detail {

template <typename T>
void sgd_update_avx2(T* p, const T* g, T* buf, int64_t n, const SgdOptions& o) {
    sgd_kernel<true>(p, g, buf, n, o);
}

template <typename T>
void adam_update_avx2(T* p, const T* g, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq, int64_t n,
                      const AdamOptions& o) {
    adam_kernel<true>(p, g, exp_avg, exp_avg_sq, max_exp_avg_sq, n, o);
}

template <typename T>
void rmsprop_update_avx2(T* p, const T* g, T* square_avg, T* grad_avg, T* momentum_buffer,
                         int64_t n, const RmspropOptions& o) {
    rmsprop_kernel<true>(p, g, square_avg, grad_avg, momentum_buffer, n, o);
}

template <typename T>
void adagrad_update_avx2(T* p, const T* g, T* sum, int64_t n, const AdagradOptions& o) {
    adagrad_kernel<true>(p, g, sum, n, o);
}

template <typename T>
void adadelta_update_avx2(T* p, const T* g, T* square_avg, T* acc_delta, int64_t n,
                          const AdadeltaOptions& o) {
    adadelta_kernel<true>(p, g, square_avg, acc_delta, n, o);
}

#define NNFORGE_INSTANTIATE_OPTIM_AVX2(T)                                                     \
    template void sgd_update_avx2<T>(T*, const T*, T*, int64_t, const SgdOptions&);          \
    template void adam_update_avx2<T>(T*, const T*, T*, T*, T*, int64_t, const AdamOptions&); \
    template void rmsprop_update_avx2<T>(T*, const T*, T*, T*, T*, int64_t,                   \
                                         const RmspropOptions&);                              \
    template void adagrad_update_avx2<T>(T*, const T*, T*, int64_t, const AdagradOptions&);  \
    template void adadelta_update_avx2<T>(T*, const T*, T*, T*, int64_t,                      \
                                          const AdadeltaOptions&);

NNFORGE_INSTANTIATE_OPTIM_AVX2(float)
NNFORGE_INSTANTIATE_OPTIM_AVX2(double)

#undef NNFORGE_INSTANTIATE_OPTIM_AVX2

}  // namespace optim_detail
}  // namespace nnforge

#endif  // __AVX2__ && __FMA__
