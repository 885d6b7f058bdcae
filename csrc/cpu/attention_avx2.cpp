// The attention tile loops (attention_kernels.h) built with AVX2 + FMA
// (256-bit vectors). attention.cpp takes these only when best_isa() says the
// CPU has the ISA. Empty on other targets, where the ISA flags are not applied.
#if defined(__AVX2__) && defined(__FMA__)

#include "cpu/attention_kernels.h"

namespace nnforge {
namespace attention_detail {

void get_attention_kernels_avx2(AttentionKernels<float>* k) { *k = make_attention_kernels<float>(); }
void get_attention_kernels_avx2(AttentionKernels<double>* k) {
    *k = make_attention_kernels<double>();
}

}  // namespace attention_detail
}  // namespace nnforge

#endif
