// Attention backward on CUDA cores (any dtype, head dims <= 256), the
// FlashAttention-2 backward (Dao 2023, Algorithm 2), P recomputed from lse:
//
//   D_i = dO_i . O_i                                   (attn_delta_kernel, launched
//                                                       first by the host for either backward)
//   per key tile j, per query tile i:
//       P = exp(scale Q_i K_j^T + mask - lse_i)
//       dV_j += (P o Z / (1 - p))^T dO_i
//       dP = (dO_i V_j^T) o Z / (1 - p)
//       dS = P o (dP - D_i)                            (the additive mask's gradient too)
//       dK_j += scale dS^T Q_i,   dQ_i += scale dS K_j
//
// Work split: one block of 128 threads (4 warps) per (b, key/value head,
// tile of 16 keys); grid (ceil(S/16), min(B*Hk, 65535)), y stepping. The
// block loops over the query heads that read this key/value head (GQA: the
// group's dK, dV sums stay in registers, no atomics) and over query tiles of
// 32 rows (causal: from the tile holding the block's first key). Warp w owns
// keys 4w..4w+3. Scoring: lane t owns query row t; it forms the dots of its
// Q and dO rows (shared, padded by one element: conflict-free) with the
// warp's 4 K and V rows (broadcast). dK, dV: lane t owns dims t, t+32, ...
// (4 keys x NC chunks each), P and dS broadcast by shuffles. dQ: each warp
// adds its 4 keys' share into a shared 32 x E tile with shared atomics, and
// the block adds the tile to an fp32 (fp64 for double) dQ accumulator in
// global memory with atomicAdd, once per (key tile, query tile); a last pass
// converts it to q's dtype.
//
// Shared memory (Acc): K 16 x E, V 16 x Ev, Q 32 x (E+1), dO 32 x (Ev+1),
// dQ 32 x (E+1), lse and D 32 each (131 KB at E = Ev = 256, float).
#include <cstdint>
#include <type_traits>

#include "cuda/attention_common.cuh"
#include "cuda/check.cuh"

