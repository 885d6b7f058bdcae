// Attention backward on tensor cores (sm_80+, bf16/fp16, head dim D = E = Ev of
// 64 or 128, no dropout, no mask gradient): the FlashAttention-2 backward with
// mma.sync m16n8k16 (fp32 accumulation), same equations as attention_bwd.cu,
// computed transposed (keys as rows) so that dK and dV stay in registers:
//
//   per key tile (64 keys), per query tile (64 rows):
//       S^T  = K Q^T,   P^T = exp(scale S^T + mask - lse)       (lse per column)
//       dP^T = V dO^T,  dS^T = P^T o (dP^T - D)                  (D_i = dO_i . O_i)
//       dV  += P^T dO,  dK  += dS^T Q                             (registers)
//       dQ  += scale dS K                                         (fp32 atomics)
//
// Work split: one block of 128 threads (4 warps) per (b, key/value head, tile
// of 64 keys); grid (ceil(S/64), min(B*Hk, 65535)). The block loops over the
// query heads of its key/value head (GQA) and over query tiles (causal: from
// the tile holding its first key). Warp w owns keys 16w..16w+15: its S^T and
// dP^T tiles (16 x 64) are mma accumulators whose (c0,c1 | c2,c3) pairs of two
// adjacent n-tiles are the A fragments of P^T and dS^T for the dV and dK mmas
// (as P in the forward). For dQ the block writes dS^T to shared memory
// (16-bit, [key][query]); warp w then forms rows 16w..16w+15 of dS K with
// ldmatrix.trans reads, 32 dims at a time, and adds them to the fp32 dQ
// accumulator with atomicAdd.
//
// Fragments: A = K or V rows [key][d] (ldmatrix), B = Q^T / dO^T from Q, dO
// stored [query][d] = B's [n][k] (ldmatrix); B = dO, Q for dV, dK: [query][d]
// = [k][n] (ldmatrix.trans); A = dS for dQ: stored [key][query] = A's [k][m]
// (ldmatrix.trans); B = K for dQ: [key][d] = [k][n] (ldmatrix.trans).
// Shared memory (T): K, V, Q, dO 64 x (D+8) each, dS^T 64 x 72, lse and D
// (fp32) 64 each: 79 KB at D = 128. Per thread: dK, dV D/8 x 4 fp32 each,
// S^T and dP^T 8 x 4 fp32.
#include <cstdint>
#include <type_traits>

#include "cuda/attention_common.cuh"
#include "cuda/check.cuh"
#include "cuda/mma_sm80.cuh"

