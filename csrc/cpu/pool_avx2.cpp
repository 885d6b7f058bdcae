// The pooling loops (pool_kernels.h) built with AVX2 + FMA (256-bit vectors).
// pool.cpp takes these only when best_isa() says the CPU has the ISA. Empty on
// other targets, where the ISA flags are not applied.
#if defined(__AVX2__) && defined(__FMA__)

#include "cpu/pool_kernels.h"

namespace nnforge {
namespace pool_detail {

void get_pool_kernels_avx2(PoolKernels<float>* k) { *k = make_pool_kernels<float>(); }
void get_pool_kernels_avx2(PoolKernels<double>* k) { *k = make_pool_kernels<double>(); }

}  // namespace pool_detail
}  // namespace nnforge

#endif
