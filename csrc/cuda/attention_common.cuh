// What the attention kernels share (attention_fwd.cu, attention_bwd.cu,
// attention.cu): the problem as pointers and element strides, masking, the
// dropout hash, warp reductions.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/dispatch.cuh"

namespace nnforge {
namespace cuda {

enum class AttnMask : int { none = 0, boolean = 1, additive = 2 };

template <typename T>
struct AttnParams {
    using Acc = typename Compute<T>::type;
    int b = 0, hq = 0, hk = 0, l = 0, s = 0, e = 0, ev = 0;
    const T* q = nullptr;
    std::int64_t q_sb = 0, q_sh = 0, q_sr = 0;
    const T* k = nullptr;
    std::int64_t k_sb = 0, k_sh = 0, k_sr = 0;
    const T* v = nullptr;
    std::int64_t v_sb = 0, v_sh = 0, v_sr = 0;
    AttnMask mask_kind = AttnMask::none;
    const void* mask = nullptr;  // bool (one byte) or T, stride 1 along keys
    std::int64_t m_sb = 0, m_sh = 0, m_sr = 0;
    bool causal = false;
    Acc scale = Acc(1);
    bool dropout = false;
    std::uint64_t drop_threshold = 0, seed = 0;
    Acc drop_scale = Acc(1);  // 1 / (1 - p)
    // forward outputs; backward inputs (C-contiguous (B, Hq, L, Ev) and (B, Hq, L))
    T* out = nullptr;
    Acc* lse = nullptr;
    // backward
    const T* gout = nullptr;
    Acc* delta = nullptr;   // (B, Hq, L): D_i = dO_i . O_i
    Acc* dq_acc = nullptr;  // (B, Hq, L, E), zeroed, atomically accumulated
    T* dk = nullptr;        // (B, Hk, S, E)
    T* dv = nullptr;        // (B, Hk, S, Ev)
    Acc* dmask = nullptr;   // zeroed; score (b, h, i, j) adds into dmask[b dm_sb + h dm_sh + i dm_sr + j]
    std::int64_t dm_sb = 0, dm_sh = 0, dm_sr = 0;
};

// The dropout hash of cpu/attention.h (sdpa_mix64, sdpa_row_key, sdpa_keep),
// bit for bit: row = (b Hq + h) L + i.
__device__ __forceinline__ std::uint64_t attn_mix64(std::uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}
__device__ __forceinline__ std::uint64_t attn_row_key(std::uint64_t seed, std::uint64_t row) {
    return attn_mix64(seed ^ attn_mix64(row + 0x9e3779b97f4a7c15ULL));
}
__device__ __forceinline__ bool attn_keep(std::uint64_t row_key, std::int64_t j,
                                          std::uint64_t threshold) {
    const std::uint64_t x =
        attn_mix64(row_key + static_cast<std::uint64_t>(j) * 0xd1b54a32d192ed03ULL);
    return (x >> 32) >= threshold;
}

// The score of query i, key j after masking: scale * dot + additive mask, or
// -inf where the key does not take part (j >= S, causal j > i, bool mask false).
template <typename T, typename Acc>
__device__ __forceinline__ Acc attn_masked_score(const AttnParams<T>& p, int bi, int h,
                                                 std::int64_t i, std::int64_t j, Acc dot) {
    const Acc neg_inf = -INFINITY;
    if (j >= p.s || i >= p.l || (p.causal && j > i)) return neg_inf;
    Acc x = p.scale * dot;
    if (p.mask_kind != AttnMask::none) {
        const std::int64_t at = bi * p.m_sb + h * p.m_sh + i * p.m_sr + j;
        if (p.mask_kind == AttnMask::boolean) {
            if (!static_cast<const bool*>(p.mask)[at]) return neg_inf;
        } else {
            x += convert<Acc>(static_cast<const T*>(p.mask)[at]);
        }
    }
    return x;
}

template <typename Acc>
__device__ __forceinline__ Acc warp_max(Acc x) {
#pragma unroll
    for (int o = 16; o > 0; o /= 2) x = fmax(x, __shfl_xor_sync(0xffffffffu, x, o));
    return x;
}
template <typename Acc>
__device__ __forceinline__ Acc warp_sum(Acc x) {
#pragma unroll
    for (int o = 16; o > 0; o /= 2) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}

// The SIMT kernels' tile loads: `rows` rows of `dims` elements (row r at
// src + (row0 + r) row_stride) into dst[r * ld + d] in the compute type, rows
// at or past nrows as zeros; the whole block cooperates.
template <typename T, typename Acc>
__device__ void load_rows(Acc* dst, int ld, const T* src, std::int64_t row_stride,
                          std::int64_t row0, std::int64_t nrows, int rows, int dims) {
    for (int idx = threadIdx.x; idx < rows * dims; idx += blockDim.x) {
        const int r = idx / dims, d = idx % dims;
        dst[r * ld + d] = row0 + r < nrows ? convert<Acc>(src[(row0 + r) * row_stride + d])
                                           : Acc(0);
    }
}

// Chunks of 32 dims a lane covers (dim d = lane + 32 c): E, Ev <= 32 * NC.
inline int attn_chunks(int dims) { return dims <= 64 ? 2 : (dims <= 128 ? 4 : 8); }

template <typename T> void launch_attn_fwd_simt(const AttnParams<T>& p, int nc, cudaStream_t s);
// attention_fwd_tc.cu: bf16/fp16, E == Ev in {64, 128}, no dropout, 16-byte aligned
// rows (strides multiples of 8 elements); the caller also checks compute capability 8+.
template <typename T> bool attn_fwd_tc_ok(const AttnParams<T>& p);
template <typename T> void launch_attn_fwd_tc(const AttnParams<T>& p, cudaStream_t s);
// attention_bwd.cu: D_i = dO_i . O_i into p.delta, before either backward kernel.
template <typename T> void launch_attn_delta(const AttnParams<T>& p, cudaStream_t s);
template <typename T> void launch_attn_bwd_simt(const AttnParams<T>& p, int nc, cudaStream_t s);
// attention_bwd_tc.cu: the tensor-core forward's conditions, and no mask gradient.
template <typename T> bool attn_bwd_tc_ok(const AttnParams<T>& p);
template <typename T> void launch_attn_bwd_tc(const AttnParams<T>& p, cudaStream_t s);

}  // namespace cuda
}  // namespace nnforge
