// The attention tile loops (see attention.h), included by attention.cpp
// (portable build) and by attention_avx2.cpp / attention_avx512.cpp (built
// with those ISA flags). Everything in the unnamed namespace has internal
// linkage, so each of those files keeps its own copy compiled for its ISA.
//
// Vectors are GCC/Clang vector extensions of kVecBytes (16, 32 or 64 bytes):
// W = kVecBytes / sizeof(T) lanes. Every tile product is one register-blocked
// micro-kernel (tile_gemm):
//   C (m x n) (+)= A (m x k) B (k x n),  A[i, p] = a[i ars + p aks],  B rows of ldb
// C's tile lives in kRows x kVecs vector registers over the whole k loop; per
// step, kVecs vector loads of a B row, then per row one broadcast of A[i, p]
// and kVecs FMAs. A is read in place with any strides (so Q, dO, P and P^T
// need no copy); B must be readable in whole vectors, so the B operands
// (K^T, V, V^T, Q, dO, K) are packed per head or per key tile into buffers
// whose rows are padded to W with zeros. C's last vector is stored partially.
//
// Scores are kept in base 2: s2 = log2(e) (scale q.k + mask), so the softmax
// is exp2(s2 - m2), and exp2 is a degree-6 polynomial on [-1/2, 1/2] times
// 2^round(x) (relative error < 1e-7 evaluated in float; inputs below -126
// (masked: -inf) give 0). log2(e) scale is folded into the packed K^T, so the
// score tile's products are s2 already when there is no mask.
// double uses std::exp2 per lane (it serves the float64 gradient checks).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include "cpu/attention.h"

