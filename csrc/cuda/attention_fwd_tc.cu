// Attention forward on tensor cores (sm_80+, bf16/fp16, head dim D = E = Ev of
// 64 or 128, no dropout): the FlashAttention-2 forward with mma.sync
// m16n8k16 (fp32 accumulation), same equations as attention_fwd.cu:
//
//   for each key tile (64 keys):  S = scale Q K^T + mask      (mma, fp32)
//       m' = max(m, rowmax S),  P = exp(S - m'),  l = l e^{m-m'} + rowsum P
//       O = O e^{m-m'} + P V       (P rounded to bf16/fp16 for the mma, as FA2)
//   O = O / l,  lse = m + log l    (l == 0: O = 0, lse = +inf)
//
// Work split: one block of 128 threads (4 warps) per (b, h, tile of 64 query
// rows); warp w owns rows 16w..16w+15, so every softmax statistic stays in
// its registers (a row's 64 scores are spread over the 4 lanes t of one group
// g: two shuffles, xor 1 and 2, reduce it). Grid (ceil(L/64), min(B*Hq, 65535)).
//
// Shared memory (T): Q 64 x (D+8), and two stages of K and V 64 x (D+8)
// (87 KB at D = 128), rows padded by 16 bytes so ldmatrix's 8 row addresses
// hit distinct banks. Q is copied once and held as A fragments (D/16 x 4
// registers); key tile t+1 is copied (cp.async, zero-filled past S) while
// tile t is computed. Fragments:
//   S = Q K^T:  A = Q (ldmatrix), B = K^T: K stored [key][d] is B's [n][k] -> ldmatrix
//   O += P V:   A = P from S's accumulators (c0,c1 | c2,c3 of two adjacent
//               n-tiles are exactly a0..a3 of one k-step), B = V stored
//               [key][d] = [k][n] -> ldmatrix.trans
// Per thread: S 8 x 4 fp32, O D/8 x 4 fp32, Q D/4 registers.
// Masks (causal, bool, additive) go through attn_masked_score element by
// element; key tiles past a causal tile's last row are skipped.
#include <cstdint>
#include <type_traits>

#include "cuda/attention_common.cuh"
#include "cuda/check.cuh"
#include "cuda/mma_sm80.cuh"

