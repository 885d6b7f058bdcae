// The SIMT GEMM: C = act(alpha A B + beta C + bias) on CUDA cores, any dtype,
// any strides (gemm_kernels.cuh has the problem and epilogue).
//
// Tiling (Tile<T>): a block of 256 threads computes a BM x BN tile of C,
// walking K in steps of BK. Each step stages A's BM x BK and B's BK x BN
// slices in shared memory (as Acc, k-major: As[k][m], Bs[k][n]), and each
// thread accumulates a TM x TN register block:
//     float/bf16/f16: BM = BN = 128, BK = 8, TM = TN = 8   (16 x 16 threads)
//     double:         BM = BN = 64,  BK = 8, TM = TN = 4
// A thread's rows are two runs of TM/2, at ty*TM/2 and BM/2 + ty*TM/2 (its
// columns likewise), so its reads of As[k] and Bs[k] are two aligned vectors
// of TM/2 each, and a warp reads As with 2 distinct addresses (broadcast).
//
// Global loads: each thread fetches LA = BM*BK/256 consecutive elements of A
// along A's contiguous dim (k when a_sk == 1, else m), with one vector load
// when the layout is aligned (a_vec) and the run lies inside the matrix, else
// element by element with bounds checks (zeros outside); B alike. Double
// buffering: the next K slice is loaded into registers while the current one
// is multiplied out of shared memory, then stored into the other buffer; one
// __syncthreads per K step. Shared rows are padded by 16 bytes so the
// transposing stores of a k-contiguous A spread over the banks.
//
// Grid: (ceil(N/BN), ceil(M/BM), min(batch, 65535)); z steps over the batch.
#include <cstdint>
#include <type_traits>

#include "cuda/check.cuh"
#include "cuda/dispatch.cuh"
#include "cuda/gemm_kernels.cuh"

