// The fused recurrent step updates (rnn_kernels.h) built with AVX-512 (512-bit vectors).
// rnn.cpp calls these only when best_isa() says the CPU has the ISA. Empty on
// other targets, where the ISA flags are not applied.
#if defined(__AVX512F__)

#include "cpu/rnn_kernels.h"

namespace nnforge {
namespace rnn_detail {

template <typename T>
void step_forward_avx512(const RnnStep<T>& st) {
    step_forward_kernel<T>(st);
}

template <typename T>
void step_backward_avx512(const RnnStep<T>& st) {
    step_backward_kernel<T>(st);
}

template void step_forward_avx512<float>(const RnnStep<float>&);
template void step_forward_avx512<double>(const RnnStep<double>&);
template void step_backward_avx512<float>(const RnnStep<float>&);
template void step_backward_avx512<double>(const RnnStep<double>&);

}  // namespace rnn_detail
}  // namespace nnforge

#endif
