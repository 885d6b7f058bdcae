// The tiled GEMM main loop shared by the three convolution kernels
// (conv_fwd.cu, conv_bwd.cu), all implicit GEMMs: C (rows x cols) = A (rows x
// depth) B (depth x cols), where A and B are never stored: each kernel gathers
// their entries from x, w or dy while it loads a tile (im2col addresses
// computed on the fly, zero for padding and out-of-range entries).
//
// Block tile BM x BN, depth step BK, (BM/TM) (BN/TN) threads; each thread
// accumulates TM x TN outputs in registers:
//   rows  tm (TM/2) + r  and  BM/2 + tm (TM/2) + r   (r < TM/2; two halves, so a
//         quarter-warp's shared loads of one half fall in distinct banks)
//   cols  tn TN + c                                   (c < TN)
// with tm = tid % (BM/TM), tn = tid / (BM/TM).
//
// Tiles in shared memory are depth-major: As[k][row], Bs[k][col] (rows padded
// by 4 so the depth-fast stores below hit distinct banks and rows stay 16-byte
// aligned). A thread loads tile elements e = tid + j*NT (j < loads):
//   row-fast    element (row e % Rows, depth e / Rows): consecutive threads read
//               consecutive rows (output pixels: coalesced along W)
//   depth-fast  element (row e / BK, depth e % BK): consecutive threads read
//               consecutive depth indices (contiguous along a filter or a plane)
// Each kernel's `load(kt, ra, rb)` fills the registers of depth tile kt in its
// mapping; the main loop stores them, and prefetches tile kt + 1 into registers
// while the FMAs of tile kt run (one shared buffer, two barriers per step).
#pragma once

#include <cuda_runtime.h>

#include "cuda/conv.h"

namespace nnforge {
namespace cuda {
namespace conv {

template <typename T, int BM_, int BN_, int BK_, int TM_, int TN_>
struct TileCfg {
    using type = T;
    static constexpr int BM = BM_, BN = BN_, BK = BK_, TM = TM_, TN = TN_;
    static constexpr int NT = (BM / TM) * (BN / TN);
    static constexpr int LdA = BM + 4, LdB = BN + 4;
    static constexpr int ALoads = (BM * BK + NT - 1) / NT;
    static constexpr int BLoads = (BN * BK + NT - 1) / NT;
    static_assert(BM % TM == 0 && BN % TN == 0 && TM % 2 == 0, "tile shape");
    static_assert(NT % BM == 0, "row-fast mapping: a thread keeps its row");
    static_assert(NT % BK == 0, "depth-fast mapping: a thread keeps its depth index");
    static_assert((BM * BK) % NT == 0, "every thread loads the same number of A entries");

