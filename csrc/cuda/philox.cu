// Philox4x32-10 random numbers on the GPU: uniform, normal (Box-Muller),
// Bernoulli / scaled dropout masks, and the raw stream. Generator in
// philox.cuh; the element-to-draw layout and the conversions in random.h.
//
// Work split: one thread per Philox block (4 draws) in a grid-stride loop over
// the blocks; the thread writes the 4 (float-like, Bernoulli) or 2 (double
// uniform/normal) consecutive elements of its block, bounds-checked at the
// tail. Counters depend only on the element index, so the values do not depend
// on the launch configuration. Compute bound in the 10 rounds (2 32-bit
// multiplies-high each) for small dtypes; memory bound otherwise.
#include <cmath>
#include <stdexcept>
#include <string>

#include "cuda/check.cuh"
#include "cuda/context.cuh"
#include "cuda/copy.h"
#include "cuda/dispatch.cuh"
#include "cuda/philox.cuh"
#include "cuda/random.h"

namespace nnforge {
namespace cuda {
namespace {

constexpr int kThreads = 256;

using u32 = std::uint32_t;
using u64 = std::uint64_t;

// Elements per block of 4 draws: 2 for double uniform/normal (2 draws each), else 4.
template <typename T>
constexpr int per_block() { return std::is_same<T, double>::value ? 2 : 4; }

template <typename T>
__device__ __forceinline__ float uniform_of(u32 x) {
    if constexpr (std::is_same<T, f16>::value) return philox::uniform_bits<11>(x);
    else if constexpr (std::is_same<T, bf16>::value) return philox::uniform_bits<8>(x);
    else return philox::uniform_bits<24>(x);
}

template <typename T>
__global__ void uniform_kernel(T* __restrict__ out, long long n, u64 blocks, u64 seed,
                               u64 offset) {
    for (u64 b = blockIdx.x * static_cast<u64>(blockDim.x) + threadIdx.x; b < blocks;
         b += static_cast<u64>(gridDim.x) * blockDim.x) {
        const philox::Words w = philox::block(seed, offset, b);
        if constexpr (std::is_same<T, double>::value) {
            const long long i = static_cast<long long>(2 * b);
            out[i] = philox::uniform53(w.v[0], w.v[1]);
            if (i + 1 < n) out[i + 1] = philox::uniform53(w.v[2], w.v[3]);
        } else {
            const long long i0 = static_cast<long long>(4 * b);
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                if (i0 + j < n) out[i0 + j] = convert<T>(uniform_of<T>(w.v[j]));
            }
        }
    }
}

template <typename T>
__global__ void normal_kernel(T* __restrict__ out, long long n, u64 blocks, u64 seed,
                              u64 offset) {
    for (u64 b = blockIdx.x * static_cast<u64>(blockDim.x) + threadIdx.x; b < blocks;
         b += static_cast<u64>(gridDim.x) * blockDim.x) {
        const philox::Words w = philox::block(seed, offset, b);
        if constexpr (std::is_same<T, double>::value) {
            const double r = sqrt(-2.0 * log(philox::uniform53_open0(w.v[0], w.v[1])));
            double s, c;
            sincospi(2.0 * philox::uniform53(w.v[2], w.v[3]), &s, &c);
            const long long i = static_cast<long long>(2 * b);
            out[i] = r * c;
            if (i + 1 < n) out[i + 1] = r * s;
        } else {
            const long long i0 = static_cast<long long>(4 * b);
#pragma unroll
            for (int k = 0; k < 2; ++k) {  // pairs (draws 0, 1) and (2, 3)
                const float r = sqrtf(-2.0f * logf(philox::uniform_open0(w.v[2 * k])));
                float s, c;
                sincospif(2.0f * philox::uniform_bits<24>(w.v[2 * k + 1]), &s, &c);
                const long long i = i0 + 2 * k;
                if (i < n) out[i] = convert<T>(r * c);
                if (i + 1 < n) out[i + 1] = convert<T>(r * s);
            }
        }
    }
}

template <typename T>
__global__ void bernoulli_kernel(T* __restrict__ out, const T* __restrict__ probs, long long n,
                                 u64 blocks, double p, T value, u64 seed, u64 offset) {
    for (u64 b = blockIdx.x * static_cast<u64>(blockDim.x) + threadIdx.x; b < blocks;
         b += static_cast<u64>(gridDim.x) * blockDim.x) {
        const philox::Words w = philox::block(seed, offset, b);
        const long long i0 = static_cast<long long>(4 * b);
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const long long i = i0 + j;
            if (i < n) {
                const double pi = probs ? convert<double>(probs[i]) : p;
                out[i] = philox::unit32(w.v[j]) < pi ? value : convert<T>(0.0f);
            }
        }
    }
}

__global__ void words_kernel(long long* __restrict__ out, long long n, u64 blocks, u64 seed,
                             u64 offset) {
    for (u64 b = blockIdx.x * static_cast<u64>(blockDim.x) + threadIdx.x; b < blocks;
         b += static_cast<u64>(gridDim.x) * blockDim.x) {
        const philox::Words w = philox::block(seed, offset, b);
        const long long i0 = static_cast<long long>(4 * b);
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            if (i0 + j < n) out[i0 + j] = static_cast<long long>(w.v[j]);
        }
    }
}

__global__ void single_block_kernel(philox::Words c, u32 k0, u32 k1, long long* out) {
    const philox::Words w = philox::philox4x32_10(c, k0, k1);
    for (int j = 0; j < 4; ++j) out[j] = static_cast<long long>(w.v[j]);
}