namespace nnforge {
namespace attention_detail {

// Query rows and keys per tile: a 72 x 64 score tile, its Q, K^T and V tiles
// and the output accumulator fit in L2 with room to spare (72: whole blocks of
// the micro-kernel's 4 or 6 rows).
constexpr int64_t kTileQ = 72;
constexpr int64_t kTileK = 64;

// One ISA build's kernels (attention.cpp picks a set once per dtype).
template <typename T>
struct AttentionKernels {
    // Scratch (elements of T) one thread needs for forward_item / backward_item.
    int64_t (*forward_scratch)(const SdpaArgs<T>&, int64_t rows);
    int64_t (*backward_scratch)(const SdpaArgs<T>&);
    // Rows [i_begin, i_end) of query head bh = b Hq + h.
    void (*forward_item)(const SdpaArgs<T>&, int64_t bh, int64_t i_begin, int64_t i_end, T* out,
                         T* lse, T* scratch);
    // Key/value head bkv = b Hk + hk: its dK, dV and the dQ of its g query heads; adds
    // their dS into dmask when wanted.
    void (*backward_item)(const SdpaArgs<T>&, int64_t bkv, const T* out, const T* gout,
                          const T* lse, T* dq, T* dk, T* dv, const SdpaMaskGrad<T>& dmask,
                          T* scratch);
};

// Defined in attention_avx2.cpp / attention_avx512.cpp (x86-64 only).
void get_attention_kernels_avx2(AttentionKernels<float>* k);
void get_attention_kernels_avx2(AttentionKernels<double>* k);
void get_attention_kernels_avx512(AttentionKernels<float>* k);
void get_attention_kernels_avx512(AttentionKernels<double>* k);

}  // namespace attention_detail

namespace {
namespace attn {

using attention_detail::kTileK;
using attention_detail::kTileQ;

#if defined(__AVX512F__)
constexpr int kVecBytes = 64;
constexpr int kRows = 6, kVecs = 4;  // 24 of 32 zmm accumulate
#elif defined(__AVX2__)
constexpr int kVecBytes = 32;
constexpr int kRows = 4, kVecs = 2;  // 8 of 16 ymm accumulate
#else
constexpr int kVecBytes = 16;
constexpr int kRows = 4, kVecs = 2;
#endif

template <typename T>
struct Vec;
template <>
struct Vec<float> {
    typedef float V __attribute__((vector_size(kVecBytes)));
    typedef int32_t I __attribute__((vector_size(kVecBytes)));
};
template <>
struct Vec<double> {
    typedef double V __attribute__((vector_size(kVecBytes)));
    typedef int64_t I __attribute__((vector_size(kVecBytes)));
};

template <typename T>
constexpr int lanes() {
    return kVecBytes / static_cast<int>(sizeof(T));
}

inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }
inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

template <typename V, typename T>
[[gnu::always_inline]] inline V load(const T* p) {
    V v;
    std::memcpy(&v, p, sizeof(V));
    return v;
}
template <typename V, typename T>
[[gnu::always_inline]] inline void store(T* p, V v) {
    std::memcpy(p, &v, sizeof(V));
}
// Every lane x. (Not V{} + x: 0 + x is not x for x = -0, so the compiler adds, then
// broadcasts from a register on the shuffle pipe, which competes with the FMAs; set1
// becomes one vbroadcastss from memory in the micro-kernel.)
[[gnu::always_inline]] inline Vec<float>::V splat1(float x) {
#if defined(__AVX512F__)
    return _mm512_set1_ps(x);
#elif defined(__AVX2__)
    return _mm256_set1_ps(x);
#else
    return Vec<float>::V{} + x;
#endif
}
[[gnu::always_inline]] inline Vec<double>::V splat1(double x) {
#if defined(__AVX512F__)
    return _mm512_set1_pd(x);
#elif defined(__AVX2__)
    return _mm256_set1_pd(x);
#else
    return Vec<double>::V{} + x;
#endif
}
template <typename V, typename T>
[[gnu::always_inline]] inline V splat(T x) {
    return splat1(x);
}
// The first n (< W) lanes from / to memory, the rest zero / untouched.
template <typename V, typename T>
inline V load_part(const T* p, int n) {
    V v = V{};
    for (int l = 0; l < n; ++l) v[l] = p[l];
    return v;
}
template <typename V, typename T>
inline void store_part(T* p, V v, int n) {
    for (int l = 0; l < n; ++l) p[l] = v[l];
}

using VF = Vec<float>::V;
using VD = Vec<double>::V;

[[gnu::always_inline]] inline VF fmadd(VF a, VF b, VF c) {
#if defined(__AVX512F__)
    return _mm512_fmadd_ps(a, b, c);
#elif defined(__AVX2__)
    return _mm256_fmadd_ps(a, b, c);
#else
    return a * b + c;
#endif
}
[[gnu::always_inline]] inline VD fmadd(VD a, VD b, VD c) {
#if defined(__AVX512F__)
    return _mm512_fmadd_pd(a, b, c);
#elif defined(__AVX2__)
    return _mm256_fmadd_pd(a, b, c);
#else
    return a * b + c;
#endif
}

template <typename V>
inline V vmax(V a, V b) {
    return a > b ? a : b;
}

// 2^x per lane (see the top of the file); 0 for x < -126, including -inf.
inline VF exp2v(VF x) {
    // relative minimax on [-1/2, 1/2] (error 2e-9, below float's rounding)
    const VF c6 = splat<VF>(1.5345799348583368e-4f), c5 = splat<VF>(1.3399926686201728e-3f),
             c4 = splat<VF>(9.6184889607041288e-3f), c3 = splat<VF>(5.5503287882573964e-2f),
             c2 = splat<VF>(2.4022646891016169e-1f), c1 = splat<VF>(6.9314720573202537e-1f),
             c0 = splat<VF>(1.0000000005540530f);
#if defined(__AVX512F__)
    x = vmax(x, splat<VF>(-160.0f));  // 2^-160 underflows to exactly 0 in scalef
    const VF k = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
#else
    const VF tiny = splat<VF>(-126.0f);
    const Vec<float>::I dead = x < tiny;
    x = vmax(x, tiny);
    const VF magic = splat<VF>(12582912.0f);  // 1.5 2^23: adding it rounds to an integer
    const VF k = (x + magic) - magic;
#endif
    const VF r = x - k;
    VF p = fmadd(c6, r, c5);
    p = fmadd(p, r, c4);
    p = fmadd(p, r, c3);
    p = fmadd(p, r, c2);
    p = fmadd(p, r, c1);
    p = fmadd(p, r, c0);
#if defined(__AVX512F__)
    return _mm512_scalef_ps(p, k);
#else
    const Vec<float>::I bits = (__builtin_convertvector(k, Vec<float>::I) + 127) << 23;
    VF scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return dead ? VF{} : p * scale;
#endif
}

inline VD exp2v(VD x) {
    for (int l = 0; l < lanes<double>(); ++l) x[l] = std::exp2(x[l]);
    return x;
}

template <typename V>
inline auto hmax(V v) -> decltype(v[0] + 0) {
    auto m = v[0];
    for (int l = 1; l < static_cast<int>(sizeof(V) / sizeof(m)); ++l) m = v[l] > m ? v[l] : m;
    return m;
}
#if defined(__AVX512F__)
inline float hmax(VF v) { return _mm512_reduce_max_ps(v); }  // a shuffle tree
inline double hmax(VD v) { return _mm512_reduce_max_pd(v); }
#endif
template <typename V>
inline auto hsum(V v) -> decltype(v[0] + 0) {
    auto s = v[0];
    for (int l = 1; l < static_cast<int>(sizeof(V) / sizeof(s)); ++l) s += v[l];
    return s;
}

// ------------------------------------------------------------------ tile products
// C[R x (NV W)] (+)= A[R x kn] B[kn x (NV W)]; the last vector holds `last` columns.
template <typename T, int R, int NV>
[[gnu::always_inline]] inline void micro(int64_t kn, const T* a, int64_t ars, int64_t aks,
                                         const T* b, int64_t ldb, T* c, int64_t ldc, int last,
                                         bool accumulate) {
    using V = typename Vec<T>::V;
    constexpr int W = lanes<T>();
    V acc[R][NV];
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) {
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) {
            if (!accumulate) {
                acc[i][v] = V{};
            } else if (v == NV - 1 && last < W) {
                acc[i][v] = load_part<V>(c + i * ldc + v * W, last);
            } else {
                acc[i][v] = load<V>(c + i * ldc + v * W);
            }
        }
    }
    for (int64_t p = 0; p < kn; ++p) {
        V bv[NV];
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) bv[v] = load<V>(b + v * W);
#pragma GCC unroll 8
        for (int i = 0; i < R; ++i) {
            const V ai = splat<V>(a[i * ars]);
#pragma GCC unroll 8
            for (int v = 0; v < NV; ++v) acc[i][v] = fmadd(ai, bv[v], acc[i][v]);
        }
        a += aks;
        b += ldb;
    }
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) {
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) {
            if (v == NV - 1 && last < W) {
                store_part(c + i * ldc + v * W, acc[i][v], last);
            } else {
                store(c + i * ldc + v * W, acc[i][v]);
            }
        }
    }
}

