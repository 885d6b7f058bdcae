// The softmax loops (softmax_kernels.h) built with AVX-512 (512-bit vectors).
// softmax.cpp takes these only when best_isa() says the CPU has the ISA.
// Empty on other targets, where the ISA flags are not applied.
#if defined(__AVX512F__)

#include "cpu/softmax_kernels.h"

namespace nnforge {
namespace softmax_detail {

void get_softmax_kernels_avx512(SoftmaxKernels<float>* k) {
    *k = make_softmax_kernels<float>();
}
void get_softmax_kernels_avx512(SoftmaxKernels<double>* k) {
    *k = make_softmax_kernels<double>();
}

}  // namespace softmax_detail
}  // namespace nnforge

#endif
