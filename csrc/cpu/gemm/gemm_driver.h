// The blocked GEMM driver: packing, the loops around the micro-kernel, the
// epilogue and the thread split. Included by gemm_scalar.cpp, gemm_avx2.cpp
// and gemm_avx512.cpp, each with its own micro-kernel and ISA flags.
//
// Everything here has internal linkage (an unnamed namespace) and calls no
// out-of-line std:: templates, so no function compiled with AVX-512 flags can
// be picked by the linker for code that runs on every CPU.
//
// Loops (BLIS's five loops, mirrored for row-major C; K = the micro-kernel,
// MR x NR its tile):
//
//   for i0 in rows of C, step MC                       A block: MC x KC
//     for p0 in K, step KC                             (C += over KC slices)
//       pack A[i0:i0+MC, p0:p0+KC] into micro-panels of MR rows (k-major)
//       for j0 in columns of C, step NC                B block: KC x NC, in L2
//         pack B[p0:p0+KC, j0:j0+NC] into micro-panels of NR columns
//         for ir step MR:  for jr step NR:            A micro-panel stays in L1
//           C[ir:ir+MR, jr:jr+NR] = alpha A~_ir B~_jr + beta' C   (K, kc steps)
//
// Row-major A is not packed: the kernel reads its MR rows in place (they
// stream as well as a packed panel); neither is A^T with close rows.
// beta' is beta for the first KC slice and 1 after it; the bias and the
// activation run on each tile right after its last slice, while it is in L1.
// Direct path (plan.pack_b false, B rows contiguous): B is not packed; the
// kernels read it in place with row stride ldb, loop order jr outer, ir inner
// so one B micro-panel is reused by every row tile while it is in cache.
//
// Edges: A micro-panels are packed for the rows that exist and the kernel
// for `rows` < MR rows reads only those; B micro-panels are zero-padded to
// NR columns (packed) or read with a masked last vector (direct); C is
// written through masked stores. Nothing outside the operands is touched.
//
// Threads: the rows (or, when there are more column tiles, the columns) of C
// are cut into pieces of whole tiles (a few per thread, taken dynamically),
// and a thread runs the serial loops above on each piece it takes, with its
// own packing buffers. The K loop and the kernels are the same for every
// piece, so C is bit-identical for any thread count. A batch of small
// products is shared out whole instead.
#pragma once

#include <cstdint>
#include <cstring>

#include "cpu/gemm/gemm_internal.h"

#if defined(NNFORGE_OPENMP)
#include <omp.h>
#endif

