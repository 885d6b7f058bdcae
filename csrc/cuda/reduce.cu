// Row reductions: out[r] = R(x[r, 0], ..., x[r, cols-1]) for a C-contiguous
// (rows, cols) array. The Python backend reduces any set of axes by moving
// the kept axes first and the reduced ones last (a transpose, then a copy to
// contiguous when needed), so the reduced elements of one output are one
// contiguous row.
//
// Each reduction R is an accumulator type Acc with
//     identity, load(v, index) -> Acc, combine(Acc, Acc) -> Acc, finish(Acc, n) -> Out
// where combine is associative (and, for arg*, breaks ties toward the lower
// index, so the result is the first occurrence, as numpy's):
//     sum/prod/mean  Acc = float (half, bf16, float), double, int64 (integers)
//     amax/amin      Acc = the compute type; nan wins
//     argmax/argmin  Acc = (value, index); nan counts as the extreme
//     var            Acc = Welford (n, mean, M2), merged with Chan's formula
//                    d = mean_b - mean_a,  n = n_a + n_b,
//                    mean = mean_a + d n_b / n,  M2 = M2_a + M2_b + d^2 n_a n_b / n;
//                    var = M2 / max(n - ddof, 0) (inf or nan when n <= ddof, as numpy)
//     any/all        Acc = int (0/1)
//
// Work split. cols < 1024: one warp per row, 8 rows per 256-thread block;
// lane l loads elements l, l+32, ... (coalesced), then a shuffle tree
// (__shfl_down_sync by 16, 8, 4, 2, 1) combines the 32 partials into lane 0.
// cols >= 1024: one 256-thread block per row; each warp reduces as above,
// lane 0 of each warp writes its partial to shared memory, and warp 0 combines
// the 8 partials. Rows are covered by grid-stride loops. (Not yet: a split of
// one very long row across blocks, for full reductions of large arrays.)
#include <limits>
#include <map>
#include <stdexcept>
#include <type_traits>

#include "cuda/check.cuh"
#include "cuda/context.cuh"
#include "cuda/dispatch.cuh"
#include "cuda/elementwise.h"

