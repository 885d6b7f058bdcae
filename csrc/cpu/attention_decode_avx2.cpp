// The decode-attention head loop (attention_decode_kernels.h) built with
// AVX2 + FMA. attention_decode.cpp takes it only when best_isa() says the CPU has
// the ISA. Empty on other targets, where the ISA flags are not applied.
#if defined(__AVX2__) && defined(__FMA__)

#include "cpu/attention_decode_kernels.h"

namespace nnforge {
namespace attention_decode_detail {

void get_decode_kernels_avx2(DecodeHead<float>* k) { *k = &attn_decode::head<float>; }
void get_decode_kernels_avx2(DecodeHead<double>* k) { *k = &attn_decode::head<double>; }

}  // namespace attention_decode_detail
}  // namespace nnforge

#endif
