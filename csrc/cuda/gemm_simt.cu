// The SIMT GEMM: C = act(alpha A B + beta C + bias) on CUDA cores, any dtype,
// any strides (gemm_kernels.cuh has the problem and epilogue).
//
// Tiling (Tile<T, BM>): a block of 256 threads, 16 x 16, computes a BM x BN
// tile of C, walking K in steps of BK = 8. Each step stages A's BM x BK and
// B's BK x BN slices in shared memory (as Acc, k-major: As[k][m], Bs[k][n]),
// and each thread accumulates a TM x TN register block, TM = BM / 16 and
// TN = BN / 16. The tiles (BN = 128 for float/bf16/f16, 64 for double):
//     float/bf16/f16: 128 x 128 (TM x TN = 8 x 8), 64 x 128 (4 x 8), 32 x 128 (2 x 8)
//     double:          64 x 64  (4 x 4),           32 x 64  (2 x 4)
// A thread's rows are two runs of TM/2, at ty*TM/2 and BM/2 + ty*TM/2 (its
// columns likewise, TN/2 at tx*TN/2 and BN/2 + tx*TN/2), so its reads of
// As[k] and Bs[k] are two aligned vectors each. A warp is 4 (ty) x 8 (tx)
// threads (tx = lane % 8 + 8 (warp % 2), ty = lane / 8 + 4 (warp / 2)): per k
// it reads 4 runs of As (<= 64 contiguous bytes) and 8 runs of Bs (<= 128
// contiguous bytes), one shared-memory wavefront per vector read, 4 per k for
// TM x TN FMAs: the 2 x 8 (float) and 2 x 4 (double, half-rate DFMA) blocks of
// the 32-row tiles still keep the FMA pipe as busy as the shared loads.
//
// Global loads: each thread fetches LA = BM*BK/256 consecutive elements of A
// along A's contiguous dim (k when a_sk == 1, else m), with one vector load
// when the layout is aligned (a_vec) and the run lies inside the matrix, else
// element by element with bounds checks (zeros outside); B alike with
// LB = BN*BK/256. Double buffering: the next K slice is loaded into registers
// while the current one is multiplied out of shared memory, then stored into
// the other buffer (one vector store when the run is contiguous in shared
// memory too); one __syncthreads per K step. Shared rows are padded by 16
// bytes so the transposing stores of a k-contiguous A spread over the banks.
//
// Grid: (ceil(N/BN), ceil(M/BM), min(batch, 65535)); z steps over the batch.
//
// Which tile (simt_tile_rows, in launch_gemm_simt): every tile is FMA-bound
// (above), so a smaller one loses only L2 traffic (A + B elements per FMA:
// (BM + BN) / (BM BN) per k, 0.016 at 128 x 128, 0.023 at 64 x 128, 0.039 at
// 32 x 128), while rows past M cost whole FMAs: a 128-row tile at M = 64
// multiplies 64 rows of zeros (half its FMAs; the LSTM's per-step h W_hh^T at
// batch 64). So:
//   1. rows: the smallest tile height >= M (32, 64, 128; double 32, 64), the
//      largest when M is bigger. M = 1..32 -> 32, 33..64 -> 64, 65+ -> 128.
//   2. fill: while blocks = ceil(M/BM) ceil(N/BN) batch satisfy
//      2 blocks <= SMs and BM > 32, halve BM. After step 1 M > BM/2, so the
//      row tiles grow (double when M is a multiple of BM) while every block
//      still has an SM of its own: the product finishes up to 2x sooner.
//      Between SMs/2 and SMs blocks, halving would put a second block on
//      some SMs (no less work on the busiest one), so the tile stays; that
//      threshold is a tuning knob to measure on a GPU.
// Examples on 132 SMs: LSTM step 64 x 4096 x 256 (H = 1024, split-K S = 4,
// batch 4): 64 x 128, 1 x 32 x 4 = 128 blocks (a 128-row tile gave the same
// 128 blocks with twice the FMAs each). 128 x 1024 x 4096: 8 blocks of 128 ->
// 16 of 64 -> 32 of 32. GPT decode 1 x 4096 x 4096: 32 x 128, 32 blocks.
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "cuda/check.cuh"
#include "cuda/context.cuh"
#include "cuda/dispatch.cuh"
#include "cuda/gemm_kernels.cuh"

