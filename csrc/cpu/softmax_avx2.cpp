// The softmax loops (softmax_kernels.h) built with AVX2 + FMA (256-bit vectors).
// softmax.cpp takes these only when best_isa() says the CPU has the ISA.
// Empty on other targets, where the ISA flags are not applied.
#if defined(__AVX2__) && defined(__FMA__)

#include "cpu/softmax_kernels.h"

namespace nnforge {
namespace softmax_detail {

void get_softmax_kernels_avx2(SoftmaxKernels<float>* k) {
    *k = make_softmax_kernels<float>();
}
void get_softmax_kernels_avx2(SoftmaxKernels<double>* k) {
    *k = make_softmax_kernels<double>();
}

}  // namespace softmax_detail
}  // namespace nnforge

#endif
