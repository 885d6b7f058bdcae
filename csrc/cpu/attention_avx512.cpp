// The attention tile loops (attention_kernels.h) built with AVX-512 (512-bit
// vectors; exp2 uses vroundscale/vscalef). attention.cpp takes these only when
// best_isa() says the CPU has the ISA. Empty on other targets, where the ISA
// flags are not applied.
#if defined(__AVX512F__)

#if defined(__GNUC__) && !defined(__clang__)
// GCC 12's AVX-512 intrinsics (roundscale, scalef, the reductions) pass
// _mm512_undefined_ps() as the merge source of their masked builtins, which
// -Wmaybe-uninitialized reports (GCC bug 105593, fixed in GCC 13); nothing
// here is read uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

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