namespace nnforge {
namespace cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr std::int64_t kBlockPerRowCols = 1024;

// Shuffle any 4-byte-multiple accumulator word by word.
template <typename A>
__device__ __forceinline__ A shfl_down(const A& v, int delta) {
    static_assert(sizeof(A) % 4 == 0, "accumulators are whole 4-byte words");
    constexpr int W = sizeof(A) / 4;
    unsigned words[W];
    memcpy(words, &v, sizeof(A));
#pragma unroll
    for (int w = 0; w < W; ++w) words[w] = __shfl_down_sync(0xffffffffu, words[w], delta);
    A out;
    memcpy(&out, words, sizeof(A));
    return out;
}

template <typename R>
__device__ __forceinline__ typename R::Acc warp_reduce(const R& r, typename R::Acc acc) {
#pragma unroll
    for (int delta = 16; delta > 0; delta >>= 1) acc = r.combine(acc, shfl_down(acc, delta));
    return acc;
}

// ------------------------------------------------------------------ reductions
template <typename T> using sum_acc_t = std::conditional_t<
    is_float_v<T>, std::conditional_t<std::is_same<T, double>::value, double, float>,
    std::int64_t>;
template <typename T> using sum_out_t = std::conditional_t<is_float_v<T>, T, std::int64_t>;
template <typename T> using mean_acc_t =
    std::conditional_t<is_float_v<T>, sum_acc_t<T>, double>;
template <typename T> using mean_out_t = std::conditional_t<is_float_v<T>, T, double>;

template <typename T, bool Product>
struct SumR {
    using Acc = sum_acc_t<T>;
    using Out = sum_out_t<T>;
    Acc identity;
    __device__ Acc load(T v, std::int64_t) const { return convert<Acc>(v); }
    __device__ Acc combine(Acc a, Acc b) const { return Product ? a * b : a + b; }
    __device__ Out finish(Acc a, std::int64_t) const { return convert<Out>(a); }
};

template <typename T>
struct MeanR {
    using Acc = mean_acc_t<T>;
    using Out = mean_out_t<T>;
    Acc identity;
    __device__ Acc load(T v, std::int64_t) const { return convert<Acc>(v); }
    __device__ Acc combine(Acc a, Acc b) const { return a + b; }
    __device__ Out finish(Acc a, std::int64_t n) const {
        return convert<Out>(a / static_cast<Acc>(n));
    }
};

template <typename T, bool Max>
struct ExtremeR {
    using C = typename Compute<T>::type;
    using Acc = std::conditional_t<sizeof(C) < 4, int, C>;  // bool, uint8: whole words
    using Out = T;
    Acc identity;
    __device__ Acc load(T v, std::int64_t) const { return convert<Acc>(convert<C>(v)); }
    __device__ Acc combine(Acc a, Acc b) const {
        if (a != a) return a;
        return (Max ? a > b : a < b) ? a : b;
    }
    __device__ Out finish(Acc a, std::int64_t) const { return convert<T>(convert<C>(a)); }
};

template <typename V>
struct ArgAcc {
    V v;
    std::int64_t i;  // -1: no element yet
};

template <typename T, bool Max>
struct ArgR {
    using C = typename Compute<T>::type;
    using V = std::conditional_t<sizeof(C) < 4, int, C>;
    using Acc = ArgAcc<V>;
    using Out = std::int64_t;
    Acc identity;
    __device__ Acc load(T v, std::int64_t i) const { return Acc{convert<V>(convert<C>(v)), i}; }
    __device__ Acc combine(const Acc& a, const Acc& b) const {
        if (a.i < 0) return b;
        if (b.i < 0) return a;
        const bool an = a.v != a.v, bn = b.v != b.v;
        if (an || bn) return (an && bn) ? (a.i < b.i ? a : b) : (an ? a : b);
        if (Max ? a.v > b.v : a.v < b.v) return a;
        if (Max ? b.v > a.v : b.v < a.v) return b;
        return a.i < b.i ? a : b;
    }
    __device__ Out finish(const Acc& a, std::int64_t) const { return a.i; }
};

template <typename A>
struct Welford {
    A n, mean, m2;
};

template <typename T>
struct VarR {
    using A = mean_acc_t<T>;
    using Acc = Welford<A>;
    using Out = mean_out_t<T>;
    Acc identity;
    std::int64_t ddof;
    __device__ Acc load(T v, std::int64_t) const { return Acc{A(1), convert<A>(v), A(0)}; }
    __device__ Acc combine(const Acc& a, const Acc& b) const {
        if (a.n == A(0)) return b;
        if (b.n == A(0)) return a;
        const A n = a.n + b.n, d = b.mean - a.mean;
        return Acc{n, a.mean + d * (b.n / n), a.m2 + b.m2 + d * d * (a.n * b.n / n)};
    }
    __device__ Out finish(const Acc& a, std::int64_t) const {
        const A denom = a.n - A(ddof);
        return convert<Out>(a.m2 / (denom > A(0) ? denom : A(0)));
    }
};

template <typename T, bool All>
struct BoolR {
    using Acc = int;
    using Out = bool;
    Acc identity;
    __device__ Acc load(T v, std::int64_t) const { return convert<bool>(v) ? 1 : 0; }
    __device__ Acc combine(Acc a, Acc b) const { return All ? (a & b) : (a | b); }
    __device__ Out finish(Acc a, std::int64_t) const { return a != 0; }
};

// ------------------------------------------------------------------ kernels
template <typename T, typename R>
__global__ void reduce_rows_warp(const T* __restrict__ x, typename R::Out* __restrict__ out,
                                 std::int64_t rows, std::int64_t cols, R r) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    for (std::int64_t row = blockIdx.x * std::int64_t(kWarps) + warp; row < rows;
         row += std::int64_t(gridDim.x) * kWarps) {
        const T* xr = x + row * cols;
        typename R::Acc acc = r.identity;
        for (std::int64_t c = lane; c < cols; c += 32) acc = r.combine(acc, r.load(xr[c], c));
        acc = warp_reduce(r, acc);
        if (lane == 0) out[row] = r.finish(acc, cols);
    }
}

template <typename T, typename R>
__global__ void reduce_rows_block(const T* __restrict__ x, typename R::Out* __restrict__ out,
                                  std::int64_t rows, std::int64_t cols, R r) {
    __shared__ typename R::Acc partial[kWarps];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    for (std::int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
        const T* xr = x + row * cols;
        typename R::Acc acc = r.identity;
        for (std::int64_t c = threadIdx.x; c < cols; c += kThreads) {
            acc = r.combine(acc, r.load(xr[c], c));
        }
        acc = warp_reduce(r, acc);
        if (lane == 0) partial[warp] = acc;
        __syncthreads();
        if (warp == 0) {
            acc = lane < kWarps ? partial[lane] : r.identity;
            acc = warp_reduce(r, acc);
            if (lane == 0) out[row] = r.finish(acc, cols);
        }
        __syncthreads();  // partial[] is reused by the next row
    }
}

