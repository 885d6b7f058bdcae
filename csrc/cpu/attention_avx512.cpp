// The attention tile loops (attention_kernels.h) built with AVX-512 (512-bit
// vectors; exp2 uses vroundscale/vscalef). attention.cpp takes these only when
// best_isa() says the CPU has the ISA. Empty on other targets, where the ISA
// flags are not applied.
#if defined(__AVX512F__)

#include "cpu/attention_kernels.h"

namespace nnforge {
namespace attention_detail {

void get_attention_kernels_avx512(AttentionKernels<float>* k) {
    *k = make_attention_kernels<float>();
}
void get_attention_kernels_avx512(AttentionKernels<double>* k) {
    *k = make_attention_kernels<double>();
}

}  // namespace attention_detail
}  // namespace nnforge

#endif
