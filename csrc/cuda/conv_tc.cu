// Tensor-core convolution for bfloat16 / float16 (sm_80+): implicit GEMMs with
// mma.sync.m16n8k16 (16-bit operands, fp32 accumulation), results rounded once
// to the input dtype (conv.h has the equations; conv_fwd.cu / conv_bwd.cu
// dispatch here, SIMT float32 otherwise, e.g. depthwise).
//
// Layout: the gathered operand is read from a channel-padded NHWC copy made
// once per call (to_nhwc_kernel: (N, H, W, G * Cp), group g's channels at
// g Cp .. g Cp + Cg, zeros up to Cp = round_up(Cg, 8)), so every 16-byte
// vector of 8 channels of one pixel is contiguous and aligned: the im2col
// gather is one cp.async of 16 bytes per (pixel, tap, 8 channels), zero-filled
// (src-size 0) for padding, out-of-range rows and taps past K. The weights are
// repacked to match (depth order k = (tap, channel), channels padded). The
// padding makes the first layer's 3 channels 8 (2.7x its MMAs; still on the
// tensor cores).
//
//   forward  Y_g (M x Cog) = A (M x K) B (K x Cog), M = N OH OW, K = kh kw Cgp
//            A[m, (t, c)] = xh[n, oh sh - pt + i dh, ow sw - pl + j dw, g Cgp + c]
//            B[(t, c), co] = wf[g Cog + co, t, c]          wf: (C_out, kh kw, Cgp)
//   dgrad    dX_g (M x Cg) = A (M x K) B (K x Cg), M = N H W, K = kh kw Cogp
//            A[m, (t, co)] = dyh[n, oh, ow, g Cogp + co]  (oh sh = h + pt - i dh
//            exactly, in range; else 0)
//            B[(t, co), ci] = wd[g, ci, t, co]            wd: (G, Cg, kh kw, Cogp)
//   wgrad    dW_g (Cog x K) = A (Cog x R) B (R x K), R = N OH OW, K = kh kw Cgp
//            A[co, r] = dyh[r, g Cogp + co]   B[r, (t, c)] = xh at r's window tap t
//            R split S ways; fp32 partials[s] summed in order, rounded (finish kernel)
//
// Tiling (as gemm_tc.cu): 256 threads = 8 warps, block tile BM x BN (128 x 128,
// 128 x 64 or 64 x 128), warp tile WM x WN of 16 x 8 mma tiles, depth BK = 32
// per stage, 4-stage cp.async pipeline (wait for stage kt, barrier, issue stage
// kt + 3 into the buffer stage kt - 1 used, mma on stage kt). Shared tiles:
// forward/dgrad A [m][k], B [n][k] (k contiguous, rows padded to 40 elements;
// ldmatrix.x4), wgrad A [k][m], B [k][n] (rows padded by 8; ldmatrix.x4.trans);
// both paddings put ldmatrix's 8 row addresses in distinct banks. Thread t
// loads the same depth chunk (t % 4, or its column chunk in wgrad) every stage,
// so its tap decomposition is one division pair per stage (or none).
// Epilogues: forward/dgrad stage the rounded tile in shared memory as
// [col][row] and write NCHW planes (consecutive threads, consecutive pixels);
// wgrad writes fp32 partials (float2).
#include <algorithm>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

#include "cuda/check.cuh"
#include "cuda/context.cuh"
#include "cuda/conv.h"
#include "cuda/conv_gemm.cuh"
#include "cuda/dispatch.cuh"
#include "cuda/mma_sm80.cuh"

