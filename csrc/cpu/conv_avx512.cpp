// The direct convolution's plane loops (conv_kernels.h) built with AVX512 (512-bit
// vectors). conv_direct.cpp calls these only when best_isa() (or a forced isa)
// says the CPU has the ISA. Empty on other targets, where the flags are not applied.
#if defined(__AVX512F__)

#include "cpu/conv_kernels.h"

namespace nnforge {
namespace conv_detail {

template <typename T>
PlaneKernels<T> plane_kernels_avx512() {
    return make_plane_kernels<T>();
}

template PlaneKernels<float> plane_kernels_avx512<float>();
template PlaneKernels<double> plane_kernels_avx512<double>();

}  // namespace conv_detail
}  // namespace nnforge

#endif
