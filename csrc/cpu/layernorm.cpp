// Layer-norm entry points (see layernorm.h; the loops are in layernorm_kernels.h).
//
// Dispatch: the kernel set is chosen once per dtype from best_isa(): the build
// from layernorm_avx512.cpp on CPUs with AVX-512, layernorm_avx2.cpp with
// AVX2 + FMA, else this file's portable build. They differ in vector width,
// so float sums may differ in the last bits between ISAs (never between
// thread counts).
#include "cpu/layernorm.h"

#include "common/cpu_features.h"
#include "cpu/layernorm_kernels.h"

namespace nnforge {
namespace {

template <typename T>
layernorm_detail::LayerNormKernels<T> pick_kernels() {
#if defined(__x86_64__) || defined(_M_X64)
    return pick_isa_kernels(make_layernorm_kernels<T>(),
                            layernorm_detail::get_layernorm_kernels_avx2,
                            layernorm_detail::get_layernorm_kernels_avx512);
#else
    return make_layernorm_kernels<T>();
#endif
}

template <typename T>
const layernorm_detail::LayerNormKernels<T>& kernels() {
    static const layernorm_detail::LayerNormKernels<T> k = pick_kernels<T>();
    return k;
}

}  // namespace

template <typename T>
void layer_norm_forward(const T* x, const T* w, const T* b, int64_t rows, int64_t n, double eps,
                        T* y, T* mean, T* rstd) {
    kernels<T>().forward(x, w, b, rows, n, eps, y, mean, rstd);
}

template <typename T>
void layer_norm_backward(const T* gy, const T* x, const T* mean, const T* rstd, const T* w,
                         int64_t rows, int64_t n, T* gx, T* gw, T* gb) {
    kernels<T>().backward(gy, x, mean, rstd, w, rows, n, gx, gw, gb);
}

#define NNFORGE_LN_INSTANTIATE(T)                                                           \
    template void layer_norm_forward<T>(const T*, const T*, const T*, int64_t, int64_t,     \
                                        double, T*, T*, T*);                                \
    template void layer_norm_backward<T>(const T*, const T*, const T*, const T*, const T*,  \
                                         int64_t, int64_t, T*, T*, T*);
NNFORGE_LN_INSTANTIATE(float)
NNFORGE_LN_INSTANTIATE(double)
#undef NNFORGE_LN_INSTANTIATE

}  // namespace nnforge
