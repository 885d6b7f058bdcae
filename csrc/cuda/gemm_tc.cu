// The tensor-core GEMM (sm_80+): C = act(alpha A B + beta C + bias) with
// mma.sync, fp32 accumulation:
//     bf16, f16: mma.sync.m16n8k16.row.col.f32.{bf16,f16}, K step 16
//     float:     mma.sync.m16n8k8.row.col.f32.tf32 (inputs rounded to tf32 with
//                cvt.rna, as cuBLAS's TF32 mode), K step 8
// (gemm_kernels.cuh has the problem and epilogue.)
//
// Tiling: a block of 256 threads (8 warps, 2 along M x 4 along N) computes a
// 128 x 128 tile of C; each warp a 64 x 32 sub-tile = 4 x 4 mma tiles of
// 16 x 8, 64 fp32 accumulators per thread. K advances BK = 2 K steps (64 bytes
// of each row) at a time through a 4-stage cp.async pipeline:
//     prologue: stages 0..2 in flight;
//     step kt:  wait until stage kt has landed (wait_group 2), barrier, issue
//               the copy of step kt+3 into the stage step kt-1 used (every
//               warp finished it before the barrier), then run the mmas of kt.
// Each operand's slice is copied as it lies in memory, in 16-byte chunks along
// its contiguous dim (cp.async with a source size below 16 zero-fills the
// tails past M, N or K; 0 for rows outside the matrix):
//     A with a_sk == 1: sA[m][k] (BM x BK)   A with a_sm == 1: sA[k][m] (BK x BM)
//     B with b_sk == 1: sB[n][k] (BN x BK)   B with b_sn == 1: sB[k][n] (BK x BN)
// Rows are padded (16 bytes for the [.][k] tiles, 8 elements for the others)
// so the 8 row addresses of each ldmatrix phase, and the scalar tf32 reads,
// fall in distinct banks. Fragments come from ldmatrix.x4 (k-contiguous tiles)
// or ldmatrix.x4.trans (m/n-contiguous tiles, 16-bit types); tf32 reads
// m/n-contiguous tiles with scalar loads (ldmatrix.trans moves 16-bit halves).
//
// mma fragment layout (g = lane / 4, t = lane % 4; PTX ISA "mma.m16n8k16"):
//     A 16 x 16: a0 (g, 2t..2t+1) a1 (g+8, 2t..) a2 (g, 2t+8..) a3 (g+8, 2t+8..)
//     B 16 x 8:  b0 (k 2t..2t+1, n g)  b1 (k 2t+8.., n g)
//     C 16 x 8:  c0 (g, 2t) c1 (g, 2t+1) c2 (g+8, 2t) c3 (g+8, 2t+1)
//   m16n8k8 tf32: a0 (g, t) a1 (g+8, t) a2 (g, t+4) a3 (g+8, t+4); b0 (k t, n g)
//     b1 (k t+4, n g); C as above.
//
// Grid: (ceil(N/128), ceil(M/128), min(batch, 65535)); z steps over the batch.
#include <cstdint>
#include <type_traits>

#include "cuda/check.cuh"
#include "cuda/context.cuh"
#include "cuda/dispatch.cuh"
#include "cuda/gemm_kernels.cuh"
#include "cuda/mma_sm80.cuh"