namespace nnforge {
namespace cuda {
namespace {

constexpr int kTcThreads = 256;
constexpr int kChunk = 8;  // 16-bit elements per 16-byte vector

template <int BM_, int BN_, int WARPS_M_, int WARPS_N_>
struct TcTile {
    static constexpr int BM = BM_, BN = BN_, WARPS_M = WARPS_M_, WARPS_N = WARPS_N_;
    static constexpr int NT = kTcThreads, BK = 32, STAGES = 4;
    static constexpr int WM = BM / WARPS_M, WN = BN / WARPS_N, MI = WM / 16, NI = WN / 8;
    static constexpr int LD_RK = BK + 8;  // [row][k] tiles: 80-byte rows
    static constexpr int LD_AM = BM + 8;  // [k][m] tiles
    static constexpr int LD_BN = BN + 8;  // [k][n] tiles
    static_assert(WARPS_M * WARPS_N * 32 == NT, "8 warps");
    static_assert(WM % 16 == 0 && WN % 16 == 0, "whole ldmatrix.x4 tiles per warp");
    static_assert((BM * (BK / kChunk)) % NT == 0 && (BN * (BK / kChunk)) % NT == 0,
                  "whole chunks per thread");
};
using Tile128x128 = TcTile<128, 128, 2, 4>;  // warp 64 x 32
using Tile128x64 = TcTile<128, 64, 4, 2>;    // warp 32 x 32: <= 64 columns (forward, dgrad)
using Tile64x128 = TcTile<64, 128, 2, 4>;    // warp 32 x 32: <= 64 rows (wgrad)

// acc += one BK-deep stage. kAK: A stored [m][k] (else [k][m]); kBK: B [n][k]
// (else [k][n]). Fragment layouts as gemm_tc.cu (PTX ISA mma.m16n8k16).
template <class C, bool kAK, bool kBK, typename T>
__device__ __forceinline__ void tc_stage_mma(const T* tA, const T* tB,
                                             float (&acc)[C::MI][C::NI][4], int warp_m,
                                             int warp_n, int lane) {
    constexpr int A_LD = kAK ? C::LD_RK : C::LD_AM;
    constexpr int B_LD = kBK ? C::LD_RK : C::LD_BN;
    const int lr = lane % 8, lj = lane / 8;
#pragma unroll
    for (int kb = 0; kb < C::BK; kb += 16) {
        std::uint32_t fa[C::MI][4], fb[C::NI][2];
#pragma unroll
        for (int mi = 0; mi < C::MI; ++mi) {
            const int mb = warp_m * C::WM + mi * 16;
            if (kAK)  // matrix j: rows mb + (j & 1) 8, k cols kb + (j >> 1) 8
                ldmatrix_x4<false>(fa[mi], tA + (mb + lr + (lj & 1) * 8) * A_LD + kb +
                                               (lj >> 1) * 8);
            else  // stored [k][m]: matrix j: k rows kb + (j >> 1) 8, m cols mb + (j & 1) 8
                ldmatrix_x4<true>(fa[mi], tA + (kb + lr + (lj >> 1) * 8) * A_LD + mb +
                                              (lj & 1) * 8);
        }
#pragma unroll
        for (int nj = 0; nj < C::NI / 2; ++nj) {  // two n-tiles of 8 per ldmatrix.x4
            const int nb = warp_n * C::WN + nj * 16;
            std::uint32_t r[4];
            if (kBK)  // stored [n][k]: matrix j: n rows nb + (j >> 1) 8, k cols kb + (j & 1) 8
                ldmatrix_x4<false>(r, tB + (nb + lr + (lj >> 1) * 8) * B_LD + kb + (lj & 1) * 8);
            else  // stored [k][n]: matrix j: k rows kb + (j & 1) 8, n cols nb + (j >> 1) 8
                ldmatrix_x4<true>(r, tB + (kb + lr + (lj & 1) * 8) * B_LD + nb + (lj >> 1) * 8);
            fb[2 * nj][0] = r[0];
            fb[2 * nj][1] = r[1];
            fb[2 * nj + 1][0] = r[2];
            fb[2 * nj + 1][1] = r[3];
        }
#pragma unroll
        for (int mi = 0; mi < C::MI; ++mi)
#pragma unroll
            for (int ni = 0; ni < C::NI; ++ni) mma<T>(acc[mi][ni], fa[mi], fb[ni]);
    }
}

template <class C, bool kAK, bool kBK>
__host__ __device__ constexpr int tc_a_elems() { return kAK ? C::BM * C::LD_RK : C::BK * C::LD_AM; }
template <class C, bool kAK, bool kBK>
__host__ __device__ constexpr int tc_b_elems() { return kBK ? C::BN * C::LD_RK : C::BK * C::LD_BN; }
template <class C, bool kAK, bool kBK>
__host__ __device__ constexpr int tc_smem_bytes() {
    return C::STAGES * (tc_a_elems<C, kAK, kBK>() + tc_b_elems<C, kAK, kBK>()) * 2;
}

// Depth tiles [kt0, kt1) into acc. load(stage, kt) issues stage kt's cp.asyncs
// (called for kt0, kt0 + 1, ... in order). kt0, kt1 are block-uniform. Ends
// with every copy landed and a barrier: the shared memory may be reused.
template <class C, bool kAK, bool kBK, typename T, class Load>
__device__ __forceinline__ void tc_pipeline(int kt0, int kt1, Load& load, const T* sA,
                                            const T* sB, float (&acc)[C::MI][C::NI][4]) {
    constexpr int AE = tc_a_elems<C, kAK, kBK>(), BE = tc_b_elems<C, kAK, kBK>();
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int warp_m = warp / C::WARPS_N, warp_n = warp % C::WARPS_N;
    const int n = kt1 - kt0;
#pragma unroll
    for (int s = 0; s < C::STAGES - 1; ++s) {
        if (s < n) load(s, kt0 + s);
        cp_async_commit();  // empty groups keep the count: group s is stage s
    }
    for (int it = 0; it < n; ++it) {
        cp_async_wait<C::STAGES - 2>();  // this thread's copies of stage `it` landed
        __syncthreads();                 // everyone's; and stage it - 1's reads are done
        const int next = it + C::STAGES - 1;
        if (next < n) load(next % C::STAGES, kt0 + next);
        cp_async_commit();
        const int st = it % C::STAGES;
        tc_stage_mma<C, kAK, kBK>(sA + st * AE, sB + st * BE, acc, warp_m, warp_n, lane);
    }
    cp_async_wait<0>();
    __syncthreads();
}

// ---------------------------------------------------------------- forward / dgrad
struct TcArgs {
    long long m;         // rows: N x (pixels of the output plane)
    int plane;           // pixels per sample of the output plane (OH OW fwd, H W dgrad)
    int cols;            // output channels per group (Cog fwd, Cg dgrad)
    int out_c;           // channels of the output array
    int row_w;           // width of the output plane
    int src_h, src_w;    // the gathered NHWC array's H, W (x fwd, dy dgrad)
    int src_q, src_cp;   // its channels per pixel (G Cp) and padded channels per group
    int cpc, kchunks;    // 8-channel chunks per tap, per B row (K / 8)
    int kw, sh, sw, pt, pl, dh, dw;
};

// kDgrad false: forward; true: input gradient. Grid (ceil(M / BM), ceil(cols / BN), G).
template <class C, bool kDgrad, typename T>
__global__ void __launch_bounds__(kTcThreads, 2)
    conv_tc_kernel(const T* __restrict__ a, const T* __restrict__ b, const T* __restrict__ bias,
                   T* __restrict__ out, TcArgs p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    constexpr int AE = tc_a_elems<C, true, true>();
    constexpr int A_CH = C::BM * 4 / C::NT, B_CH = C::BN * 4 / C::NT;  // chunks per thread
    extern __shared__ __align__(16) unsigned char conv_tc_smem[];
    T* sA = reinterpret_cast<T*>(conv_tc_smem);
    T* sB = sA + C::STAGES * AE;
    const int tid = threadIdx.x, g = blockIdx.z;
    const long long m0 = static_cast<long long>(blockIdx.x) * C::BM;
    const int n0 = blockIdx.y * C::BN;
    const int kc = tid & 3;  // this thread's depth chunk within a stage
    const int K = p.kchunks * kChunk;

    // A rows of this thread: (tid >> 2) + j NT / 4.
    long long a_base[A_CH];
    int a_y[A_CH], a_x[A_CH];
    bool a_ok[A_CH];
#pragma unroll
    for (int j = 0; j < A_CH; ++j) {
        const long long m = m0 + (tid >> 2) + j * (C::NT / 4);
        a_ok[j] = m < p.m;
        const long long n = a_ok[j] ? m / p.plane : 0;
        const int q = a_ok[j] ? static_cast<int>(m - n * p.plane) : 0;
        const int oy = q / p.row_w, ox = q - oy * p.row_w;
        a_base[j] = n * p.src_h * static_cast<long long>(p.src_w) * p.src_q +
                    static_cast<long long>(g) * p.src_cp;
        a_y[j] = kDgrad ? oy + p.pt : oy * p.sh - p.pt;
        a_x[j] = kDgrad ? ox + p.pl : ox * p.sw - p.pl;
    }
    const T* b_row[B_CH];
    bool b_ok[B_CH];
#pragma unroll
    for (int j = 0; j < B_CH; ++j) {
        const int col = n0 + (tid >> 2) + j * (C::NT / 4);
        b_ok[j] = col < p.cols;
        b_row[j] = b + (static_cast<long long>(g) * p.cols + (b_ok[j] ? col : 0)) * K;
    }

    auto load = [&](int stage, int kt) {
        const int kchunk = kt * 4 + kc;
        const bool k_ok = kchunk < p.kchunks;
        const int tap = kchunk / p.cpc, cc = kchunk - tap * p.cpc;
        const int i = tap / p.kw, jj = tap - i * p.kw;
        T* dA = sA + stage * AE;
#pragma unroll
        for (int j = 0; j < A_CH; ++j) {
            int iy, ix;
            bool ok = k_ok && a_ok[j];
            if (kDgrad) {
                const int ty = a_y[j] - i * p.dh, tx = a_x[j] - jj * p.dw;
                iy = ty / p.sh, ix = tx / p.sw;
                ok = ok && ty >= 0 && tx >= 0 && iy * p.sh == ty && ix * p.sw == tx &&
                     iy < p.src_h && ix < p.src_w;
            } else {
                iy = a_y[j] + i * p.dh, ix = a_x[j] + jj * p.dw;
                ok = ok && iy >= 0 && iy < p.src_h && ix >= 0 && ix < p.src_w;
            }
            const T* src = ok ? a + a_base[j] +
                                    (static_cast<long long>(iy) * p.src_w + ix) * p.src_q +
                                    cc * kChunk
                              : a;
            const int row = (tid >> 2) + j * (C::NT / 4);
            cp_async16(dA + row * C::LD_RK + kc * kChunk, src, ok ? 16 : 0);
        }
        T* dB = sB + stage * tc_b_elems<C, true, true>();
#pragma unroll
        for (int j = 0; j < B_CH; ++j) {
            const bool ok = k_ok && b_ok[j];
            const int row = (tid >> 2) + j * (C::NT / 4);
            cp_async16(dB + row * C::LD_RK + kc * kChunk, ok ? b_row[j] + kchunk * kChunk : b,
                       ok ? 16 : 0);
        }
    };

    float acc[C::MI][C::NI][4];
#pragma unroll
    for (int mi = 0; mi < C::MI; ++mi)
#pragma unroll
        for (int ni = 0; ni < C::NI; ++ni)
#pragma unroll
            for (int r = 0; r < 4; ++r) acc[mi][ni][r] = 0.f;
    tc_pipeline<C, true, true>(0, (p.kchunks + 3) / 4, load, sA, sB, acc);

    // Epilogue: + bias, round, stage as st[col][row], write NCHW planes.
    constexpr int LD_ST = C::BM + 8;
    static_assert(C::BN * LD_ST <= C::STAGES * (AE + tc_b_elems<C, true, true>()),
                  "the staged tile fits the pipeline's shared memory");
    T* st = sA;
    const int lane = tid % 32, warp = tid / 32;
    const int warp_m = warp / C::WARPS_N, warp_n = warp % C::WARPS_N;
    const int gq = lane / 4, t4 = lane % 4;
#pragma unroll
    for (int ni = 0; ni < C::NI; ++ni) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
            const int col = warp_n * C::WN + ni * 8 + 2 * t4 + e;
            float bv = 0.f;
            if (bias && n0 + col < p.cols)
                bv = convert<float>(bias[static_cast<long long>(g) * p.cols + n0 + col]);
#pragma unroll
            for (int mi = 0; mi < C::MI; ++mi) {
#pragma unroll
                for (int half = 0; half < 2; ++half) {
                    const int row = warp_m * C::WM + mi * 16 + gq + half * 8;
                    st[col * LD_ST + row] = convert<T>(acc[mi][ni][2 * half + e] + bv);
                }
            }
        }
    }
    __syncthreads();
    static_assert(C::NT % C::BM == 0, "a thread keeps its row in the write-out");
    const int row = tid % C::BM;
    const long long m = m0 + row;
    if (m < p.m) {
        const long long n = m / p.plane;
        const int q = static_cast<int>(m - n * p.plane);
        T* o = out + (n * p.out_c + static_cast<long long>(g) * p.cols) * p.plane + q;
        for (int col = tid / C::BM; col < C::BN; col += C::NT / C::BM) {
            if (n0 + col < p.cols) o[static_cast<long long>(n0 + col) * p.plane] = st[col * LD_ST + row];
        }
    }
#endif
}

// ---------------------------------------------------------------- wgrad
struct WgArgs {
    long long n;         // batch
    int plane, ow;       // OH OW, OW
    int h, w, xq, cgp;   // x's NHWC copy: H, W, G Cgp, Cgp
    int cpc, kchunks;    // Cgp / 8, kh kw Cgp / 8
    int dyq, cogp, cog;  // dy's NHWC copy: G Cogp, Cogp; Cog
    int c_out;
    int kw, sh, sw, pt, pl, dh, dw;
    int tiles_m, chunk, nkt;
};

// Grid (tiles_m tiles_n, S, G); block (tile, s, g) sums depth tiles
// [s chunk, min((s + 1) chunk, nkt)) into partial[s] (C_out x K, fp32).
template <class C, typename T>
__global__ void __launch_bounds__(kTcThreads, 2)
    conv_tc_wgrad_kernel(const T* __restrict__ x, const T* __restrict__ dy,
                         float* __restrict__ partial, WgArgs p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    constexpr int AE = tc_a_elems<C, false, false>(), BE = tc_b_elems<C, false, false>();
    constexpr int A_CPR = C::BM / kChunk, B_CPR = C::BN / kChunk;  // chunks per depth row
    constexpr int A_CH = C::BK * A_CPR / C::NT, B_CH = C::BK * B_CPR / C::NT;
    static_assert(C::NT % A_CPR == 0 && C::NT % B_CPR == 0, "a thread keeps its column chunk");
    extern __shared__ __align__(16) unsigned char conv_tc_smem[];
    T* sA = reinterpret_cast<T*>(conv_tc_smem);
    T* sB = sA + C::STAGES * AE;
    const int tid = threadIdx.x, g = blockIdx.z, s = blockIdx.y;
    const int m0 = (blockIdx.x % p.tiles_m) * C::BM;
    const int n0 = (blockIdx.x / p.tiles_m) * C::BN;
    const int kt0 = s * p.chunk;
    const int kt1 = static_cast<int>(min(static_cast<long long>(p.nkt),
                                         static_cast<long long>(kt0) + p.chunk));
    const long long R = p.n * p.plane;

    // A: dy's row r, channels g Cogp + m0 + 8 (tid % A_CPR) .. + 8.
    const int a_col = m0 + (tid % A_CPR) * kChunk;
    const bool a_col_ok = a_col < p.cogp;
    const T* a_src = dy + static_cast<long long>(g) * p.cogp + a_col;
    // B: this thread's tap and channel chunk (fixed), rows carried as (n, pixel).
    const int b_kchunk = n0 / kChunk + tid % B_CPR;
    const bool b_col_ok = b_kchunk < p.kchunks;
    const int tap = b_col_ok ? b_kchunk / p.cpc : 0;
    const int cc = b_kchunk - tap * p.cpc;
    const int ti = tap / p.kw;
    const int off_h = ti * p.dh - p.pt, off_w = (tap - ti * p.kw) * p.dw - p.pl;
    const T* b_src = x + static_cast<long long>(g) * p.cgp + cc * kChunk;
    long long b_n[B_CH];
    int b_q[B_CH];
#pragma unroll
    for (int j = 0; j < B_CH; ++j) {
        const long long r = static_cast<long long>(kt0) * C::BK + tid / B_CPR + j * (C::NT / B_CPR);
        b_n[j] = r / p.plane;
        b_q[j] = static_cast<int>(r - b_n[j] * p.plane);
    }

    auto load = [&](int stage, int kt) {
        T* dA = sA + stage * AE;
#pragma unroll
        for (int j = 0; j < A_CH; ++j) {
            const int rr = tid / A_CPR + j * (C::NT / A_CPR);
            const long long r = static_cast<long long>(kt) * C::BK + rr;
            const bool ok = a_col_ok && r < R;
            cp_async16(dA + rr * C::LD_AM + (tid % A_CPR) * kChunk,
                       ok ? a_src + r * p.dyq : dy, ok ? 16 : 0);
        }
        T* dB = sB + stage * BE;
#pragma unroll
        for (int j = 0; j < B_CH; ++j) {
            const int rr = tid / B_CPR + j * (C::NT / B_CPR);
            const int oy = b_q[j] / p.ow, ox = b_q[j] - oy * p.ow;
            const int iy = oy * p.sh + off_h, ix = ox * p.sw + off_w;
            const bool ok = b_col_ok && b_n[j] < p.n && iy >= 0 && iy < p.h && ix >= 0 &&
                            ix < p.w;
            const T* src =
                ok ? b_src + ((b_n[j] * p.h + iy) * static_cast<long long>(p.w) + ix) * p.xq : x;
            cp_async16(dB + rr * C::LD_BN + (tid % B_CPR) * kChunk, src, ok ? 16 : 0);
            b_q[j] += C::BK;  // the next stage's row: r + BK
            while (b_q[j] >= p.plane) {
                b_q[j] -= p.plane;
                ++b_n[j];
            }
        }
    };

    float acc[C::MI][C::NI][4];
#pragma unroll
    for (int mi = 0; mi < C::MI; ++mi)
#pragma unroll
        for (int ni = 0; ni < C::NI; ++ni)
#pragma unroll
            for (int r = 0; r < 4; ++r) acc[mi][ni][r] = 0.f;
    tc_pipeline<C, false, false>(kt0, kt1, load, sA, sB, acc);

    const int lane = tid % 32, warp = tid / 32;
    const int warp_m = warp / C::WARPS_N, warp_n = warp % C::WARPS_N;
    const int gq = lane / 4, t4 = lane % 4;
    const int K = p.kchunks * kChunk;
    float* dst = partial + (static_cast<long long>(s) * p.c_out + static_cast<long long>(g) * p.cog) * K;
#pragma unroll
    for (int mi = 0; mi < C::MI; ++mi) {
#pragma unroll
        for (int half = 0; half < 2; ++half) {
            const int co = m0 + warp_m * C::WM + mi * 16 + gq + half * 8;
            if (co >= p.cog) continue;
#pragma unroll
            for (int ni = 0; ni < C::NI; ++ni) {
                const int col = n0 + warp_n * C::WN + ni * 8 + 2 * t4;  // even; K % 8 == 0
                if (col < K)
                    *reinterpret_cast<float2*>(dst + static_cast<long long>(co) * K + col) =
                        make_float2(acc[mi][ni][2 * half], acc[mi][ni][2 * half + 1]);
            }
        }
    }
#endif
}

// dw[co, c, t] = round(sum_{s < S} partial[s, co, t Cgp + c]), s in order.
template <typename T>
__global__ void conv_tc_wgrad_finish_kernel(const float* __restrict__ partial, T* __restrict__ dw,
                                            long long numel, int splits, int cg, int khw, int cgp,
                                            long long c_out) {
    const long long kp = static_cast<long long>(khw) * cgp;
    for (long long e = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; e < numel;
         e += static_cast<long long>(gridDim.x) * blockDim.x) {
        const long long co = e / (static_cast<long long>(cg) * khw);
        const int rem = static_cast<int>(e - co * cg * khw);
        const int c = rem / khw, t = rem - c * khw;
        const float* src = partial + co * kp + static_cast<long long>(t) * cgp + c;
        float v = src[0];
        for (int sp = 1; sp < splits; ++sp) v += src[sp * c_out * kp];
        dw[e] = convert<T>(v);
    }
}

// ---------------------------------------------------------------- layout kernels
// out (N, HW, G Cp) = in (N, G Cg, HW) with channels padded per group by zeros.
// Block (32, 8) moves a 32-channel x 32-pixel tile through shared memory.
template <typename T>
__global__ void __launch_bounds__(256)
    to_nhwc_kernel(const T* __restrict__ in, T* __restrict__ out, long long N, int C, int HW,
                   int cg, int cp, int Q) {
    __shared__ T tile[32][34];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int q0 = blockIdx.x * 32;
    for (int o0 = blockIdx.y * 32; o0 < Q; o0 += gridDim.y * 32) {
        for (long long n = blockIdx.z; n < N; n += gridDim.z) {
#pragma unroll
            for (int r = 0; r < 32; r += 8) {
                const int o = o0 + ty + r, q = q0 + tx;
                T v = convert<T>(0.f);
                if (o < Q && q < HW) {
                    const int gi = o / cp, c = o - gi * cp;
                    if (c < cg) v = in[(n * C + static_cast<long long>(gi) * cg + c) * HW + q];
                }
                tile[ty + r][tx] = v;
            }
            __syncthreads();
#pragma unroll
            for (int r = 0; r < 32; r += 8) {
                const int q = q0 + ty + r, o = o0 + tx;
                if (q < HW && o < Q) out[(n * HW + q) * Q + o] = tile[tx][ty + r];
            }
            __syncthreads();  // the tile is refilled
        }
    }
}

// Forward weights: wf (C_out, khw, Cgp) = w (C_out, Cg, khw), zero channels past Cg.
// Dgrad weights:   wd (G, Cg, khw, Cogp) = w[g Cog + co, ci, t], zero past Cog.
template <typename T, bool kDgrad>
__global__ void pack_weight_kernel(const T* __restrict__ w, T* __restrict__ out, long long numel,
                                   int cg, int cog, int khw, int cpad) {
    for (long long e = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; e < numel;
         e += static_cast<long long>(gridDim.x) * blockDim.x) {
        const int c = static_cast<int>(e % cpad);
        const long long rest = e / cpad;
        const int t = static_cast<int>(rest % khw);
        const long long row = rest / khw;  // fwd: co; dgrad: g Cg + ci
        T v = convert<T>(0.f);
        if (!kDgrad) {
            if (c < cg) v = w[(row * cg + c) * khw + t];
        } else if (c < cog) {
            const long long gi = row / cg, ci = row - gi * cg;
            v = w[((gi * cog + c) * cg + ci) * khw + t];
        }
        out[e] = v;
    }
}

// ---------------------------------------------------------------- host side
std::int64_t round8(std::int64_t v) { return (v + kChunk - 1) / kChunk * kChunk; }

template <typename T>
DeviceArray to_nhwc(const DeviceArray& a, std::int64_t groups, int device, cudaStream_t stream) {
    const std::int64_t N = a.shape[0], C = a.shape[1], HW = a.shape[2] * a.shape[3];
    const std::int64_t cg = C / groups, cp = round8(cg), Q = groups * cp;
    DeviceArray out = DeviceArray::empty({N, a.shape[2], a.shape[3], Q}, a.dtype, device);
    if (N == 0) return out;
    const dim3 grid(static_cast<unsigned>((HW + 31) / 32),
                    static_cast<unsigned>(std::min<std::int64_t>((Q + 31) / 32, 65535)),
                    static_cast<unsigned>(std::min<std::int64_t>(N, 65535)));
    to_nhwc_kernel<T><<<grid, dim3(32, 8), 0, stream>>>(
        static_cast<const T*>(a.data()), static_cast<T*>(out.data()), N, static_cast<int>(C),
        static_cast<int>(HW), static_cast<int>(cg), static_cast<int>(cp), static_cast<int>(Q));
    check_launch("conv2d_to_nhwc", type_name<T>());
    return out;
}

template <typename T, bool kDgrad>
DeviceArray pack_weight(const DeviceArray& w, const ConvGeometry& g, int device,
                        cudaStream_t stream) {
    const std::int64_t cg = g.c_in / g.groups, cog = g.c_out / g.groups, khw = g.kh * g.kw;
    const Shape shape = kDgrad ? Shape{g.groups, cg, khw, round8(cog)}
                               : Shape{g.c_out, khw, round8(cg)};
    DeviceArray out = DeviceArray::empty(shape, w.dtype, device);
    const long long numel = out.numel();
    const int threads = 256;
    pack_weight_kernel<T, kDgrad><<<grid_for(numel, threads, device), threads, 0, stream>>>(
        static_cast<const T*>(w.data()), static_cast<T*>(out.data()), numel,
        static_cast<int>(cg), static_cast<int>(cog), static_cast<int>(khw),
        static_cast<int>(shape.back()));
    check_launch("conv2d_pack_weight", type_name<T>());
    return out;
}

template <class C, bool kDgrad, typename T>
void launch_tc(const T* a, const T* b, const T* bias, T* out, const TcArgs& p, int groups,
               cudaStream_t stream) {
    constexpr int smem = tc_smem_bytes<C, true, true>();
    auto kernel = conv_tc_kernel<C, kDgrad, T>;
    NNF_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem),
                   "cudaFuncSetAttribute(conv_tc shared memory)");
    const long long bx = (p.m + C::BM - 1) / C::BM, by = (p.cols + C::BN - 1) / C::BN;
    if (bx > std::numeric_limits<int>::max() || by > 65535)
        throw std::invalid_argument("cuda.conv2d: the problem is too large for one launch");
    kernel<<<dim3(static_cast<unsigned>(bx), static_cast<unsigned>(by), groups), C::NT, smem,
             stream>>>(a, b, bias, out, p);
    check_launch(kDgrad ? "conv2d_backward_input_tc" : "conv2d_forward_tc", type_name<T>());
}

