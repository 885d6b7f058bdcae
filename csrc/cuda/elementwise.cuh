// The launch machinery shared by every elementwise kernel (unary.cu,
// binary.cu, compare.cu): out[i] = f(in_0[i], ..., in_{N-1}[i]) over a
// broadcast output shape.
//
// Two paths, chosen on the host:
//  * contiguous: every operand C-contiguous with the output's shape. Each
//    thread moves VEC = 16 / sizeof(In) elements per step as one 16-byte load
//    per input (float4 for float32, 2 doubles, 8 halves) and one VEC-wide
//    store, when every pointer is aligned to its vector width; the last
//    n % VEC elements (and misaligned arrays) take the scalar loop.
//  * general: any strides, broadcast operands with stride 0; OffsetCalc<N+1>
//    turns the linear output index into each operand's element offset.
// Both are grid-stride loops: 256 threads a block, blocks = min(ceil(work /
// 256), 8 * SMs). The functor `f` receives the input element type and returns
// the output type (conversions to the compute type happen inside it).
#pragma once

#include <array>
#include <cstdint>

#include "cuda/check.cuh"
#include "cuda/context.cuh"
#include "cuda/dispatch.cuh"
#include "cuda/index_calc.cuh"

namespace nnforge {
namespace cuda {

constexpr int kElementwiseThreads = 256;

template <typename T, int VEC>
struct alignas(sizeof(T) * VEC) Vec {
    T v[VEC];
};

template <typename In, int N>
struct InPtrs {
    const In* p[N];
};

template <typename F, typename In, int N>
__device__ __forceinline__ auto apply_op(const F& f, const In (&x)[N]) {
    if constexpr (N == 1) return f(x[0]);
    else if constexpr (N == 2) return f(x[0], x[1]);
    else return f(x[0], x[1], x[2]);
}

template <typename Out, typename In, int N, int VEC, typename F>
__global__ void elementwise_contiguous(Out* __restrict__ out, InPtrs<In, N> in, std::int64_t n,
                                       F f) {
    const std::int64_t stride = std::int64_t(gridDim.x) * blockDim.x;
    const std::int64_t tid = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x;
    const std::int64_t nvec = n / VEC;
    for (std::int64_t i = tid; i < nvec; i += stride) {
        Vec<In, VEC> x[N];
#pragma unroll
        for (int k = 0; k < N; ++k) x[k] = reinterpret_cast<const Vec<In, VEC>*>(in.p[k])[i];
        Vec<Out, VEC> y;
#pragma unroll
        for (int j = 0; j < VEC; ++j) {
            In a[N];
#pragma unroll
            for (int k = 0; k < N; ++k) a[k] = x[k].v[j];
            y.v[j] = apply_op(f, a);
        }
        reinterpret_cast<Vec<Out, VEC>*>(out)[i] = y;
    }
    for (std::int64_t i = nvec * VEC + tid; i < n; i += stride) {
        In a[N];
#pragma unroll
        for (int k = 0; k < N; ++k) a[k] = in.p[k][i];
        out[i] = apply_op(f, a);
    }
}

template <typename Out, typename In, int N, typename F>
__global__ void elementwise_strided(Out* __restrict__ out, InPtrs<In, N> in,
                                    OffsetCalc<N + 1> calc, std::int64_t n, F f) {
    for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
         i += std::int64_t(gridDim.x) * blockDim.x) {
        std::int64_t off[N + 1];
        calc.get(i, off);
        In a[N];
#pragma unroll
        for (int k = 0; k < N; ++k) a[k] = in.p[k][off[k + 1]];
        out[off[0]] = apply_op(f, a);
    }
}

inline bool aligned(const void* p, std::size_t bytes) {
    return reinterpret_cast<std::uintptr_t>(p) % bytes == 0;
}

// Runs f over `inputs` (each of dtype In, broadcast to out.shape) into `out`
// (dtype Out, any strides). `name` names the kernel in launch errors.
template <typename Out, typename In, int N, typename F>
void launch_elementwise(const DeviceArray& out, const std::array<const DeviceArray*, N>& inputs,
                        F f, const char* name) {
    const std::int64_t n = out.numel();
    if (n == 0) return;
    DeviceGuard guard(out.device);
    cudaStream_t stream = default_stream(out.device);
    InPtrs<In, N> ptrs;
    bool contiguous = out.is_contiguous();
    for (int k = 0; k < N; ++k) {
        ptrs.p[k] = static_cast<const In*>(inputs[k]->data());
        contiguous = contiguous && inputs[k]->shape == out.shape && inputs[k]->is_contiguous();
    }
    if (contiguous) {
        constexpr int VEC = static_cast<int>(16 / sizeof(In));
        bool vec_ok = aligned(out.data(), sizeof(Out) * VEC);
        for (int k = 0; k < N; ++k) vec_ok = vec_ok && aligned(ptrs.p[k], 16);
        if (vec_ok && n >= VEC) {
            const int grid = grid_for(n / VEC, kElementwiseThreads, out.device);
            elementwise_contiguous<Out, In, N, VEC><<<grid, kElementwiseThreads, 0, stream>>>(
                static_cast<Out*>(out.data()), ptrs, n, f);
        } else {
            const int grid = grid_for(n, kElementwiseThreads, out.device);
            elementwise_contiguous<Out, In, N, 1><<<grid, kElementwiseThreads, 0, stream>>>(
                static_cast<Out*>(out.data()), ptrs, n, f);
        }
    } else {
        std::array<Shape, N + 1> strides;
        strides[0] = out.strides;
        for (int k = 0; k < N; ++k) strides[k + 1] = broadcast_strides(*inputs[k], out.shape, name);
        const OffsetCalc<N + 1> calc = make_offset_calc<N + 1>(out.shape, strides, name);
        const int grid = grid_for(n, kElementwiseThreads, out.device);
        elementwise_strided<Out, In, N><<<grid, kElementwiseThreads, 0, stream>>>(
            static_cast<Out*>(out.data()), ptrs, calc, n, f);
    }
    check_launch(name, type_name<In>());
}

}  // namespace cuda
}  // namespace nnforge
