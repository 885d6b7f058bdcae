// The layer-norm loops (layernorm_kernels.h) built with AVX-512 (512-bit vectors).
// layernorm.cpp takes these only when best_isa() says the CPU has the ISA.
// Empty on other targets, where the ISA flags are not applied.
#if defined(__AVX512F__)

#include "cpu/layernorm_kernels.h"

namespace nnforge {
namespace layernorm_detail {

void get_layernorm_kernels_avx512(LayerNormKernels<float>* k) {
    *k = make_layernorm_kernels<float>();
}
void get_layernorm_kernels_avx512(LayerNormKernels<double>* k) {
    *k = make_layernorm_kernels<double>();
}

}  // namespace layernorm_detail
}  // namespace nnforge

#endif
