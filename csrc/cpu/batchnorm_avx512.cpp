// The batch-norm loops (batchnorm_kernels.h) built with AVX-512 (512-bit vectors).
// batchnorm.cpp takes these only when best_isa() says the CPU has the ISA.
// Empty on other targets, where the ISA flags are not applied.
#if defined(__AVX512F__)

#include "cpu/batchnorm_kernels.h"

namespace nnforge {
namespace batchnorm_detail {

void get_batchnorm_kernels_avx512(BatchNormKernels<float>* k) {
    *k = make_batchnorm_kernels<float>();
}
void get_batchnorm_kernels_avx512(BatchNormKernels<double>* k) {
    *k = make_batchnorm_kernels<double>();
}

}  // namespace batchnorm_detail
}  // namespace nnforge

#endif
