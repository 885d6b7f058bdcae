// Attention forward on CUDA cores (any dtype, head dims <= 256), the
// FlashAttention-2 loop (Dao 2023, Algorithm 1) written plainly:
//
//   for each key tile K_j, V_j (32 keys):
//       S = scale Q_i K_j^T + mask                 (32 x 32 scores, in registers)
//       m' = max(m, rowmax S);  P = exp(S - m')
//       l = l e^{m - m'} + rowsum P;  O = O e^{m - m'} + (P o Z / (1 - p)) V_j;  m = m'
//   O = O / l,  lse = m + log l    (l == 0: every key masked -> O = 0, lse = +inf)
//
// Work split: one block of 128 threads (4 warps) per (b, h, tile of 32 query
// rows); grid (ceil(L/32), min(B*Hq, 65535)), y stepping over (b, h). Warp w
// owns query rows 8w..8w+7 of the tile. While scoring, lane t owns key t of
// the key tile: it forms the 8 dot products of its key with the warp's rows
// (Q rows broadcast from shared memory, K rows padded by one element so the
// 32 lanes read 32 banks). The row max and sum are warp reductions. For P V,
// lane t owns dims t, t+32, ... (NC chunks, Ev <= 32 NC); each P_ij is
// broadcast with a shuffle and V_j's row is read contiguously across lanes.
// Registers per lane: O 8 x NC, m, l 8 each. Shared memory (Acc):
// Q 32 x E, K 32 x (E+1), V 32 x Ev (97 KB at E = Ev = 256, float).
//
// Causal: key tiles past the tile's last row are skipped. A slower, simpler
// path than the tensor-core kernel would be; it is the reference the GPU
// tests hold the others to, and serves fp64 and odd head dims.
#include <cstdint>
#include <type_traits>

#include "cuda/attention_common.cuh"
#include "cuda/check.cuh"