namespace nnforge {
namespace cuda {
namespace {

template <typename T>
struct TcCfg {
    static constexpr bool kTf32 = std::is_same<T, float>::value;
    static constexpr int BM = 128, BN = 128, WM = 64, WN = 32;
    static constexpr int MI = WM / 16, NI = WN / 8;  // mma tiles per warp
    static constexpr int KSTEP = kTf32 ? 8 : 16;
    static constexpr int BK = 2 * KSTEP;                    // 64 bytes of a row
    static constexpr int EPC = 16 / static_cast<int>(sizeof(T));  // elements per 16-byte chunk
    static constexpr int STAGES = 4;
    static constexpr int kThreads = 256;
};

// Elements of one stage's tile for an operand whose contiguous dim is k
// (rows x (BK + pad)) or m/n (BK x (rows + 8)).
template <typename T, bool kKContig>
__host__ __device__ constexpr int tile_elems() {
    using C = TcCfg<T>;
    return kKContig ? C::BM * (C::BK + C::EPC) : C::BK * (C::BM + 8);
}
template <typename T, bool kKContig>
__host__ __device__ constexpr int tile_ld() {  // row length in elements
    using C = TcCfg<T>;
    return kKContig ? C::BK + C::EPC : C::BM + 8;
}

template <typename T, bool kAK, bool kBK>
__host__ __device__ constexpr int tc_smem_bytes() {
    return TcCfg<T>::STAGES * (tile_elems<T, kAK>() + tile_elems<T, kBK>()) *
           static_cast<int>(sizeof(T));
}

// Copies one operand's slice into a stage: `outer` rows of `inner` elements
// (the inner dim contiguous in memory, row r at src + r * ld), rows >= outer_n
// and elements >= inner_n read as zeros. `origin` is a valid address to give
// the zero-byte copies.
template <typename T, int kOuter, int kInner, int kLd>
__device__ __forceinline__ void copy_slice(T* dst, const T* src, std::int64_t ld,
                                           std::int64_t outer_n, std::int64_t inner_n,
                                           const T* origin, int tid) {
    constexpr int EPC = TcCfg<T>::EPC;
    constexpr int kPerRow = kInner / EPC;
    constexpr int kChunks = kOuter * kPerRow;
    static_assert(kChunks % TcCfg<T>::kThreads == 0, "whole chunks per thread");
#pragma unroll
    for (int c = tid; c < kChunks; c += TcCfg<T>::kThreads) {
        const int o = c / kPerRow, i = (c % kPerRow) * EPC;
        std::int64_t left = inner_n - i;
        left = left < 0 ? 0 : (left > EPC ? EPC : left);
        const int bytes = o < outer_n ? static_cast<int>(left) * static_cast<int>(sizeof(T)) : 0;
        cp_async16(dst + o * kLd + i, bytes ? src + o * ld + i : origin, bytes);
    }
}

// 16-bit types: two blocks per multiprocessor (at most 128 registers, 2 x 80 KB
// shared; sm_80: no spills for NN-like layouts, 12 bytes for the mixed ones).
// tf32 keeps one (161+ registers; capping it at 128 spilled 20..76 bytes).
template <typename T>
__host__ __device__ constexpr int tc_min_blocks() { return std::is_same<T, float>::value ? 1 : 2; }

template <typename T, bool kAK, bool kBK>
__global__ void __launch_bounds__(256, tc_min_blocks<T>())
gemm_tc_kernel(const GemmParams<T> p, bool c_pair) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    using C = TcCfg<T>;
    constexpr int BM = C::BM, BN = C::BN, BK = C::BK, KSTEP = C::KSTEP, STAGES = C::STAGES;
    constexpr int MI = C::MI, NI = C::NI;
    constexpr int A_ELEMS = tile_elems<T, kAK>(), B_ELEMS = tile_elems<T, kBK>();
    constexpr int A_LD = tile_ld<T, kAK>(), B_LD = tile_ld<T, kBK>();
    constexpr bool kTf32 = C::kTf32;
    extern __shared__ __align__(16) unsigned char tc_smem[];
    T* sA = reinterpret_cast<T*>(tc_smem);
    T* sB = sA + STAGES * A_ELEMS;

    const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    const int warp_m = warp / 4, warp_n = warp % 4;
    const int g = lane / 4, t = lane % 4;
    const std::int64_t m0 = static_cast<std::int64_t>(blockIdx.y) * BM;
    const std::int64_t n0 = static_cast<std::int64_t>(blockIdx.x) * BN;
    const std::int64_t ktiles = (p.k + BK - 1) / BK;