// R rows of C, all n columns in chunks of kVecs vectors.
template <typename T, int R>
void row_block(int64_t n, int64_t kn, const T* a, int64_t ars, int64_t aks, const T* b,
               int64_t ldb, T* c, int64_t ldc, bool accumulate) {
    constexpr int W = lanes<T>();
    for (int64_t j = 0; j < n; j += kVecs * W) {
        const int64_t cols = min64(kVecs * W, n - j);
        const int nv = static_cast<int>((cols + W - 1) / W);
        const int last = static_cast<int>(cols - (nv - 1) * W);
        const T* bj = b + j;
        T* cj = c + j;
        switch (nv) {
            case 1: micro<T, R, 1>(kn, a, ars, aks, bj, ldb, cj, ldc, last, accumulate); break;
            case 2:
                if constexpr (kVecs >= 2) micro<T, R, 2>(kn, a, ars, aks, bj, ldb, cj, ldc, last,
                                                         accumulate);
                break;
            case 3:
                if constexpr (kVecs >= 3) micro<T, R, 3>(kn, a, ars, aks, bj, ldb, cj, ldc, last,
                                                         accumulate);
                break;
            default:
                if constexpr (kVecs >= 4) micro<T, R, 4>(kn, a, ars, aks, bj, ldb, cj, ldc, last,
                                                         accumulate);
                break;
        }
    }
}

