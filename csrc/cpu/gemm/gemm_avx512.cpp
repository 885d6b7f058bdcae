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

#if defined(__GNUC__) && !defined(__clang__)
// GCC 12's AVX-512 unpack/shuffle intrinsics pass _mm512_undefined_ps() as the
// merge source of their masked builtins, which -Wmaybe-uninitialized reports
// (GCC bug 105593, fixed in GCC 13); nothing here is read uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <immintrin.h>

#include <chrono>

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
    static T reduce_add(Reg x) { return _mm512_reduce_add_ps(x); }
    static Mask mask(int n) { return n >= W ? Mask(0xFFFF) : Mask((1u << n) - 1u); }

    // In-register transpose of 16 rows of 16: r[i][k] -> r[k][i].
    // Stage 1 interleaves 32-bit pairs, stage 2 64-bit pairs (so u[4g + q],
    // 128-bit lane L, holds rows 4g..4g+3 at column 4L + q), stage 3 gathers
    // lane L of u[q], u[4 + q], u[8 + q], u[12 + q] into row 4L + q.
    static void transpose16(Reg r[16]) {
        Reg t[16];
        for (int i = 0; i < 8; ++i) {
            t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
            t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
        }
        Reg u[16];
        for (int g = 0; g < 4; ++g) {
            const __m512d a = _mm512_castps_pd(t[4 * g]), b = _mm512_castps_pd(t[4 * g + 1]);
            const __m512d c = _mm512_castps_pd(t[4 * g + 2]), d = _mm512_castps_pd(t[4 * g + 3]);
            u[4 * g + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
            u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
            u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
            u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
        }
        for (int q = 0; q < 4; ++q) {
            const Reg v = _mm512_shuffle_f32x4(u[q], u[4 + q], 0x44);
            const Reg v2 = _mm512_shuffle_f32x4(u[q], u[4 + q], 0xEE);
            const Reg w = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0x44);
            const Reg w2 = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0xEE);
            r[q] = _mm512_shuffle_f32x4(v, w, 0x88);
            r[4 + q] = _mm512_shuffle_f32x4(v, w, 0xDD);
            r[8 + q] = _mm512_shuffle_f32x4(v2, w2, 0x88);
            r[12 + q] = _mm512_shuffle_f32x4(v2, w2, 0xDD);
        }
    }

    // dst[k * NR + j] = src[j * cs + k] (zero for j >= cols) in 16 x 16 blocks:
    // 16 columns of B (rows of W) loaded along k, transposed, stored along j.
    template <int NR>
    static void pack_b_transposed(int64_t kc, int cols, const T* src, int64_t cs, T* dst) {
        for (int j0 = 0; j0 < NR; j0 += 16) {
            const int rows = cols - j0 < 0 ? 0 : (cols - j0 > 16 ? 16 : cols - j0);
            for (int64_t k0 = 0; k0 < kc; k0 += 16) {
                const int kb = kc - k0 < 16 ? static_cast<int>(kc - k0) : 16;
                const Mask km = mask(kb);
                Reg r[16];
                for (int i = 0; i < 16; ++i) {
                    r[i] = i < rows ? _mm512_maskz_loadu_ps(km, src + (j0 + i) * cs + k0) : zero();
                }
                transpose16(r);
                for (int q = 0; q < kb; ++q) _mm512_storeu_ps(dst + (k0 + q) * NR + j0, r[q]);
            }
        }
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
    static T reduce_add(Reg x) { return _mm512_reduce_add_pd(x); }
    static Mask mask(int n) { return n >= W ? Mask(0xFF) : Mask((1u << n) - 1u); }

    // In-register transpose of 8 rows of 8 doubles (as transpose16 above:
    // t[2g + q], lane L, holds rows 2g, 2g+1 at column 2L + q).
    static void transpose8(Reg r[8]) {
        Reg t[8];
        for (int i = 0; i < 4; ++i) {
            t[2 * i] = _mm512_unpacklo_pd(r[2 * i], r[2 * i + 1]);
            t[2 * i + 1] = _mm512_unpackhi_pd(r[2 * i], r[2 * i + 1]);
        }
        for (int q = 0; q < 2; ++q) {
            const Reg v = _mm512_shuffle_f64x2(t[q], t[2 + q], 0x44);
            const Reg v2 = _mm512_shuffle_f64x2(t[q], t[2 + q], 0xEE);
            const Reg w = _mm512_shuffle_f64x2(t[4 + q], t[6 + q], 0x44);
            const Reg w2 = _mm512_shuffle_f64x2(t[4 + q], t[6 + q], 0xEE);
            r[q] = _mm512_shuffle_f64x2(v, w, 0x88);
            r[2 + q] = _mm512_shuffle_f64x2(v, w, 0xDD);
            r[4 + q] = _mm512_shuffle_f64x2(v2, w2, 0x88);
            r[6 + q] = _mm512_shuffle_f64x2(v2, w2, 0xDD);
        }
    }

    template <int NR>
    static void pack_b_transposed(int64_t kc, int cols, const T* src, int64_t cs, T* dst) {
        for (int j0 = 0; j0 < NR; j0 += 8) {
            const int rows = cols - j0 < 0 ? 0 : (cols - j0 > 8 ? 8 : cols - j0);
            for (int64_t k0 = 0; k0 < kc; k0 += 8) {
                const int kb = kc - k0 < 8 ? static_cast<int>(kc - k0) : 8;
                const Mask km = mask(kb);
                Reg r[8];
                for (int i = 0; i < 8; ++i) {
                    r[i] = i < rows ? _mm512_maskz_loadu_pd(km, src + (j0 + i) * cs + k0) : zero();
                }
                transpose8(r);
                for (int q = 0; q < kb; ++q) _mm512_storeu_pd(dst + (k0 + q) * NR + j0, r[q]);
            }
        }
    }
};

