// Inclusive scans (cumsum, cumprod) of a C-contiguous array seen as
// (outer, n, inner), along n:
//
//   y[p, j, q] = x[p, 0, q] (+|*) x[p, 1, q] (+|*) ... (+|*) x[p, j, q]
//
// float32, float64 and int64 (the backend converts other dtypes first, as
// numpy's result dtype says). Two layouts:
//
// inner == 1 (lines contiguous): a group per line (a warp for n <= 256, 4
// lines per 128-thread block; else a 256-thread block), grid-stride over
// lines. The group walks its line in tiles of one element per thread
// (coalesced): an inclusive warp scan by __shfl_up_sync, in block mode the
// warp totals go through shared memory and are scanned by warp 0, then the
// carry of the earlier tiles is combined in and the tile's total becomes the
// next carry. Lines of any length; the combination order is fixed, so results
// are deterministic (they differ from numpy's strictly sequential float sum
// by rounding only).
//
// inner > 1 (axis not last): one thread per (p, q) line walking j
// sequentially; neighbouring threads read neighbouring q (coalesced). The
// backend moves the axis last instead when there are too few lines to fill
// the GPU.
#include <cstdint>
#include <stdexcept>
#include <string>

#include "cuda/check.cuh"
#include "cuda/context.cuh"
#include "cuda/dispatch.cuh"
#include "cuda/index_ops.h"
#include "cuda/row_reduce.cuh"

namespace nnforge {
namespace cuda {
namespace {

constexpr long long kWarpScanMaxN = 256;

template <bool Prod>
struct ScanOp {
    template <typename T> __device__ __forceinline__ T operator()(T a, T b) const {
        if constexpr (Prod) return a * b;
        else return a + b;
    }
    template <typename T> __device__ __forceinline__ static T identity() { return T(Prod ? 1 : 0); }
};

template <typename T, typename Op>
__device__ __forceinline__ T warp_inclusive_scan(T v, Op op, int lane) {
#pragma unroll
    for (int d = 1; d < 32; d <<= 1) {
        const T u = __shfl_up_sync(0xffffffffu, v, d);
        if (lane >= d) v = op(u, v);
    }
    return v;
}

// Inclusive scan of one tile held one value per thread; returns the thread's
// prefix and sets `total` to the tile's total (same in every thread of the group).
template <bool Block, typename T, typename Op>
__device__ __forceinline__ T group_inclusive_scan(T v, Op op, T& total) {
    const int lane = threadIdx.x % 32;
    v = warp_inclusive_scan(v, op, lane);
    if constexpr (Block) {
        __shared__ T warp_sums[32];
        const int warp = threadIdx.x / 32, warps = (blockDim.x + 31) / 32;
        if (lane == 31) warp_sums[warp] = v;
        __syncthreads();
        if (warp == 0) {
            T w = lane < warps ? warp_sums[lane] : Op::template identity<T>();
            w = warp_inclusive_scan(w, op, lane);
            warp_sums[lane] = w;
        }
        __syncthreads();
        if (warp > 0) v = op(warp_sums[warp - 1], v);
        total = warp_sums[warps - 1];
        __syncthreads();  // warp_sums is rewritten by the next tile
    } else {
        total = __shfl_sync(0xffffffffu, v, 31);
    }
    return v;
}

template <bool Block, bool Prod, typename T>
__global__ void scan_inner_kernel(const T* __restrict__ x, T* __restrict__ y, long long lines,
                                  long long n) {
    const ScanOp<Prod> op;
    const rows::Group<Block> grp;
    for (long long r = grp.row; r < lines; r += grp.row_step) {  // group-uniform
        const T* xr = x + r * n;
        T* yr = y + r * n;
        T carry = ScanOp<Prod>::template identity<T>();
        for (long long base = 0; base < n; base += grp.stride) {  // group-uniform
            const long long j = base + grp.tid;
            T v = j < n ? xr[j] : ScanOp<Prod>::template identity<T>();
            T total;
            v = group_inclusive_scan<Block>(v, op, total);
            if (j < n) yr[j] = op(carry, v);
            carry = op(carry, total);
        }
    }
}

template <bool Prod, typename T>
__global__ void scan_outer_kernel(const T* __restrict__ x, T* __restrict__ y, long long outer,
                                  long long n, long long inner) {
    const ScanOp<Prod> op;
    for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
         i < outer * inner; i += static_cast<long long>(gridDim.x) * blockDim.x) {
        const long long p = i / inner, q = i % inner;
        const long long start = p * n * inner + q;
        T acc = ScanOp<Prod>::template identity<T>();
        for (long long j = 0; j < n; ++j) {
            acc = op(acc, x[start + j * inner]);
            y[start + j * inner] = acc;
        }
    }
}

template <bool Prod, typename T>
void launch_scan(const DeviceArray& x, const DeviceArray& y, long long outer, long long n,
                 long long inner) {
    cudaStream_t stream = default_stream(x.device);
    const T* xp = static_cast<const T*>(x.data());
    T* yp = static_cast<T*>(y.data());
    const char* name = Prod ? "cumprod" : "cumsum";
    if (inner > 1) {
        scan_outer_kernel<Prod, T><<<grid_for(outer * inner, 256, x.device), 256, 0, stream>>>(
            xp, yp, outer, n, inner);
    } else if (n > kWarpScanMaxN) {
        scan_inner_kernel<true, Prod, T><<<rows::grid_rows(outer, true), rows::kBlockRowThreads,
                                           0, stream>>>(xp, yp, outer, n);
    } else {
        scan_inner_kernel<false, Prod, T><<<rows::grid_rows(outer, false), rows::kWarpRowsThreads,
                                            0, stream>>>(xp, yp, outer, n);
    }
    check_launch(name, type_name<T>());
}

}  // namespace

DeviceArray scan_lines(const DeviceArray& x, std::int64_t outer, std::int64_t n,
                       std::int64_t inner, bool prod) {
    const char* op = prod ? "cuda.cumprod" : "cuda.cumsum";
    if ((x.numel() != 0 && !x.is_contiguous()) || outer < 0 || n < 0 || inner < 0 || outer * n * inner != x.numel()) {
        throw std::invalid_argument(std::string(op) + ": expected a C-contiguous array of " +
                                    std::to_string(outer) + " x " + std::to_string(n) + " x " +
                                    std::to_string(inner) + " elements, got " + x.describe());
    }
    if (x.dtype != DType::Float32 && x.dtype != DType::Float64 && x.dtype != DType::Int64) {
        throw std::invalid_argument(std::string(op) + ": the scan kernel takes float32, float64 "
                                    "or int64, got " + x.describe());
    }
    DeviceArray y = DeviceArray::empty(x.shape, x.dtype, x.device);
    if (x.numel() == 0) return y;
    DeviceGuard guard(x.device);
    auto run = [&](auto tag) {
        using T = decltype(tag);
        if (prod) launch_scan<true, T>(x, y, outer, n, inner);
        else launch_scan<false, T>(x, y, outer, n, inner);
    };
    if (x.dtype == DType::Float32) run(float{});
    else if (x.dtype == DType::Float64) run(double{});
    else run(std::int64_t{});
    return y;
}

}  // namespace cuda
}  // namespace nnforge