namespace nnforge {
namespace cuda {
namespace {

template <typename T>
struct Tile {
    static constexpr bool kDouble = std::is_same<T, double>::value;
    static constexpr int BM = kDouble ? 64 : 128, BN = BM, BK = 8;
    static constexpr int TM = kDouble ? 4 : 8, TN = TM;
    static constexpr int kThreads = (BM / TM) * (BN / TN);  // 256
    static constexpr int LA = BM * BK / kThreads;  // elements of A per thread per K step
    static constexpr int LB = BN * BK / kThreads;
    using Acc = typename Compute<T>::type;
    static constexpr int PAD = 16 / static_cast<int>(sizeof(Acc));
    static_assert(kThreads == 256, "the launch uses 256 threads");
    static_assert(LA == LB && LA >= 2, "loader runs");
};

template <typename V, int N>
struct alignas(sizeof(V) * N) VecN {
    V v[N];
};

// Loads the run of L elements this thread owns of one operand's K slice.
// The operand is a matrix X(r, k) (r: m for A, n for B) at base + r*sr + k*sk,
// of rows x depth in range; `r_contig` says which index the run steps along.
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

// One block of 256 per multiprocessor is guaranteed (126..167 registers, no
// spills on sm_80); __launch_bounds__(256, 2) caps float at 128 registers but
// spills 12 bytes in the mixed-layout variants (a tuning option to measure).
template <typename T, bool kAMContig, bool kBNContig>
__global__ void __launch_bounds__(256)
gemm_simt_kernel(const GemmParams<T> p, bool a_vec, bool b_vec, bool c_vec) {
    using Cfg = Tile<T>;
    using Acc = typename Cfg::Acc;
    constexpr int BM = Cfg::BM, BN = Cfg::BN, BK = Cfg::BK, TM = Cfg::TM, TN = Cfg::TN;
    constexpr int L = Cfg::LA, PAD = Cfg::PAD;
    __shared__ __align__(16) Acc As[2][BK][BM + PAD];
    __shared__ __align__(16) Acc Bs[2][BK][BN + PAD];

    const int tid = threadIdx.x;
    const int tx = tid % (BN / TN), ty = tid / (BN / TN);
    const std::int64_t m0 = static_cast<std::int64_t>(blockIdx.y) * BM;
    const std::int64_t n0 = static_cast<std::int64_t>(blockIdx.x) * BN;

    int ar, ak, br, bk;  // this thread's load runs (tile-relative)
    run_origin<BM, BK, L, kAMContig>(tid, ar, ak);
    run_origin<BN, BK, L, kBNContig>(tid, br, bk);

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

        T ra[L], rb[L];
        load_run<T, L, kAMContig>(a, p.a_sm, p.a_sk, a_rows, p.k, ar, ak, a_vec, ra);
        load_run<T, L, kBNContig>(b, p.b_sn, p.b_sk, b_rows, p.k, br, bk, b_vec, rb);
        auto stash = [&](int buf) {
#pragma unroll
            for (int j = 0; j < L; ++j) {
                if (kAMContig) As[buf][ak][ar + j] = convert<Acc>(ra[j]);
                else As[buf][ak + j][ar] = convert<Acc>(ra[j]);
                if (kBNContig) Bs[buf][bk][br + j] = convert<Acc>(rb[j]);
                else Bs[buf][bk + j][br] = convert<Acc>(rb[j]);
            }
        };
        stash(0);
        __syncthreads();

        int buf = 0;
        for (std::int64_t k0 = 0; k0 < p.k; k0 += BK) {
            const bool has_next = k0 + BK < p.k;
            if (has_next) {  // in flight while the FMAs below run
                load_run<T, L, kAMContig>(a + (k0 + BK) * p.a_sk, p.a_sm, p.a_sk, a_rows,
                                          p.k - k0 - BK, ar, ak, a_vec, ra);
                load_run<T, L, kBNContig>(b + (k0 + BK) * p.b_sk, p.b_sn, p.b_sk, b_rows,
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
            const std::int64_t m = m0 + (i < TM / 2 ? ty * (TM / 2) + i : BM / 2 + ty * (TM / 2) + i - TM / 2);
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

template <typename T>
bool aligned(const void* ptr, int bytes) {
    return reinterpret_cast<std::uintptr_t>(ptr) % static_cast<std::uintptr_t>(bytes) == 0;
}

}  // namespace

template <typename T>
void launch_gemm_simt(const GemmParams<T>& p, cudaStream_t stream) {
    using Cfg = Tile<T>;
    constexpr int L = Cfg::LA;
    constexpr int vbytes = L * static_cast<int>(sizeof(T));
    // Which index each operand's runs step along: its unit stride if it has one,
    // else the smaller stride (the loads are then scalar).
    const bool a_m = p.a_sk == 1 ? false : (p.a_sm == 1 ? true : p.a_sm < p.a_sk);
    const bool b_n = p.b_sn == 1 ? true : (p.b_sk == 1 ? false : p.b_sn < p.b_sk);
    const std::int64_t a_other = a_m ? p.a_sk : p.a_sm, b_other = b_n ? p.b_sk : p.b_sn;
    const bool a_vec = (a_m ? p.a_sm : p.a_sk) == 1 && a_other % L == 0 && p.a_sb % L == 0 &&
                       aligned<T>(p.a, vbytes);
    const bool b_vec = (b_n ? p.b_sn : p.b_sk) == 1 && b_other % L == 0 && p.b_sb % L == 0 &&
                       aligned<T>(p.b, vbytes);
    constexpr int half_n = Cfg::TN / 2;
    const bool c_vec = p.c_sn == 1 && p.c_sm % half_n == 0 && p.c_sb % half_n == 0 &&
                       aligned<T>(p.c, half_n * static_cast<int>(sizeof(T)));

    const dim3 grid(static_cast<unsigned>((p.n + Cfg::BN - 1) / Cfg::BN),
                    static_cast<unsigned>((p.m + Cfg::BM - 1) / Cfg::BM),
                    static_cast<unsigned>(p.batch < 65535 ? p.batch : 65535));
    if (a_m && b_n) gemm_simt_kernel<T, true, true><<<grid, 256, 0, stream>>>(p, a_vec, b_vec, c_vec);
    else if (a_m) gemm_simt_kernel<T, true, false><<<grid, 256, 0, stream>>>(p, a_vec, b_vec, c_vec);
    else if (b_n) gemm_simt_kernel<T, false, true><<<grid, 256, 0, stream>>>(p, a_vec, b_vec, c_vec);
    else gemm_simt_kernel<T, false, false><<<grid, 256, 0, stream>>>(p, a_vec, b_vec, c_vec);
    check_launch("gemm_simt", type_name<T>());
}

template void launch_gemm_simt<float>(const GemmParams<float>&, cudaStream_t);
template void launch_gemm_simt<double>(const GemmParams<double>&, cudaStream_t);
template void launch_gemm_simt<bf16>(const GemmParams<bf16>&, cudaStream_t);
template void launch_gemm_simt<f16>(const GemmParams<f16>&, cudaStream_t);

}  // namespace cuda
}  // namespace nnforge