namespace nnforge {
namespace cuda {
namespace {

constexpr int kB = 64, kWarps = 4, kLdS = kB + 8;

// 64 rows x D (row r at src + r * stride; rows >= nrows zero) into dst [64][D + 8].
template <typename T, int D>
__device__ __forceinline__ void copy_rows(T* dst, const T* src, std::int64_t stride,
                                          std::int64_t row0, std::int64_t nrows) {
    constexpr int kPerRow = D / 8, kChunks = kB * kPerRow, LD = D + 8;
#pragma unroll
    for (int c = threadIdx.x; c < kChunks; c += kWarps * 32) {
        const int r = c / kPerRow, col = (c % kPerRow) * 8;
        const bool in = row0 + r < nrows;
        cp_async16(dst + r * LD + col, in ? src + (row0 + r) * stride + col : src, in ? 16 : 0);
    }
}

// acc[16 x 64] += A[16 rows of `a_rows`, D] * B^T where B is `b_rows` [64][D]:
// the S^T / dP^T product of the warp's 16 keys with a query tile.
template <typename T, int D>
__device__ __forceinline__ void rows_times_tile_t(float (&acc)[8][4], const T* a_rows,
                                                  const T* b_rows, int lane) {
    constexpr int LD = D + 8;
    const int lr = lane % 8, lj = lane / 8;
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks) {
        std::uint32_t a[4];
        ldmatrix_x4<false>(a, a_rows + (lr + (lj & 1) * 8) * LD + ks * 16 + (lj >> 1) * 8);
#pragma unroll
        for (int nj = 0; nj < 4; ++nj) {
            std::uint32_t r[4];
            ldmatrix_x4<false>(r, b_rows + (nj * 16 + lr + (lj >> 1) * 8) * LD + ks * 16 + (lj & 1) * 8);
            mma<T>(acc[2 * nj], a, r[0], r[1]);
            mma<T>(acc[2 * nj + 1], a, r[2], r[3]);
        }
    }
}

// out[16 x D] += X[16 x 64] (accumulator layout, as A fragments) * tile [64][D]
// (the dV += P^T dO and dK += dS^T Q products).
template <typename T, int D>
__device__ __forceinline__ void acc_times_tile(float (&out)[D / 8][4], const float (&x)[8][4],
                                               const T* tile, int lane) {
    constexpr int LD = D + 8;
    const int lr = lane % 8, lj = lane / 8;
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
        std::uint32_t a[4];
        a[0] = pack2<T>(x[2 * kk][0], x[2 * kk][1]);
        a[1] = pack2<T>(x[2 * kk][2], x[2 * kk][3]);
        a[2] = pack2<T>(x[2 * kk + 1][0], x[2 * kk + 1][1]);
        a[3] = pack2<T>(x[2 * kk + 1][2], x[2 * kk + 1][3]);
#pragma unroll
        for (int dp = 0; dp < D / 16; ++dp) {
            std::uint32_t r[4];
            ldmatrix_x4<true>(r, tile + (kk * 16 + lr + (lj & 1) * 8) * LD + dp * 16 + (lj >> 1) * 8);
            mma<T>(out[2 * dp], a, r[0], r[1]);
            mma<T>(out[2 * dp + 1], a, r[2], r[3]);
        }
    }
}

template <typename T, int D, bool kMask>
__global__ void __launch_bounds__(128, 1)
attn_bwd_tc_kernel(const AttnParams<T> p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    constexpr int LD = D + 8, TILE = kB * LD, NT = D / 8;
    extern __shared__ __align__(16) unsigned char attn_bwd_smem[];
    T* sK = reinterpret_cast<T*>(attn_bwd_smem);
    T* sV = sK + TILE;
    T* sQ = sV + TILE;
    T* sdO = sQ + TILE;
    T* sdS = sdO + TILE;                                   // [64 keys][72]
    float* sLse = reinterpret_cast<float*>(sdS + kB * kLdS);  // [64]
    float* sD = sLse + kB;                                 // [64]

    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int g = lane / 4, t = lane % 4, lr = lane % 8, lj = lane / 8;
    const std::int64_t key0 = static_cast<std::int64_t>(blockIdx.x) * kB;
    const int group = p.hq / p.hk;

    for (std::int64_t bhk = blockIdx.y; bhk < static_cast<std::int64_t>(p.b) * p.hk; bhk += gridDim.y) {
        const int bi = static_cast<int>(bhk / p.hk), hk = static_cast<int>(bhk % p.hk);
        __syncthreads();  // the previous (b, hk) is done with every buffer
        copy_rows<T, D>(sK, p.k + bi * p.k_sb + hk * p.k_sh, p.k_sr, key0, p.s);
        copy_rows<T, D>(sV, p.v + bi * p.v_sb + hk * p.v_sh, p.v_sr, key0, p.s);

        float dk[NT][4], dv[NT][4];
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
#pragma unroll
            for (int e = 0; e < 4; ++e) dk[nt][e] = dv[nt][e] = 0.f;

        const std::int64_t q_start = p.causal ? (key0 / kB) * kB : 0;
        for (int h = hk * group; h < (hk + 1) * group; ++h) {
            const std::int64_t bh = static_cast<std::int64_t>(bi) * p.hq + h;
            for (std::int64_t q0 = q_start; q0 < p.l; q0 += kB) {
                __syncthreads();  // the previous query tile is done with sQ, sdO, sdS, sLse, sD
                copy_rows<T, D>(sQ, p.q + bi * p.q_sb + h * p.q_sh, p.q_sr, q0, p.l);
                copy_rows<T, D>(sdO, p.gout + bh * p.l * D, D, q0, p.l);
                if (threadIdx.x < kB) {
                    const std::int64_t i = q0 + threadIdx.x;
                    sLse[threadIdx.x] = i < p.l ? p.lse[bh * p.l + i] : INFINITY;  // -> P = 0
                    sD[threadIdx.x] = i < p.l ? p.delta[bh * p.l + i] : 0.f;
                }
                cp_async_commit();
                cp_async_wait<0>();
                __syncthreads();

                // S^T and dP^T for keys 16w.. x the 64 queries.
                float s[8][4], dp[8][4];
#pragma unroll
                for (int nt = 0; nt < 8; ++nt)
#pragma unroll
                    for (int e = 0; e < 4; ++e) s[nt][e] = dp[nt][e] = 0.f;
                rows_times_tile_t<T, D>(s, sK + warp * 16 * LD, sQ, lane);
                rows_times_tile_t<T, D>(dp, sV + warp * 16 * LD, sdO, lane);

                // P^T, then dS^T = P^T (dP^T - D) in dp; element (key row, query col).
#pragma unroll
                for (int nt = 0; nt < 8; ++nt) {
#pragma unroll
                    for (int e = 0; e < 4; ++e) {
                        const int col = nt * 8 + 2 * t + (e & 1);
                        const std::int64_t i = q0 + col;
                        const std::int64_t j = key0 + warp * 16 + g + (e >> 1) * 8;
                        const float x = kMask ? attn_masked_score(p, bi, h, i, j, s[nt][e])
                                              : (j < p.s && i < p.l && !(p.causal && j > i)
                                                     ? p.scale * s[nt][e] : -INFINITY);
                        const float pr = x == -INFINITY ? 0.f : __expf(x - sLse[col]);
                        s[nt][e] = pr;
                        dp[nt][e] = pr * (dp[nt][e] - sD[col]);
                    }
                }

                acc_times_tile<T, D>(dv, s, sdO, lane);
                acc_times_tile<T, D>(dk, dp, sQ, lane);

                // dS^T to shared memory for dQ.
#pragma unroll
                for (int nt = 0; nt < 8; ++nt) {
#pragma unroll
                    for (int half = 0; half < 2; ++half) {
                        const int row = warp * 16 + g + half * 8, col = nt * 8 + 2 * t;
                        *reinterpret_cast<std::uint32_t*>(sdS + row * kLdS + col) =
                            pack2<T>(dp[nt][2 * half], dp[nt][2 * half + 1]);
                    }
                }
                __syncthreads();

                // dQ rows 16w.. = dS[16 x 64 keys] K[64 x D], 32 dims at a time.
                float* dq = p.dq_acc + (bh * p.l + q0) * D;
#pragma unroll
                for (int c = 0; c < D / 32; ++c) {
                    float acc[4][4];
#pragma unroll
                    for (int nt = 0; nt < 4; ++nt)
#pragma unroll
                        for (int e = 0; e < 4; ++e) acc[nt][e] = 0.f;
#pragma unroll
                    for (int kk = 0; kk < 4; ++kk) {
                        std::uint32_t a[4];  // stored [key][query]: k rows kk*16 + (j>>1)*8, m cols 16w + (j&1)*8
                        ldmatrix_x4<true>(a, sdS + (kk * 16 + lr + (lj >> 1) * 8) * kLdS + warp * 16 + (lj & 1) * 8);
#pragma unroll
                        for (int dpi = 0; dpi < 2; ++dpi) {
                            std::uint32_t r[4];  // K [key][d] = [k][n]
                            ldmatrix_x4<true>(r, sK + (kk * 16 + lr + (lj & 1) * 8) * LD + c * 32 + dpi * 16 + (lj >> 1) * 8);
                            mma<T>(acc[2 * dpi], a, r[0], r[1]);
                            mma<T>(acc[2 * dpi + 1], a, r[2], r[3]);
                        }
                    }
#pragma unroll
                    for (int half = 0; half < 2; ++half) {
                        const int row = warp * 16 + g + half * 8;
                        if (q0 + row >= p.l) continue;
#pragma unroll
                        for (int nt = 0; nt < 4; ++nt) {
                            float* dst = dq + row * D + c * 32 + nt * 8 + 2 * t;
                            atomicAdd(dst, p.scale * acc[nt][2 * half]);
                            atomicAdd(dst + 1, p.scale * acc[nt][2 * half + 1]);
                        }
                    }
                }
            }
        }

        cp_async_commit();
        cp_async_wait<0>();  // K, V copies never waited for when no query tile ran

        // dK = scale sum dS^T Q, dV = sum P^T dO for this block's keys (b, hk).
#pragma unroll
        for (int half = 0; half < 2; ++half) {
            const std::int64_t j = key0 + warp * 16 + g + half * 8;
            if (j >= p.s) continue;
            T* dkrow = p.dk + (bhk * p.s + j) * D;
            T* dvrow = p.dv + (bhk * p.s + j) * D;
#pragma unroll
            for (int nt = 0; nt < NT; ++nt) {
                const int col = nt * 8 + 2 * t;
                *reinterpret_cast<std::uint32_t*>(dkrow + col) =
                    pack2<T>(p.scale * dk[nt][2 * half], p.scale * dk[nt][2 * half + 1]);
                *reinterpret_cast<std::uint32_t*>(dvrow + col) =
                    pack2<T>(dv[nt][2 * half], dv[nt][2 * half + 1]);
            }
        }
    }
#endif  // __CUDA_ARCH__ >= 800
}

template <typename T, int D, bool kMask>
void launch(const AttnParams<T>& p, cudaStream_t stream) {
    constexpr int smem = 4 * kB * (D + 8) * static_cast<int>(sizeof(T)) +
                         kB * kLdS * static_cast<int>(sizeof(T)) + 2 * kB * static_cast<int>(sizeof(float));
    auto kernel = attn_bwd_tc_kernel<T, D, kMask>;
    NNF_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem),
                   "cudaFuncSetAttribute(attn_bwd_tc shared memory)");
    const std::int64_t items = static_cast<std::int64_t>(p.b) * p.hk;
    const dim3 grid(static_cast<unsigned>((p.s + kB - 1) / kB),
                    static_cast<unsigned>(items < 65535 ? items : 65535));
    kernel<<<grid, kWarps * 32, smem, stream>>>(p);
}

}  // namespace

