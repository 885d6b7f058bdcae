// The GEMM built for AVX2 + FMA: micro-tiles of 6 x 16 floats or 6 x 8
// doubles, i.e. 6 rows x 2 ymm vectors.
//
// Why 6 x 2 vectors: 12 of the 16 ymm registers accumulate, 2 hold the B row
// and 1 the broadcast A value. Each k step is 2 loads + 6 broadcasts for 12
// FMAs, and 12 independent chains cover the FMA latency (4-5 cycles) times the
// two FMA ports of AVX2 cores (the classic Haswell-era shape).
//
// gemm.cpp calls run_avx2 only when best_isa() (or a forced ISA the CPU has)
// says AVX2 + FMA are usable. Empty on targets where the flags are not applied.
#if defined(__AVX2__) && defined(__FMA__)

#include <immintrin.h>

#include "cpu/gemm/gemm_driver.h"
#include "cpu/gemm/gemm_simd.h"

namespace nnforge {
namespace gemm_detail {
namespace {

struct VecF32 {
    using T = float;
    using Reg = __m256;
    using Mask = __m256i;
    static constexpr int W = 8;
    static Reg zero() { return _mm256_setzero_ps(); }
    static Reg set1(T x) { return _mm256_set1_ps(x); }
    static Reg load(const T* p) { return _mm256_loadu_ps(p); }
    static Reg load(const T* p, Mask m) { return _mm256_maskload_ps(p, m); }
    static void store(T* p, Reg x) { _mm256_storeu_ps(p, x); }
    static void store(T* p, Reg x, Mask m) { _mm256_maskstore_ps(p, m, x); }
    static Reg fma(Reg a, Reg b, Reg c) { return _mm256_fmadd_ps(a, b, c); }
    static Reg mul(Reg a, Reg b) { return _mm256_mul_ps(a, b); }
    // Lanes below n set.
    static Mask mask(int n) {
        return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    }
    template <int NR>
    static void pack_b_transposed(int64_t kc, int cols, const T* src, int64_t cs, T* dst) {
        pack_b_transposed_generic<T, NR>(kc, cols, src, cs, dst);
    }
};

struct VecF64 {
    using T = double;
    using Reg = __m256d;
    using Mask = __m256i;
    static constexpr int W = 4;
    static Reg zero() { return _mm256_setzero_pd(); }
    static Reg set1(T x) { return _mm256_set1_pd(x); }
    static Reg load(const T* p) { return _mm256_loadu_pd(p); }
    static Reg load(const T* p, Mask m) { return _mm256_maskload_pd(p, m); }
    static void store(T* p, Reg x) { _mm256_storeu_pd(p, x); }
    static void store(T* p, Reg x, Mask m) { _mm256_maskstore_pd(p, m, x); }
    static Reg fma(Reg a, Reg b, Reg c) { return _mm256_fmadd_pd(a, b, c); }
    static Reg mul(Reg a, Reg b) { return _mm256_mul_pd(a, b); }
    static Mask mask(int n) {
        return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
    }
    template <int NR>
    static void pack_b_transposed(int64_t kc, int cols, const T* src, int64_t cs, T* dst) {
        pack_b_transposed_generic<T, NR>(kc, cols, src, cs, dst);
    }
};

using KernelF32 = SimdKernel<VecF32, 6, 16>;
using KernelF64 = SimdKernel<VecF64, 6, 8>;

template <typename T>
struct KernelFor;
template <>
struct KernelFor<float> {
    using type = KernelF32;
};
template <>
struct KernelFor<double> {
    using type = KernelF64;
};

}  // namespace

template <typename T>
TileShape tile_shape_avx2() {
    using K = typename KernelFor<T>::type;
    return TileShape{K::MR, K::NR};
}

template <typename T>
void run_avx2(const Problem<T>& p, const Plan& plan, T* ws) {
    Driver<typename KernelFor<T>::type>::run(p, plan, ws);
}

template TileShape tile_shape_avx2<float>();
template TileShape tile_shape_avx2<double>();
template void run_avx2<float>(const Problem<float>&, const Plan&, float*);
template void run_avx2<double>(const Problem<double>&, const Plan&, double*);

}  // namespace gemm_detail
}  // namespace nnforge

#endif  // __AVX2__ && __FMA__
