// The decode-attention row loop (see attention_decode.h), included by
// attention_decode.cpp (portable build) and attention_decode_avx2.cpp /
// _avx512.cpp (built with those ISA flags); internal linkage, so each keeps
// its own copy. The loops are written for the compiler's vectorizer: dot
// products and axpys over the head dim (omp simd reductions) and the exp over
// the keys (exp_vec, branch-free).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "cpu/attention.h"
#include "cpu/attention_decode.h"
#include "cpu/vec_math.h"

namespace nnforge {
namespace {
namespace attn_decode {

template <typename T>
inline T dot(const T* __restrict a, const T* __restrict b, int64_t n) {
    T acc = T(0);
#pragma omp simd reduction(+ : acc)
    for (int64_t p = 0; p < n; ++p) acc += a[p] * b[p];
    return acc;
}

// y += alpha x
template <typename T>
inline void axpy(T* __restrict y, T alpha, const T* __restrict x, int64_t n) {
#pragma omp simd
    for (int64_t p = 0; p < n; ++p) y[p] += alpha * x[p];
}

template <typename T>
void head(const SdpaArgs<T>& a, int64_t bh, T* out, T* lse, T* s) {
    const T ninf = -std::numeric_limits<T>::infinity();
    const int64_t b = bh / a.hq, h = bh % a.hq;
    const int64_t hk = h / (a.hq / a.hk);
    const T* k = a.k + b * a.k_sb + hk * a.k_sh;
    const T* v = a.v + b * a.v_sb + hk * a.v_sh;
    const int64_t moff = b * a.m_sb + h * a.m_sh;
    for (int64_t i = 0; i < a.l; ++i) {
        const T* q = a.q + b * a.q_sb + h * a.q_sh + i * a.q_sr;
        const int64_t keys = a.causal ? (i + 1 < a.s ? i + 1 : a.s) : a.s;
        for (int64_t j = 0; j < keys; ++j) s[j] = a.scale * dot(q, k + j * a.k_sr, a.e);
        if (a.mask_kind == SdpaMask::additive) {
            const T* mrow = static_cast<const T*>(a.mask) + moff + i * a.m_sr;
            for (int64_t j = 0; j < keys; ++j) s[j] += mrow[j];
        } else if (a.mask_kind == SdpaMask::boolean) {
            const uint8_t* mrow = static_cast<const uint8_t*>(a.mask) + moff + i * a.m_sr;
            for (int64_t j = 0; j < keys; ++j) s[j] = mrow[j] ? s[j] : ninf;
        }
        T m = ninf;
        for (int64_t j = 0; j < keys; ++j) m = s[j] > m ? s[j] : m;
        T* o = out + (bh * a.l + i) * a.ev;
        for (int64_t c = 0; c < a.ev; ++c) o[c] = T(0);
        if (m == ninf) {  // every key masked: a defined zero row
            lse[bh * a.l + i] = std::numeric_limits<T>::infinity();
            continue;
        }
        T l = T(0);
#pragma omp simd reduction(+ : l)
        for (int64_t j = 0; j < keys; ++j) {
            const T p = exp_vec(s[j] - m);  // masked: exp(-inf) = 0
            s[j] = p;
            l += p;
        }
        for (int64_t j = 0; j < keys; ++j) {
            if (s[j] != T(0)) axpy(o, s[j], v + j * a.v_sr, a.ev);
        }
        const T inv = T(1) / l;
#pragma omp simd
        for (int64_t c = 0; c < a.ev; ++c) o[c] *= inv;
        lse[bh * a.l + i] = m + std::log(l);
    }
}

}  // namespace attn_decode
}  // namespace
}  // namespace nnforge
