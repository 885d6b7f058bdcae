// The CPU matrix product (csrc/cpu/gemm/): every matmul in nnforge runs here.
//
//   C = act(alpha * A B + beta * C + bias)        A: m x k,  B: k x n,  C: m x n
//
// for float and double. Each matrix is a strided view: element (i, j) of A is
// a[i * rs_a + j * cs_a] (strides in elements, any sign), so a transposed
// operand (op(A) = A^T) is the same memory with rs and cs swapped, and a
// sliced one needs no copy: only the packing step reads the original layout.
// bias (optional) is added to every row (bias[j * bias_stride] for column j);
// act is applied last. beta == 0 means C is only written (it may hold NaN).
//
// Batched: `batch` products, the operands of product p at a + p * bs_a,
// b + p * bs_b, c + p * bs_c (bs_a or bs_b 0 broadcasts one matrix to all).
//
// How it runs (gemm.cpp): GotoBLAS/BLIS blocking. A is packed in blocks of
// MC x KC into micro-panels of MR rows, B in blocks of KC x NC into
// micro-panels of NR columns, and a register-blocked MR x NR micro-kernel
// (AVX-512, AVX2+FMA or portable C++, picked by best_isa()) multiplies one
// A micro-panel by one B micro-panel. Small or skinny products read B in
// place instead of packing it. Threads split the rows or the columns of C
// into independent pieces; each element of C is computed by the same sequence
// of operations whatever the thread count, so results do not depend on it.
//
// Preconditions (checked by the callers, e.g. bindings/gemm.cpp): the views
// are in bounds, C does not overlap A, B or (within a batch) itself.
#pragma once

#include <cstdint>

#include "common/cpu_features.h"

namespace nnforge {

enum class GemmActivation { none, relu, gelu_tanh };

// Which algorithm computes the product. `automatic` picks by shape and
// layout; the others exist so tests and benchmarks can run each one:
//   packed  A and B packed (any layout, the large-product path)
//   direct  B read in place (needs B rows contiguous, else packed runs)
//   dot     dot products of A rows and B columns (needs B columns contiguous,
//           i.e. B = W^T with W row-major, else packed runs)
//   prepacked  B packed whole, then gemm_prepacked (below; for tests of it)
enum class GemmPath { automatic, direct, packed, dot, prepacked };

template <typename T>
struct GemmArgs {
    int64_t m = 0, n = 0, k = 0;
    T alpha = T(1);
    const T* a = nullptr;
    int64_t rs_a = 0, cs_a = 1;
    const T* b = nullptr;
    int64_t rs_b = 0, cs_b = 1;
    T beta = T(0);
    T* c = nullptr;
    int64_t rs_c = 0, cs_c = 1;
    const T* bias = nullptr;  // length n, or null
    int64_t bias_stride = 1;
    GemmActivation act = GemmActivation::none;
    int64_t batch = 1;
    int64_t bs_a = 0, bs_b = 0, bs_c = 0;
};

struct GemmOptions {
    bool force_isa = false;  // use `isa` instead of best_isa()
    Isa isa = Isa::scalar;
    GemmPath path = GemmPath::automatic;
    int threads = 0;  // 0: get_num_threads()
    // Block sizes, 0: from the cache sizes (for tuning; rounded to the tile).
    int64_t kc = 0, mc = 0, nc = 0;
    // Prepacked B (gemm_pack_layout): the micro-tile's rows, 0 picks by m (for
    // tests; a value the ISA has no tile for takes its standard tile).
    int tile_rows = 0;
};

// Runs the product. Throws std::invalid_argument for negative sizes,
// std::runtime_error when a forced ISA is not available, std::bad_alloc when
// the packing buffers cannot be allocated.
template <typename T>
void gemm(const GemmArgs<T>& args, const GemmOptions& options = GemmOptions{});

// BLAS-style form for C++ callers (conv, rnn, attention): row-major matrices
// with leading dimensions, op(X) = X or X^T.
//   C (m x n, ldc) = alpha * op(A) (m x k) * op(B) (k x n) + beta * C
template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
          int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc);

// B packed once for many products with the same right operand (a recurrent
// layer's W_hh, used at every time step): the packing then costs nothing per
// product, and the micro-tile is chosen for the rows of those products (on
// AVX-512 a tall 8-row tile when they are a multiple of 8, e.g. a batch of 32).
//   PackedB layout = gemm_pack_layout<T>(m, k, n)   m: rows of the products
//   std::vector<T> buf(layout.size);  gemm_pack_b(layout, b, rs_b, cs_b, buf.data());
//   gemm_prepacked(args, layout, buf.data())   as gemm(args), B from buf
// Each element of C is a full-K sum in order (one tile), whatever the thread
// count. The layout is opaque: only gemm_pack_b writes it, for this process.
struct PackedLayout {
    Isa isa = Isa::scalar;
    int mr = 0, nr = 0;  // the micro-tile
    int64_t k = 0, n = 0;
    int64_t size = 0;  // elements of the packed buffer
};

// options: force_isa / isa as for gemm, tile_rows (0: by m) picks the tile.
template <typename T>
PackedLayout gemm_pack_layout(int64_t m, int64_t k, int64_t n,
                              const GemmOptions& options = GemmOptions{});
// B (k x n): element (p, j) at b[p * rs_b + j * cs_b]; out holds layout.size elements.
template <typename T>
void gemm_pack_b(const PackedLayout& layout, const T* b, int64_t rs_b, int64_t cs_b, T* out);
// As gemm(args) with args.b ignored (args.k, args.n must be the layout's, and
// batch 1); options.threads as for gemm. Throws std::invalid_argument on a
// mismatch.
template <typename T>
void gemm_prepacked(const GemmArgs<T>& args, const PackedLayout& layout, const T* packed,
                    const GemmOptions& options = GemmOptions{});

// What the dispatcher would use for this dtype and ISA: micro-tile and block
// sizes, the detected cache sizes and the path thresholds (for tests, the
// benchmark and `nnforge._C.cpu.gemm_config()`).
struct GemmConfig {
    Isa isa = Isa::scalar;
    int mr = 0, nr = 0;
    int64_t kc = 0, mc = 0, nc = 0;
    int64_t l1 = 0, l2 = 0, l3 = 0;    // bytes, as used (after clamping)
    int64_t direct_max_work = 0;       // m n k at or below which B is read in place
    int64_t direct_max_m = 0;          // or m at or below this (skinny products)
    int64_t dot_max_m = 0;             // m at or below which B = W^T takes the dot form
    int64_t parallel_min_work = 0;     // m n k below which one thread runs
};

template <typename T>
GemmConfig gemm_config(const GemmOptions& options = GemmOptions{});

// Measures this core's float FMA speed with `isa`'s widest vectors, for the
// benchmark's peak: `dependent_ns`, the time of one FMA in a chain where each
// waits for the last (its latency: 4 cycles on recent AMD and Intel cores, so
// the clock is 4 / dependent_ns GHz), and `per_ns`, FMAs per nanosecond over
// 12 independent chains (throughput). `lanes` floats per FMA.
struct FmaProbe {
    int lanes = 1;
    double dependent_ns = 0.0;
    double per_ns = 0.0;
};
FmaProbe fma_probe(Isa isa, int64_t iterations);

}  // namespace nnforge