using KernelF32 = SimdKernel<VecF32, 6, 64>;
using KernelF64 = SimdKernel<VecF64, 6, 32>;
// The tall tile, 8 rows x 3 vectors (24 accumulators again), for prepacked
// products of few rows: a batch of 32 is 4 full row tiles, where 6 x 4 needs
// a sixth tile of 2 rows that streams all of B for a third of the work (on
// Zen 4, 32 x 2048 x 512 from B in place: m = 30 runs at 113 GFLOP/s, m = 32
// at 98). gemm_prepacked picks it by the rows of C (see gemm_prepacked.cpp).
using KernelTallF32 = SimdKernel<VecF32, 8, 48>;
using KernelTallF64 = SimdKernel<VecF64, 8, 24>;

template <typename T>
struct KernelFor;
template <>
struct KernelFor<float> {
    using type = KernelF32;
    using tall = KernelTallF32;
};
template <>
struct KernelFor<double> {
    using type = KernelF64;
    using tall = KernelTallF64;
};

}  // namespace

static volatile float fma_probe_sink = 0.0f;

// ---------------------------------------------------------------- FMA probe
// One chain x = x * a + b (each FMA waits for the last), or 12 independent
// ones (as many as keep both FMA pipes of any current core busy).
double fma_seconds_avx512(int64_t iterations, bool dependent) {
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    __m512 x[12];
    for (int j = 0; j < 12; ++j) x[j] = _mm512_set1_ps(0.5f + 0.01f * static_cast<float>(j));
    const auto t0 = std::chrono::steady_clock::now();
    if (dependent) {
        for (int64_t i = 0; i < iterations; ++i) x[0] = _mm512_fmadd_ps(x[0], a, b);
    } else {
        for (int64_t i = 0; i < iterations; ++i) {
            for (int j = 0; j < 12; ++j) x[j] = _mm512_fmadd_ps(x[j], a, b);
        }
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    __m512 sum = x[0];
    for (int j = 1; j < 12; ++j) sum = _mm512_add_ps(sum, x[j]);
    alignas(64) float out[16];
    _mm512_store_ps(out, sum);
    fma_probe_sink = out[0];  // keeps the chains from being optimized away
    return seconds;
}

template <typename T>
TileShape tile_shape_avx512() {
    using K = typename KernelFor<T>::type;
    return TileShape{K::MR, K::NR};
}

template <typename T>
void run_avx512(const Problem<T>& p, const Plan& plan, T* ws) {
    Driver<typename KernelFor<T>::type>::run(p, plan, ws);
}

template <typename T>
TileShape tile_shape_tall_avx512() {
    using K = typename KernelFor<T>::tall;
    return TileShape{K::MR, K::NR};
}

template <typename T>
void pack_b_whole_avx512(TileShape shape, int64_t k, int64_t n, const T* b, int64_t rs_b,
                         int64_t cs_b, T* out) {
    if (shape.mr == KernelFor<T>::tall::MR) {
        Driver<typename KernelFor<T>::tall>::pack_b_whole(k, n, b, rs_b, cs_b, out);
    } else {
        Driver<typename KernelFor<T>::type>::pack_b_whole(k, n, b, rs_b, cs_b, out);
    }
}

template <typename T>
void run_prepacked_avx512(TileShape shape, const Problem<T>& p, const T* packed, int threads) {
    if (shape.mr == KernelFor<T>::tall::MR) {
        Driver<typename KernelFor<T>::tall>::run_prepacked(p, packed, threads);
    } else {
        Driver<typename KernelFor<T>::type>::run_prepacked(p, packed, threads);
    }
}

template TileShape tile_shape_avx512<float>();
template TileShape tile_shape_avx512<double>();
template void run_avx512<float>(const Problem<float>&, const Plan&, float*);
template void run_avx512<double>(const Problem<double>&, const Plan&, double*);
template TileShape tile_shape_tall_avx512<float>();
template TileShape tile_shape_tall_avx512<double>();
template void pack_b_whole_avx512<float>(TileShape, int64_t, int64_t, const float*, int64_t,
                                         int64_t, float*);
template void pack_b_whole_avx512<double>(TileShape, int64_t, int64_t, const double*, int64_t,
                                          int64_t, double*);
template void run_prepacked_avx512<float>(TileShape, const Problem<float>&, const float*, int);
template void run_prepacked_avx512<double>(TileShape, const Problem<double>&, const double*,
                                           int);

}  // namespace gemm_detail
}  // namespace nnforge

#endif  // __AVX512F__
