// What gemm.cpp (the portable dispatcher) and the per-ISA builds of the
// blocked driver (gemm_scalar.cpp, gemm_avx2.cpp, gemm_avx512.cpp) share.
#pragma once

#include <cstdint>

#include "cpu/gemm/gemm.h"

namespace nnforge {
namespace gemm_detail {

// One product in the form the drivers take: C has unit column stride or is
// written through a temporary tile; the bias is indexed by row and column
// (bias[i * bias_rs + j * bias_cs]) so a transposed problem keeps its bias.
template <typename T>
struct Problem {
    int64_t m = 0, n = 0, k = 0;
    T alpha = T(1), beta = T(0);
    const T* a = nullptr;
    int64_t rs_a = 0, cs_a = 0;
    const T* b = nullptr;
    int64_t rs_b = 0, cs_b = 0;
    T* c = nullptr;
    int64_t rs_c = 0, cs_c = 0;
    const T* bias = nullptr;
    int64_t bias_rs = 0, bias_cs = 0;
    GemmActivation act = GemmActivation::none;
    int64_t batch = 1;
    int64_t bs_a = 0, bs_b = 0, bs_c = 0;
};

// How to run it, decided by the dispatcher from the whole problem's shape,
// never from the thread count (so every thread count gives the same bits).
struct Plan {
    int64_t kc = 0, mc = 0, nc = 0;  // block sizes (mc multiple of MR, nc of NR)
    bool pack_b = true;              // false: the kernels read B in place (cs_b == 1)
    bool pack_a = true;              // with pack_b false: false reads A in place too
                                     // (when rs_a or cs_a is 1)
    bool rows_outer = false;         // direct path: each row tile sweeps all columns
                                     // (skinny m, small kc: B streams row by row)
    bool dot = false;                // dot-product form: B^T rows times A rows, full K
    int threads = 1;                 // threads for the whole call
    bool batch_parallel = false;     // threads take whole products of the batch
    int64_t pieces = 1;              // else each product is cut into this many pieces
    bool shared_b = false;           // pieces split the rows and share one packing of
                                     // all of B (ws_shared_b elements after the
                                     // per-thread areas)
    int64_t ws_shared_b = 0;
    int64_t ws_a = 0, ws_b = 0;      // workspace elements per thread for packed A and B
};

// Micro-tile of one ISA build for type T.
struct TileShape {
    int mr = 0, nr = 0;
};

// Each ISA build defines these (gemm_<isa>.cpp). run() computes the whole
// batch; ws holds plan.threads * (ws_a + ws_b) + ws_shared_b elements,
// 64-byte aligned.
// The FMA probe of each build (gemm_<isa>.cpp): seconds for `iterations`
// steps of one dependent chain (dependent) or of 12 independent chains.
double fma_seconds_scalar(int64_t iterations, bool dependent);

template <typename T>
TileShape tile_shape_scalar();
template <typename T>
void run_scalar(const Problem<T>& p, const Plan& plan, T* ws);

// Prepacked B (gemm_prepacked): each build packs B for, and runs products
// with, one of its tiles: `shape` is its standard tile or, where the build has
// one (AVX-512), its tall tile (tile_shape_tall_*: more rows, fewer columns, for
// products of a few dozen rows such as a recurrent layer's batch of 32).
template <typename T>
void pack_b_whole_scalar(TileShape shape, int64_t k, int64_t n, const T* b, int64_t rs_b,
                         int64_t cs_b, T* out);
template <typename T>
void run_prepacked_scalar(TileShape shape, const Problem<T>& p, const T* packed, int threads);

#if defined(__x86_64__) || defined(_M_X64)
double fma_seconds_avx2(int64_t iterations, bool dependent);
double fma_seconds_avx512(int64_t iterations, bool dependent);
template <typename T>
TileShape tile_shape_avx2();
template <typename T>
void run_avx2(const Problem<T>& p, const Plan& plan, T* ws);
template <typename T>
TileShape tile_shape_avx512();
template <typename T>
void run_avx512(const Problem<T>& p, const Plan& plan, T* ws);
template <typename T>
void pack_b_whole_avx2(TileShape shape, int64_t k, int64_t n, const T* b, int64_t rs_b,
                       int64_t cs_b, T* out);
template <typename T>
void run_prepacked_avx2(TileShape shape, const Problem<T>& p, const T* packed, int threads);
template <typename T>
TileShape tile_shape_tall_avx512();
template <typename T>
void pack_b_whole_avx512(TileShape shape, int64_t k, int64_t n, const T* b, int64_t rs_b,
                         int64_t cs_b, T* out);
template <typename T>
void run_prepacked_avx512(TileShape shape, const Problem<T>& p, const T* packed, int threads);
#endif

}  // namespace gemm_detail
}  // namespace nnforge
