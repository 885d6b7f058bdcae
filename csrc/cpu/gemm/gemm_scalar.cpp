// The GEMM's portable build: the same blocked driver (gemm_driver.h) around
// a micro-kernel of plain loops, compiled with no ISA flags so it runs on any
// CPU (x86-64 baseline, arm64, ...). The compiler vectorizes the inner loops
// for the baseline (SSE2 on x86-64, NEON on arm64).
//
// Tile 4 x 8 floats or 4 x 4 doubles: 8 SSE2 registers of accumulators,
// within the 16 a baseline x86-64 has (arm64 has 32).
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

    template <int ROWS, int NVEC, bool MASKB, int AL>
    static void tile(int64_t kc, const T* a, int64_t lda, const T* b, int64_t ldb, T* c,
                     int64_t ldc, int ncols, T alpha, T beta) {
        const int64_t a_is = ALayout<AL, MR>::row_step(lda);
        const int64_t a_ks = ALayout<AL, MR>::k_step(lda);
        static_assert(NVEC == 1, "the portable kernel has one vector per row");
        T acc[ROWS][NR] = {};
        for (int64_t k = 0; k < kc; ++k) {
            T bk[NR];
            if (MASKB) {
                for (int j = 0; j < NR; ++j) bk[j] = T(0);
                for (int j = 0; j < ncols; ++j) bk[j] = b[j];
            } else {
                for (int j = 0; j < NR; ++j) bk[j] = b[j];
            }
            for (int i = 0; i < ROWS; ++i) {
                const T ai = a[i * a_is];
                for (int j = 0; j < NR; ++j) acc[i][j] += ai * bk[j];
            }
            a += a_ks;
            b += ldb;
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

template <typename T>
TileShape tile_shape_scalar() {
    using K = typename KernelFor<T>::type;
    return TileShape{K::MR, K::NR};
}

template <typename T>
void run_scalar(const Problem<T>& p, const Plan& plan, T* ws) {
    Driver<typename KernelFor<T>::type>::run(p, plan, ws);
}

template TileShape tile_shape_scalar<float>();
template TileShape tile_shape_scalar<double>();
template void run_scalar<float>(const Problem<float>&, const Plan&, float*);
template void run_scalar<double>(const Problem<double>&, const Plan&, double*);

}  // namespace gemm_detail
}  // namespace nnforge
