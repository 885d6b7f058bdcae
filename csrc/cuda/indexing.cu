// Gather / put / scatter-add through an index array, index validation, the
// deterministic segmented add, flip and nonzero (see cuda/index_ops.h for the
// equations).
//
// index_kernel: one thread per element of the iteration shape S (grid-stride
// loop, 256 threads, int64 index math); OffsetCalc<3> finds the element of
// values, of the base view (stride 0 over the indexed dims) and of the index
// array; the indexed element is base + k * stride. Repeated indices: put lets
// one writer win (numpy: the last; here unspecified); add uses atomicAdd
// (float/double/int64/int32), so float sums of repeats are not bit-stable
// from run to run (index_add_segments is).
//
// index_check_kernel: grid-stride min/max over the indices, warp shuffles,
// one 64-bit atomicMin/atomicMax per warp; the host reads the two values back
// (one sync) and throws numpy's IndexError when one lies outside [-n, n).
//
// index_add_segments_kernel: one thread per (distinct row u, column q),
// column fastest (coalesced); it sums its segment's values in sorted order
// in Compute<T> (float for float16/bfloat16) and adds once: no atomics, no
// races (rows are distinct), bit-identical from run to run.
//
// flip_kernel: out (contiguous) from a with the flipped dims' strides negated
// and the base moved to their last element (OffsetCalc handles signed strides);
// elements are moved as raw 1/2/4/8-byte words.
//
// nonzero: the input is cut into chunks of 4096 elements (256 threads x 16
// rounds). Pass 1 counts each chunk (ballot + popc per warp, shared memory
// across warps); scan_lines turns the counts into inclusive offsets; the
// total is read back (the one sync); pass 2 re-reads each chunk round by
// round, ranks each nonzero by a warp ballot prefix plus the earlier warps'
// counts, and writes its C-order coordinates: out[d, pos] (numpy's order).
#include <algorithm>
#include <climits>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "cuda/check.cuh"
#include "cuda/context.cuh"
#include "cuda/dispatch.cuh"
#include "cuda/index_calc.cuh"
#include "cuda/index_ops.h"