template <typename F> void dispatch_reduced(DType dt, F&& f) {
    if (dt == DType::BFloat16) f(bf16{});
    else f(f16{});
}

TcArgs tc_args(const ConvGeometry& g, bool dgrad) {
    TcArgs p{};
    const std::int64_t cg = g.c_in / g.groups, cog = g.c_out / g.groups;
    p.m = dgrad ? g.n * g.h * g.w : g.n * g.oh * g.ow;
    p.plane = static_cast<int>(dgrad ? g.h * g.w : g.oh * g.ow);
    p.row_w = static_cast<int>(dgrad ? g.w : g.ow);
    p.cols = static_cast<int>(dgrad ? cg : cog);
    p.out_c = static_cast<int>(dgrad ? g.c_in : g.c_out);
    p.src_h = static_cast<int>(dgrad ? g.oh : g.h);
    p.src_w = static_cast<int>(dgrad ? g.ow : g.w);
    p.src_cp = static_cast<int>(round8(dgrad ? cog : cg));
    p.src_q = static_cast<int>(g.groups * p.src_cp);
    p.cpc = p.src_cp / kChunk;
    p.kchunks = static_cast<int>(g.kh * g.kw) * p.cpc;
    p.kw = static_cast<int>(g.kw), p.sh = static_cast<int>(g.sh), p.sw = static_cast<int>(g.sw);
    p.pt = static_cast<int>(g.pt), p.pl = static_cast<int>(g.pl);
    p.dh = static_cast<int>(g.dh), p.dw = static_cast<int>(g.dw);
    return p;
}

}  // namespace