template <typename T>
bool attn_bwd_tc_ok(const AttnParams<T>& p) {
    // Same inputs as the tensor-core forward, and no mask gradient.
    return p.dmask == nullptr && attn_fwd_tc_ok(p);
}

template <typename T>
void launch_attn_bwd_tc(const AttnParams<T>& p, cudaStream_t stream) {
    if constexpr (is_reduced_float_v<T>) {
        const bool mask = p.mask_kind != AttnMask::none;
        if (p.e == 64) mask ? launch<T, 64, true>(p, stream) : launch<T, 64, false>(p, stream);
        else mask ? launch<T, 128, true>(p, stream) : launch<T, 128, false>(p, stream);
        check_launch("attn_bwd_tc", type_name<T>());
    }
}

template bool attn_bwd_tc_ok<float>(const AttnParams<float>&);
template bool attn_bwd_tc_ok<double>(const AttnParams<double>&);
template bool attn_bwd_tc_ok<bf16>(const AttnParams<bf16>&);
template bool attn_bwd_tc_ok<f16>(const AttnParams<f16>&);
template void launch_attn_bwd_tc<float>(const AttnParams<float>&, cudaStream_t);
template void launch_attn_bwd_tc<double>(const AttnParams<double>&, cudaStream_t);
template void launch_attn_bwd_tc<bf16>(const AttnParams<bf16>&, cudaStream_t);
template void launch_attn_bwd_tc<f16>(const AttnParams<f16>&, cudaStream_t);

}  // namespace cuda
}  // namespace nnforge
