// Softmax / log-softmax entry points (see softmax.h; the loops are in
// softmax_kernels.h).
//
// Dispatch: the kernel set is chosen once per dtype from best_isa(): the build
// from softmax_avx512.cpp on CPUs with AVX-512, softmax_avx2.cpp with AVX2 +
// FMA, else this file's portable build (float sums may differ in the last
// bits between ISAs, never between thread counts).
#include "cpu/softmax.h"

#include "common/cpu_features.h"
#include "cpu/softmax_kernels.h"

namespace nnforge {
namespace {

template <typename T>
softmax_detail::SoftmaxKernels<T> pick_kernels() {
#if defined(__x86_64__) || defined(_M_X64)
    return pick_isa_kernels(make_softmax_kernels<T>(), softmax_detail::get_softmax_kernels_avx2,
                            softmax_detail::get_softmax_kernels_avx512);
#else
    return make_softmax_kernels<T>();
#endif
}

template <typename T>
const softmax_detail::SoftmaxKernels<T>& kernels() {
    static const softmax_detail::SoftmaxKernels<T> k = pick_kernels<T>();
    return k;
}

}  // namespace

template <typename T>
void softmax_forward(const T* x, SoftmaxShape s, bool log, T* y) {
    kernels<T>().forward(x, s, log, y);
}

template <typename T>
void softmax_backward(const T* gy, const T* y, SoftmaxShape s, bool log, T* gx) {
    kernels<T>().backward(gy, y, s, log, gx);
}

template void softmax_forward<float>(const float*, SoftmaxShape, bool, float*);
template void softmax_forward<double>(const double*, SoftmaxShape, bool, double*);
template void softmax_backward<float>(const float*, const float*, SoftmaxShape, bool, float*);
template void softmax_backward<double>(const double*, const double*, SoftmaxShape, bool,
                                       double*);

}  // namespace nnforge