// C (m x n, ldc) (+)= A (m x kn; A[i, p] = a[i ars + p aks]) B (kn x n, rows of ldb,
// readable in whole vectors past n).
template <typename T>
void tile_gemm(int64_t m, int64_t n, int64_t kn, const T* a, int64_t ars, int64_t aks,
               const T* b, int64_t ldb, T* c, int64_t ldc, bool accumulate) {
    int64_t i = 0;
    for (; i + kRows <= m; i += kRows) {
        row_block<T, kRows>(n, kn, a + i * ars, ars, aks, b, ldb, c + i * ldc, ldc, accumulate);
    }
    switch (m - i) {
        case 1: row_block<T, 1>(n, kn, a + i * ars, ars, aks, b, ldb, c + i * ldc, ldc, accumulate); break;
        case 2: row_block<T, 2>(n, kn, a + i * ars, ars, aks, b, ldb, c + i * ldc, ldc, accumulate); break;
        case 3: row_block<T, 3>(n, kn, a + i * ars, ars, aks, b, ldb, c + i * ldc, ldc, accumulate); break;
        case 4:
            if constexpr (kRows > 4) row_block<T, 4>(n, kn, a + i * ars, ars, aks, b, ldb, c + i * ldc, ldc, accumulate);
            break;
        case 5:
            if constexpr (kRows > 5) row_block<T, 5>(n, kn, a + i * ars, ars, aks, b, ldb, c + i * ldc, ldc, accumulate);
            break;
        default: break;
    }
}

// ------------------------------------------------------------------ packing
// dst (cols x ldd) = rows [0, n) of src (row stride sr, n x cols), zero-padded to ldd columns.
template <typename T>
void pack_rows(const T* src, int64_t sr, int64_t n, int64_t cols, T* dst, int64_t ldd) {
    for (int64_t r = 0; r < n; ++r) {
        std::memcpy(dst + r * ldd, src + r * sr, sizeof(T) * static_cast<size_t>(cols));
        for (int64_t c = cols; c < ldd; ++c) dst[r * ldd + c] = T(0);
    }
}
// dst (cols x ldd) = scale src^T for src (n x cols, row stride sr), columns n.. ldd zero.
template <typename T>
void pack_transposed(const T* src, int64_t sr, int64_t n, int64_t cols, T* dst, int64_t ldd,
                     T scale = T(1)) {
    for (int64_t c = 0; c < cols; ++c) {
        T* d = dst + c * ldd;
        for (int64_t r = 0; r < n; ++r) d[r] = scale * src[r * sr + c];
        for (int64_t r = n; r < ldd; ++r) d[r] = T(0);
    }
}

// ------------------------------------------------------------------ score rows
// The mask of one (b, h): row i, key j at base + i sr + j.
template <typename T>
struct MaskView {
    SdpaMask kind = SdpaMask::none;
    const uint8_t* boolean = nullptr;
    const T* additive = nullptr;
    int64_t sr = 0;
};

template <typename T>
MaskView<T> mask_view(const SdpaArgs<T>& a, int64_t b, int64_t h) {
    MaskView<T> m;
    m.kind = a.mask_kind;
    m.sr = a.m_sr;
    const int64_t off = b * a.m_sb + h * a.m_sh;
    if (a.mask_kind == SdpaMask::boolean) m.boolean = static_cast<const uint8_t*>(a.mask) + off;
    if (a.mask_kind == SdpaMask::additive) m.additive = static_cast<const T*>(a.mask) + off;
    return m;
}

// Lanes j..j+W of score row i in base 2 from x = q . (c2 k) (c2 = log2(e) scale,
// folded into the packed K^T): x + log2(e) mask, -inf where masked or at lanes
// >= n (n <= W: the valid keys left in the row).
template <typename T>
[[gnu::always_inline]] inline typename Vec<T>::V score2(typename Vec<T>::V x,
                                                        const MaskView<T>& mv, int64_t i,
                                                        int64_t j, int n) {
    using V = typename Vec<T>::V;
    using I = typename Vec<T>::I;
    constexpr int W = lanes<T>();
    constexpr T kLog2e = T(1.4426950408889634074);
    const V ninf = splat<V>(-std::numeric_limits<T>::infinity());
    if (mv.kind == SdpaMask::additive) {
        const T* mrow = mv.additive + i * mv.sr + j;
        const V mk = n == W ? load<V>(mrow) : load_part<V>(mrow, n);
        x = fmadd(mk, splat<V>(kLog2e), x);
    } else if (mv.kind == SdpaMask::boolean) {
        const uint8_t* mrow = mv.boolean + i * mv.sr + j;
        I on;
        for (int l = 0; l < W; ++l) on[l] = l < n ? mrow[l] : 0;
        x = on != 0 ? x : ninf;
    }
    if (n < W) {
        I idx;
        for (int l = 0; l < W; ++l) idx[l] = l;
        x = idx < n ? x : ninf;
    }
    return x;
}

