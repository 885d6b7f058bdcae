// Fused cross entropy (see loss.h; the loops are in loss_kernels.h).
//
// Dispatch: on x86-64 CPUs with AVX-512 (best_isa() == avx512) the build
// from loss_avx512.cpp runs, with AVX2 + FMA the one from loss_avx2.cpp,
// elsewhere this file's portable build. They differ only in vector width (and
// in the rounding of fused multiply-adds).
#include "cpu/loss.h"

#include "common/cpu_features.h"
#include "cpu/loss_kernels.h"

namespace nnforge {

#if defined(__x86_64__) || defined(_M_X64)
namespace loss_detail {
template <typename T>
void cross_entropy_forward_avx2(const T*, const int64_t*, const T*, CrossEntropyShape, int64_t,
                                double, T*, T*, T*);
template <typename T>
void cross_entropy_backward_avx2(const T*, const int64_t*, const T*, const T*, const T*,
                                 const T*, CrossEntropyShape, int64_t, double, T*);
template <typename T>
void cross_entropy_forward_avx512(const T*, const int64_t*, const T*, CrossEntropyShape, int64_t,
                                  double, T*, T*, T*);
template <typename T>
void cross_entropy_backward_avx512(const T*, const int64_t*, const T*, const T*, const T*,
                                   const T*, CrossEntropyShape, int64_t, double, T*);
}  // namespace loss_detail
#define NNFORGE_LOSS_DISPATCH(name, kernel, ...)                   \
    switch (best_isa()) {                                          \
        case Isa::avx512:                                          \
            loss_detail::name##_avx512<T>(__VA_ARGS__);            \
            return;                                                \
        case Isa::avx2:                                            \
            loss_detail::name##_avx2<T>(__VA_ARGS__);              \
            return;                                                \
        default:                                                   \
            kernel<T>(__VA_ARGS__);                                \
    }
#else
#define NNFORGE_LOSS_DISPATCH(name, kernel, ...) kernel<T>(__VA_ARGS__);
#endif

int64_t cross_entropy_first_bad_target(const int64_t* y, CrossEntropyShape s,
                                       int64_t ignore_index) {
    const int64_t positions = s.n * s.d;
    for (int64_t p = 0; p < positions; ++p) {
        if (y[p] != ignore_index && (y[p] < 0 || y[p] >= s.c)) return p;
    }
    return -1;
}

template <typename T>
void cross_entropy_forward(const T* z, const int64_t* y, const T* w, CrossEntropyShape s,
                           int64_t ignore_index, double smoothing, T* loss, T* lse, T* wy) {
    NNFORGE_LOSS_DISPATCH(cross_entropy_forward, forward_kernel, z, y, w, s, ignore_index,
                          smoothing, loss, lse, wy)
}

template <typename T>
void cross_entropy_backward(const T* z, const int64_t* y, const T* w, const T* lse, const T* wy,
                            const T* g, CrossEntropyShape s, int64_t ignore_index,
                            double smoothing, T* gz) {
    NNFORGE_LOSS_DISPATCH(cross_entropy_backward, backward_kernel, z, y, w, lse, wy, g, s,
                          ignore_index, smoothing, gz)
}

#undef NNFORGE_LOSS_DISPATCH

template void cross_entropy_forward<float>(const float*, const int64_t*, const float*,
                                           CrossEntropyShape, int64_t, double, float*, float*,
                                           float*);
template void cross_entropy_forward<double>(const double*, const int64_t*, const double*,
                                            CrossEntropyShape, int64_t, double, double*, double*,
                                            double*);
template void cross_entropy_backward<float>(const float*, const int64_t*, const float*,
                                            const float*, const float*, const float*,
                                            CrossEntropyShape, int64_t, double, float*);
template void cross_entropy_backward<double>(const double*, const int64_t*, const double*,
                                             const double*, const double*, const double*,
                                             CrossEntropyShape, int64_t, double, double*);

}  // namespace nnforge