namespace nnforge {
namespace cuda {
namespace {

constexpr int kBQ = 64, kBKV = 64, kWarps = 4;

// rows x D elements (row r at src + r * stride, rows >= nrows zero) into dst [rows][D + 8].
template <typename T, int D>
__device__ __forceinline__ void copy_rows(T* dst, const T* src, std::int64_t stride,
                                          std::int64_t row0, std::int64_t nrows) {
    constexpr int kPerRow = D / 8, kChunks = kBKV * kPerRow, LD = D + 8;
    static_assert(kChunks % (kWarps * 32) == 0, "whole chunks per thread");
#pragma unroll
    for (int c = threadIdx.x; c < kChunks; c += kWarps * 32) {
        const int r = c / kPerRow, col = (c % kPerRow) * 8;
        const bool in = row0 + r < nrows;
        cp_async16(dst + r * LD + col, in ? src + (row0 + r) * stride + col : src, in ? 16 : 0);
    }
}

// kMask: a bool/additive mask is read (attn_masked_score); without one only the
// key bound and the causal triangle apply (fewer registers).
template <typename T, int D, bool kMask>
__global__ void __launch_bounds__(128)
attn_fwd_tc_kernel(const AttnParams<T> p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    constexpr int LD = D + 8, TILE = kBKV * LD;
    constexpr int KSTEPS = D / 16, NT_S = kBKV / 8, NT_O = D / 8;
    extern __shared__ __align__(16) unsigned char attn_tc_smem[];
    T* sQ = reinterpret_cast<T*>(attn_tc_smem);  // [64][LD]
    T* sK = sQ + kBQ * LD;                        // [2][64][LD]
    T* sV = sK + 2 * TILE;                        // [2][64][LD]

    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int g = lane / 4, t = lane % 4, lr = lane % 8, lj = lane / 8;
    const std::int64_t q0 = static_cast<std::int64_t>(blockIdx.x) * kBQ;
    const int group = p.hq / p.hk;

    for (std::int64_t bh = blockIdx.y; bh < static_cast<std::int64_t>(p.b) * p.hq; bh += gridDim.y) {
        const int bi = static_cast<int>(bh / p.hq), h = static_cast<int>(bh % p.hq), hk = h / group;
        const T* q = p.q + bi * p.q_sb + h * p.q_sh;
        const T* k = p.k + bi * p.k_sb + hk * p.k_sh;
        const T* v = p.v + bi * p.v_sb + hk * p.v_sh;
        const std::int64_t kv_end = p.causal ? (q0 + kBQ < p.s ? q0 + kBQ : p.s) : p.s;
        const int ntiles = static_cast<int>((kv_end + kBKV - 1) / kBKV);

        __syncthreads();  // the previous (b, h) is done with every buffer
        copy_rows<T, D>(sQ, q, p.q_sr, q0, p.l);
        if (ntiles > 0) {
            copy_rows<T, D>(sK, k, p.k_sr, 0, p.s);
            copy_rows<T, D>(sV, v, p.v_sr, 0, p.s);
        }
        cp_async_commit();

        float o[NT_O][4], m[2], l[2];
#pragma unroll
        for (int nt = 0; nt < NT_O; ++nt)
#pragma unroll
            for (int e = 0; e < 4; ++e) o[nt][e] = 0.f;
        m[0] = m[1] = -INFINITY;
        l[0] = l[1] = 0.f;
        std::uint32_t qf[KSTEPS][4];

        for (int jt = 0; jt < ntiles; ++jt) {
            const std::int64_t j0 = static_cast<std::int64_t>(jt) * kBKV;
            if (jt + 1 < ntiles) {  // the other stage was last read before the barrier ending jt-1
                copy_rows<T, D>(sK + ((jt + 1) & 1) * TILE, k, p.k_sr, j0 + kBKV, p.s);
                copy_rows<T, D>(sV + ((jt + 1) & 1) * TILE, v, p.v_sr, j0 + kBKV, p.s);
            }
            cp_async_commit();  // possibly empty: group jt+1
            cp_async_wait<1>();   // groups up to jt (Q with group 0) have landed
            __syncthreads();
            if (jt == 0) {
#pragma unroll
                for (int ks = 0; ks < KSTEPS; ++ks) {
                    ldmatrix_x4<false>(qf[ks], sQ + (warp * 16 + lr + (lj & 1) * 8) * LD + ks * 16 + (lj >> 1) * 8);
                }
            }
            const T* tK = sK + (jt & 1) * TILE;
            const T* tV = sV + (jt & 1) * TILE;

            // S = Q K^T for the warp's 16 rows x 64 keys.
            float s[NT_S][4];
#pragma unroll
            for (int nt = 0; nt < NT_S; ++nt)
#pragma unroll
                for (int e = 0; e < 4; ++e) s[nt][e] = 0.f;
#pragma unroll
            for (int ks = 0; ks < KSTEPS; ++ks) {
#pragma unroll
                for (int nj = 0; nj < NT_S / 2; ++nj) {
                    std::uint32_t r[4];  // keys nj*16 + (j>>1)*8 .., dims ks*16 + (j&1)*8 ..
                    ldmatrix_x4<false>(r, tK + (nj * 16 + lr + (lj >> 1) * 8) * LD + ks * 16 + (lj & 1) * 8);
                    mma<T>(s[2 * nj], qf[ks], r[0], r[1]);
                    mma<T>(s[2 * nj + 1], qf[ks], r[2], r[3]);
                }
            }

            // Online softmax; thread holds rows g (e = 0, 1) and g + 8 (e = 2, 3).
#pragma unroll
            for (int rh = 0; rh < 2; ++rh) {
                const std::int64_t i = q0 + warp * 16 + g + rh * 8;
                float mx = -INFINITY;
#pragma unroll
                for (int nt = 0; nt < NT_S; ++nt) {
#pragma unroll
                    for (int e = 0; e < 2; ++e) {
                        const std::int64_t j = j0 + nt * 8 + 2 * t + e;
                        const float x = kMask ? attn_masked_score(p, bi, h, i, j, s[nt][2 * rh + e])
                                        : (j < p.s && !(p.causal && j > i) ? p.scale * s[nt][2 * rh + e]
                                                                           : -INFINITY);
                        s[nt][2 * rh + e] = x;
                        mx = fmaxf(mx, x);
                    }
                }
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
                const float m_new = fmaxf(m[rh], mx);
                const bool live = m_new != -INFINITY;  // same for the 4 lanes of the row
                const float alpha = live ? __expf(m[rh] - m_new) : 1.f;
                float sum = 0.f;
#pragma unroll
                for (int nt = 0; nt < NT_S; ++nt) {
#pragma unroll
                    for (int e = 0; e < 2; ++e) {
                        const float pr = live ? __expf(s[nt][2 * rh + e] - m_new) : 0.f;
                        s[nt][2 * rh + e] = pr;
                        sum += pr;
                    }
                }
                sum += __shfl_xor_sync(0xffffffffu, sum, 1);
                sum += __shfl_xor_sync(0xffffffffu, sum, 2);
                l[rh] = l[rh] * alpha + sum;
                m[rh] = m_new;
#pragma unroll
                for (int nt = 0; nt < NT_O; ++nt) {
                    o[nt][2 * rh] *= alpha;
                    o[nt][2 * rh + 1] *= alpha;
                }
            }

            // O += P V: k-step kk covers keys 16kk..16kk+15 = S n-tiles 2kk, 2kk+1.
#pragma unroll
            for (int kk = 0; kk < kBKV / 16; ++kk) {
                std::uint32_t pa[4];
                pa[0] = pack2<T>(s[2 * kk][0], s[2 * kk][1]);
                pa[1] = pack2<T>(s[2 * kk][2], s[2 * kk][3]);
                pa[2] = pack2<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]);
                pa[3] = pack2<T>(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
                for (int dp = 0; dp < NT_O / 2; ++dp) {
                    std::uint32_t r[4];  // keys kk*16 + (j&1)*8 .., dims dp*16 + (j>>1)*8 ..
                    ldmatrix_x4<true>(r, tV + (kk * 16 + lr + (lj & 1) * 8) * LD + dp * 16 + (lj >> 1) * 8);
                    mma<T>(o[2 * dp], pa, r[0], r[1]);
                    mma<T>(o[2 * dp + 1], pa, r[2], r[3]);
                }
            }
            __syncthreads();  // this stage may be refilled next
        }
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
        asm volatile("cp.async.wait_group 0;\n" ::);  // nothing in flight into sQ (S = 0 case)
#endif

#pragma unroll
        for (int rh = 0; rh < 2; ++rh) {
            const std::int64_t i = q0 + warp * 16 + g + rh * 8;
            if (i >= p.l) continue;
            const bool any = l[rh] > 0.f;
            const float inv = any ? 1.f / l[rh] : 0.f;
            T* orow = p.out + (bh * p.l + i) * D;
#pragma unroll
            for (int nt = 0; nt < NT_O; ++nt) {
                *reinterpret_cast<std::uint32_t*>(orow + nt * 8 + 2 * t) =
                    pack2<T>(o[nt][2 * rh] * inv, o[nt][2 * rh + 1] * inv);
            }
            if (t == 0) p.lse[bh * p.l + i] = any ? m[rh] + logf(l[rh]) : INFINITY;
        }
    }
#endif  // __CUDA_ARCH__ >= 800
}

template <typename T, int D, bool kMask>
void launch(const AttnParams<T>& p, cudaStream_t stream) {
    constexpr int smem = (kBQ + 4 * kBKV) * (D + 8) * static_cast<int>(sizeof(T));
    auto kernel = attn_fwd_tc_kernel<T, D, kMask>;
    NNF_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem),
                   "cudaFuncSetAttribute(attn_fwd_tc shared memory)");
    const std::int64_t items = static_cast<std::int64_t>(p.b) * p.hq;
    const dim3 grid(static_cast<unsigned>((p.l + kBQ - 1) / kBQ),
                    static_cast<unsigned>(items < 65535 ? items : 65535));
    kernel<<<grid, kWarps * 32, smem, stream>>>(p);
}