// Keys of row i that the causal triangle leaves in a tile starting at key j0.
inline int64_t causal_valid(bool causal, int64_t i, int64_t j0, int64_t nc) {
    if (!causal) return nc;
    const int64_t v = i - j0 + 1;
    return v < 0 ? 0 : (v < nc ? v : nc);
}

// ------------------------------------------------------------------ forward
// The running softmax state of a query tile's rows, arrays of kTileQ rounded up
// to W (so the per-tile alpha pass runs in whole vectors): m, the running max
// of s2; m_safe, m or 0 while the row has seen no key (2^(s2 - m_safe) is then
// 2^-inf = 0, never NaN); alpha = 2^(m_before - m_after); the tile's row
// maxima; and l kept as W lane-wise partial sums per row (kTileQ x W), summed
// once per query tile, so no key tile pays a horizontal add.
template <typename T>
struct RowState {
    T* m;
    T* m_safe;
    T* alpha;
    T* tile_max;
    T* l;
};

inline int64_t state_rows(int W) { return round_up(kTileQ, W); }

// Scratch: K^T (E x ldk), V (S x ldv), the output accumulator and the score
// tile (kTileQ x ...), the row state.
template <typename T>
int64_t forward_scratch(const SdpaArgs<T>& a, int64_t /*rows*/) {
    constexpr int W = lanes<T>();
    const int64_t ldk = round_up(a.s, W) + W, ldv = round_up(a.ev, W);
    return a.e * ldk + (a.s + 1) * ldv + kTileQ * ldv + kTileQ * kTileK + 4 * state_rows(W) +
           kTileQ * W + 8 * W;
}

// One key tile [j0, j0 + nc) of the online softmax (FlashAttention-2) for the
// query rows i0.. i0 + rows: on entry sb holds the products Q_i (c2 K_j)^T, on
// exit P = 2^(s2 - m') (dropped and rescaled under dropout), and
//   m' = max(m, max_j s2),  alpha = 2^(m - m'),  l' = alpha l + sum_j P,  O' = alpha O,
// so that O += P V_j completes the step. Three passes: the row maxima (per
// row), alpha for W rows at a time, then P, the sums and O's rescale (per row).
template <typename T>
void softmax_tile(const SdpaArgs<T>& a, const MaskView<T>& mv, int64_t bh, int64_t i0,
                  int64_t rows, int64_t j0, int64_t nc, T* sb, T* ob, int64_t ldv,
                  const RowState<T>& st) {
    using V = typename Vec<T>::V;
    constexpr int W = lanes<T>();
    const T inf = std::numeric_limits<T>::infinity();
    for (int64_t r = 0; r < rows; ++r) {  // s2 and its row max
        const int64_t i = i0 + r;
        T* srow = sb + r * kTileK;
        const int64_t nv = causal_valid(a.causal, i, j0, nc);
        V vm = splat<V>(-inf);
        for (int64_t j = 0; j < nv; j += W) {
            const int n = static_cast<int>(min64(W, nv - j));
            V x = load<V>(srow + j);
            if (mv.kind != SdpaMask::none || n < W) {  // else s2 is the product itself
                x = score2<T>(x, mv, i, j0 + j, n);
                store(srow + j, x);
            }
            vm = vmax(vm, x);
        }
        st.tile_max[r] = hmax(vm);
    }
    const V zero = V{}, ninf = splat<V>(-inf);
    for (int64_t r = 0; r < rows; r += W) {  // m', m_safe, alpha
        const V m_old = load<V>(st.m + r);
        const V m_new = vmax(m_old, load<V>(st.tile_max + r));
        const V m_safe = m_new == ninf ? zero : m_new;
        store(st.alpha + r, exp2v(m_old - m_safe));
        store(st.m + r, m_new);
        store(st.m_safe + r, m_safe);
    }
    const bool drop = a.dropout_p > 0.0;
    const uint64_t thr = sdpa_drop_threshold(a.dropout_p);
    const T keep_scale = a.dropout_p < 1.0 ? T(1.0 / (1.0 - a.dropout_p)) : T(0);
    for (int64_t r = 0; r < rows; ++r) {  // P, l, O's rescale
        const int64_t i = i0 + r;
        T* srow = sb + r * kTileK;
        const int64_t nv = causal_valid(a.causal, i, j0, nc);
        const V vm = splat<V>(st.m_safe[r]);
        V vs = V{};
        int64_t j = 0;
        for (; j < nv; j += W) {  // lanes past nv hold -inf: P = 0 there
            const V p = exp2v(load<V>(srow + j) - vm);
            store(srow + j, p);
            vs += p;
        }
        for (; j < nc; ++j) srow[j] = T(0);
        const T alpha = st.alpha[r];
        store(st.l + r * W, load<V>(st.l + r * W) * splat<V>(alpha) + vs);
        if (alpha != T(1)) {
            T* orow = ob + r * ldv;
            const V va = splat<V>(alpha);
            for (int64_t c = 0; c < ldv; c += W) store(orow + c, load<V>(orow + c) * va);
        }
        if (drop) {
            const uint64_t key = sdpa_row_key(a.seed, static_cast<uint64_t>(bh * a.l + i));
            for (int64_t jj = 0; jj < nv; ++jj) {
                srow[jj] = sdpa_keep(key, j0 + jj, thr) ? srow[jj] * keep_scale : T(0);
            }
        }
    }
}

