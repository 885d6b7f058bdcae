// Batch-norm entry points (see batchnorm.h; the loops are in batchnorm_kernels.h).
//
// Dispatch: the kernel set is chosen once per dtype from best_isa(): the build
// from batchnorm_avx512.cpp on CPUs with AVX-512, batchnorm_avx2.cpp with
// AVX2 + FMA, else this file's portable build. They differ in vector width,
// so float sums may differ in the last bits between ISAs (never between
// thread counts).
#include "cpu/batchnorm.h"

#include "common/cpu_features.h"
#include "cpu/batchnorm_kernels.h"

namespace nnforge {
namespace {

template <typename T>
batchnorm_detail::BatchNormKernels<T> pick_kernels() {
#if defined(__x86_64__) || defined(_M_X64)
    return pick_isa_kernels(make_batchnorm_kernels<T>(), batchnorm_detail::get_batchnorm_kernels_avx2,
                            batchnorm_detail::get_batchnorm_kernels_avx512);
#else
    return make_batchnorm_kernels<T>();
#endif
}

template <typename T>
const batchnorm_detail::BatchNormKernels<T>& kernels() {
    static const batchnorm_detail::BatchNormKernels<T> k = pick_kernels<T>();
    return k;
}

}  // namespace

template <typename T>
void batch_norm_forward_train(const T* x, const T* w, const T* b, BatchNormShape s, double eps,
                              T* y, T* mean, T* invstd, T* var) {
    kernels<T>().forward_train(x, w, b, s, eps, y, mean, invstd, var);
}

template <typename T>
void batch_norm_forward_eval(const T* x, const T* w, const T* b, const T* mean, const T* var,
                             BatchNormShape s, double eps, T* y) {
    kernels<T>().forward_eval(x, w, b, mean, var, s, eps, y);
}

template <typename T>
void batch_norm_backward(const T* gy, const T* x, const T* w, const T* mean, const T* invstd,
                         BatchNormShape s, bool training, T* gx, T* gw, T* gb) {
    kernels<T>().backward(gy, x, w, mean, invstd, s, training, gx, gw, gb);
}

#define NNFORGE_BN_INSTANTIATE(T)                                                              \
    template void batch_norm_forward_train<T>(const T*, const T*, const T*, BatchNormShape,    \
                                              double, T*, T*, T*, T*);                         \
    template void batch_norm_forward_eval<T>(const T*, const T*, const T*, const T*, const T*, \
                                             BatchNormShape, double, T*);                      \
    template void batch_norm_backward<T>(const T*, const T*, const T*, const T*, const T*,     \
                                         BatchNormShape, bool, T*, T*, T*);
NNFORGE_BN_INSTANTIATE(float)
NNFORGE_BN_INSTANTIATE(double)
#undef NNFORGE_BN_INSTANTIATE

}  // namespace nnforge