namespace nnforge {
namespace cuda {
namespace {

constexpr int kThreads = 256;

#define NNF_GRID_STRIDE(i, n)                                                          \
    for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < (n); \
         i += std::int64_t(gridDim.x) * blockDim.x)

// ------------------------------------------------------------------ gather / put / add
__device__ __forceinline__ void atomic_add(float* p, float v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(double* p, double v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(std::int32_t* p, std::int32_t v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(std::int64_t* p, std::int64_t v) {
    // two's complement: an unsigned add wraps exactly like the signed one
    atomicAdd(reinterpret_cast<unsigned long long*>(p), static_cast<unsigned long long>(v));
}

template <IndexMode M, typename T>
__global__ void index_kernel(T* __restrict__ values, T* base, const std::int64_t* __restrict__ index,
                             OffsetCalc<3> calc, std::int64_t numel, std::int64_t size,
                             std::int64_t stride) {
    NNF_GRID_STRIDE(i, numel) {
        std::int64_t off[3];
        calc.get(i, off);
        std::int64_t k = index[off[2]];
        if (size > 0 && k < 0) k += size;
        const bool ok = k >= 0 && (size == 0 || k < size);  // size 0: offsets, already checked
        if constexpr (M == IndexMode::Gather) {
            values[off[0]] = ok ? base[off[1] + k * stride] : convert<T>(0);
        } else if constexpr (M == IndexMode::Put) {
            if (ok) base[off[1] + k * stride] = values[off[0]];
        } else {
            if (ok) atomic_add(base + off[1] + k * stride, values[off[0]]);
        }
    }
}

template <IndexMode M, typename T>
void launch_index(const DeviceArray& base, const DeviceArray& index, std::int64_t size,
                  std::int64_t stride, const DeviceArray& values, const char* op) {
    const std::int64_t n = base.numel();
    const auto calc = make_offset_calc<3>(base.shape, {values.strides, base.strides, index.strides}, op);
    index_kernel<M, T><<<grid_for(n, kThreads, base.device), kThreads, 0, default_stream(base.device)>>>(
        static_cast<T*>(values.data()), static_cast<T*>(base.data()),
        static_cast<const std::int64_t*>(index.data()), calc, n, size, stride);
    check_launch(op, type_name<T>());
}

// ------------------------------------------------------------------ index_check
__global__ void minmax_init_kernel(std::int64_t* mm) {
    mm[0] = LLONG_MAX;
    mm[1] = LLONG_MIN;
}

__global__ void index_check_kernel(const std::int64_t* __restrict__ index, OffsetCalc<1> calc,
                                   std::int64_t numel, long long* mm) {
    long long lo = LLONG_MAX, hi = LLONG_MIN;
    NNF_GRID_STRIDE(i, numel) {
        std::int64_t off[1];
        calc.get(i, off);
        const long long k = index[off[0]];
        lo = k < lo ? k : lo;
        hi = k > hi ? k : hi;
    }
#pragma unroll
    for (int d = 16; d > 0; d >>= 1) {
        const long long a = __shfl_xor_sync(0xffffffffu, lo, d);
        const long long b = __shfl_xor_sync(0xffffffffu, hi, d);
        lo = a < lo ? a : lo;
        hi = b > hi ? b : hi;
    }
    if (threadIdx.x % 32 == 0) {
        atomicMin(mm, lo);
        atomicMax(mm + 1, hi);
    }
}

// ------------------------------------------------------------------ segmented add
template <typename T>
__global__ void index_add_segments_kernel(T* base, std::int64_t base_col_stride, std::int64_t stride,
                                          const T* __restrict__ values, std::int64_t vs0,
                                          std::int64_t vs1, const std::int64_t* __restrict__ perm,
                                          const std::int64_t* __restrict__ starts,
                                          const std::int64_t* __restrict__ rows, std::int64_t segments,
                                          std::int64_t cols) {
    using C = typename Compute<T>::type;
    NNF_GRID_STRIDE(i, segments * cols) {
        const std::int64_t u = i / cols, q = i % cols;
        C acc = C(0);
        for (std::int64_t j = starts[u]; j < starts[u + 1]; ++j) {
            acc += convert<C>(values[perm[j] * vs0 + q * vs1]);
        }
        T* p = base + rows[u] * stride + q * base_col_stride;
        *p = convert<T>(convert<C>(*p) + acc);
    }
}

// ------------------------------------------------------------------ flip
template <typename W>
__global__ void flip_kernel(W* __restrict__ out, const W* __restrict__ src, OffsetCalc<2> calc,
                            std::int64_t numel) {
    NNF_GRID_STRIDE(i, numel) {
        std::int64_t off[2];
        calc.get(i, off);
        out[off[0]] = src[off[1]];
    }
}

// ------------------------------------------------------------------ nonzero
constexpr int kNzRounds = 16;
constexpr std::int64_t kNzChunk = std::int64_t(kThreads) * kNzRounds;
constexpr int kNzWarps = kThreads / 32;
constexpr int kMaxNzDims = 16;

struct Unravel {
    int ndim;
    std::int64_t sizes[kMaxNzDims];  // C order
};

template <typename T>
__device__ __forceinline__ bool nz_flag(const T* a, const OffsetCalc<1>& calc, std::int64_t e,
                                        std::int64_t numel) {
    if (e >= numel) return false;
    std::int64_t off[1];
    calc.get(e, off);
    return convert<bool>(a[off[0]]);  // nan counts as nonzero, as in numpy
}

// counts[c] = number of nonzeros in chunk c. Launched with kThreads threads.
template <typename T>
__global__ void nz_count_kernel(const T* __restrict__ a, OffsetCalc<1> calc, std::int64_t numel,
                                std::int64_t chunks, std::int64_t* __restrict__ counts) {
    __shared__ int warp_counts[kNzWarps];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    for (std::int64_t c = blockIdx.x; c < chunks; c += gridDim.x) {  // block-uniform
        int local = 0;
        for (int r = 0; r < kNzRounds; ++r) {
            const bool f = nz_flag(a, calc, c * kNzChunk + r * kThreads + threadIdx.x, numel);
            local += __popc(__ballot_sync(0xffffffffu, f));  // the warp's count, in every lane
        }
        if (lane == 0) warp_counts[warp] = local;
        __syncthreads();
        if (threadIdx.x == 0) {
            int total = 0;
            for (int w = 0; w < kNzWarps; ++w) total += warp_counts[w];
            counts[c] = total;
        }
        __syncthreads();  // warp_counts is rewritten for the next chunk
    }
}

template <typename T>
__global__ void nz_write_kernel(const T* __restrict__ a, OffsetCalc<1> calc, std::int64_t numel,
                                std::int64_t chunks, const std::int64_t* __restrict__ inclusive,
                                const std::int64_t* __restrict__ counts, Unravel shape,
                                std::int64_t total, std::int64_t* __restrict__ out) {
    __shared__ int warp_counts[kNzWarps];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const unsigned below = (1u << lane) - 1u;
    for (std::int64_t c = blockIdx.x; c < chunks; c += gridDim.x) {  // block-uniform
        std::int64_t pos0 = inclusive[c] - counts[c];
        for (int r = 0; r < kNzRounds; ++r) {
            const std::int64_t e = c * kNzChunk + r * kThreads + threadIdx.x;
            const bool f = nz_flag(a, calc, e, numel);
            const unsigned ballot = __ballot_sync(0xffffffffu, f);
            if (lane == 0) warp_counts[warp] = __popc(ballot);
            __syncthreads();
            int before = 0, round_total = 0;
            for (int w = 0; w < kNzWarps; ++w) {
                const int t = warp_counts[w];
                before += w < warp ? t : 0;
                round_total += t;
            }
            if (f) {
                const std::int64_t pos = pos0 + before + __popc(ballot & below);
                if (pos < total) {
                    std::int64_t rest = e;
                    for (int d = shape.ndim - 1; d >= 0; --d) {
                        out[d * total + pos] = rest % shape.sizes[d];
                        rest /= shape.sizes[d];
                    }
                }
            }
            pos0 += round_total;
            __syncthreads();  // warp_counts is rewritten next round
        }
    }
}

// ------------------------------------------------------------------ helpers
void same_shape(const char* op, const char* what, const DeviceArray& a, const DeviceArray& b) {
    if (a.shape != b.shape || a.device != b.device) {
        throw std::invalid_argument(std::string(op) + ": " + what + " " + b.describe() +
                                    " must have the shape and device of base " + a.describe());
    }
}

void need_int64(const char* op, const char* what, const DeviceArray& a) {
    if (a.dtype != DType::Int64) {
        throw std::invalid_argument(std::string(op) + ": " + what + " must be int64, got " +
                                    a.describe());
    }
}

template <typename F> void dispatch_words(std::size_t bytes, F&& f) {
    switch (bytes) {
        case 1: f(std::uint8_t{}); return;
        case 2: f(std::uint16_t{}); return;
        case 4: f(std::uint32_t{}); return;
        default: f(std::uint64_t{}); return;
    }
}

}  // namespace

void index_apply(IndexMode mode, const DeviceArray& base, const DeviceArray& index,
                 std::int64_t size, std::int64_t stride, const DeviceArray& values) {
    const char* op = mode == IndexMode::Gather ? "cuda.index_gather"
                     : mode == IndexMode::Put  ? "cuda.index_put"
                                               : "cuda.index_add";
    same_shape(op, "index", base, index);
    same_shape(op, "values", base, values);
    need_int64(op, "index", index);
    if (values.dtype != base.dtype) {
        throw std::invalid_argument(std::string(op) + ": values " + values.describe() +
                                    " must have the dtype of base " + base.describe());
    }
    if (size < 0) throw std::invalid_argument(std::string(op) + ": size must be >= 0");
    if (base.numel() == 0) return;
    DeviceGuard guard(base.device);
    if (mode == IndexMode::Gather) {
        dispatch_all(base.dtype, [&](auto tag) {
            launch_index<IndexMode::Gather, decltype(tag)>(base, index, size, stride, values, op);
        });
    } else if (mode == IndexMode::Put) {
        dispatch_all(base.dtype, [&](auto tag) {
            launch_index<IndexMode::Put, decltype(tag)>(base, index, size, stride, values, op);
        });
    } else {
        switch (base.dtype) {
            case DType::Float32: launch_index<IndexMode::Add, float>(base, index, size, stride, values, op); break;
            case DType::Float64: launch_index<IndexMode::Add, double>(base, index, size, stride, values, op); break;
            case DType::Int64: launch_index<IndexMode::Add, std::int64_t>(base, index, size, stride, values, op); break;
            case DType::Int32: launch_index<IndexMode::Add, std::int32_t>(base, index, size, stride, values, op); break;
            default:
                throw std::invalid_argument(std::string(op) + ": atomic add takes float32, float64, "
                                            "int64 or int32, got " + base.describe());
        }
    }
}

void index_check(const DeviceArray& index, std::int64_t size, std::int64_t axis) {
    const char* op = "cuda.index_check";
    need_int64(op, "index", index);
    const std::int64_t n = index.numel();
    if (n == 0) return;
    DeviceGuard guard(index.device);
    cudaStream_t stream = default_stream(index.device);
    DeviceArray mm = DeviceArray::empty({2}, DType::Int64, index.device);
    auto* mmp = static_cast<std::int64_t*>(mm.data());
    minmax_init_kernel<<<1, 1, 0, stream>>>(mmp);
    check_launch("index_check_init");
    const auto calc = make_offset_calc<1>(index.shape, {index.strides}, op);
    index_check_kernel<<<grid_for(n, kThreads, index.device), kThreads, 0, stream>>>(
        static_cast<const std::int64_t*>(index.data()), calc, n, reinterpret_cast<long long*>(mmp));
    check_launch("index_check");
    std::int64_t host[2];
    NNF_CUDA_CHECK(cudaMemcpyAsync(host, mmp, sizeof(host), cudaMemcpyDeviceToHost, stream),
                   "cudaMemcpyAsync (index_check)");
    NNF_CUDA_CHECK(cudaStreamSynchronize(stream), "cudaStreamSynchronize (index_check)");
    std::int64_t bad = 0;
    if (host[1] >= size) bad = host[1];
    else if (host[0] < -size) bad = host[0];
    else return;
    throw std::out_of_range("index " + std::to_string(bad) + " is out of bounds for axis " +
                            std::to_string(axis) + " with size " + std::to_string(size));
}

void index_add_segments(const DeviceArray& base, const DeviceArray& values, const DeviceArray& perm,
                        const DeviceArray& starts, const DeviceArray& rows, std::int64_t stride) {
    const char* op = "cuda.index_add_segments";
    need_int64(op, "perm", perm);
    need_int64(op, "starts", starts);
    need_int64(op, "rows", rows);
    if (base.ndim() != 1 || values.ndim() != 2 || perm.ndim() != 1 || starts.ndim() != 1 ||
        rows.ndim() != 1 || !perm.is_contiguous() || !starts.is_contiguous() ||
        !rows.is_contiguous() || values.shape[1] != base.shape[0] ||
        perm.shape[0] != values.shape[0] || starts.shape[0] != rows.shape[0] + 1 ||
        values.dtype != base.dtype) {
        throw std::invalid_argument(std::string(op) + ": expected base (Q,), values (m, Q) of "
                                    "base's dtype, perm (m,), starts (U + 1,), rows (U,) "
                                    "contiguous int64; got base " + base.describe() +
                                    ", values " + values.describe() + ", perm " + perm.describe() +
                                    ", starts " + starts.describe() + ", rows " + rows.describe());
    }
    const std::int64_t segments = rows.shape[0], cols = base.shape[0];
    if (segments == 0 || cols == 0) return;
    DeviceGuard guard(base.device);
    dispatch_all(base.dtype, [&](auto tag) {
        using T = decltype(tag);
        const std::int64_t n = segments * cols;
        index_add_segments_kernel<T><<<grid_for(n, kThreads, base.device), kThreads, 0,
                                       default_stream(base.device)>>>(
            static_cast<T*>(base.data()), base.strides[0], stride,
            static_cast<const T*>(values.data()), values.strides[0], values.strides[1],
            static_cast<const std::int64_t*>(perm.data()),
            static_cast<const std::int64_t*>(starts.data()),
            static_cast<const std::int64_t*>(rows.data()), segments, cols);
        check_launch("index_add_segments", type_name<T>());
    });
}

DeviceArray flip(const DeviceArray& a, const std::vector<int>& axes) {
    const char* op = "cuda.flip";
    std::vector<bool> flipped(a.ndim(), false);
    for (int ax : axes) {
        if (ax < 0 || ax >= a.ndim()) {
            throw std::out_of_range(std::string(op) + ": axis " + std::to_string(ax) +
                                    " is out of bounds for array of dimension " +
                                    std::to_string(a.ndim()));
        }
        flipped[ax] = true;
    }
    DeviceArray out = DeviceArray::empty(a.shape, a.dtype, a.device);
    const std::int64_t n = a.numel();
    if (n == 0) return out;
    Shape src_strides = a.strides;
    std::int64_t last = 0;  // elements from a's first element to the flipped start
    for (int d = 0; d < a.ndim(); ++d) {
        if (!flipped[d]) continue;
        last += (a.shape[d] - 1) * a.strides[d];
        src_strides[d] = -a.strides[d];
    }
    const auto calc = make_offset_calc<2>(a.shape, {out.strides, src_strides}, op);
    DeviceGuard guard(a.device);
    dispatch_words(itemsize(a.dtype), [&](auto tag) {
        using W = decltype(tag);
        flip_kernel<W><<<grid_for(n, kThreads, a.device), kThreads, 0, default_stream(a.device)>>>(
            static_cast<W*>(out.data()), static_cast<const W*>(a.data()) + last, calc, n);
        check_launch("flip", dtype_name(a.dtype));
    });
    return out;
}

DeviceArray nonzero(const DeviceArray& a) {
    const char* op = "cuda.nonzero";
    if (a.ndim() == 0 || a.ndim() > kMaxNzDims) {
        throw std::invalid_argument(std::string(op) + ": expected an array of 1 to " +
                                    std::to_string(kMaxNzDims) + " dims, got " + a.describe());
    }
    const std::int64_t n = a.numel();
    const std::int64_t chunks = (n + kNzChunk - 1) / kNzChunk;
    if (n == 0) return DeviceArray::empty({a.ndim(), 0}, DType::Int64, a.device);
    DeviceGuard guard(a.device);
    cudaStream_t stream = default_stream(a.device);
    const auto calc = make_offset_calc<1>(a.shape, {a.strides}, op);
    const int grid = static_cast<int>(std::min<std::int64_t>(
        chunks, std::int64_t(device_props(a.device).multiProcessorCount) * 8));
    DeviceArray counts = DeviceArray::empty({chunks}, DType::Int64, a.device);
    auto* cp = static_cast<std::int64_t*>(counts.data());
    dispatch_all(a.dtype, [&](auto tag) {
        using T = decltype(tag);
        nz_count_kernel<T><<<grid, kThreads, 0, stream>>>(static_cast<const T*>(a.data()), calc, n,
                                                        chunks, cp);
        check_launch("nonzero_count", type_name<T>());
    });
    DeviceArray inclusive = scan_lines(counts, 1, chunks, 1, false);
    const auto* ip = static_cast<const std::int64_t*>(inclusive.data());
    std::int64_t total = 0;
    NNF_CUDA_CHECK(cudaMemcpyAsync(&total, ip + (chunks - 1), sizeof(total),
                                   cudaMemcpyDeviceToHost, stream),
                   "cudaMemcpyAsync (nonzero count)");
    NNF_CUDA_CHECK(cudaStreamSynchronize(stream), "cudaStreamSynchronize (nonzero count)");
    DeviceArray out = DeviceArray::empty({a.ndim(), total}, DType::Int64, a.device);
    if (total == 0) return out;
    Unravel shape{};
    shape.ndim = a.ndim();
    for (int d = 0; d < a.ndim(); ++d) shape.sizes[d] = a.shape[d];
    dispatch_all(a.dtype, [&](auto tag) {
        using T = decltype(tag);
        nz_write_kernel<T><<<grid, kThreads, 0, stream>>>(static_cast<const T*>(a.data()), calc, n,
                                                        chunks, ip, cp, shape, total,
                                                        static_cast<std::int64_t*>(out.data()));
        check_launch("nonzero_write", type_name<T>());
    });
    return out;
}

}  // namespace cuda
}  // namespace nnforge