template <typename T>
void forward_item(const SdpaArgs<T>& a, int64_t bh, int64_t i_begin, int64_t i_end, T* out,
                  T* lse, T* scratch) {
    constexpr int W = lanes<T>();
    constexpr T kLn2 = T(0.69314718055994530942);
    constexpr T kLog2e = T(1.4426950408889634074);
    const T inf = std::numeric_limits<T>::infinity();
    const int64_t b = bh / a.hq, h = bh % a.hq, hkv = h / (a.hq / a.hk);
    const T* qh = a.q + b * a.q_sb + h * a.q_sh;
    const T* kh = a.k + b * a.k_sb + hkv * a.k_sh;
    const T* vh = a.v + b * a.v_sb + hkv * a.v_sh;
    const MaskView<T> mv = mask_view(a, b, h);

    // Keys this item's rows can see, packed once: K^T (E x ldk), V (kend x ldv).
    const int64_t kend_item = a.causal ? min64(a.s, i_end) : a.s;
    const int64_t ldk = round_up(kend_item, W) + W, ldv = round_up(a.ev, W);
    const int64_t sr = state_rows(W);
    T* kt = scratch;
    T* vp = kt + a.e * ldk;
    T* ob = vp + (kend_item + 1) * ldv;
    T* sb = ob + kTileQ * ldv;
    RowState<T> st;
    st.m = sb + kTileQ * kTileK;
    st.m_safe = st.m + sr;
    st.alpha = st.m_safe + sr;
    st.tile_max = st.alpha + sr;
    st.l = st.tile_max + sr;
    pack_transposed(kh, a.k_sr, kend_item, a.e, kt, ldk, a.scale * kLog2e);
    pack_rows(vh, a.v_sr, kend_item, a.ev, vp, ldv);

    for (int64_t i0 = i_begin; i0 < i_end; i0 += kTileQ) {
        const int64_t rows = min64(kTileQ, i_end - i0);
        for (int64_t r = 0; r < sr; ++r) st.m[r] = st.tile_max[r] = -inf;
        for (int64_t x = 0; x < kTileQ * W; ++x) st.l[x] = T(0);
        for (int64_t x = 0; x < rows * ldv; ++x) ob[x] = T(0);
        const int64_t kend = a.causal ? min64(a.s, i0 + rows) : a.s;
        for (int64_t j0 = 0; j0 < kend; j0 += kTileK) {
            const int64_t nc = min64(kTileK, kend - j0);
            // S = Q_i (c2 K_j)^T, then P (see softmax_tile), then O += P V_j
            tile_gemm<T>(rows, nc, a.e, qh + i0 * a.q_sr, a.q_sr, 1, kt + j0, ldk, sb, kTileK,
                         false);
            softmax_tile(a, mv, bh, i0, rows, j0, nc, sb, ob, ldv, st);
            tile_gemm<T>(rows, a.ev, nc, sb, kTileK, 1, vp + j0 * ldv, ldv, ob, ldv, true);
        }
        for (int64_t r = 0; r < rows; ++r) {
            const int64_t i = i0 + r;
            T* orow = out + (bh * a.l + i) * a.ev;
            const T* src = ob + r * ldv;
            const T l = hsum(load<typename Vec<T>::V>(st.l + r * W));
            if (l > T(0)) {
                const T inv = T(1) / l;
                for (int64_t c = 0; c < a.ev; ++c) orow[c] = src[c] * inv;
                lse[bh * a.l + i] = (st.m[r] + std::log2(l)) * kLn2;
            } else {  // every key masked: a defined zero row
                for (int64_t c = 0; c < a.ev; ++c) orow[c] = T(0);
                lse[bh * a.l + i] = inf;
            }
        }
    }
}