namespace nnforge {
namespace gemm_detail {
namespace {

inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }

// ---------------------------------------------------------------- exp for the GELU epilogue
// exp(x) = 2^n e^r, n = round(x / ln 2), r = x - n ln 2 (Cody-Waite, |r| <= ln2/2),
// e^r by its Taylor polynomial (degree 7 for float: < 1 ulp of truncation;
// 13 for double). Plain arithmetic and bit moves, so the loops around it
// vectorize. The input is clamped where 2^n stays a normal number; NaN passes.
inline float exp_poly(float x) {
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // rint
    const float r = (x - n * 0.693145751953125f) - n * 1.42860682030941723e-6f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const uint32_t bits = (static_cast<uint32_t>(static_cast<int32_t>(n)) + 127u) << 23;
    float scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

inline double exp_poly(double x) {
    x = x < -708.0 ? -708.0 : x;
    x = x > 709.0 ? 709.0 : x;
    const double n = (x * 1.4426950408889634 + 6755399441055744.0) - 6755399441055744.0;
    const double r = (x - n * 0.6931471803691238) - n * 1.9082149292705877e-10;
    double p = 1.0 / 6227020800.0;  // 1/13!
    const double inv[] = {1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0,
                          1.0 / 362880.0,    1.0 / 40320.0,    1.0 / 5040.0,
                          1.0 / 720.0,       1.0 / 120.0,      1.0 / 24.0,
                          1.0 / 6.0,         0.5,              1.0,
                          1.0};
    for (double c : inv) p = p * r + c;
    const uint64_t bits = (static_cast<uint64_t>(static_cast<int64_t>(n)) + 1023u) << 52;
    double scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

// GELU, tanh form: x/2 (1 + tanh u) = x sigmoid(2u) = x / (1 + exp(-2u)),
// u = sqrt(2/pi) (x + 0.044715 x^3). Exact limits: x for large x, -0 far left.
template <typename T>
inline T gelu_tanh(T x) {
    const T two_u = T(1.5957691216057308) * (x + T(0.044715) * x * x * x);
    return x / (T(1) + exp_poly(-two_u));
}

// ---------------------------------------------------------------- epilogue
// C(i, j) = act(C(i, j) + bias(i, j)) over a rows x cols tile.
template <typename T, GemmActivation Act>
void epilogue_tile(T* c, int64_t rs_c, int64_t cs_c, int rows, int cols, const T* bias,
                   int64_t bias_rs, int64_t bias_cs) {
    for (int i = 0; i < rows; ++i) {
        T* ci = c + i * rs_c;
        const T* bi = bias ? bias + i * bias_rs : nullptr;
        if (cs_c == 1 && (bi == nullptr || bias_cs == 1)) {
            if (bi) {
                for (int j = 0; j < cols; ++j) ci[j] += bi[j];
            }
            if (Act == GemmActivation::relu) {
                for (int j = 0; j < cols; ++j) ci[j] = ci[j] < T(0) ? T(0) : ci[j];  // NaN stays
            } else if (Act == GemmActivation::gelu_tanh) {
                for (int j = 0; j < cols; ++j) ci[j] = gelu_tanh(ci[j]);
            }
            continue;
        }
        for (int j = 0; j < cols; ++j) {
            T v = ci[j * cs_c];
            if (bi) v += bi[j * bias_cs];
            if (Act == GemmActivation::relu) v = v < T(0) ? T(0) : v;
            if (Act == GemmActivation::gelu_tanh) v = gelu_tanh(v);
            ci[j * cs_c] = v;
        }
    }
}

template <typename T>
void epilogue(T* c, int64_t rs_c, int64_t cs_c, int rows, int cols, const T* bias,
              int64_t bias_rs, int64_t bias_cs, GemmActivation act) {
    switch (act) {
        case GemmActivation::none:
            if (bias) {
                epilogue_tile<T, GemmActivation::none>(c, rs_c, cs_c, rows, cols, bias, bias_rs,
                                                       bias_cs);
            }
            return;
        case GemmActivation::relu:
            epilogue_tile<T, GemmActivation::relu>(c, rs_c, cs_c, rows, cols, bias, bias_rs,
                                                   bias_cs);
            return;
        case GemmActivation::gelu_tanh:
            epilogue_tile<T, GemmActivation::gelu_tanh>(c, rs_c, cs_c, rows, cols, bias, bias_rs,
                                                        bias_cs);
            return;
    }
}

// ---------------------------------------------------------------- packing helpers
// B with unit row stride (B = W^T, W row-major): dst[k * NR + j] = src[j * cs + k],
// zero-padded to NR columns. Walks K in bands of 16 so the writes of a band
// stay within a few KiB while each column is read contiguously.
template <typename T, int NR>
void pack_b_transposed_generic(int64_t kc, int cols, const T* src, int64_t cs, T* dst) {
    for (int64_t k0 = 0; k0 < kc; k0 += 16) {
        const int kb = static_cast<int>(imin(16, kc - k0));
        T* d = dst + k0 * NR;
        for (int j = 0; j < cols; ++j) {
            const T* s = src + j * cs + k0;
            for (int kk = 0; kk < kb; ++kk) d[kk * NR + j] = s[kk];
        }
        for (int kk = 0; kk < kb; ++kk) {
            for (int j = cols; j < NR; ++j) d[kk * NR + j] = T(0);
        }
    }
}

// ---------------------------------------------------------------- A layouts
// How a micro-kernel finds A(i, k) of its tile: a[i * row_step + k * k_step].
//   kPacked:  a packed micro-panel, a[k * MR + i]
//   kColumns: A read in place with unit row stride (A^T row-major), a[k * lda + i]
//   kRows:    A read in place with unit column stride (row-major A), a[i * lda + k]
enum : int { kPacked = 0, kColumns = 1, kRows = 2 };

template <int AL, int MR>
struct ALayout {
    static constexpr int64_t row_step(int64_t lda) {
        return AL == kRows ? lda : 1;
    }
    static constexpr int64_t k_step(int64_t lda) {
        return AL == kPacked ? MR : (AL == kColumns ? lda : 1);
    }
};

// ---------------------------------------------------------------- the driver
// K (the micro-kernel) provides: T, MR, NR, W (vector width in elements, NR a
// multiple of W) and
//   template <int ROWS, int NVEC, bool MASKB, int AL>
//   static void tile(int64_t kc, const T* a, int64_t lda, const T* b, int64_t ldb,
//                    T* c, int64_t ldc, int ncols, T alpha, T beta);
// C[0:ROWS, 0:ncols] = alpha * sum_k A(i, k) b[k*ldb + j] + beta * C (C not
// read when beta == 0), A(i, k) found by layout AL (see ALayout), computing
// NVEC vectors of W columns (ncols <= NVEC*W); with MASKB the last vector of
// each B row is loaded with a mask of ncols, else all NVEC*W columns of B must
// be readable. Every element's sum runs over k = 0, 1, ... in order, with one
// fused multiply-add (or multiply and add) per step, whatever ROWS, NVEC, AL.
template <class K>
struct Driver {
    using T = typename K::T;
    static constexpr int MR = K::MR;
    static constexpr int NR = K::NR;
    static constexpr int W = K::W;
    static constexpr int NV = NR / W;
    using TileFn = void (*)(int64_t, const T*, int64_t, const T*, int64_t, T*, int64_t, int, T,
                            T);

    template <int R, int V, int AL>
    static TileFn pick_v(int nvec, bool maskb) {
        if constexpr (V > NV) {
            return nullptr;
        } else {
            if (nvec == V) {
                return maskb ? &K::template tile<R, V, true, AL>
                             : &K::template tile<R, V, false, AL>;
            }
            return pick_v<R, V + 1, AL>(nvec, maskb);
        }
    }

    template <int R, int AL>
    static TileFn pick(int rows, int nvec, bool maskb) {
        if constexpr (R > MR) {
            return nullptr;
        } else {
            if (rows == R) return pick_v<R, 1, AL>(nvec, maskb);
            return pick<R + 1, AL>(rows, nvec, maskb);
        }
    }

    // K::sweep<ROWS, AL>: the full tiles of a row tile across n columns.
    using SweepFn = void (*)(int64_t, const T*, int64_t, const T*, int64_t, T*, int64_t, int64_t,
                             T, T);
    template <int R, int AL>
    static SweepFn pick_sweep(int rows) {
        if constexpr (R > MR) {
            return nullptr;
        } else {
            if (rows == R) return &K::template sweep<R, AL>;
            return pick_sweep<R + 1, AL>(rows);
        }
    }

    // The kernel for a rows x cols tile; direct: B is read in place (mask the
    // last vector unless cols fills it).
    static TileFn tile_fn(int rows, int cols, bool direct, int al) {
        const int nvec = (cols + W - 1) / W;
        const bool maskb = direct && cols % W != 0;
        if (al == kRows) return pick<1, kRows>(rows, nvec, maskb);
        if (al == kColumns) return pick<1, kColumns>(rows, nvec, maskb);
        return pick<1, kPacked>(rows, nvec, maskb);
    }

    // A[0:mc, 0:kc] -> micro-panels of MR rows: out[(i / MR) * MR * kc + k * MR + i % MR].
    // Rows past mc in the last panel are left unset: its kernel never reads them.
    static void pack_a(int64_t mc, int64_t kc, const T* a, int64_t rs, int64_t cs, T* out) {
        for (int64_t i0 = 0; i0 < mc; i0 += MR) {
            const int rows = static_cast<int>(imin(MR, mc - i0));
            T* dst = out + i0 * kc;
            const T* src = a + i0 * rs;
            if (rs == 1 && rows == MR) {  // A^T row-major: MR contiguous values per k
                for (int64_t k = 0; k < kc; ++k) {
                    const T* s = src + k * cs;
                    T* d = dst + k * MR;
                    for (int i = 0; i < MR; ++i) d[i] = s[i];
                }
            } else if (cs == 1) {  // row-major A: each row contiguous in k
                for (int i = 0; i < rows; ++i) {
                    const T* s = src + i * rs;
                    for (int64_t k = 0; k < kc; ++k) dst[k * MR + i] = s[k];
                }
            } else {
                for (int64_t k = 0; k < kc; ++k) {
                    for (int i = 0; i < rows; ++i) dst[k * MR + i] = src[i * rs + k * cs];
                }
            }
        }
    }

    // B[0:kc, 0:nc] -> micro-panels of NR columns: out[(j / NR) * NR * kc + k * NR + j % NR],
    // the last panel zero-padded to NR columns.
    static void pack_b(int64_t kc, int64_t nc, const T* b, int64_t rs, int64_t cs, T* out) {
        for (int64_t j0 = 0; j0 < nc; j0 += NR) {
            const int cols = static_cast<int>(imin(NR, nc - j0));
            T* dst = out + j0 * kc;
            const T* src = b + j0 * cs;
            if (cs == 1) {  // row-major B: NR contiguous values per k
                for (int64_t k = 0; k < kc; ++k) {
                    const T* s = src + k * rs;
                    T* d = dst + k * NR;
                    if (cols == NR) {
                        for (int j = 0; j < NR; ++j) d[j] = s[j];
                    } else {
                        for (int j = 0; j < cols; ++j) d[j] = s[j];
                        for (int j = cols; j < NR; ++j) d[j] = T(0);
                    }
                }
            } else if (rs == 1) {  // B = W^T with W row-major: each column contiguous in k
                K::pack_b_transposed(kc, cols, src, cs, dst);
            } else {
                for (int64_t k = 0; k < kc; ++k) {
                    T* d = dst + k * NR;
                    for (int j = 0; j < cols; ++j) d[j] = src[k * rs + j * cs];
                    for (int j = cols; j < NR; ++j) d[j] = T(0);
                }
            }
        }
    }

    // After the last K slice of a tile: bias and activation.
    static void finish(const Problem<T>& p, int rows, int cols, int64_t i, int64_t j) {
        if (p.bias || p.act != GemmActivation::none) {
            const T* bias = p.bias ? p.bias + i * p.bias_rs + j * p.bias_cs : nullptr;
            epilogue(p.c + i * p.rs_c + j * p.cs_c, p.rs_c, p.cs_c, rows, cols, bias, p.bias_rs,
                     p.bias_cs, p.act);
        }
    }

    // One tile with kernel fn; C with a non-unit column stride goes through a
    // contiguous temporary.
    static void tile(const Problem<T>& p, TileFn fn, int64_t kc, const T* a, int64_t lda,
                     const T* b, int64_t ldb, int rows, int cols, int64_t i, int64_t j, T beta,
                     bool last) {
        T* c = p.c + i * p.rs_c + j * p.cs_c;
        if (p.cs_c == 1) {
            fn(kc, a, lda, b, ldb, c, p.rs_c, cols, p.alpha, beta);
        } else {
            alignas(64) T tmp[MR * NR];
            fn(kc, a, lda, b, ldb, tmp, NR, cols, p.alpha, T(0));
            for (int r = 0; r < rows; ++r) {
                T* cr = c + r * p.rs_c;
                const T* tr = tmp + r * NR;
                if (beta == T(0)) {
                    for (int s = 0; s < cols; ++s) cr[s * p.cs_c] = tr[s];
                } else {
                    for (int s = 0; s < cols; ++s) cr[s * p.cs_c] = tr[s] + beta * cr[s * p.cs_c];
                }
            }
        }
        if (last) finish(p, rows, cols, i, j);
    }

    // Dot-product form (plan.dot): B stored as B^T (rs_b == 1), A rows
    // contiguous in k (copied to abuf when they are not), full K per tile.
    template <int R>
    static void dot_rows(const Problem<T>& p, int rows, const T* a, int64_t lda, int64_t i0) {
        if constexpr (R > K::DOT_ROWS) {
            return;
        } else {
            if (rows != R) return dot_rows<R + 1>(p, rows, a, lda, i0);
            for (int64_t j0 = 0; j0 < p.n; j0 += K::DOT_JB) {
                const int jb = static_cast<int>(imin(K::DOT_JB, p.n - j0));
                K::template dot_tile<R, K::DOT_JB>(p.k, a, lda, p.b + j0 * p.cs_b, p.cs_b, jb,
                                                   p.c + i0 * p.rs_c + j0 * p.cs_c, p.rs_c,
                                                   p.cs_c, p.alpha, p.beta);
                finish(p, R, jb, i0, j0);
            }
        }
    }

    static void dot(const Problem<T>& p, T* abuf) {
        const T* a = p.a;
        int64_t lda = p.rs_a;
        if (p.cs_a != 1) {  // a few rows of A, made contiguous
            for (int64_t i = 0; i < p.m; ++i) {
                for (int64_t q = 0; q < p.k; ++q) abuf[i * p.k + q] = p.a[i * p.rs_a + q * p.cs_a];
            }
            a = abuf;
            lda = p.k;
        }
        for (int64_t i0 = 0; i0 < p.m; i0 += K::DOT_ROWS) {
            const int rows = static_cast<int>(imin(K::DOT_ROWS, p.m - i0));
            dot_rows<1>(p, rows, a + i0 * lda, lda, i0);
        }
    }

    // The serial loops over one product (m, n, k >= 1).
    // bpre: all of B already packed (plan.shared_b): K slice p0 at
    // bpre + p0 * round_up(n, NR), its panels as pack_b lays them out.
    static void serial(const Problem<T>& p, const Plan& plan, T* abuf, T* bbuf,
                       const T* bpre = nullptr) {
        if (plan.dot) return dot(p, abuf);
        // A read in place (plan.pack_a false) when one of its strides is 1.
        int al = kPacked;
        if (!plan.pack_a) {
            if (p.cs_a == 1) al = kRows;
            else if (p.rs_a == 1) al = kColumns;
        }
        const int64_t lda = al == kRows ? p.rs_a : (al == kColumns ? p.cs_a : 0);
        for (int64_t i0 = 0; i0 < p.m; i0 += plan.mc) {
            const int64_t mc = imin(plan.mc, p.m - i0);
            for (int64_t p0 = 0; p0 < p.k; p0 += plan.kc) {
                const int64_t kc = imin(plan.kc, p.k - p0);
                const T beta = p0 == 0 ? p.beta : T(1);
                const bool last = p0 + kc == p.k;
                const T* a0 = p.a + i0 * p.rs_a + p0 * p.cs_a;
                if (al == kPacked) pack_a(mc, kc, a0, p.rs_a, p.cs_a, abuf);
                // The A operand of row tile ir: its packed micro-panel or its place in A.
                auto a_tile = [&](int64_t ir) {
                    return al == kPacked ? abuf + ir * kc : a0 + ir * p.rs_a;
                };
                if (!plan.pack_b) {
                    const T* b0 = p.b + p0 * p.rs_b;
                    if (plan.rows_outer && p.cs_c == 1) {  // skinny: row tiles sweep all of N
                        const int64_t n_full = p.n / NR * NR;
                        for (int64_t ir = 0; ir < mc; ir += MR) {
                            const int rows = static_cast<int>(imin(MR, mc - ir));
                            const SweepFn sw = al == kRows      ? pick_sweep<1, kRows>(rows)
                                               : al == kColumns ? pick_sweep<1, kColumns>(rows)
                                                                : pick_sweep<1, kPacked>(rows);
                            sw(kc, a_tile(ir), lda, b0, p.rs_b, p.c + (i0 + ir) * p.rs_c, p.rs_c,
                               n_full, p.alpha, beta);
                            if (last && n_full > 0) {
                                finish(p, rows, static_cast<int>(n_full), i0 + ir, 0);
                            }
                            if (n_full < p.n) {
                                const int cols = static_cast<int>(p.n - n_full);
                                tile(p, tile_fn(rows, cols, true, al), kc, a_tile(ir), lda,
                                     b0 + n_full, p.rs_b, rows, cols, i0 + ir, n_full, beta, last);
                            }
                        }
                        continue;
                    }
                    for (int64_t jr = 0; jr < p.n; jr += NR) {
                        const int cols = static_cast<int>(imin(NR, p.n - jr));
                        for (int64_t ir = 0; ir < mc; ir += MR) {
                            const int rows = static_cast<int>(imin(MR, mc - ir));
                            tile(p, tile_fn(rows, cols, true, al), kc, a_tile(ir), lda, b0 + jr,
                                 p.rs_b, rows, cols, i0 + ir, jr, beta, last);
                        }
                    }
                    continue;
                }
                for (int64_t j0 = 0; j0 < p.n; j0 += plan.nc) {
                    const int64_t nc = imin(plan.nc, p.n - j0);
                    const T* bblock = bbuf;
                    if (bpre) {
                        bblock = bpre + p0 * ((p.n + NR - 1) / NR * NR) + j0 * kc;
                    } else {
                        pack_b(kc, nc, p.b + p0 * p.rs_b + j0 * p.cs_b, p.rs_b, p.cs_b, bbuf);
                    }
                    for (int64_t ir = 0; ir < mc; ir += MR) {
                        const int rows = static_cast<int>(imin(MR, mc - ir));
                        const TileFn full = tile_fn(rows, NR, false, al);
                        for (int64_t jr = 0; jr < nc; jr += NR) {
                            const int cols = static_cast<int>(imin(NR, nc - jr));
                            const TileFn fn =
                                cols == NR ? full : tile_fn(rows, cols, false, al);
                            tile(p, fn, kc, a_tile(ir), lda, bblock + jr * kc, NR, rows, cols,
                                 i0 + ir, j0 + jr, beta, last);
                        }
                    }
                }
            }
        }
    }

    // Product `index` of the batch.
    static Problem<T> member(const Problem<T>& p, int64_t index) {
        Problem<T> q = p;
        q.a += index * p.bs_a;
        q.b += index * p.bs_b;
        q.c += index * p.bs_c;
        q.batch = 1;
        return q;
    }

    // Piece `part` of `parts` of product q: a contiguous range of whole row
    // tiles (or column tiles) of C. Returns false when the piece is empty.
    static bool piece(const Problem<T>& q, int part, int parts, Problem<T>& out) {
        const int64_t row_tiles = (q.m + MR - 1) / MR;
        const int64_t col_tiles = (q.n + NR - 1) / NR;
        out = q;
        if (row_tiles >= col_tiles) {
            const int64_t t0 = row_tiles * part / parts, t1 = row_tiles * (part + 1) / parts;
            const int64_t i0 = t0 * MR, i1 = imin(t1 * MR, q.m);
            if (i0 >= i1) return false;
            out.m = i1 - i0;
            out.a += i0 * q.rs_a;
            out.c += i0 * q.rs_c;
            if (out.bias) out.bias += i0 * q.bias_rs;
        } else {
            const int64_t t0 = col_tiles * part / parts, t1 = col_tiles * (part + 1) / parts;
            const int64_t j0 = t0 * NR, j1 = imin(t1 * NR, q.n);
            if (j0 >= j1) return false;
            out.n = j1 - j0;
            out.b += j0 * q.cs_b;
            out.c += j0 * q.cs_c;
            if (out.bias) out.bias += j0 * q.bias_cs;
        }
        return true;
    }

    static void run(const Problem<T>& p, const Plan& plan, T* ws) {
        const int64_t per_thread = plan.ws_a + plan.ws_b;
        if (plan.threads <= 1) {
            for (int64_t index = 0; index < p.batch; ++index) {
                serial(member(p, index), plan, ws, ws + plan.ws_a);
            }
            return;
        }
#if defined(NNFORGE_OPENMP)
        // Pieces are handed out dynamically (more pieces than threads), so a
        // thread the OS preempts delays only its own piece, not the call.
#pragma omp parallel num_threads(plan.threads)
        {
            T* abuf = ws + omp_get_thread_num() * per_thread;
            T* bbuf = abuf + plan.ws_a;
            if (plan.shared_b) {
                // B packed once by all threads (one NR panel of one K slice per
                // job), then row pieces share it; `omp for` ends in a barrier.
                const int64_t npad = (p.n + NR - 1) / NR * NR;
                const int64_t slices = (p.k + plan.kc - 1) / plan.kc;
                const int64_t panels = npad / NR;
                T* bpre = ws + plan.threads * per_thread;
                for (int64_t index = 0; index < p.batch; ++index) {
                    const Problem<T> q = member(p, index);
#pragma omp for schedule(static)
                    for (int64_t job = 0; job < slices * panels; ++job) {
                        const int64_t p0 = job / panels * plan.kc, j0 = job % panels * NR;
                        const int64_t kc = imin(plan.kc, q.k - p0);
                        pack_b(kc, imin(NR, q.n - j0), q.b + p0 * q.rs_b + j0 * q.cs_b, q.rs_b,
                               q.cs_b, bpre + p0 * npad + j0 * kc);
                    }
#pragma omp for schedule(dynamic, 1)
                    for (int64_t part = 0; part < plan.pieces; ++part) {
                        Problem<T> mine;
                        if (piece(q, static_cast<int>(part), static_cast<int>(plan.pieces), mine)) {
                            serial(mine, plan, abuf, bbuf, bpre);
                        }
                    }
                }
            } else if (plan.batch_parallel) {
#pragma omp for schedule(dynamic, 1)
                for (int64_t index = 0; index < p.batch; ++index) {
                    serial(member(p, index), plan, abuf, bbuf);
                }
            } else {
                const int64_t pieces = plan.pieces;
#pragma omp for schedule(dynamic, 1)
                for (int64_t job = 0; job < p.batch * pieces; ++job) {
                    Problem<T> mine;
                    if (piece(member(p, job / pieces), static_cast<int>(job % pieces),
                              static_cast<int>(pieces), mine)) {
                        serial(mine, plan, abuf, bbuf);
                    }
                }
            }
        }
#else
        (void)per_thread;
        for (int64_t index = 0; index < p.batch; ++index) {
            serial(member(p, index), plan, ws, ws + plan.ws_a);
        }
#endif
    }

    // ---- B packed once, used by many products (gemm_prepacked, see gemm.h).
    // Layout: whole-K micro-panels of NR columns, panel q at out + q * NR * k,
    // its row p at + p * NR, the last panel zero-padded to NR columns.
    static void pack_b_whole(int64_t k, int64_t n, const T* b, int64_t rs, int64_t cs, T* out) {
        for (int64_t j0 = 0; j0 < n; j0 += NR) {
            pack_b(k, imin(NR, n - j0), b + j0 * cs, rs, cs, out + j0 * k);
        }
    }

    // Tiles [t0, t1) of C, numbered column tile major (tile t: column tile
    // t / row_tiles, row tile t % row_tiles, so the row tiles of one column
    // tile run back to back while its B panel is in cache), each over all of
    // K at once. A is read in place (p.cs_a == 1 or p.rs_a == 1).
    static void prepacked_tiles(const Problem<T>& p, const T* bp, int64_t t0, int64_t t1) {
        const int al = p.cs_a == 1 ? kRows : kColumns;
        const int64_t lda = al == kRows ? p.rs_a : p.cs_a;
        const int64_t row_tiles = (p.m + MR - 1) / MR;
        for (int64_t t = t0; t < t1; ++t) {
            const int64_t i = t % row_tiles * MR, j = t / row_tiles * NR;
            const int rows = static_cast<int>(imin(MR, p.m - i));
            const int cols = static_cast<int>(imin(NR, p.n - j));
            tile(p, tile_fn(rows, cols, false, al), p.k, p.a + i * p.rs_a, lda, bp + j * p.k, NR,
                 rows, cols, i, j, p.beta, true);
        }
    }

    // The product over prepacked B: its tiles in contiguous ranges, a few per
    // thread, taken dynamically. Every tile runs the same K loop whoever takes
    // it, so C does not depend on the thread count.
    static void run_prepacked(const Problem<T>& p, const T* bp, int threads) {
        const int64_t tiles = (p.m + MR - 1) / MR * ((p.n + NR - 1) / NR);
#if defined(NNFORGE_OPENMP)
        if (threads > 1 && tiles > 1) {
            const int64_t parts = imin(tiles, int64_t(threads) * 4);
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
            for (int64_t part = 0; part < parts; ++part) {
                prepacked_tiles(p, bp, tiles * part / parts, tiles * (part + 1) / parts);
            }
            return;
        }
#endif
        (void)threads;
        prepacked_tiles(p, bp, 0, tiles);
    }
};

}  // namespace
}  // namespace gemm_detail
}  // namespace nnforge