    // Row (in the block tile) of the thread's accumulator row r.
    __device__ static __forceinline__ int row_of(int tm, int r) {
        return r < TM / 2 ? tm * (TM / 2) + r : BM / 2 + tm * (TM / 2) + (r - TM / 2);
    }
};

// Tile configurations: wide for >= 17 output columns, narrow (16) for few
// (depthwise, the first layer's 3 input channels in the input gradient).
template <typename T> struct Wide;
template <> struct Wide<float> { using type = TileCfg<float, 128, 64, 8, 8, 4>; };
template <> struct Wide<double> { using type = TileCfg<double, 64, 64, 8, 4, 4>; };
template <typename T> struct Narrow;
template <> struct Narrow<float> { using type = TileCfg<float, 256, 16, 8, 8, 2>; };
template <> struct Narrow<double> { using type = TileCfg<double, 128, 16, 8, 4, 2>; };
constexpr int kNarrowCols = 16;

// Registers of a tile -> shared memory, in the mapping the loads used.
template <int Rows, int BK, int NT, bool RowFast, int Ld, typename T, int L>
__device__ __forceinline__ void store_tile(T (&s)[BK][Ld], const T (&r)[L], int tid) {
#pragma unroll
    for (int j = 0; j < L; ++j) {
        const int e = tid + j * NT;
        if ((Rows * BK) % NT == 0 || e < Rows * BK) {
            if (RowFast) s[e / Rows][e % Rows] = r[j];
            else s[e % BK][e / BK] = r[j];
        }
    }
}

// acc += As[:, rows] ^T Bs[:, cols] over the BK depth entries of one tile.
template <class Cfg, typename T>
__device__ __forceinline__ void tile_fma(const T (&as)[Cfg::BK][Cfg::LdA],
                                         const T (&bs)[Cfg::BK][Cfg::LdB],
                                         T (&acc)[Cfg::TM][Cfg::TN], int tm, int tn) {
#pragma unroll
    for (int k = 0; k < Cfg::BK; ++k) {
        T a[Cfg::TM], b[Cfg::TN];
#pragma unroll
        for (int r = 0; r < Cfg::TM; ++r) a[r] = as[k][Cfg::row_of(tm, r)];
#pragma unroll
        for (int c = 0; c < Cfg::TN; ++c) b[c] = bs[k][tn * Cfg::TN + c];
#pragma unroll
        for (int r = 0; r < Cfg::TM; ++r) {
#pragma unroll
            for (int c = 0; c < Cfg::TN; ++c) acc[r][c] = fma(a[r], b[c], acc[r][c]);
        }
    }
}

// Depth tiles [kt0, kt1) into acc. `load(kt, ra, rb)` gathers tile kt (A in
// the row-fast mapping when ARowFast, else depth-fast; B always depth-fast).
// kt0 and kt1 are the same for every thread of the block (the barriers are
// reached by all).
template <class Cfg, bool ARowFast, typename T, class Load>
__device__ __forceinline__ void gemm_mainloop(int kt0, int kt1, Load& load,
                                              T (&as)[Cfg::BK][Cfg::LdA],
                                              T (&bs)[Cfg::BK][Cfg::LdB],
                                              T (&acc)[Cfg::TM][Cfg::TN], int tid, int tm,
                                              int tn) {
    if (kt0 >= kt1) return;
    T ra[Cfg::ALoads], rb[Cfg::BLoads];
    load(kt0, ra, rb);
    for (int kt = kt0; kt < kt1; ++kt) {
        store_tile<Cfg::BM, Cfg::BK, Cfg::NT, ARowFast>(as, ra, tid);
        store_tile<Cfg::BN, Cfg::BK, Cfg::NT, false>(bs, rb, tid);
        __syncthreads();
        if (kt + 1 < kt1) load(kt + 1, ra, rb);
        tile_fma<Cfg>(as, bs, acc, tm, tn);
        __syncthreads();
    }
}

// The geometry as the kernels see it (checked on the host: every per-plane,
// per-filter and coordinate quantity fits in int; products across samples or
// channels are formed in 64 bits).
struct Dims {
    long long n;
    int c_in, h, w, c_out, kh, kw, oh, ow;
    int sh, sw, pt, pl, dh, dw;
    int cg, cog, khw;  // C_in / G, C_out / G, kh kw
    int hw, p;         // h w, oh ow
};

inline Dims make_dims(const ConvGeometry& g) {
    Dims d;
    d.n = g.n;
    d.c_in = static_cast<int>(g.c_in), d.h = static_cast<int>(g.h), d.w = static_cast<int>(g.w);
    d.c_out = static_cast<int>(g.c_out), d.kh = static_cast<int>(g.kh);
    d.kw = static_cast<int>(g.kw), d.oh = static_cast<int>(g.oh), d.ow = static_cast<int>(g.ow);
    d.sh = static_cast<int>(g.sh), d.sw = static_cast<int>(g.sw);
    d.pt = static_cast<int>(g.pt), d.pl = static_cast<int>(g.pl);
    d.dh = static_cast<int>(g.dh), d.dw = static_cast<int>(g.dw);
    d.cg = static_cast<int>(g.c_in / g.groups), d.cog = static_cast<int>(g.c_out / g.groups);
    d.khw = static_cast<int>(g.kh * g.kw);
    d.hw = static_cast<int>(g.h * g.w), d.p = static_cast<int>(g.oh * g.ow);
    return d;
}

}  // namespace conv
}  // namespace cuda
}  // namespace nnforge