// ------------------------------------------------------------------ backward
// Scratch: Q and dO of one head (L x ldq, L x ldo), D and lse in base 2 (L),
// per key tile K^T (E x kTileK), V^T (Ev x kTileK), K (kTileK x ldq), and the
// P, dP and dropped-P tiles (kTileQ x kTileK).
template <typename T>
int64_t backward_scratch(const SdpaArgs<T>& a) {
    constexpr int W = lanes<T>();
    const int64_t ldq = round_up(a.e, W), ldo = round_up(a.ev, W);
    return a.l * (ldq + ldo + 2) + (a.e + a.ev) * kTileK + (kTileK + 1) * ldq +
           3 * kTileQ * kTileK + 8 * W;
}

template <typename T>
void backward_item(const SdpaArgs<T>& a, int64_t bkv, const T* out, const T* gout, const T* lse,
                   T* dq, T* dk, T* dv, const SdpaMaskGrad<T>& dmask, T* scratch) {
    using V = typename Vec<T>::V;
    using I = typename Vec<T>::I;
    constexpr int W = lanes<T>();
    constexpr T kLog2e = T(1.4426950408889634074);
    const T inf = std::numeric_limits<T>::infinity();
    const int64_t b = bkv / a.hk, hkv = bkv % a.hk, g = a.hq / a.hk;
    const int64_t ldq = round_up(a.e, W), ldo = round_up(a.ev, W);
    const bool drop = a.dropout_p > 0.0;
    const uint64_t thr = sdpa_drop_threshold(a.dropout_p);
    const T keep_scale = a.dropout_p < 1.0 ? T(1.0 / (1.0 - a.dropout_p)) : T(0);
    const T c2 = a.scale * kLog2e;

    T* qp = scratch;
    T* dop = qp + a.l * ldq;
    T* dvec = dop + a.l * ldo;
    T* lse2 = dvec + a.l;
    T* kt = lse2 + a.l;
    T* vt = kt + a.e * kTileK;
    T* kp = vt + a.ev * kTileK;
    T* pb = kp + (kTileK + 1) * ldq;
    T* dpb = pb + kTileQ * kTileK;
    T* pdb = dpb + kTileQ * kTileK;

    const T* kh = a.k + b * a.k_sb + hkv * a.k_sh;
    const T* vh = a.v + b * a.v_sb + hkv * a.v_sh;
    T* dkh = dk + bkv * a.s * a.e;
    T* dvh = dv + bkv * a.s * a.ev;
    for (int64_t x = 0; x < a.s * a.e; ++x) dkh[x] = T(0);
    for (int64_t x = 0; x < a.s * a.ev; ++x) dvh[x] = T(0);

    I idx;
    for (int l = 0; l < W; ++l) idx[l] = l;

    for (int64_t hh = 0; hh < g; ++hh) {
        const int64_t h = hkv * g + hh, bh = b * a.hq + h;
        const T* qh = a.q + b * a.q_sb + h * a.q_sh;
        const T* oh = out + bh * a.l * a.ev;
        const T* goh = gout + bh * a.l * a.ev;
        T* dqh = dq + bh * a.l * a.e;
        const MaskView<T> mv = mask_view(a, b, h);
        T* dmh = dmask.data == nullptr ? nullptr : dmask.data + b * dmask.sb + h * dmask.sh;
        for (int64_t x = 0; x < a.l * a.e; ++x) dqh[x] = T(0);
        pack_rows(qh, a.q_sr, a.l, a.e, qp, ldq);
        pack_rows(goh, a.ev, a.l, a.ev, dop, ldo);
        for (int64_t i = 0; i < a.l; ++i) {
            T d = T(0);
            for (int64_t c = 0; c < a.ev; ++c) d += goh[i * a.ev + c] * oh[i * a.ev + c];
            dvec[i] = d;
            lse2[i] = lse[bh * a.l + i] * kLog2e;
        }
        for (int64_t j0 = 0; j0 < a.s; j0 += kTileK) {
            const int64_t nc = min64(kTileK, a.s - j0);
            const int64_t istart = a.causal ? j0 : 0;  // rows before j0 see no key here
            if (istart >= a.l) break;
            pack_transposed(kh + j0 * a.k_sr, a.k_sr, nc, a.e, kt, kTileK, c2);
            pack_transposed(vh + j0 * a.v_sr, a.v_sr, nc, a.ev, vt, kTileK);
            pack_rows(kh + j0 * a.k_sr, a.k_sr, nc, a.e, kp, ldq);
            for (int64_t i0 = istart; i0 < a.l; i0 += kTileQ) {
                const int64_t rows = min64(kTileQ, a.l - i0);
                // S = Q_i (c2 K_j)^T (as in the forward) and dPd = dO_i V_j^T
                tile_gemm<T>(rows, nc, a.e, qp + i0 * ldq, ldq, 1, kt, kTileK, pb, kTileK, false);
                tile_gemm<T>(rows, nc, a.ev, dop + i0 * ldo, ldo, 1, vt, kTileK, dpb, kTileK,
                             false);
                // P = 2^(s2 - lse2);  dS = P o (dP - D)   (dropout: dP = Z dPd / (1 - p));
                // dMask += dS;  the products below take scale dS.
                for (int64_t r = 0; r < rows; ++r) {
                    const int64_t i = i0 + r;
                    T* prow = pb + r * kTileK;
                    T* dprow = dpb + r * kTileK;
                    T* pdrow = pdb + r * kTileK;
                    const int64_t nv = causal_valid(a.causal, i, j0, nc);
                    const V vl = splat<V>(lse2[i]), vd = splat<V>(dvec[i]);
                    const V vscale = splat<V>(a.scale);
                    T* dmrow = dmh == nullptr ? nullptr : dmh + i * dmask.sr + j0;
                    uint64_t key = 0;
                    if (drop) key = sdpa_row_key(a.seed, static_cast<uint64_t>(bh * a.l + i));
                    int64_t j = 0;
                    for (; j < nv; j += W) {
                        const int n = static_cast<int>(min64(W, nv - j));
                        const V p = exp2v(score2<T>(load<V>(prow + j), mv, i, j0 + j, n) - vl);
                        V dp = load<V>(dprow + j);
                        if (drop) {
                            V z;
                            for (int l = 0; l < W; ++l) {
                                z[l] = (l < n && sdpa_keep(key, j0 + j + l, thr)) ? keep_scale
                                                                                   : T(0);
                            }
                            store(pdrow + j, p * z);
                            dp = dp * z;
                        }
                        const V ds = p * (dp - vd);
                        if (dmrow != nullptr) {
                            if (n == W) {
                                store(dmrow + j, load<V>(dmrow + j) + ds);
                            } else {
                                store_part(dmrow + j, load_part<V>(dmrow + j, n) + ds, n);
                            }
                        }
                        store(prow + j, p);
                        store(dprow + j, idx < n ? ds * vscale : V{});
                    }
                    for (; j < nc; ++j) prow[j] = dprow[j] = pdrow[j] = T(0);
                }
                const T* pd = drop ? pdb : pb;
                // dV_j += Pd^T dO_i;  dK_j += dS^T Q_i;  dQ_i += dS K_j
                tile_gemm<T>(nc, a.ev, rows, pd, 1, kTileK, dop + i0 * ldo, ldo, dvh + j0 * a.ev,
                             a.ev, true);
                tile_gemm<T>(nc, a.e, rows, dpb, 1, kTileK, qp + i0 * ldq, ldq, dkh + j0 * a.e,
                             a.e, true);
                tile_gemm<T>(rows, a.e, nc, dpb, kTileK, 1, kp, ldq, dqh + i0 * a.e, a.e, true);
            }
        }
        (void)inf;
    }
}

}  // namespace attn

template <typename T>
attention_detail::AttentionKernels<T> make_attention_kernels() {
    attention_detail::AttentionKernels<T> k;
    k.forward_scratch = attn::forward_scratch<T>;
    k.backward_scratch = attn::backward_scratch<T>;
    k.forward_item = attn::forward_item<T>;
    k.backward_item = attn::backward_item<T>;
    return k;
}

}  // namespace
}  // namespace nnforge
