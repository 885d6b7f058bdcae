// The GEMM's portable build: the same blocked driver (gemm_driver.h) around
// a micro-kernel of plain loops, compiled with no ISA flags so it runs on any
// CPU (x86-64 baseline, arm64, ...). The compiler vectorizes the inner loops
// for the baseline (SSE2 on x86-64, NEON on arm64).
//
// Tile 4 x 8 floats or 4 x 4 doubles: 8 SSE2 registers of accumulators,
// within the 16 a baseline x86-64 has (arm64 has 32).
#include <chrono>

#include "cpu/gemm/gemm_driver.h"

namespace nnforge {
namespace gemm_detail {
namespace {

template <typename T_, int MR_, int NR_>
struct ScalarKernel {
    using T = T_;
    static constexpr int MR = MR_;
    static constexpr int NR = NR_;
    static constexpr int W = NR_;  // one "vector" per row: NVEC is always 1
    static constexpr int DOT_ROWS = 4;
    static constexpr int DOT_JB = 4;

    // acc[i][j] += sum over kb steps of a[k * MR + i] * b[k * ldb + j] (A packed).
    template <int ROWS, bool MASKB>
    static void accumulate(T (&acc)[ROWS][NR], int64_t kb, const T* a, const T* b, int64_t ldb,
                           int ncols) {
        for (int64_t k = 0; k < kb; ++k) {
            T bk[NR];
            if (MASKB) {
                for (int j = 0; j < NR; ++j) bk[j] = T(0);
                for (int j = 0; j < ncols; ++j) bk[j] = b[j];
            } else {
                for (int j = 0; j < NR; ++j) bk[j] = b[j];
            }
            for (int i = 0; i < ROWS; ++i) {
                const T ai = a[i];
                for (int j = 0; j < NR; ++j) acc[i][j] += ai * bk[j];
            }
            a += MR;
            b += ldb;
        }
    }

    template <int ROWS, int NVEC, bool MASKB, int AL>
    static void tile(int64_t kc, const T* a, int64_t lda, const T* b, int64_t ldb, T* c,
                     int64_t ldc, int ncols, T alpha, T beta) {
        static_assert(NVEC == 1, "the portable kernel has one vector per row");
        T acc[ROWS][NR] = {};
        if (AL == kPacked) {
            accumulate<ROWS, MASKB>(acc, kc, a, b, ldb, ncols);
        } else {
            // A read in place: copied to a packed chunk first. Indexing A by a
            // runtime row stride inside the loop makes compilers vectorize
            // along k instead of along the row of B (4x slower here).
            const int64_t a_is = ALayout<AL, MR>::row_step(lda);
            const int64_t a_ks = ALayout<AL, MR>::k_step(lda);
            constexpr int64_t kChunk = 128;
            T buf[kChunk * MR];
            for (int64_t k0 = 0; k0 < kc; k0 += kChunk) {
                const int64_t kb = kc - k0 < kChunk ? kc - k0 : kChunk;
                for (int64_t k = 0; k < kb; ++k) {
                    for (int i = 0; i < ROWS; ++i) buf[k * MR + i] = a[i * a_is + (k0 + k) * a_ks];
                }
                accumulate<ROWS, MASKB>(acc, kb, buf, b + k0 * ldb, ldb, ncols);
            }
        }
        for (int i = 0; i < ROWS; ++i) {
            T* ci = c + i * ldc;
            if (beta == T(0)) {
                for (int j = 0; j < ncols; ++j) ci[j] = alpha * acc[i][j];
            } else {
                for (int j = 0; j < ncols; ++j) ci[j] = alpha * acc[i][j] + beta * ci[j];
            }
        }
    }

    template <int ROWS, int AL>
    static void sweep(int64_t kc, const T* a, int64_t lda, const T* b, int64_t ldb, T* c,
                      int64_t ldc, int64_t n, T alpha, T beta) {
        for (int64_t j = 0; j + NR <= n; j += NR) {
            tile<ROWS, 1, false, AL>(kc, a, lda, b + j, ldb, c + j, ldc, NR, alpha, beta);
        }
    }

