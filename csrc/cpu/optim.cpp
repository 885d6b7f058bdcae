// Fused optimizer updates (see optim.h; the loops are in optim_kernels.h):
// each reads the gradient and the state once and writes the parameter and
// the state once, where torch.optim's single-tensor path makes a pass over
// memory per operation.
//
// Dispatch: on x86-64 CPUs with AVX2 + FMA (best_isa() above scalar) the
// kFma = true build from optim_avx2.cpp runs, whose multiply-adds round once
// like PyTorch's vectorized kernels on those CPUs; elsewhere this file's
// portable build. On a target whose baseline has FMA (aarch64) this build
// fuses too.
#include "cpu/optim.h"

#include "common/cpu_features.h"
#include "cpu/optim_kernels.h"

namespace nnforge {
namespace {

#if defined(__FMA__) || defined(__ARM_FEATURE_FMA)
constexpr bool kBaselineFma = true;
#else
constexpr bool kBaselineFma = false;
#endif

#if defined(__x86_64__) || defined(_M_X64)
bool use_avx2() { return best_isa() != Isa::scalar; }
#define NNFORGE_OPTIM_DISPATCH(name, ...)                    \
    if (use_avx2()) {                                         \
        optim_detail::name##_update_avx2<T>(__VA_ARGS__);     \
    } else {                                                  \
        optim_detail::name##_kernel<kBaselineFma, T>(__VA_ARGS__); \
    }
#else
#define NNFORGE_OPTIM_DISPATCH(name, ...) optim_detail::name##_kernel<kBaselineFma, T>(__VA_ARGS__);
#endif

}  // namespace

template <typename T>
void sgd_update(T* p, const T* g, T* buf, int64_t n, const SgdOptions& o) {
    NNFORGE_OPTIM_DISPATCH(sgd, p, g, buf, n, o)
}

template <typename T>
void adam_update(T* p, const T* g, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq, int64_t n,
                 const AdamOptions& o) {
    NNFORGE_OPTIM_DISPATCH(adam, p, g, exp_avg, exp_avg_sq, max_exp_avg_sq, n, o)
}

template <typename T>
void rmsprop_update(T* p, const T* g, T* square_avg, T* grad_avg, T* momentum_buffer, int64_t n,
                    const RmspropOptions& o) {
    NNFORGE_OPTIM_DISPATCH(rmsprop, p, g, square_avg, grad_avg, momentum_buffer, n, o)
}

template <typename T>
void adagrad_update(T* p, const T* g, T* sum, int64_t n, const AdagradOptions& o) {
    NNFORGE_OPTIM_DISPATCH(adagrad, p, g, sum, n, o)
}

template <typename T>
void adadelta_update(T* p, const T* g, T* square_avg, T* acc_delta, int64_t n,
                     const AdadeltaOptions& o) {
    NNFORGE_OPTIM_DISPATCH(adadelta, p, g, square_avg, acc_delta, n, o)
}

#undef NNFORGE_OPTIM_DISPATCH

#define NNFORGE_INSTANTIATE_OPTIM(T)                                                         \
    template void sgd_update<T>(T*, const T*, T*, int64_t, const SgdOptions&);              \
    template void adam_update<T>(T*, const T*, T*, T*, T*, int64_t, const AdamOptions&);    \
    template void rmsprop_update<T>(T*, const T*, T*, T*, T*, int64_t,                       \
                                    const RmspropOptions&);                                  \
    template void adagrad_update<T>(T*, const T*, T*, int64_t, const AdagradOptions&);      \
    template void adadelta_update<T>(T*, const T*, T*, T*, int64_t, const AdadeltaOptions&);

NNFORGE_INSTANTIATE_OPTIM(float)
NNFORGE_INSTANTIATE_OPTIM(double)

#undef NNFORGE_INSTANTIATE_OPTIM

}  // namespace nnforge