// ---------------------------------------------------------------- host side
void check_float_dtype(const char* op, DType dtype) {
    if (!is_floating(dtype)) {
        throw std::invalid_argument(std::string("cuda.") + op +
                                    ": samples need a floating-point dtype, got " +
                                    dtype_name(dtype));
    }
}

long long numel_of(const Shape& shape, const char* op) {
    long long n = 1;
    for (auto s : shape) {
        if (s < 0) {
            throw std::invalid_argument(std::string("cuda.") + op + ": negative dimension in " +
                                        shape_str(shape));
        }
        n *= s;
    }
    return n;
}

// Blocks of 4 draws covering n elements of `per` elements each.
u64 blocks_for(long long n, int per) { return (static_cast<u64>(n) + per - 1) / per; }

int grid_for_blocks(u64 blocks, int device) {
    return grid_for(static_cast<long long>(blocks), kThreads, device);
}

template <typename Launch>
RandomResult generate(const char* op, const Shape& shape, DType dtype, int device,
                      Launch&& launch) {
    const long long n = numel_of(shape, op);
    check_device_index(device, op);
    RandomResult r;
    r.out = DeviceArray::empty(shape, dtype, device);
    if (n == 0) return r;
    DeviceGuard guard(device);
    r.draws = launch(n, default_stream(device));
    return r;
}

}  // namespace

RandomResult philox_uniform(const Shape& shape, DType dtype, int device, u64 seed, u64 offset) {
    const char* op = "philox_uniform";
    check_float_dtype(op, dtype);
    RandomResult r;
    r = generate(op, shape, dtype, device, [&](long long n, cudaStream_t stream) -> u64 {
        u64 blocks = 0;
        dispatch_floating(dtype, op, [&](auto tag) {
            using T = decltype(tag);
            blocks = blocks_for(n, per_block<T>());
            uniform_kernel<T><<<grid_for_blocks(blocks, device), kThreads, 0, stream>>>(
                static_cast<T*>(r.out.data()), n, blocks, seed, offset);
            check_launch(op, type_name<T>());
        });
        return 4 * blocks;
    });
    return r;
}

RandomResult philox_normal(const Shape& shape, DType dtype, int device, u64 seed, u64 offset) {
    const char* op = "philox_normal";
    check_float_dtype(op, dtype);
    RandomResult r;
    r = generate(op, shape, dtype, device, [&](long long n, cudaStream_t stream) -> u64 {
        u64 blocks = 0;
        dispatch_floating(dtype, op, [&](auto tag) {
            using T = decltype(tag);
            blocks = blocks_for(n, per_block<T>());
            normal_kernel<T><<<grid_for_blocks(blocks, device), kThreads, 0, stream>>>(
                static_cast<T*>(r.out.data()), n, blocks, seed, offset);
            check_launch(op, type_name<T>());
        });
        return 4 * blocks;
    });
    return r;
}

RandomResult philox_bernoulli(const Shape& shape, DType dtype, int device,
                              const DeviceArray* probs, double p, double value, u64 seed,
                              u64 offset) {
    const char* op = "philox_bernoulli";
    check_float_dtype(op, dtype);
    if (probs && (probs->shape != shape || probs->dtype != dtype || probs->device != device ||
                  !probs->is_contiguous())) {
        throw std::invalid_argument(std::string("cuda.") + op +
                                    ": probs must be a C-contiguous " + dtype_name(dtype) +
                                    " array of shape " + shape_str(shape) + " on cuda:" +
                                    std::to_string(device) + ", got " + probs->describe());
    }
    RandomResult r;
    r = generate(op, shape, dtype, device, [&](long long n, cudaStream_t stream) -> u64 {
        const u64 blocks = blocks_for(n, 4);
        dispatch_floating(dtype, op, [&](auto tag) {
            using T = decltype(tag);
            const T* pp = probs ? static_cast<const T*>(probs->data()) : nullptr;
            bernoulli_kernel<T><<<grid_for_blocks(blocks, device), kThreads, 0, stream>>>(
                static_cast<T*>(r.out.data()), pp, n, blocks, p, convert<T>(value), seed, offset);
            check_launch(op, type_name<T>());
        });
        return 4 * blocks;
    });
    return r;
}

RandomResult philox_words(std::int64_t n, int device, u64 seed, u64 offset) {
    const char* op = "philox_words";
    RandomResult r;
    r = generate(op, Shape{n}, DType::Int64, device, [&](long long count, cudaStream_t stream) {
        const u64 blocks = blocks_for(count, 4);
        words_kernel<<<grid_for_blocks(blocks, device), kThreads, 0, stream>>>(
            static_cast<long long*>(r.out.data()), count, blocks, seed, offset);
        check_launch(op);
        return 4 * blocks;
    });
    return r;
}

std::array<u32, 4> philox_block_on_device(int device, std::array<u32, 4> counter,
                                          std::array<u32, 2> key) {
    const char* op = "philox4x32_10";
    check_device_index(device, op);
    DeviceGuard guard(device);
    DeviceArray out = DeviceArray::empty(Shape{4}, DType::Int64, device);
    const philox::Words c{{counter[0], counter[1], counter[2], counter[3]}};
    single_block_kernel<<<1, 1, 0, default_stream(device)>>>(c, key[0], key[1],
                                                             static_cast<long long*>(out.data()));
    check_launch(op);
    long long host[4];
    to_host(out, host);
    return {static_cast<u32>(host[0]), static_cast<u32>(host[1]), static_cast<u32>(host[2]),
            static_cast<u32>(host[3])};
}

}  // namespace cuda
}  // namespace nnforge