    // The dot-product form (see gemm_simd.h): L lanes of partial sums per
    // (i, j), k stepping by L, so the inner loop vectorizes without reordering
    // any sum; the lanes are added in order at the end.
    template <int ROWS, int JB>
    static void dot_tile(int64_t k, const T* a, int64_t lda, const T* bt, int64_t ldbt, int jb,
                         T* c, int64_t rs_c, int64_t cs_c, T alpha, T beta) {
        constexpr int L = 16 / sizeof(T) * 2;
        T acc[ROWS][JB][L] = {};
        const T* brow[JB];
        for (int j = 0; j < JB; ++j) brow[j] = bt + (j < jb ? j : 0) * ldbt;
        int64_t p = 0;
        for (; p + L <= k; p += L) {
            for (int i = 0; i < ROWS; ++i) {
                const T* ai = a + i * lda + p;
                for (int j = 0; j < JB; ++j) {
                    const T* bj = brow[j] + p;
                    for (int l = 0; l < L; ++l) acc[i][j][l] += ai[l] * bj[l];
                }
            }
        }
        for (int i = 0; i < ROWS; ++i) {
            for (int j = 0; j < JB; ++j) {
                for (int64_t q = p; q < k; ++q) acc[i][j][q - p] += a[i * lda + q] * brow[j][q];
            }
        }
        for (int i = 0; i < ROWS; ++i) {
            for (int j = 0; j < jb; ++j) {
                T sum = T(0);
                for (int l = 0; l < L; ++l) sum += acc[i][j][l];
                T& cij = c[i * rs_c + j * cs_c];
                cij = beta == T(0) ? alpha * sum : alpha * sum + beta * cij;
            }
        }
    }

    static void pack_b_transposed(int64_t kc, int cols, const T* src, int64_t cs, T* dst) {
        pack_b_transposed_generic<T, NR>(kc, cols, src, cs, dst);
    }
};

template <typename T>
struct KernelFor;
template <>
struct KernelFor<float> {
    using type = ScalarKernel<float, 4, 8>;
};
template <>
struct KernelFor<double> {
    using type = ScalarKernel<double, 4, 4>;
};

}  // namespace

static volatile float fma_probe_sink = 0.0f;

// The portable build's probe: scalar multiply-adds (no FMA instruction is
// assumed), one chain or 12 independent ones.
double fma_seconds_scalar(int64_t iterations, bool dependent) {
    float x[12];
    for (int j = 0; j < 12; ++j) x[j] = 0.5f + 0.01f * static_cast<float>(j);
    const float a = 0.999999f, b = 1e-7f;
    const auto t0 = std::chrono::steady_clock::now();
    if (dependent) {
        for (int64_t i = 0; i < iterations; ++i) x[0] = x[0] * a + b;
    } else {
        for (int64_t i = 0; i < iterations; ++i) {
            for (int j = 0; j < 12; ++j) x[j] = x[j] * a + b;
        }
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    float sum = 0.0f;
    for (int j = 0; j < 12; ++j) sum += x[j];
    fma_probe_sink = sum;
    return seconds;
}

template <typename T>
TileShape tile_shape_scalar() {
    using K = typename KernelFor<T>::type;
    return TileShape{K::MR, K::NR};
}

template <typename T>
void run_scalar(const Problem<T>& p, const Plan& plan, T* ws) {
    Driver<typename KernelFor<T>::type>::run(p, plan, ws);
}

// Prepacked B: this build has one tile (`shape` is it).
template <typename T>
void pack_b_whole_scalar(TileShape, int64_t k, int64_t n, const T* b, int64_t rs_b, int64_t cs_b,
                      T* out) {
    Driver<typename KernelFor<T>::type>::pack_b_whole(k, n, b, rs_b, cs_b, out);
}

template <typename T>
void run_prepacked_scalar(TileShape, const Problem<T>& p, const T* packed, int threads) {
    Driver<typename KernelFor<T>::type>::run_prepacked(p, packed, threads);
}

template TileShape tile_shape_scalar<float>();
template TileShape tile_shape_scalar<double>();
template void run_scalar<float>(const Problem<float>&, const Plan&, float*);
template void run_scalar<double>(const Problem<double>&, const Plan&, double*);
template void pack_b_whole_scalar<float>(TileShape, int64_t, int64_t, const float*, int64_t,
                                      int64_t, float*);
template void pack_b_whole_scalar<double>(TileShape, int64_t, int64_t, const double*, int64_t,
                                       int64_t, double*);
template void run_prepacked_scalar<float>(TileShape, const Problem<float>&, const float*, int);
template void run_prepacked_scalar<double>(TileShape, const Problem<double>&, const double*, int);

}  // namespace gemm_detail
}  // namespace nnforge