bool conv_tc_suitable(const ConvGeometry& g, int device) {
    if (device_props(device).major < 8) return false;
    const std::int64_t cg = g.c_in / g.groups, cog = g.c_out / g.groups;
    // Depthwise and thin groups (both sides < 8 channels) would be mostly padding.
    if (cg < kChunk && cog < kChunk) return false;
    // Padded channel totals and padded filters stay well inside int.
    const std::int64_t lim = std::int64_t(1) << 30;
    const std::int64_t qx = g.groups * round8(cg), qy = g.groups * round8(cog);
    return qx < lim && qy < lim && g.kh * g.kw * round8(std::max(cg, cog)) < lim;
}

DeviceArray conv2d_forward_tc(const DeviceArray& x, const DeviceArray& w, const DeviceArray* bias,
                              const ConvGeometry& g) {
    DeviceArray y = DeviceArray::empty({g.n, g.c_out, g.oh, g.ow}, x.dtype, x.device);
    if (g.n == 0) return y;
    DeviceGuard guard(x.device);
    cudaStream_t stream = default_stream(x.device);
    const TcArgs p = tc_args(g, false);
    dispatch_reduced(x.dtype, [&](auto tag) {
        using T = decltype(tag);
        const DeviceArray xh = to_nhwc<T>(x, g.groups, x.device, stream);
        const DeviceArray wf = pack_weight<T, false>(w, g, x.device, stream);
        const T* bp = bias ? static_cast<const T*>(bias->data()) : nullptr;
        const int G = static_cast<int>(g.groups);
        auto* a = static_cast<const T*>(xh.data());
        auto* b = static_cast<const T*>(wf.data());
        auto* o = static_cast<T*>(y.data());
        if (p.cols <= 64) launch_tc<Tile128x64, false>(a, b, bp, o, p, G, stream);
        else launch_tc<Tile128x128, false>(a, b, bp, o, p, G, stream);
    });
    return y;
}

