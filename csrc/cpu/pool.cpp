// Pooling entry points (see pool.h; the loops are in pool_kernels.h).
//
// Dispatch: the kernel set is chosen once per dtype from best_isa(): the build
// from pool_avx512.cpp on CPUs with AVX-512, from pool_avx2.cpp with AVX2 +
// FMA, else this file's portable build. The builds differ only in vector
// width; every result is the same bit for bit (max is exact, and the sums
// add in the same order in each).
#include "cpu/pool.h"

#include "common/cpu_features.h"
#include "cpu/pool_kernels.h"

namespace nnforge {
namespace {

template <typename T>
pool_detail::PoolKernels<T> pick_kernels() {
#if defined(__x86_64__) || defined(_M_X64)
    return pick_isa_kernels(make_pool_kernels<T>(), pool_detail::get_pool_kernels_avx2,
                            pool_detail::get_pool_kernels_avx512);
#else
    return make_pool_kernels<T>();
#endif
}

template <typename T>
const pool_detail::PoolKernels<T>& kernels() {
    static const pool_detail::PoolKernels<T> k = pick_kernels<T>();
    return k;
}

}  // namespace

template <typename T>
void max_pool2d_forward(const T* x, T* y, int64_t* idx, const PoolGeom& g) {
    kernels<T>().max_forward(x, y, idx, g);
}

template <typename T>
int64_t max_pool2d_backward(const T* gy, const int64_t* idx, T* gx, const PoolGeom& g) {
    return kernels<T>().max_backward(gy, idx, gx, g);
}

template <typename T>
void avg_pool2d_forward(const T* x, T* y, const PoolGeom& g, bool count_include_pad,
                        int64_t divisor_override) {
    kernels<T>().avg_forward(x, y, g, count_include_pad, divisor_override);
}

template <typename T>
void avg_pool2d_backward(const T* gy, T* gx, const PoolGeom& g, bool count_include_pad,
                         int64_t divisor_override) {
    kernels<T>().avg_backward(gy, gx, g, count_include_pad, divisor_override);
}

template <typename T>
void adaptive_avg_pool2d_forward(const T* x, T* y, const PoolGeom& g) {
    kernels<T>().adaptive_avg_forward(x, y, g);
}

template <typename T>
void adaptive_avg_pool2d_backward(const T* gy, T* gx, const PoolGeom& g) {
    kernels<T>().adaptive_avg_backward(gy, gx, g);
}

template <typename T>
void adaptive_max_pool2d_forward(const T* x, T* y, int64_t* idx, const PoolGeom& g) {
    kernels<T>().adaptive_max_forward(x, y, idx, g);
}

#define NNFORGE_POOL_INSTANTIATE(T)                                                            \
    template void max_pool2d_forward<T>(const T*, T*, int64_t*, const PoolGeom&);              \
    template int64_t max_pool2d_backward<T>(const T*, const int64_t*, T*, const PoolGeom&);    \
    template void avg_pool2d_forward<T>(const T*, T*, const PoolGeom&, bool, int64_t);         \
    template void avg_pool2d_backward<T>(const T*, T*, const PoolGeom&, bool, int64_t);        \
    template void adaptive_avg_pool2d_forward<T>(const T*, T*, const PoolGeom&);               \
    template void adaptive_avg_pool2d_backward<T>(const T*, T*, const PoolGeom&);              \
    template void adaptive_max_pool2d_forward<T>(const T*, T*, int64_t*, const PoolGeom&);
NNFORGE_POOL_INSTANTIATE(float)
NNFORGE_POOL_INSTANTIATE(double)
#undef NNFORGE_POOL_INSTANTIATE

}  // namespace nnforge
