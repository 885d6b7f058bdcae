// Attention for a few query rows at a time: the decode step of generation
// with a KV cache (one new token, L = 1, against S cached keys).
//
// The tiled kernel (attention_kernels.h) packs K^T and V tile by tile for
// blocks of up to kTileQ query rows; with one row, that packing and its
// zeroed scratch cost more than the product itself (L = 1, S = 100, 6 heads
// of 64: 44 us, of which the arithmetic is ~2 us). Here each row reads K and
// V in place, both with contiguous rows:
//
//   s_j = scale q . k_j + M_j        (-inf where a key is masked or causal-excluded)
//   m = max_j s_j,  p_j = exp(s_j - m),  l = sum_j p_j
//   o = (sum_j p_j v_j) / l,  lse = m + log l
//
// with the tiled kernel's conventions: causal is the top-left triangle (row i
// sees keys j <= i), a row with every key masked gives o = 0 and lse = +inf,
// grouped-query head h reads key/value head h / (Hq / Hk). No dropout (the
// caller uses the tiled kernel when dropout_p > 0). The backward needs only o
// and lse, so it is shared with the tiled forward.
//
// Threads: items are (b, h) heads, each row's scores in the thread's own
// buffer of S elements.
#pragma once

#include <cstdint>

#include "cpu/attention.h"

namespace nnforge {

// Query rows up to which the decode kernel is used.
constexpr int64_t kSdpaDecodeMaxRows = 4;

template <typename T>
bool sdpa_decode_applies(const SdpaArgs<T>& a) {
    return a.l <= kSdpaDecodeMaxRows && !(a.dropout_p > 0.0);
}

// out (B, Hq, L, Ev) and lse (B, Hq, L), C-contiguous, as sdpa_forward.
template <typename T>
void sdpa_decode_forward(const SdpaArgs<T>& a, T* out, T* lse);

namespace attention_decode_detail {

// Rows [0, L) of query head bh = b Hq + h; `scores` holds S elements.
template <typename T>
using DecodeHead = void (*)(const SdpaArgs<T>&, int64_t bh, T* out, T* lse, T* scores);

// Defined in attention_decode_avx2.cpp / attention_decode_avx512.cpp (x86-64 only).
void get_decode_kernels_avx2(DecodeHead<float>* k);
void get_decode_kernels_avx2(DecodeHead<double>* k);
void get_decode_kernels_avx512(DecodeHead<float>* k);
void get_decode_kernels_avx512(DecodeHead<double>* k);

}  // namespace attention_decode_detail
}  // namespace nnforge