DeviceArray conv2d_backward_input_tc(const DeviceArray& dy, const DeviceArray& w,
                                     const DeviceArray* bias, const ConvGeometry& g) {
    DeviceArray dx = DeviceArray::empty({g.n, g.c_in, g.h, g.w}, dy.dtype, dy.device);
    if (g.n == 0) return dx;
    DeviceGuard guard(dy.device);
    cudaStream_t stream = default_stream(dy.device);
    const TcArgs p = tc_args(g, true);
    dispatch_reduced(dy.dtype, [&](auto tag) {
        using T = decltype(tag);
        const DeviceArray dyh = to_nhwc<T>(dy, g.groups, dy.device, stream);
        const DeviceArray wd = pack_weight<T, true>(w, g, dy.device, stream);
        const T* bp = bias ? static_cast<const T*>(bias->data()) : nullptr;
        const int G = static_cast<int>(g.groups);
        auto* a = static_cast<const T*>(dyh.data());
        auto* b = static_cast<const T*>(wd.data());
        auto* o = static_cast<T*>(dx.data());
        if (p.cols <= 64) launch_tc<Tile128x64, true>(a, b, bp, o, p, G, stream);
        else launch_tc<Tile128x128, true>(a, b, bp, o, p, G, stream);
    });
    return dx;
}