    for (std::int64_t bi = blockIdx.z; bi < p.batch; bi += gridDim.z) {
        const T* a = p.a + bi * p.a_sb;
        const T* b = p.b + bi * p.b_sb;

        auto load_stage = [&](int stage, std::int64_t kt) {
            const std::int64_t k0 = kt * BK;
            T* dA = sA + stage * A_ELEMS;
            T* dB = sB + stage * B_ELEMS;
            if (kAK) copy_slice<T, BM, BK, A_LD>(dA, a + m0 * p.a_sm + k0, p.a_sm, p.m - m0, p.k - k0, a, tid);
            else copy_slice<T, BK, BM, A_LD>(dA, a + k0 * p.a_sk + m0, p.a_sk, p.k - k0, p.m - m0, a, tid);
            if (kBK) copy_slice<T, BN, BK, B_LD>(dB, b + n0 * p.b_sn + k0, p.b_sn, p.n - n0, p.k - k0, b, tid);
            else copy_slice<T, BK, BN, B_LD>(dB, b + k0 * p.b_sk + n0, p.b_sk, p.k - k0, p.n - n0, b, tid);
        };

        float acc[MI][NI][4];
#pragma unroll
        for (int i = 0; i < MI; ++i)
#pragma unroll
            for (int j = 0; j < NI; ++j)
#pragma unroll
                for (int r = 0; r < 4; ++r) acc[i][j][r] = 0.f;

#pragma unroll
        for (int s = 0; s < STAGES - 1; ++s) {
            if (s < ktiles) load_stage(s, s);
            cp_async_commit();  // empty groups keep the count: group s is step s
        }

        for (std::int64_t kt = 0; kt < ktiles; ++kt) {
            cp_async_wait<STAGES - 2>();  // this thread's copies of step kt landed
            __syncthreads();              // everyone's; and step kt-1's reads are done
            const std::int64_t next = kt + STAGES - 1;
            if (next < ktiles) load_stage(static_cast<int>(next % STAGES), next);
            cp_async_commit();

            const int stage = static_cast<int>(kt % STAGES);
            const T* tA = sA + stage * A_ELEMS;
            const T* tB = sB + stage * B_ELEMS;
#pragma unroll
            for (int ks = 0; ks < BK / KSTEP; ++ks) {
                const int kb = ks * KSTEP;
                std::uint32_t fa[MI][4], fb[NI][2];
                // ldmatrix.x4: lane l gives the address of row l % 8 of matrix l / 8.
                const int lr = lane % 8, lj = lane / 8;
#pragma unroll
                for (int mi = 0; mi < MI; ++mi) {
                    const int mb = warp_m * C::WM + mi * 16;
                    if (kAK) {  // matrix j: rows mb + (j&1)*8, k cols kb + (j>>1)*(KSTEP/2)
                        ldmatrix_x4<false>(fa[mi], tA + (mb + lr + (lj & 1) * 8) * A_LD +
                                                       kb + (lj >> 1) * (KSTEP / 2));
                    } else if (!kTf32) {  // stored [k][m]: matrix j: k rows kb + (j>>1)*8, m cols mb + (j&1)*8
                        ldmatrix_x4<true>(fa[mi], tA + (kb + lr + (lj >> 1) * 8) * A_LD + mb + (lj & 1) * 8);
                    } else {
                        const float* f = reinterpret_cast<const float*>(tA);
                        fa[mi][0] = __float_as_uint(f[(kb + t) * A_LD + mb + g]);
                        fa[mi][1] = __float_as_uint(f[(kb + t) * A_LD + mb + g + 8]);
                        fa[mi][2] = __float_as_uint(f[(kb + t + 4) * A_LD + mb + g]);
                        fa[mi][3] = __float_as_uint(f[(kb + t + 4) * A_LD + mb + g + 8]);
                    }
                }
#pragma unroll
                for (int nj = 0; nj < NI / 2; ++nj) {  // two n-tiles of 8 per ldmatrix.x4
                    const int nb = warp_n * C::WN + nj * 16;
                    std::uint32_t r[4];
                    if (kBK) {  // stored [n][k]: matrix j: n rows nb + (j>>1)*8, k cols kb + (j&1)*(KSTEP/2)
                        ldmatrix_x4<false>(r, tB + (nb + lr + (lj >> 1) * 8) * B_LD + kb + (lj & 1) * (KSTEP / 2));
                    } else if (!kTf32) {  // stored [k][n]: matrix j: k rows kb + (j&1)*8, n cols nb + (j>>1)*8
                        ldmatrix_x4<true>(r, tB + (kb + lr + (lj & 1) * 8) * B_LD + nb + (lj >> 1) * 8);
                    } else {
                        const float* f = reinterpret_cast<const float*>(tB);
                        r[0] = __float_as_uint(f[(kb + t) * B_LD + nb + g]);
                        r[1] = __float_as_uint(f[(kb + t + 4) * B_LD + nb + g]);
                        r[2] = __float_as_uint(f[(kb + t) * B_LD + nb + 8 + g]);
                        r[3] = __float_as_uint(f[(kb + t + 4) * B_LD + nb + 8 + g]);
                    }
                    fb[2 * nj][0] = r[0];
                    fb[2 * nj][1] = r[1];
                    fb[2 * nj + 1][0] = r[2];
                    fb[2 * nj + 1][1] = r[3];
                }
                if (kTf32) {
#pragma unroll
                    for (int mi = 0; mi < MI; ++mi)
#pragma unroll
                        for (int r = 0; r < 4; ++r) fa[mi][r] = to_tf32(fa[mi][r]);
#pragma unroll
                    for (int ni = 0; ni < NI; ++ni)
#pragma unroll
                        for (int r = 0; r < 2; ++r) fb[ni][r] = to_tf32(fb[ni][r]);
                }
#pragma unroll
                for (int mi = 0; mi < MI; ++mi)
#pragma unroll
                    for (int ni = 0; ni < NI; ++ni) mma<T>(acc[mi][ni], fa[mi], fb[ni]);
            }
        }
        cp_async_wait<0>();  // only empty groups can be pending here; drain them anyway
        __syncthreads();     // the next batch item refills the stages

        // Epilogue: thread holds C(g [+8], 2t [+1]) of each 16 x 8 tile.
#pragma unroll
        for (int mi = 0; mi < MI; ++mi) {
#pragma unroll
            for (int half = 0; half < 2; ++half) {
                const std::int64_t m = m0 + warp_m * C::WM + mi * 16 + g + half * 8;
                if (m >= p.m) continue;
#pragma unroll
                for (int ni = 0; ni < NI; ++ni) {
                    const std::int64_t n = n0 + warp_n * C::WN + ni * 8 + 2 * t;
                    const float v0 = acc[mi][ni][2 * half], v1 = acc[mi][ni][2 * half + 1];
                    if (c_pair && n + 1 < p.n && p.beta == 0.f) {
                        float r0 = p.alpha * v0, r1 = p.alpha * v1;
                        if (p.bias) {
                            r0 += convert<float>(p.bias[n * p.bias_s]);
                            r1 += convert<float>(p.bias[(n + 1) * p.bias_s]);
                        }
                        struct alignas(2 * sizeof(T)) Pair { T x, y; };
                        Pair out{convert<T>(gemm_activate(r0, p.act)), convert<T>(gemm_activate(r1, p.act))};
                        *reinterpret_cast<Pair*>(p.c + bi * p.c_sb + m * p.c_sm + n) = out;
                    } else {
                        if (n < p.n) gemm_store(p, bi, m, n, v0);
                        if (n + 1 < p.n) gemm_store(p, bi, m, n + 1, v1);
                    }
                }
            }
        }
    }
#endif  // __CUDA_ARCH__ >= 800
}

template <typename T>
bool aligned16(const void* ptr) {
    return reinterpret_cast<std::uintptr_t>(ptr) % 16 == 0;
}

template <typename T, bool kAK, bool kBK>
void launch_variant(const GemmParams<T>& p, bool c_pair, cudaStream_t stream) {
    constexpr int smem = tc_smem_bytes<T, kAK, kBK>();
    auto kernel = gemm_tc_kernel<T, kAK, kBK>;
    NNF_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem),
                   "cudaFuncSetAttribute(gemm_tc shared memory)");
    using C = TcCfg<T>;
    const dim3 grid(static_cast<unsigned>((p.n + C::BN - 1) / C::BN),
                    static_cast<unsigned>((p.m + C::BM - 1) / C::BM),
                    static_cast<unsigned>(p.batch < 65535 ? p.batch : 65535));
    kernel<<<grid, C::kThreads, smem, stream>>>(p, c_pair);
}

}  // namespace

