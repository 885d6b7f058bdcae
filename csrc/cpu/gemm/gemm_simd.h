// The register-blocked micro-kernel written once over a small vector
// interface (V: load, masked load/store, broadcast, fma), instantiated by
// gemm_avx2.cpp (8 floats / 4 doubles per vector) and gemm_avx512.cpp (16 / 8).
//
// A tile of C, ROWS x (NVEC * W), lives in ROWS * NVEC vector registers for
// the whole K loop. Per step k: NVEC vector loads from the B micro-panel (row
// k), then for each row i one broadcast of A[i, k] and NVEC fused multiply-adds
//     acc[i][v] += A[i, k] * B[k, v*W : (v+1)*W]
// After the loop: C = alpha * acc + beta * C (C not read when beta == 0),
// stored with a mask on the last vector, so columns past ncols are never touched.
//
// dot_tile is the dot-product form for B stored as B^T (rows of W contiguous
// in k) and few rows of A, where packing W would cost as much as the product:
//     acc[i][j] += A[i, k:k+W] * W[j, k:k+W]      (W lanes of partial sums)
// then one horizontal sum per (i, j).
#pragma once

#include <cstdint>

#include "cpu/gemm/gemm_driver.h"

namespace nnforge {
namespace gemm_detail {
namespace {

template <class V, int MR_, int NR_>
struct SimdKernel {
    using T = typename V::T;
    using Reg = typename V::Reg;
    using Mask = typename V::Mask;
    static constexpr int MR = MR_;
    static constexpr int NR = NR_;
    static constexpr int W = V::W;
    // dot_tile: up to DOT_ROWS rows of A by DOT_JB rows of W, ROWS * JB
    // accumulators (16 of 32 zmm, 8 of 16 ymm).
    static constexpr int DOT_ROWS = 4;
    static constexpr int DOT_JB = W * sizeof(T) >= 64 ? 4 : 2;

    // Packing of a B micro-panel from columns contiguous in k (see gemm_driver.h).
    static void pack_b_transposed(int64_t kc, int cols, const T* src, int64_t cs, T* dst) {
        V::template pack_b_transposed<NR>(kc, cols, src, cs, dst);
    }

    template <int ROWS, int NVEC, bool MASKB, int AL>
    [[gnu::always_inline]] static inline void tile(int64_t kc, const T* a, int64_t lda,
                                                   const T* b, int64_t ldb, T* c, int64_t ldc,
                                                   int ncols, T alpha, T beta) {
        const int64_t a_is = ALayout<AL, MR>::row_step(lda);
        const int64_t a_ks = ALayout<AL, MR>::k_step(lda);
        Reg acc[ROWS][NVEC];
#pragma GCC unroll 32
        for (int i = 0; i < ROWS; ++i) {
#pragma GCC unroll 8
            for (int v = 0; v < NVEC; ++v) acc[i][v] = V::zero();
        }
        const Mask last = V::mask(ncols - (NVEC - 1) * W);
        for (int64_t k = 0; k < kc; ++k) {
            Reg bv[NVEC];
#pragma GCC unroll 8
            for (int v = 0; v < NVEC; ++v) {
                bv[v] = (MASKB && v == NVEC - 1) ? V::load(b + v * W, last) : V::load(b + v * W);
            }
#pragma GCC unroll 32
            for (int i = 0; i < ROWS; ++i) {
                const Reg ai = V::set1(a[i * a_is]);
#pragma GCC unroll 8
                for (int v = 0; v < NVEC; ++v) acc[i][v] = V::fma(ai, bv[v], acc[i][v]);
            }
            a += a_ks;
            b += ldb;
        }
        const Reg va = V::set1(alpha);
        if (beta == T(0)) {
#pragma GCC unroll 32
            for (int i = 0; i < ROWS; ++i) {
                T* ci = c + i * ldc;
#pragma GCC unroll 8
                for (int v = 0; v < NVEC - 1; ++v) V::store(ci + v * W, V::mul(acc[i][v], va));
                V::store(ci + (NVEC - 1) * W, V::mul(acc[i][NVEC - 1], va), last);
            }
        } else {
            const Reg vb = V::set1(beta);
#pragma GCC unroll 32
            for (int i = 0; i < ROWS; ++i) {
                T* ci = c + i * ldc;
#pragma GCC unroll 8
                for (int v = 0; v < NVEC - 1; ++v) {
                    V::store(ci + v * W, V::fma(vb, V::load(ci + v * W), V::mul(acc[i][v], va)));
                }
                T* cl = ci + (NVEC - 1) * W;
                V::store(cl, V::fma(vb, V::load(cl, last), V::mul(acc[i][NVEC - 1], va)), last);
            }
        }
    }