namespace {

constexpr long long kWgMinTilesPerSplit = 8;   // 256 r values
constexpr long long kWgPartialCap = 1LL << 24;  // fp32 elements of all partials (64 MB)

template <class C, typename T>
void launch_wgrad(const T* xh, const T* dyh, T* dw, const ConvGeometry& g, int device,
                  cudaStream_t stream) {
    const std::int64_t cg = g.c_in / g.groups, cog = g.c_out / g.groups, khw = g.kh * g.kw;
    WgArgs p{};
    p.n = g.n;
    p.plane = static_cast<int>(g.oh * g.ow), p.ow = static_cast<int>(g.ow);
    p.h = static_cast<int>(g.h), p.w = static_cast<int>(g.w);
    p.cgp = static_cast<int>(round8(cg)), p.xq = static_cast<int>(g.groups * p.cgp);
    p.cpc = p.cgp / kChunk, p.kchunks = static_cast<int>(khw) * p.cpc;
    p.cogp = static_cast<int>(round8(cog)), p.dyq = static_cast<int>(g.groups * p.cogp);
    p.cog = static_cast<int>(cog), p.c_out = static_cast<int>(g.c_out);
    p.kw = static_cast<int>(g.kw), p.sh = static_cast<int>(g.sh), p.sw = static_cast<int>(g.sw);
    p.pt = static_cast<int>(g.pt), p.pl = static_cast<int>(g.pl);
    p.dh = static_cast<int>(g.dh), p.dw = static_cast<int>(g.dw);
    const long long K = static_cast<long long>(p.kchunks) * kChunk;
    const long long tiles_m = (cog + C::BM - 1) / C::BM, tiles_n = (K + C::BN - 1) / C::BN;
    const long long nkt = (g.n * g.oh * g.ow + C::BK - 1) / C::BK;
    if (tiles_m * tiles_n > std::numeric_limits<int>::max() ||
        nkt > std::numeric_limits<int>::max() / 2)
        throw std::invalid_argument(
            "cuda.conv2d_backward_weight: the problem is too large for one launch");
    const long long numel_p = g.c_out * K;  // one partial
    const long long base = tiles_m * tiles_n * g.groups;
    const long long target = 2LL * device_props(device).multiProcessorCount;
    long long splits = (target + base - 1) / base;
    splits = std::min(splits, (nkt + kWgMinTilesPerSplit - 1) / kWgMinTilesPerSplit);
    splits = std::min(splits, kWgPartialCap / numel_p);
    splits = std::min(splits, 65535LL);
    splits = std::max(splits, 1LL);
    const long long chunk = (nkt + splits - 1) / splits;
    splits = (nkt + chunk - 1) / chunk;  // no empty split
    p.tiles_m = static_cast<int>(tiles_m), p.chunk = static_cast<int>(chunk);
    p.nkt = static_cast<int>(nkt);

    DeviceArray partial = DeviceArray::empty({splits, numel_p}, DType::Float32, device);
    constexpr int smem = tc_smem_bytes<C, false, false>();
    auto kernel = conv_tc_wgrad_kernel<C, T>;
    NNF_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem),
                   "cudaFuncSetAttribute(conv_tc_wgrad shared memory)");
    kernel<<<dim3(static_cast<unsigned>(tiles_m * tiles_n), static_cast<unsigned>(splits),
                  static_cast<unsigned>(g.groups)),
             C::NT, smem, stream>>>(xh, dyh, static_cast<float*>(partial.data()), p);
    check_launch("conv2d_backward_weight_tc", type_name<T>());
    const long long numel = g.c_out * cg * khw;
    const int threads = 256;
    conv_tc_wgrad_finish_kernel<T><<<grid_for(numel, threads, device), threads, 0, stream>>>(
        static_cast<const float*>(partial.data()), dw, numel, static_cast<int>(splits),
        static_cast<int>(cg), static_cast<int>(khw), p.cgp, g.c_out);
    check_launch("conv2d_backward_weight_tc_finish", type_name<T>());
}

}  // namespace

void conv2d_backward_weight_tc(const DeviceArray& x, const DeviceArray& dy, DeviceArray& dw,
                               const ConvGeometry& g) {
    if (g.n == 0) throw std::logic_error("conv2d_backward_weight_tc: empty batch");
    DeviceGuard guard(x.device);
    cudaStream_t stream = default_stream(x.device);
    dispatch_reduced(x.dtype, [&](auto tag) {
        using T = decltype(tag);
        const DeviceArray xh = to_nhwc<T>(x, g.groups, x.device, stream);
        const DeviceArray dyh = to_nhwc<T>(dy, g.groups, x.device, stream);
        auto* xp = static_cast<const T*>(xh.data());
        auto* dyp = static_cast<const T*>(dyh.data());
        auto* dwp = static_cast<T*>(dw.data());
        if (g.c_out / g.groups <= 64)
            launch_wgrad<Tile64x128>(xp, dyp, dwp, g, x.device, stream);
        else
            launch_wgrad<Tile128x128>(xp, dyp, dwp, g, x.device, stream);
    });
}

}  // namespace cuda
}  // namespace nnforge
