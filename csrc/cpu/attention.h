// Fused scaled dot-product attention on the CPU (csrc/cpu/attention.cpp; the
// tile loops are in attention_kernels.h), FlashAttention-style (Dao et al.
// 2022, FlashAttention-2 2023):
//
//   S = scale Q K^T + M          (M: additive mask, or -inf where a boolean mask
//                                 is false / the causal triangle excludes a key)
//   P = softmax_rows(S),   Pd = P o Z / (1 - p)   (Z: the dropout keep mask)
//   O = Pd V,              lse_i = log sum_j exp(S_ij)
//
// Shapes: q (B, Hq, L, E), k (B, Hk, S, E), v (B, Hk, S, Ev), Hq = g Hk with
// query head h reading key/value head h / g (grouped-query attention;
// g = 1 is plain multi-head). Each of q, k, v is a strided view: row i of
// head (b, h) starts at x + b sb + h sh + i sr and its last dim is
// contiguous. out is (B, Hq, L, Ev) and lse (B, Hq, L), both C-contiguous.
// The mask (bool or T) is a strided view of (B, Hq, L, S) with stride 1 along
// keys (a stride may be 0: a key-padding mask (B, 1, 1, S) is never expanded).
// Causal is PyTorch's top-left triangle: query i sees keys j <= i.
//
// Forward never forms the L x S score matrix: each query tile of kTileQ rows
// runs over key tiles of kTileK keys, keeping a running row max m and sum l
// (the online softmax); lse is saved for the backward, which recomputes each
// score tile from it:
//   dV = Pd^T dO,  dPd = dO V^T,  dP = dPd o Z / (1 - p),
//   dS = P o (dP - D),  D_i = dO_i . O_i,  dQ = scale dS K,  dK = scale dS^T Q.
// A row with every key masked gives O = 0, lse = +inf and zero gradients
// (PyTorch's CPU kernel also returns zeros there). An additive mask's gradient
// is dM = P o (dP - D) (dS before the scale, which multiplies only Q K^T),
// summed over the dims the mask broadcasts along; it is accumulated tile by
// tile in the same loop, so the L x S matrix is not stored for it either.
//
// Threads: the forward splits (b, h, chunk of query rows) items, the backward
// (b, key/value head) items (each owns its dK, dV and the dQ of its query
// heads, so nothing is shared); with a mask gradient, items whose query heads
// share mask elements (a mask broadcast over batch or heads) run in one group,
// one after another in a fixed order. Every element is computed by the same
// sequence of operations whatever the thread count.
#pragma once

#include <cstdint>

namespace nnforge {

enum class SdpaMask { none, boolean, additive };

template <typename T>
struct SdpaArgs {
    int64_t b = 0, hq = 0, hk = 0, l = 0, s = 0, e = 0, ev = 0;
    const T* q = nullptr;
    int64_t q_sb = 0, q_sh = 0, q_sr = 0;
    const T* k = nullptr;
    int64_t k_sb = 0, k_sh = 0, k_sr = 0;
    const T* v = nullptr;
    int64_t v_sb = 0, v_sh = 0, v_sr = 0;
    SdpaMask mask_kind = SdpaMask::none;
    const void* mask = nullptr;  // bool (one byte) or T
    int64_t m_sb = 0, m_sh = 0, m_sr = 0;
    bool causal = false;
    T scale = T(1);
    double dropout_p = 0.0;  // applied when > 0
    uint64_t seed = 0;
};

// out (B, Hq, L, Ev) and lse (B, Hq, L), C-contiguous.
template <typename T>
void sdpa_forward(const SdpaArgs<T>& a, T* out, T* lse);

// Where the backward adds the additive mask's gradient: score (b, h, i, j)
// adds dS_ij into data[b sb + h sh + i sr + j], the strides 0 exactly where
// the mask's are (so broadcast dims are summed). The caller zeroes data;
// nullptr: no mask gradient.
template <typename T>
struct SdpaMaskGrad {
    T* data = nullptr;
    int64_t sb = 0, sh = 0, sr = 0;
};

// out, lse from the forward; gout (B, Hq, L, Ev) C-contiguous. Writes dq
// (B, Hq, L, E), dk (B, Hk, S, E), dv (B, Hk, S, Ev), C-contiguous, and adds
// into dmask (additive masks only).
template <typename T>
void sdpa_backward(const SdpaArgs<T>& a, const T* out, const T* gout, const T* lse, T* dq, T* dk,
                   T* dv, const SdpaMaskGrad<T>& dmask);

// The dropout keep test for score (row, j), row = (b Hq + h) L + i: a
// counter-based hash (splitmix64's finalizer) of (seed, row, j), so the
// backward regenerates the forward's mask instead of storing it. Kept with
// probability 1 - p (to 2^-32).
inline uint64_t sdpa_mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}
inline uint64_t sdpa_row_key(uint64_t seed, uint64_t row) {
    return sdpa_mix64(seed ^ sdpa_mix64(row + 0x9e3779b97f4a7c15ULL));
}
// threshold = p 2^32 (rounded up); kept iff the top 32 hash bits are >= it.
inline uint64_t sdpa_drop_threshold(double p) {
    if (p <= 0.0) return 0;
    if (p >= 1.0) return uint64_t(1) << 32;
    return static_cast<uint64_t>(p * 4294967296.0 + 0.5);
}
inline bool sdpa_keep(uint64_t row_key, int64_t j, uint64_t threshold) {
    const uint64_t x = sdpa_mix64(row_key + static_cast<uint64_t>(j) * 0xd1b54a32d192ed03ULL);
    return (x >> 32) >= threshold;
}

}  // namespace nnforge