namespace nnforge {
namespace cuda {
namespace {

constexpr int kRows = 32, kKeys = 16, kWarps = 4, kKeysPerWarp = kKeys / kWarps;

// D_i = sum_d dO_id O_id: one warp per row.
template <typename T>
__global__ void attn_delta_kernel(const AttnParams<T> p, std::int64_t rows) {
    using Acc = typename Compute<T>::type;
    const int lane = threadIdx.x % 32;
    const std::int64_t warps = static_cast<std::int64_t>(gridDim.x) * (blockDim.x / 32);
    for (std::int64_t r = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32; r < rows; r += warps) {
        Acc acc = Acc(0);
        for (int d = lane; d < p.ev; d += 32) {
            acc += convert<Acc>(p.gout[r * p.ev + d]) * convert<Acc>(p.out[r * p.ev + d]);
        }
        acc = warp_sum(acc);
        if (lane == 0) p.delta[r] = acc;
    }
}

template <typename T, int NC>
__global__ void __launch_bounds__(128)
attn_bwd_simt_kernel(const AttnParams<T> p) {
    using Acc = typename Compute<T>::type;
    extern __shared__ __align__(16) unsigned char attn_smem[];
    Acc* sK = reinterpret_cast<Acc*>(attn_smem);  // [16][E]
    Acc* sV = sK + kKeys * p.e;                   // [16][Ev]
    Acc* sQ = sV + kKeys * p.ev;                  // [32][E + 1]
    Acc* sdO = sQ + kRows * (p.e + 1);            // [32][Ev + 1]
    Acc* sdQ = sdO + kRows * (p.ev + 1);          // [32][E + 1]
    Acc* sLse = sdQ + kRows * (p.e + 1);          // [32]
    Acc* sD = sLse + kRows;                       // [32]
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const std::int64_t key0 = static_cast<std::int64_t>(blockIdx.x) * kKeys;
    const int group = p.hq / p.hk;

    for (std::int64_t bhk = blockIdx.y; bhk < static_cast<std::int64_t>(p.b) * p.hk; bhk += gridDim.y) {
        const int bi = static_cast<int>(bhk / p.hk), hk = static_cast<int>(bhk % p.hk);
        __syncthreads();  // the previous (b, hk) is done with sK, sV
        load_rows(sK, p.e, p.k + bi * p.k_sb + hk * p.k_sh, p.k_sr, key0, p.s, kKeys, p.e);
        load_rows(sV, p.ev, p.v + bi * p.v_sb + hk * p.v_sh, p.v_sr, key0, p.s, kKeys, p.ev);

        Acc dk[kKeysPerWarp][NC], dv[kKeysPerWarp][NC];
#pragma unroll
        for (int kk = 0; kk < kKeysPerWarp; ++kk)
#pragma unroll
            for (int c = 0; c < NC; ++c) dk[kk][c] = dv[kk][c] = Acc(0);

        const std::int64_t q_start = p.causal ? (key0 / kRows) * kRows : 0;
        for (int h = hk * group; h < (hk + 1) * group; ++h) {
            const std::int64_t bh = static_cast<std::int64_t>(bi) * p.hq + h;
            const T* q = p.q + bi * p.q_sb + h * p.q_sh;
            for (std::int64_t q0 = q_start; q0 < p.l; q0 += kRows) {
                __syncthreads();  // the previous query tile is done with sQ, sdO, sdQ
                load_rows(sQ, p.e + 1, q, p.q_sr, q0, p.l, kRows, p.e);
                load_rows(sdO, p.ev + 1, p.gout + bh * p.l * p.ev, p.ev, q0, p.l, kRows, p.ev);
                for (int idx = threadIdx.x; idx < kRows * (p.e + 1); idx += blockDim.x) sdQ[idx] = Acc(0);
                if (threadIdx.x < kRows) {
                    const std::int64_t i = q0 + threadIdx.x;
                    sLse[threadIdx.x] = i < p.l ? p.lse[bh * p.l + i] : Acc(0);
                    sD[threadIdx.x] = i < p.l ? p.delta[bh * p.l + i] : Acc(0);
                }
                __syncthreads();

                // Lane = query row i: P_ij and dS_ij for the warp's 4 keys.
                const std::int64_t i = q0 + lane;
                const Acc* qrow = sQ + lane * (p.e + 1);
                const Acc* dorow = sdO + lane * (p.ev + 1);
                const Acc lse_i = sLse[lane], d_i = sD[lane];
                const std::uint64_t row_key =
                    p.dropout ? attn_row_key(p.seed, static_cast<std::uint64_t>(bh * p.l + i)) : 0;
                Acc pd[kKeysPerWarp], ds[kKeysPerWarp];
#pragma unroll
                for (int kk = 0; kk < kKeysPerWarp; ++kk) {
                    const int jt = warp * kKeysPerWarp + kk;
                    const std::int64_t j = key0 + jt;
                    const Acc* krow = sK + jt * p.e;
                    const Acc* vrow = sV + jt * p.ev;
                    Acc s = Acc(0), dpd = Acc(0);
                    for (int d = 0; d < p.e; ++d) s = fma(qrow[d], krow[d], s);
                    for (int d = 0; d < p.ev; ++d) dpd = fma(dorow[d], vrow[d], dpd);
                    const Acc x = attn_masked_score(p, bi, h, i, j, s);
                    const Acc pr = x == -INFINITY ? Acc(0) : exp(x - lse_i);  // lse = +inf -> 0
                    Acc z = Acc(1);
                    if (p.dropout) z = attn_keep(row_key, j, p.drop_threshold) ? p.drop_scale : Acc(0);
                    pd[kk] = pr * z;
                    ds[kk] = pr * (dpd * z - d_i);
                    if (p.dmask && pr != Acc(0)) {
                        atomicAdd(p.dmask + bi * p.dm_sb + h * p.dm_sh + i * p.dm_sr + j, ds[kk]);
                    }
                }

                // dV_j += Pd_ij dO_i, dK_j += dS_ij Q_i (scaled at the end): lanes own dims.
                for (int r = 0; r < kRows; ++r) {
                    Acc dor[NC], qr[NC];
#pragma unroll
                    for (int c = 0; c < NC; ++c) {
                        const int d = lane + 32 * c;
                        dor[c] = d < p.ev ? sdO[r * (p.ev + 1) + d] : Acc(0);
                        qr[c] = d < p.e ? sQ[r * (p.e + 1) + d] : Acc(0);
                    }
#pragma unroll
                    for (int kk = 0; kk < kKeysPerWarp; ++kk) {
                        const Acc pr = __shfl_sync(0xffffffffu, pd[kk], r);
                        const Acc sr = __shfl_sync(0xffffffffu, ds[kk], r);
#pragma unroll
                        for (int c = 0; c < NC; ++c) {
                            dv[kk][c] = fma(pr, dor[c], dv[kk][c]);
                            dk[kk][c] = fma(sr, qr[c], dk[kk][c]);
                        }
                    }
                }

                // dQ_i += dS_ij K_j over the warp's keys, into the shared tile.
                for (int d = 0; d < p.e; ++d) {
                    Acc acc = Acc(0);
#pragma unroll
                    for (int kk = 0; kk < kKeysPerWarp; ++kk) {
                        acc = fma(ds[kk], sK[(warp * kKeysPerWarp + kk) * p.e + d], acc);
                    }
                    if (acc != Acc(0)) atomicAdd(&sdQ[lane * (p.e + 1) + d], acc);
                }
                __syncthreads();
                Acc* dq = p.dq_acc + bh * p.l * p.e;
                for (int idx = threadIdx.x; idx < kRows * p.e; idx += blockDim.x) {
                    const int r = idx / p.e, d = idx % p.e;
                    const Acc val = sdQ[r * (p.e + 1) + d];
                    if (q0 + r < p.l && val != Acc(0)) atomicAdd(&dq[(q0 + r) * p.e + d], p.scale * val);
                }
            }
        }

        // This block owns dK, dV of its keys for (b, hk): plain stores.
#pragma unroll
        for (int kk = 0; kk < kKeysPerWarp; ++kk) {
            const std::int64_t j = key0 + warp * kKeysPerWarp + kk;
            if (j >= p.s) continue;
#pragma unroll
            for (int c = 0; c < NC; ++c) {
                const int d = lane + 32 * c;
                if (d < p.e) p.dk[(bhk * p.s + j) * p.e + d] = convert<T>(p.scale * dk[kk][c]);
                if (d < p.ev) p.dv[(bhk * p.s + j) * p.ev + d] = convert<T>(dv[kk][c]);
            }
        }
    }
}

template <typename T, int NC>
void launch_bwd(const AttnParams<T>& p, cudaStream_t stream) {
    using Acc = typename Compute<T>::type;
    const int smem = static_cast<int>(sizeof(Acc)) *
                     (kKeys * p.e + kKeys * p.ev + kRows * (p.e + 1) + kRows * (p.ev + 1) +
                      kRows * (p.e + 1) + 2 * kRows);
    auto kernel = attn_bwd_simt_kernel<T, NC>;
    NNF_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem),
                   "cudaFuncSetAttribute(attn_bwd_simt shared memory)");
    const std::int64_t items = static_cast<std::int64_t>(p.b) * p.hk;
    const dim3 grid(static_cast<unsigned>((p.s + kKeys - 1) / kKeys),
                    static_cast<unsigned>(items < 65535 ? items : 65535));
    kernel<<<grid, kWarps * 32, smem, stream>>>(p);
}

}  // namespace