namespace nnforge {
namespace cuda {
namespace {

// A BM_ x BN tile over 256 threads (16 x 16), BN = 128 (64 for double).
template <typename T, int BM_>
struct Tile {
    static constexpr bool kDouble = std::is_same<T, double>::value;
    static constexpr int BM = BM_, BN = kDouble ? 64 : 128, BK = 8;
    static constexpr int TX = 16, TY = 16;  // threads along n, along m
    static constexpr int kThreads = TX * TY;
    static constexpr int TM = BM / TY, TN = BN / TX;
    static constexpr int LA = BM * BK / kThreads;  // elements of A per thread per K step
    static constexpr int LB = BN * BK / kThreads;
    using Acc = typename Compute<T>::type;
    static constexpr int PAD = 16 / static_cast<int>(sizeof(Acc));
    static_assert(kThreads == 256, "the launch uses 256 threads");
    static_assert(TM * TY == BM && TN * TX == BN && TM % 2 == 0 && TN % 2 == 0,
                  "two runs of TM/2 rows and TN/2 columns per thread");
    static_assert(LA >= 1 && LB >= 1 && LA * kThreads == BM * BK && LB * kThreads == BN * BK &&
                      BK % LA == 0 && BK % LB == 0,
                  "loader runs tile the K slice");
    // Vector reads/stores of shared rows need 16-byte aligned row starts.
    static_assert(((BM + PAD) * sizeof(Acc)) % 16 == 0 && ((BN + PAD) * sizeof(Acc)) % 16 == 0,
                  "padded rows keep 16-byte alignment");
};

// Blocks per multiprocessor the registers must allow (__launch_bounds__), the
// most each variant takes without spilling (-Xptxas -v, sm_80 and sm_90a):
// 4 (<= 64 registers) for the 32-row tiles; at 64 x 128 3 (<= 85) for float, 2
// for bf16/f16 (85 spills on sm_90a); 2 (<= 128) for 128 x 128 with both runs
// along k (float also both along m / n); 1 for the other 128 x 128 (152..167
// registers) and double 64 x 64 (166..178; 128 spills on sm_90a). Left
// unbounded, ptxas gave the 32-row tiles 128 registers and spilled.
template <typename T, int BM, bool kAMContig, bool kBNContig>
constexpr int simt_min_blocks() {
    if (BM == 32) return 4;
    if (std::is_same<T, double>::value) return 1;
    if (BM == 64) return std::is_same<T, float>::value ? 3 : 2;
    if (!kAMContig && !kBNContig) return 2;
    return std::is_same<T, float>::value && kAMContig && kBNContig ? 2 : 1;
}

template <typename V, int N>
struct alignas(sizeof(V) * N) VecN {
    V v[N];
};

// Loads the run of L elements this thread owns of one operand's K slice.
// The operand is a matrix X(r, k) (r: m for A, n for B) at base + r*sr + k*sk,
// of rows x depth in range; kRContig says which index the run steps along.
template <typename T, int L, bool kRContig>
__device__ __forceinline__ void load_run(const T* base, std::int64_t sr, std::int64_t sk,
                                         std::int64_t rows, std::int64_t depth, int r, int k,
                                         bool vec, T (&regs)[L]) {
    const std::int64_t run_end = kRContig ? r + L : k + L;
    const bool in_other = kRContig ? (k < depth) : (r < rows);
    const std::int64_t limit = kRContig ? rows : depth;
    if (vec && in_other && run_end <= limit) {
        const VecN<T, L> v = *reinterpret_cast<const VecN<T, L>*>(base + r * sr + k * sk);
#pragma unroll
        for (int j = 0; j < L; ++j) regs[j] = v.v[j];
        return;
    }
#pragma unroll
    for (int j = 0; j < L; ++j) {
        const std::int64_t rr = kRContig ? r + j : r, kk = kRContig ? k : k + j;
        regs[j] = (rr < rows && kk < depth) ? base[rr * sr + kk * sk] : convert<T>(0.0f);
    }
}

// One thread's place in an operand's BR x BK slice: the run start (r, k).
template <int BR, int BK, int L, bool kRContig>
__device__ __forceinline__ void run_origin(int tid, int& r, int& k) {
    if (kRContig) {  // BK rows of BR/L runs along r
        k = tid / (BR / L);
        r = (tid % (BR / L)) * L;
    } else {  // BR rows of BK/L runs along k
        r = tid / (BK / L);
        k = (tid % (BK / L)) * L;
    }
}

// Stores a loaded run into the shared slice S[k][r] (row length ROW): one
// vector store when the run is along r (contiguous there too), else L scalar
// stores down k.
template <typename T, typename Acc, int L, int ROW, bool kRContig>
__device__ __forceinline__ void stash_run(Acc (*S)[ROW], int r, int k, const T (&regs)[L]) {
    if constexpr (kRContig) {
        VecN<Acc, L> v;
#pragma unroll
        for (int j = 0; j < L; ++j) v.v[j] = convert<Acc>(regs[j]);
        *reinterpret_cast<VecN<Acc, L>*>(&S[k][r]) = v;
    } else {
#pragma unroll
        for (int j = 0; j < L; ++j) S[k + j][r] = convert<Acc>(regs[j]);
    }
}

// 256 threads, simt_min_blocks() blocks per multiprocessor.
template <typename T, int BM_, bool kAMContig, bool kBNContig>
__global__ void __launch_bounds__(256, (simt_min_blocks<T, BM_, kAMContig, kBNContig>()))
gemm_simt_kernel(const GemmParams<T> p, bool a_vec, bool b_vec, bool c_vec) {
    using Cfg = Tile<T, BM_>;
    using Acc = typename Cfg::Acc;
    constexpr int BM = Cfg::BM, BN = Cfg::BN, BK = Cfg::BK, TM = Cfg::TM, TN = Cfg::TN;
    constexpr int LA = Cfg::LA, LB = Cfg::LB, PAD = Cfg::PAD;
    __shared__ __align__(16) Acc As[2][BK][BM + PAD];
    __shared__ __align__(16) Acc Bs[2][BK][BN + PAD];

    const int tid = threadIdx.x;
    // A warp is 4 x 8 threads (see the top comment); 8 warps cover 16 x 16.
    const int lane = tid % 32, warp = tid / 32;
    const int tx = lane % 8 + 8 * (warp % 2), ty = lane / 8 + 4 * (warp / 2);
    const std::int64_t m0 = static_cast<std::int64_t>(blockIdx.y) * BM;
    const std::int64_t n0 = static_cast<std::int64_t>(blockIdx.x) * BN;

    int ar, ak, br, bk;  // this thread's load runs (tile-relative)
    run_origin<BM, BK, LA, kAMContig>(tid, ar, ak);
    run_origin<BN, BK, LB, kBNContig>(tid, br, bk);

    for (std::int64_t bi = blockIdx.z; bi < p.batch; bi += gridDim.z) {
        // A's rows from m0, B's "rows" (its n) from n0: both as X(r, k).
        const T* a = p.a + bi * p.a_sb + m0 * p.a_sm;
        const T* b = p.b + bi * p.b_sb + n0 * p.b_sn;
        const std::int64_t a_rows = p.m - m0, b_rows = p.n - n0;

        Acc acc[TM][TN];
#pragma unroll
        for (int i = 0; i < TM; ++i)
#pragma unroll
            for (int j = 0; j < TN; ++j) acc[i][j] = Acc(0);

        T ra[LA], rb[LB];
        load_run<T, LA, kAMContig>(a, p.a_sm, p.a_sk, a_rows, p.k, ar, ak, a_vec, ra);
        load_run<T, LB, kBNContig>(b, p.b_sn, p.b_sk, b_rows, p.k, br, bk, b_vec, rb);
        auto stash = [&](int buf) {
            stash_run<T, Acc, LA, BM + PAD, kAMContig>(As[buf], ar, ak, ra);
            stash_run<T, Acc, LB, BN + PAD, kBNContig>(Bs[buf], br, bk, rb);
        };
        stash(0);
        __syncthreads();

        int buf = 0;
        for (std::int64_t k0 = 0; k0 < p.k; k0 += BK) {
            const bool has_next = k0 + BK < p.k;  // uniform over the block
            if (has_next) {  // in flight while the FMAs below run
                load_run<T, LA, kAMContig>(a + (k0 + BK) * p.a_sk, p.a_sm, p.a_sk, a_rows,
                                           p.k - k0 - BK, ar, ak, a_vec, ra);
                load_run<T, LB, kBNContig>(b + (k0 + BK) * p.b_sk, p.b_sn, p.b_sk, b_rows,
                                           p.k - k0 - BK, br, bk, b_vec, rb);
            }
#pragma unroll
            for (int kk = 0; kk < BK; ++kk) {
                Acc fa[TM], fb[TN];
                using VA = VecN<Acc, TM / 2>;
                using VB = VecN<Acc, TN / 2>;
                const VA a_lo = *reinterpret_cast<const VA*>(&As[buf][kk][ty * (TM / 2)]);
                const VA a_hi = *reinterpret_cast<const VA*>(&As[buf][kk][BM / 2 + ty * (TM / 2)]);
                const VB b_lo = *reinterpret_cast<const VB*>(&Bs[buf][kk][tx * (TN / 2)]);
                const VB b_hi = *reinterpret_cast<const VB*>(&Bs[buf][kk][BN / 2 + tx * (TN / 2)]);
#pragma unroll
                for (int i = 0; i < TM / 2; ++i) {
                    fa[i] = a_lo.v[i];
                    fa[TM / 2 + i] = a_hi.v[i];
                }
#pragma unroll
                for (int j = 0; j < TN / 2; ++j) {
                    fb[j] = b_lo.v[j];
                    fb[TN / 2 + j] = b_hi.v[j];
                }
#pragma unroll
                for (int i = 0; i < TM; ++i)
#pragma unroll
                    for (int j = 0; j < TN; ++j) acc[i][j] = fma(fa[i], fb[j], acc[i][j]);
            }
            if (has_next) {
                // The other buffer was last read in the previous step, before the
                // barrier that ended it.
                stash(buf ^ 1);
                __syncthreads();
                buf ^= 1;
            }
        }

        // Epilogue: two row runs x two column runs.
#pragma unroll
        for (int i = 0; i < TM; ++i) {
            const std::int64_t m =
                m0 + (i < TM / 2 ? ty * (TM / 2) + i : BM / 2 + ty * (TM / 2) + i - TM / 2);
            if (m >= p.m) continue;
#pragma unroll
            for (int half = 0; half < 2; ++half) {
                const std::int64_t n = n0 + half * (BN / 2) + tx * (TN / 2);
                const bool full = n + TN / 2 <= p.n;
                if (c_vec && full && p.beta == Acc(0)) {
                    VecN<T, TN / 2> out;
#pragma unroll
                    for (int j = 0; j < TN / 2; ++j) {
                        Acc v = p.alpha * acc[i][half * (TN / 2) + j];
                        if (p.bias) v += convert<Acc>(p.bias[(n + j) * p.bias_s]);
                        out.v[j] = convert<T>(gemm_activate(v, p.act));
                    }
                    *reinterpret_cast<VecN<T, TN / 2>*>(p.c + bi * p.c_sb + m * p.c_sm + n) = out;
                } else {
#pragma unroll
                    for (int j = 0; j < TN / 2; ++j) {
                        if (n + j < p.n) gemm_store(p, bi, m, n + j, acc[i][half * (TN / 2) + j]);
                    }
                }
            }
        }
        __syncthreads();  // the next batch item reuses As/Bs
    }
}

bool aligned(const void* ptr, int bytes) {
    return reinterpret_cast<std::uintptr_t>(ptr) % static_cast<std::uintptr_t>(bytes) == 0;
}

std::int64_t cdiv(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

// The tile height BM for an M x N product over `batch` items on `sms`
// multiprocessors (the rule and its arithmetic: the top comment).
int simt_tile_rows(bool dbl, std::int64_t m, std::int64_t n, std::int64_t batch, int sms) {
    const int smallest = 32, largest = dbl ? 64 : 128, bn = dbl ? 64 : 128;
    int bm = smallest;
    while (bm < largest && bm < m) bm *= 2;  // 1. the smallest height >= M
    // 2. fill: blocks (batch capped: only the comparison with sms matters, no overflow)
    const std::int64_t items = batch < 65536 ? batch : 65536;
    const std::int64_t cols = cdiv(n, bn) < 65536 ? cdiv(n, bn) : 65536;
    while (bm > smallest && 2 * cdiv(m, bm) * cols * items <= sms) bm /= 2;
    return bm;
}

template <typename T, int BM>
void launch_tile(const GemmParams<T>& p, cudaStream_t stream) {
    using Cfg = Tile<T, BM>;
    // Which index each operand's runs step along: its unit stride if it has one,
    // else the smaller stride (the loads are then scalar).
    const bool a_m = p.a_sk == 1 ? false : (p.a_sm == 1 ? true : p.a_sm < p.a_sk);
    const bool b_n = p.b_sn == 1 ? true : (p.b_sk == 1 ? false : p.b_sn < p.b_sk);
    const std::int64_t a_other = a_m ? p.a_sk : p.a_sm, b_other = b_n ? p.b_sk : p.b_sn;
    // A vector run of L at (r, k) of item bi sits at a multiple of L elements
    // from the start when the other stride and the batch stride are multiples
    // of L (the run's own start, and m0 or n0, are multiples of L).
    constexpr int LA = Cfg::LA, LB = Cfg::LB, size = static_cast<int>(sizeof(T));
    const bool a_vec = (a_m ? p.a_sm : p.a_sk) == 1 && a_other % LA == 0 && p.a_sb % LA == 0 &&
                       aligned(p.a, LA * size);
    const bool b_vec = (b_n ? p.b_sn : p.b_sk) == 1 && b_other % LB == 0 && p.b_sb % LB == 0 &&
                       aligned(p.b, LB * size);
    constexpr int half_n = Cfg::TN / 2;
    const bool c_vec = p.c_sn == 1 && p.c_sm % half_n == 0 && p.c_sb % half_n == 0 &&
                       aligned(p.c, half_n * size);

    const std::int64_t row_tiles = cdiv(p.m, Cfg::BM), col_tiles = cdiv(p.n, Cfg::BN);
    if (row_tiles > 65535 || col_tiles > 2147483647LL) {
        throw std::invalid_argument("gemm: " + std::to_string(p.m) + " x " + std::to_string(p.n) +
                                    " needs more than 65535 row tiles of " +
                                    std::to_string(Cfg::BM) + " (grid limits)");
    }
    const dim3 grid(static_cast<unsigned>(col_tiles), static_cast<unsigned>(row_tiles),
                    static_cast<unsigned>(p.batch < 65535 ? p.batch : 65535));
    if (a_m && b_n) {
        gemm_simt_kernel<T, BM, true, true><<<grid, 256, 0, stream>>>(p, a_vec, b_vec, c_vec);
    } else if (a_m) {
        gemm_simt_kernel<T, BM, true, false><<<grid, 256, 0, stream>>>(p, a_vec, b_vec, c_vec);
    } else if (b_n) {
        gemm_simt_kernel<T, BM, false, true><<<grid, 256, 0, stream>>>(p, a_vec, b_vec, c_vec);
    } else {
        gemm_simt_kernel<T, BM, false, false><<<grid, 256, 0, stream>>>(p, a_vec, b_vec, c_vec);
    }
    check_launch("gemm_simt", type_name<T>());
}

}  // namespace

template <typename T>
void launch_gemm_simt(const GemmParams<T>& p, cudaStream_t stream) {
    if (p.batch <= 0 || p.m <= 0 || p.n <= 0) return;  // nothing to write (a 0-block grid fails)
    constexpr bool dbl = std::is_same<T, double>::value;
    int device = 0;
    NNF_CUDA_CHECK(cudaGetDevice(&device), "cudaGetDevice");  // gemm.cu made the operands' current
    const int bm = simt_tile_rows(dbl, p.m, p.n, p.batch, device_props(device).multiProcessorCount);
    if constexpr (dbl) {
        if (bm == 32) launch_tile<T, 32>(p, stream);
        else launch_tile<T, 64>(p, stream);
    } else {
        if (bm == 32) launch_tile<T, 32>(p, stream);
        else if (bm == 64) launch_tile<T, 64>(p, stream);
        else launch_tile<T, 128>(p, stream);
    }
}

template void launch_gemm_simt<float>(const GemmParams<float>&, cudaStream_t);
template void launch_gemm_simt<double>(const GemmParams<double>&, cudaStream_t);
template void launch_gemm_simt<bf16>(const GemmParams<bf16>&, cudaStream_t);
template void launch_gemm_simt<f16>(const GemmParams<f16>&, cudaStream_t);

}  // namespace cuda
}  // namespace nnforge
