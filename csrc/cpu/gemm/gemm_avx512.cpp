// The GEMM built for AVX-512 (AVX512F + FMA): micro-tiles of 6 x 64 floats or
// 6 x 32 doubles, i.e. 6 rows x 4 zmm vectors.
//
// Why 6 x 4 vectors: the tile takes 24 of the 32 zmm registers as
// accumulators, 4 hold the B row and 1 the broadcast A value. Each k step
// is 4 vector loads + 6 broadcasts for 24 FMAs, well under the two loads per
// cycle every AVX-512 core sustains, and 24 independent accumulation chains
// cover the FMA latency (4 cycles) times the FMA ports (1 on AMD Zen 4, which
// runs a zmm FMA as two 256-bit halves; 2 on Intel server cores). The wide
// NR = 64 matches the common widths of C (multiples of 64) and keeps every C
// row of a tile one run of 256 contiguous bytes; MR = 6 keeps row edges cheap
// for small M. The alternative 14 x 32 (28 accumulators) loads less B per FMA
// but wastes more of a tile when M is not a multiple of 14.
//
// gemm.cpp calls run_avx512 only when best_isa() (or a forced ISA the CPU
// has) says AVX-512 is usable. Empty on targets where the flags are not applied.
#if defined(__AVX512F__)

#include <immintrin.h>

#include "cpu/gemm/gemm_driver.h"
#include "cpu/gemm/gemm_simd.h"

namespace nnforge {
namespace gemm_detail {
namespace {

struct VecF32 {
    using T = float;
    using Reg = __m512;
    using Mask = __mmask16;
    static constexpr int W = 16;
    static Reg zero() { return _mm512_setzero_ps(); }
    static Reg set1(T x) { return _mm512_set1_ps(x); }
    static Reg load(const T* p) { return _mm512_loadu_ps(p); }
    static Reg load(const T* p, Mask m) { return _mm512_maskz_loadu_ps(m, p); }
    static void store(T* p, Reg x) { _mm512_storeu_ps(p, x); }
    static void store(T* p, Reg x, Mask m) { _mm512_mask_storeu_ps(p, m, x); }
    static Reg fma(Reg a, Reg b, Reg c) { return _mm512_fmadd_ps(a, b, c); }
    static Reg mul(Reg a, Reg b) { return _mm512_mul_ps(a, b); }
    static Mask mask(int n) { return n >= W ? Mask(0xFFFF) : Mask((1u << n) - 1u); }
    template <int NR>
    static void pack_b_transposed(int64_t kc, int cols, const T* src, int64_t cs, T* dst) {
        pack_b_transposed_generic<T, NR>(kc, cols, src, cs, dst);
    }
};

struct VecF64 {
    using T = double;
    using Reg = __m512d;
    using Mask = __mmask8;
    static constexpr int W = 8;
    static Reg zero() { return _mm512_setzero_pd(); }
    static Reg set1(T x) { return _mm512_set1_pd(x); }
    static Reg load(const T* p) { return _mm512_loadu_pd(p); }
    static Reg load(const T* p, Mask m) { return _mm512_maskz_loadu_pd(m, p); }
    static void store(T* p, Reg x) { _mm512_storeu_pd(p, x); }
    static void store(T* p, Reg x, Mask m) { _mm512_mask_storeu_pd(p, m, x); }
    static Reg fma(Reg a, Reg b, Reg c) { return _mm512_fmadd_pd(a, b, c); }
    static Reg mul(Reg a, Reg b) { return _mm512_mul_pd(a, b); }
    static Mask mask(int n) { return n >= W ? Mask(0xFF) : Mask((1u << n) - 1u); }
    template <int NR>
    static void pack_b_transposed(int64_t kc, int cols, const T* src, int64_t cs, T* dst) {
        pack_b_transposed_generic<T, NR>(kc, cols, src, cs, dst);
    }
};

using KernelF32 = SimdKernel<VecF32, 6, 64>;
using KernelF64 = SimdKernel<VecF64, 6, 32>;

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
TileShape tile_shape_avx512() {
    using K = typename KernelFor<T>::type;
    return TileShape{K::MR, K::NR};
}

template <typename T>
void run_avx512(const Problem<T>& p, const Plan& plan, T* ws) {
    Driver<typename KernelFor<T>::type>::run(p, plan, ws);
}

template TileShape tile_shape_avx512<float>();
template TileShape tile_shape_avx512<double>();
template void run_avx512<float>(const Problem<float>&, const Plan&, float*);
template void run_avx512<double>(const Problem<double>&, const Plan&, double*);

}  // namespace gemm_detail
}  // namespace nnforge

#endif  // __AVX512F__