template <typename T>
void launch_attn_delta(const AttnParams<T>& p, cudaStream_t stream) {
    const std::int64_t rows = static_cast<std::int64_t>(p.b) * p.hq * p.l;
    if (rows == 0) return;
    const std::int64_t blocks = (rows + 7) / 8;
    const unsigned grid = static_cast<unsigned>(blocks < 65535 ? blocks : 65535);
    attn_delta_kernel<T><<<grid, 256, 0, stream>>>(p, rows);
    check_launch("attn_delta", type_name<T>());
}

template <typename T>
void launch_attn_bwd_simt(const AttnParams<T>& p, int nc, cudaStream_t stream) {
    if (p.s == 0) return;
    switch (nc) {
        case 2: launch_bwd<T, 2>(p, stream); break;
        case 4: launch_bwd<T, 4>(p, stream); break;
        default:  // float64 is limited to head dims <= 128 (shared memory)
            if constexpr (std::is_same<T, double>::value) launch_bwd<T, 4>(p, stream);
            else launch_bwd<T, 8>(p, stream);
            break;
    }
    check_launch("attn_bwd_simt", type_name<T>());
}

template void launch_attn_delta<float>(const AttnParams<float>&, cudaStream_t);
template void launch_attn_delta<double>(const AttnParams<double>&, cudaStream_t);
template void launch_attn_delta<bf16>(const AttnParams<bf16>&, cudaStream_t);
template void launch_attn_delta<f16>(const AttnParams<f16>&, cudaStream_t);
template void launch_attn_bwd_simt<float>(const AttnParams<float>&, int, cudaStream_t);
template void launch_attn_bwd_simt<double>(const AttnParams<double>&, int, cudaStream_t);
template void launch_attn_bwd_simt<bf16>(const AttnParams<bf16>&, int, cudaStream_t);
template void launch_attn_bwd_simt<f16>(const AttnParams<f16>&, int, cudaStream_t);

}  // namespace cuda
}  // namespace nnforge