template <typename T, typename R>
void launch_reduce(const char* name, const DeviceArray& x, const DeviceArray& out,
                   std::int64_t rows, std::int64_t cols, const R& r) {
    cudaStream_t stream = default_stream(x.device);
    using Out = typename R::Out;
    if (cols < kBlockPerRowCols) {
        const std::int64_t blocks = (rows + kWarps - 1) / kWarps;
        const int grid = static_cast<int>(blocks < (1 << 20) ? blocks : (1 << 20));
        reduce_rows_warp<T, R><<<grid, kThreads, 0, stream>>>(
            static_cast<const T*>(x.data()), static_cast<Out*>(out.data()), rows, cols, r);
    } else {
        const int grid = static_cast<int>(rows < (1 << 20) ? rows : (1 << 20));
        reduce_rows_block<T, R><<<grid, kThreads, 0, stream>>>(
            static_cast<const T*>(x.data()), static_cast<Out*>(out.data()), rows, cols, r);
    }
    check_launch(name, type_name<T>());
}

template <typename V> V lowest() {
    return std::numeric_limits<V>::has_infinity ? -std::numeric_limits<V>::infinity()
                                                : std::numeric_limits<V>::lowest();
}
template <typename V> V highest() {
    return std::numeric_limits<V>::has_infinity ? std::numeric_limits<V>::infinity()
                                                : std::numeric_limits<V>::max();
}

template <typename T> DType dtype_of() {
    if constexpr (std::is_same<T, float>::value) return DType::Float32;
    else if constexpr (std::is_same<T, double>::value) return DType::Float64;
    else if constexpr (std::is_same<T, std::int64_t>::value) return DType::Int64;
    else if constexpr (std::is_same<T, std::int32_t>::value) return DType::Int32;
    else if constexpr (std::is_same<T, bool>::value) return DType::Bool;
    else if constexpr (std::is_same<T, std::uint8_t>::value) return DType::UInt8;
    else if constexpr (std::is_same<T, bf16>::value) return DType::BFloat16;
    else return DType::Float16;
}

// Builds the reduction for dtype T, allocates the (rows,) result and launches.
template <typename T>
DeviceArray reduce_typed(const std::string& op, const DeviceArray& x, std::int64_t rows,
                         std::int64_t cols, std::int64_t ddof) {
    auto run = [&](auto r) {
        using R = decltype(r);
        DeviceArray out = DeviceArray::empty({rows}, dtype_of<typename R::Out>(), x.device);
        if (rows > 0) launch_reduce<T>(op.c_str(), x, out, rows, cols, r);
        return out;
    };
    using C = typename Compute<T>::type;
    if (op == "sum") return run(SumR<T, false>{0});
    if (op == "prod") return run(SumR<T, true>{1});
    if (op == "mean") return run(MeanR<T>{0});
    if (op == "amax") return run(ExtremeR<T, true>{lowest<C>()});
    if (op == "amin") return run(ExtremeR<T, false>{highest<C>()});
    if (op == "argmax") return run(ArgR<T, true>{{lowest<C>(), -1}});
    if (op == "argmin") return run(ArgR<T, false>{{highest<C>(), -1}});
    if (op == "var") return run(VarR<T>{{0, 0, 0}, ddof});
    if (op == "any") return run(BoolR<T, false>{0});
    if (op == "all") return run(BoolR<T, true>{1});
    throw std::invalid_argument("cuda.reduce: unknown op '" + op + "'");
}

}  // namespace

bool is_reduce_op(const std::string& op) {
    static const char* ops[] = {"sum", "prod", "mean", "amax", "amin", "argmax",
                                "argmin", "var", "any", "all"};
    for (const char* o : ops) {
        if (op == o) return true;
    }
    return false;
}

DeviceArray reduce_rows(const std::string& op, const DeviceArray& x, std::int64_t rows,
                        std::int64_t cols, std::int64_t ddof) {
    if (!is_reduce_op(op)) throw std::invalid_argument("cuda.reduce: unknown op '" + op + "'");
    if (!x.is_contiguous()) {
        throw std::invalid_argument("cuda." + op + ": input " + x.describe() +
                                    " must be contiguous");
    }
    if (rows < 0 || cols < 0 || rows * cols != x.numel()) {
        throw std::invalid_argument("cuda." + op + ": (rows, cols) = (" + std::to_string(rows) +
                                    ", " + std::to_string(cols) + ") does not cover input " +
                                    x.describe());
    }
    if (cols == 0 && op != "sum" && op != "prod" && op != "any" && op != "all" && rows > 0) {
        throw std::invalid_argument("cuda." + op + ": reduction over an empty dimension");
    }
    if (x.dtype == DType::Bool && op == "var") {
        throw std::invalid_argument("cuda.var: not defined for bool arrays");
    }
    DeviceGuard guard(x.device);
    DeviceArray result;
    dispatch_all(x.dtype, [&](auto tag) {
        using T = decltype(tag);
        result = reduce_typed<T>(op, x, rows, cols, ddof);
    });
    return result;
}

}  // namespace cuda
}  // namespace nnforge