namespace nnforge {
namespace cuda {
namespace {

constexpr int kRows = 32, kKeys = 32, kWarps = 4, kRowsPerWarp = kRows / kWarps;

template <typename T, int NC>
__global__ void __launch_bounds__(128)
attn_fwd_simt_kernel(const AttnParams<T> p) {
    using Acc = typename Compute<T>::type;
    extern __shared__ __align__(16) unsigned char attn_smem[];
    Acc* sQ = reinterpret_cast<Acc*>(attn_smem);  // [32][E]
    Acc* sK = sQ + kRows * p.e;                   // [32][E + 1]
    Acc* sV = sK + kKeys * (p.e + 1);             // [32][Ev]
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const std::int64_t q0 = static_cast<std::int64_t>(blockIdx.x) * kRows;
    const int group = p.hq / p.hk;

    for (std::int64_t bh = blockIdx.y; bh < static_cast<std::int64_t>(p.b) * p.hq; bh += gridDim.y) {
        const int bi = static_cast<int>(bh / p.hq), h = static_cast<int>(bh % p.hq), hk = h / group;
        const T* q = p.q + bi * p.q_sb + h * p.q_sh;
        const T* k = p.k + bi * p.k_sb + hk * p.k_sh;
        const T* v = p.v + bi * p.v_sb + hk * p.v_sh;

        __syncthreads();  // the previous (b, h) is done with sQ
        load_rows(sQ, p.e, q, p.q_sr, q0, p.l, kRows, p.e);

        Acc o[kRowsPerWarp][NC], m[kRowsPerWarp], l[kRowsPerWarp];
        std::uint64_t row_key[kRowsPerWarp];
#pragma unroll
        for (int r = 0; r < kRowsPerWarp; ++r) {
            m[r] = -INFINITY;
            l[r] = Acc(0);
            const std::int64_t row = bh * p.l + q0 + warp * kRowsPerWarp + r;
            row_key[r] = p.dropout ? attn_row_key(p.seed, static_cast<std::uint64_t>(row)) : 0;
#pragma unroll
            for (int c = 0; c < NC; ++c) o[r][c] = Acc(0);
        }

        const std::int64_t kv_end = p.causal ? (q0 + kRows < p.s ? q0 + kRows : p.s) : p.s;
        for (std::int64_t j0 = 0; j0 < kv_end; j0 += kKeys) {
            __syncthreads();  // everyone is done with the previous K, V tile
            load_rows(sK, p.e + 1, k, p.k_sr, j0, p.s, kKeys, p.e);
            load_rows(sV, p.ev, v, p.v_sr, j0, p.s, kKeys, p.ev);
            __syncthreads();

            // Scores of key j0 + lane against the warp's rows.
            Acc s[kRowsPerWarp];
#pragma unroll
            for (int r = 0; r < kRowsPerWarp; ++r) s[r] = Acc(0);
            const Acc* krow = sK + lane * (p.e + 1);
            const Acc* qrows = sQ + warp * kRowsPerWarp * p.e;
            for (int d = 0; d < p.e; ++d) {
                const Acc kd = krow[d];
#pragma unroll
                for (int r = 0; r < kRowsPerWarp; ++r) s[r] = fma(qrows[r * p.e + d], kd, s[r]);
            }

            const std::int64_t j = j0 + lane;
            Acc pd[kRowsPerWarp];
#pragma unroll
            for (int r = 0; r < kRowsPerWarp; ++r) {
                const std::int64_t i = q0 + warp * kRowsPerWarp + r;
                const Acc x = attn_masked_score(p, bi, h, i, j, s[r]);
                const Acc m_new = fmax(m[r], warp_max(x));
                Acc pr = Acc(0), alpha = Acc(1);
                if (m_new != -INFINITY) {  // else nothing so far takes part: keep O = 0, l = 0
                    pr = exp(x - m_new);        // x = -inf -> 0
                    alpha = exp(m[r] - m_new);  // m = -inf -> 0
                }
                l[r] = l[r] * alpha + warp_sum(pr);
                m[r] = m_new;
                pd[r] = pr;
                if (p.dropout) {
                    pd[r] = attn_keep(row_key[r], j, p.drop_threshold) ? pr * p.drop_scale : Acc(0);
                }
#pragma unroll
                for (int c = 0; c < NC; ++c) o[r][c] *= alpha;
            }

            // O += Pd V_j: P_ij from lane jj, V row jj across lanes.
            const int nkeys = static_cast<int>(p.s - j0 < kKeys ? p.s - j0 : kKeys);
            for (int jj = 0; jj < nkeys; ++jj) {
                Acc vj[NC];
#pragma unroll
                for (int c = 0; c < NC; ++c) {
                    const int d = lane + 32 * c;
                    vj[c] = d < p.ev ? sV[jj * p.ev + d] : Acc(0);
                }
#pragma unroll
                for (int r = 0; r < kRowsPerWarp; ++r) {
                    const Acc pj = __shfl_sync(0xffffffffu, pd[r], jj);
#pragma unroll
                    for (int c = 0; c < NC; ++c) o[r][c] = fma(pj, vj[c], o[r][c]);
                }
            }
        }

#pragma unroll
        for (int r = 0; r < kRowsPerWarp; ++r) {
            const std::int64_t i = q0 + warp * kRowsPerWarp + r;
            if (i >= p.l) continue;
            const bool any = l[r] > Acc(0);
            const Acc inv = any ? Acc(1) / l[r] : Acc(0);
            T* orow = p.out + (bh * p.l + i) * p.ev;
#pragma unroll
            for (int c = 0; c < NC; ++c) {
                const int d = lane + 32 * c;
                if (d < p.ev) orow[d] = convert<T>(o[r][c] * inv);
            }
            if (lane == 0) p.lse[bh * p.l + i] = any ? m[r] + log(l[r]) : Acc(INFINITY);
        }
    }
}

template <typename T, int NC>
void launch_fwd(const AttnParams<T>& p, cudaStream_t stream) {
    using Acc = typename Compute<T>::type;
    const int smem = static_cast<int>(sizeof(Acc)) * (kRows * p.e + kKeys * (p.e + 1) + kKeys * p.ev);
    auto kernel = attn_fwd_simt_kernel<T, NC>;
    NNF_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem),
                   "cudaFuncSetAttribute(attn_fwd_simt shared memory)");
    const std::int64_t items = static_cast<std::int64_t>(p.b) * p.hq;
    const dim3 grid(static_cast<unsigned>((p.l + kRows - 1) / kRows),
                    static_cast<unsigned>(items < 65535 ? items : 65535));
    kernel<<<grid, kWarps * 32, smem, stream>>>(p);
}

}  // namespace

template <typename T>
void launch_attn_fwd_simt(const AttnParams<T>& p, int nc, cudaStream_t stream) {
    switch (nc) {
        case 2: launch_fwd<T, 2>(p, stream); break;
        case 4: launch_fwd<T, 4>(p, stream); break;
        default:  // float64 is limited to head dims <= 128 (shared memory)
            if constexpr (std::is_same<T, double>::value) launch_fwd<T, 4>(p, stream);
            else launch_fwd<T, 8>(p, stream);
            break;
    }
    check_launch("attn_fwd_simt", type_name<T>());
}

template void launch_attn_fwd_simt<float>(const AttnParams<float>&, int, cudaStream_t);
template void launch_attn_fwd_simt<double>(const AttnParams<double>&, int, cudaStream_t);
template void launch_attn_fwd_simt<bf16>(const AttnParams<bf16>&, int, cudaStream_t);
template void launch_attn_fwd_simt<f16>(const AttnParams<f16>&, int, cudaStream_t);

}  // namespace cuda
}  // namespace nnforge