bool aligned16(const void* ptr) { return reinterpret_cast<std::uintptr_t>(ptr) % 16 == 0; }

}  // namespace

template <typename T>
bool attn_fwd_tc_ok(const AttnParams<T>& p) {
    if constexpr (!is_reduced_float_v<T>) {
        return false;
    } else {
        if (p.e != p.ev || (p.e != 64 && p.e != 128) || p.dropout) return false;
        auto ok = [](const T* x, std::int64_t sb, std::int64_t sh, std::int64_t sr) {
            return aligned16(x) && sb % 8 == 0 && sh % 8 == 0 && sr % 8 == 0;
        };
        return ok(p.q, p.q_sb, p.q_sh, p.q_sr) && ok(p.k, p.k_sb, p.k_sh, p.k_sr) &&
               ok(p.v, p.v_sb, p.v_sh, p.v_sr);
    }
}

template <typename T>
void launch_attn_fwd_tc(const AttnParams<T>& p, cudaStream_t stream) {
    if constexpr (is_reduced_float_v<T>) {
        const bool mask = p.mask_kind != AttnMask::none;
        if (p.e == 64) mask ? launch<T, 64, true>(p, stream) : launch<T, 64, false>(p, stream);
        else mask ? launch<T, 128, true>(p, stream) : launch<T, 128, false>(p, stream);
        check_launch("attn_fwd_tc", type_name<T>());
    }
}

template bool attn_fwd_tc_ok<float>(const AttnParams<float>&);
template bool attn_fwd_tc_ok<double>(const AttnParams<double>&);
template bool attn_fwd_tc_ok<bf16>(const AttnParams<bf16>&);
template bool attn_fwd_tc_ok<f16>(const AttnParams<f16>&);
template void launch_attn_fwd_tc<float>(const AttnParams<float>&, cudaStream_t);
template void launch_attn_fwd_tc<double>(const AttnParams<double>&, cudaStream_t);
template void launch_attn_fwd_tc<bf16>(const AttnParams<bf16>&, cudaStream_t);
template void launch_attn_fwd_tc<f16>(const AttnParams<f16>&, cudaStream_t);

}  // namespace cuda
}  // namespace nnforge
