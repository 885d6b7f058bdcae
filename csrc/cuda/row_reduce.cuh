// Row-group reductions shared by softmax.cu and layernorm.cu. A "group" owns
// one row of a (R, N) array: a warp (Block = false: 32 lanes, threads tid =
// lane, stride 32) or a whole block (Block = true: tid = threadIdx.x, stride
// blockDim.x <= 1024). group_sum / group_max combine every thread's partial
// with __shfl_xor_sync butterflies (all lanes get the result); in block mode
// each warp's result goes through shared memory and is combined again, so
// every thread of the block returns the same value. The order of the
// additions is fixed, so the results are deterministic.
#pragma once

#include <cuda_runtime.h>

namespace nnforge {
namespace cuda {
namespace rows {

constexpr int kWarpRowsThreads = 128;  // warp-per-row kernels: 4 rows per block
constexpr int kBlockRowThreads = 256;  // block-per-row kernels
constexpr long long kWarpRowMaxCols = 1024;

template <typename C>
__device__ __forceinline__ C max_nan(C a, C b) {
    return (a != a || a > b) ? a : b;  // nan wins, as numpy's max
}

struct SumOp {
    template <typename C> __device__ C operator()(C a, C b) const { return a + b; }
};
struct MaxOp {
    template <typename C> __device__ C operator()(C a, C b) const { return max_nan(a, b); }
};

template <typename C, typename Op>
__device__ __forceinline__ C warp_all_reduce(C v, Op op) {
#pragma unroll
    for (int d = 16; d > 0; d >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, d));
    return v;
}

// Every thread of the group calls this (the loop bounds are group-uniform).
template <bool Block, typename C, typename Op>
__device__ __forceinline__ C group_reduce(C v, Op op, C identity) {
    v = warp_all_reduce(v, op);
    if constexpr (Block) {
        __shared__ C partial[32];
        const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
        const int warps = (blockDim.x + 31) / 32;
        __syncthreads();  // partial[] may still be read from the previous call
        if (lane == 0) partial[warp] = v;
        __syncthreads();
        v = lane < warps ? partial[lane] : identity;
        v = warp_all_reduce(v, op);
    }
    return v;
}

// The row this group handles first, the step to its next row, and the thread's
// position in the row.
template <bool Block>
struct Group {
    long long row, row_step;
    int tid, stride;
    __device__ Group() {
        if constexpr (Block) {
            row = blockIdx.x;
            row_step = gridDim.x;
            tid = threadIdx.x;
            stride = blockDim.x;
        } else {
            const int warps = blockDim.x / 32;
            row = static_cast<long long>(blockIdx.x) * warps + threadIdx.x / 32;
            row_step = static_cast<long long>(gridDim.x) * warps;
            tid = threadIdx.x % 32;
            stride = 32;
        }
    }
};

// Grid size for `rows` rows: one block per row (Block) or 4 rows per block, capped.
inline int grid_rows(long long rows, bool block) {
    const long long per = block ? 1 : kWarpRowsThreads / 32;
    long long g = (rows + per - 1) / per;
    if (g > (1 << 20)) g = 1 << 20;
    return static_cast<int>(g < 1 ? 1 : g);
}

}  // namespace rows
}  // namespace cuda
}  // namespace nnforge