template <typename T>
bool gemm_tc_layout_ok(const GemmParams<T>& p) {
    constexpr std::int64_t epc = TcCfg<T>::EPC;
    auto operand_ok = [&](const T* ptr, std::int64_t sb, std::int64_t s_outer, std::int64_t s_k) {
        // contiguous along k (s_k == 1) or along m/n (s_outer == 1); the other
        // stride and the batch stride whole 16-byte chunks.
        const bool k_contig = s_k == 1, o_contig = s_outer == 1;
        if (!k_contig && !o_contig) return false;
        const std::int64_t other = k_contig ? s_outer : s_k;
        return aligned16<T>(ptr) && other % epc == 0 && sb % epc == 0;
    };
    return operand_ok(p.a, p.a_sb, p.a_sm, p.a_sk) && operand_ok(p.b, p.b_sb, p.b_sn, p.b_sk);
}

template <typename T>
void launch_gemm_tc(const GemmParams<T>& p, cudaStream_t stream) {
    // When both strides are 1 (a dim of size 1), either tile layout is right.
    const bool ak = p.a_sk == 1, bk = p.b_sk == 1;
    const bool c_pair = p.c_sn == 1 && p.c_sm % 2 == 0 && p.c_sb % 2 == 0 &&
                        reinterpret_cast<std::uintptr_t>(p.c) % (2 * sizeof(T)) == 0;
    if (ak && bk) launch_variant<T, true, true>(p, c_pair, stream);
    else if (ak) launch_variant<T, true, false>(p, c_pair, stream);
    else if (bk) launch_variant<T, false, true>(p, c_pair, stream);
    else launch_variant<T, false, false>(p, c_pair, stream);
    check_launch("gemm_tc", type_name<T>());
}

template bool gemm_tc_layout_ok<float>(const GemmParams<float>&);
template bool gemm_tc_layout_ok<bf16>(const GemmParams<bf16>&);
template bool gemm_tc_layout_ok<f16>(const GemmParams<f16>&);
template void launch_gemm_tc<float>(const GemmParams<float>&, cudaStream_t);
template void launch_gemm_tc<bf16>(const GemmParams<bf16>&, cudaStream_t);
template void launch_gemm_tc<f16>(const GemmParams<f16>&, cudaStream_t);

}  // namespace cuda
}  // namespace nnforge