    // The full NR-column tiles of one row tile across n columns (the caller
    // does the last partial tile): one call, the kernel inlined in the loop.
    template <int ROWS, int AL>
    static void sweep(int64_t kc, const T* a, int64_t lda, const T* b, int64_t ldb, T* c,
                      int64_t ldc, int64_t n, T alpha, T beta) {
        for (int64_t j = 0; j + NR <= n; j += NR) {
            tile<ROWS, NR / W, false, AL>(kc, a, lda, b + j, ldb, c + j, ldc, NR, alpha, beta);
        }
    }

    // C(i, j) = alpha * sum_k A(i, k) Bt(j, k) + beta * C(i, j) for i < ROWS and
    // j < jb (<= JB), A row i at a + i * lda and Bt row j at bt + j * ldbt, both
    // contiguous in k; C(i, j) at c[i * rs_c + j * cs_c], not read when beta == 0.
    template <int ROWS, int JB>
    static void dot_tile(int64_t k, const T* a, int64_t lda, const T* bt, int64_t ldbt, int jb,
                         T* c, int64_t rs_c, int64_t cs_c, T alpha, T beta) {
        Reg acc[ROWS][JB];
#pragma GCC unroll 32
        for (int i = 0; i < ROWS; ++i) {
#pragma GCC unroll 8
            for (int j = 0; j < JB; ++j) acc[i][j] = V::zero();
        }
        const T* brow[JB];
#pragma GCC unroll 8
        for (int j = 0; j < JB; ++j) brow[j] = bt + (j < jb ? j : 0) * ldbt;  // rows past jb: row 0
        int64_t p = 0;
        for (; p + W <= k; p += W) {
            Reg bv[JB];
#pragma GCC unroll 8
            for (int j = 0; j < JB; ++j) bv[j] = V::load(brow[j] + p);
#pragma GCC unroll 8
            for (int i = 0; i < ROWS; ++i) {
                const Reg av = V::load(a + i * lda + p);
#pragma GCC unroll 8
                for (int j = 0; j < JB; ++j) acc[i][j] = V::fma(av, bv[j], acc[i][j]);
            }
        }
        if (p < k) {
            const Mask m = V::mask(static_cast<int>(k - p));
            Reg bv[JB];
#pragma GCC unroll 8
            for (int j = 0; j < JB; ++j) bv[j] = V::load(brow[j] + p, m);
#pragma GCC unroll 8
            for (int i = 0; i < ROWS; ++i) {
                const Reg av = V::load(a + i * lda + p, m);
#pragma GCC unroll 8
                for (int j = 0; j < JB; ++j) acc[i][j] = V::fma(av, bv[j], acc[i][j]);
            }
        }
        for (int i = 0; i < ROWS; ++i) {
            for (int j = 0; j < jb; ++j) {
                T& cij = c[i * rs_c + j * cs_c];
                const T v = alpha * V::reduce_add(acc[i][j]);
                cij = beta == T(0) ? v : v + beta * cij;
            }
        }
    }
};

}  // namespace
}  // namespace gemm_detail
}  // namespace nnforge
