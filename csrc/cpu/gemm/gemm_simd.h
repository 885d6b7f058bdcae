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

    // Packing of a B micro-panel from columns contiguous in k (see gemm_driver.h).
    static void pack_b_transposed(int64_t kc, int cols, const T* src, int64_t cs, T* dst) {
        V::template pack_b_transposed<NR>(kc, cols, src, cs, dst);
    }

    template <int ROWS, int NVEC, bool MASKB, int AL>
    static void tile(int64_t kc, const T* a, int64_t lda, const T* b, int64_t ldb, T* c,
                     int64_t ldc, int ncols, T alpha, T beta) {
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
};

}  // namespace
}  // namespace gemm_detail
}  // namespace nnforge
