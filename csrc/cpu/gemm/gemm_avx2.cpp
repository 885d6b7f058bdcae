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

#include <chrono>

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
    // (x0 + x4) ... (x3 + x7), then pairs, then the last two.
    static T reduce_add(Reg x) {
        __m128 s = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
        s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        return _mm_cvtss_f32(s);
    }
    // Lanes below n set.
    static Mask mask(int n) {
        return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    }
    // In-register transpose of 8 rows of 8: pairs interleaved (unpack), then
    // 64-bit pairs (shuffle: u[q] holds column q in its low and q + 4 in its
    // high 128-bit half, rows 0-3 or 4-7), then the halves joined (permute).
    static void transpose8(Reg r[8]) {
        Reg t[8], u[8];
        for (int i = 0; i < 4; ++i) {
            t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
            t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
        }
        for (int g = 0; g < 2; ++g) {
            u[4 * g + 0] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
            u[4 * g + 1] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0xEE);
            u[4 * g + 2] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
            u[4 * g + 3] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xEE);
        }
        for (int q = 0; q < 4; ++q) {
            r[q] = _mm256_permute2f128_ps(u[q], u[4 + q], 0x20);
            r[4 + q] = _mm256_permute2f128_ps(u[q], u[4 + q], 0x31);
        }
    }

    // dst[k * NR + j] = src[j * cs + k] (zero for j >= cols) in 8 x 8 blocks.
    template <int NR>
    static void pack_b_transposed(int64_t kc, int cols, const T* src, int64_t cs, T* dst) {
        for (int j0 = 0; j0 < NR; j0 += 8) {
            const int rows = cols - j0 < 0 ? 0 : (cols - j0 > 8 ? 8 : cols - j0);
            for (int64_t k0 = 0; k0 < kc; k0 += 8) {
                const int kb = kc - k0 < 8 ? static_cast<int>(kc - k0) : 8;
                const Mask km = mask(kb);
                Reg r[8];
                for (int i = 0; i < 8; ++i) {
                    r[i] = i < rows ? load(src + (j0 + i) * cs + k0, km) : zero();
                }
                transpose8(r);
                for (int q = 0; q < kb; ++q) store(dst + (k0 + q) * NR + j0, r[q]);
            }
        }
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
    static T reduce_add(Reg x) {
        __m128d s = _mm_add_pd(_mm256_castpd256_pd128(x), _mm256_extractf128_pd(x, 1));
        s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
        return _mm_cvtsd_f64(s);
    }
    static Mask mask(int n) {
        return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
    }
    // In-register transpose of 4 rows of 4 doubles.
    static void transpose4(Reg r[4]) {
        const Reg t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
        const Reg t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
        r[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
        r[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
        r[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
        r[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
    }

    template <int NR>
    static void pack_b_transposed(int64_t kc, int cols, const T* src, int64_t cs, T* dst) {
        for (int j0 = 0; j0 < NR; j0 += 4) {
            const int rows = cols - j0 < 0 ? 0 : (cols - j0 > 4 ? 4 : cols - j0);
            for (int64_t k0 = 0; k0 < kc; k0 += 4) {
                const int kb = kc - k0 < 4 ? static_cast<int>(kc - k0) : 4;
                const Mask km = mask(kb);
                Reg r[4];
                for (int i = 0; i < 4; ++i) {
                    r[i] = i < rows ? load(src + (j0 + i) * cs + k0, km) : zero();
                }
                transpose4(r);
                for (int q = 0; q < kb; ++q) store(dst + (k0 + q) * NR + j0, r[q]);
            }
        }
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

static volatile float fma_probe_sink = 0.0f;

// ---------------------------------------------------------------- FMA probe
// One chain x = x * a + b (each FMA waits for the last), or 12 independent
// ones (as many as keep both FMA pipes of any current core busy).
double fma_seconds_avx2(int64_t iterations, bool dependent) {
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    __m256 x[12];
    for (int j = 0; j < 12; ++j) x[j] = _mm256_set1_ps(0.5f + 0.01f * static_cast<float>(j));
    const auto t0 = std::chrono::steady_clock::now();
    if (dependent) {
        for (int64_t i = 0; i < iterations; ++i) x[0] = _mm256_fmadd_ps(x[0], a, b);
    } else {
        for (int64_t i = 0; i < iterations; ++i) {
            for (int j = 0; j < 12; ++j) x[j] = _mm256_fmadd_ps(x[j], a, b);
        }
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    __m256 sum = x[0];
    for (int j = 1; j < 12; ++j) sum = _mm256_add_ps(sum, x[j]);
    alignas(64) float out[16];
    _mm256_store_ps(out, sum);
    fma_probe_sink = out[0];  // keeps the chains from being optimized away
    return seconds;
}

template <typename T>
TileShape tile_shape_avx2() {
    using K = typename KernelFor<T>::type;
    return TileShape{K::MR, K::NR};
}

template <typename T>
void run_avx2(const Problem<T>& p, const Plan& plan, T* ws) {
    Driver<typename KernelFor<T>::type>::run(p, plan, ws);
}

// Prepacked B: this build has one tile (`shape` is it).
template <typename T>
void pack_b_whole_avx2(TileShape, int64_t k, int64_t n, const T* b, int64_t rs_b, int64_t cs_b,
                      T* out) {
    Driver<typename KernelFor<T>::type>::pack_b_whole(k, n, b, rs_b, cs_b, out);
}

template <typename T>
void run_prepacked_avx2(TileShape, const Problem<T>& p, const T* packed, int threads) {
    Driver<typename KernelFor<T>::type>::run_prepacked(p, packed, threads);
}

template TileShape tile_shape_avx2<float>();
template TileShape tile_shape_avx2<double>();
template void run_avx2<float>(const Problem<float>&, const Plan&, float*);
template void run_avx2<double>(const Problem<double>&, const Plan&, double*);
template void pack_b_whole_avx2<float>(TileShape, int64_t, int64_t, const float*, int64_t,
                                      int64_t, float*);
template void pack_b_whole_avx2<double>(TileShape, int64_t, int64_t, const double*, int64_t,
                                       int64_t, double*);
template void run_prepacked_avx2<float>(TileShape, const Problem<float>&, const float*, int);
template void run_prepacked_avx2<double>(TileShape, const Problem<double>&, const double*, int);

}  // namespace gemm_detail
}  // namespace nnforge

#endif  // __AVX2__ && __FMA__
