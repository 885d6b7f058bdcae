// From a run-time DType to a C++ element type, and the element conversions
// every kernel uses.
//
//   dispatch_all(dt, "op", [&](auto tag) { using T = decltype(tag); launch<T>(...); });
//
// bfloat16 and float16 are storage types: `Compute<T>::type` is float for them
// (and for float), double for double, the type itself for integers and bool.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "cuda/device_array.h"

namespace nnforge {
namespace cuda {

using bf16 = __nv_bfloat16;
using f16 = __half;

template <typename T> struct Compute { using type = T; };
template <> struct Compute<f16> { using type = float; };
template <> struct Compute<bf16> { using type = float; };

template <typename T> constexpr bool is_reduced_float_v =
    std::is_same<T, f16>::value || std::is_same<T, bf16>::value;
template <typename T> constexpr bool is_float_v =
    std::is_floating_point<T>::value || is_reduced_float_v<T>;

// Any element type to any other, as numpy's astype(casting="unsafe") does for
// in-range values; bool is "not zero"; reduced floats go through float.
template <typename To, typename From>
__host__ __device__ __forceinline__ To convert(From v) {
    if constexpr (std::is_same<To, From>::value) {
        return v;
    } else if constexpr (is_reduced_float_v<From>) {
        return convert<To>(static_cast<float>(v));
    } else if constexpr (std::is_same<To, bool>::value) {
        return v != From(0);
    } else if constexpr (std::is_same<To, f16>::value) {
        return __float2half_rn(static_cast<float>(v));
    } else if constexpr (std::is_same<To, bf16>::value) {
        return __float2bfloat16_rn(static_cast<float>(v));
    } else {
        return static_cast<To>(v);
    }
}

template <typename T> inline const char* type_name() {
    if constexpr (std::is_same<T, float>::value) return "float";
    else if constexpr (std::is_same<T, double>::value) return "double";
    else if constexpr (std::is_same<T, std::int64_t>::value) return "int64";
    else if constexpr (std::is_same<T, std::int32_t>::value) return "int32";
    else if constexpr (std::is_same<T, bool>::value) return "bool";
    else if constexpr (std::is_same<T, std::uint8_t>::value) return "uint8";
    else if constexpr (std::is_same<T, bf16>::value) return "bfloat16";
    else return "float16";
}

template <typename F> void dispatch_all(DType dt, F&& f) {
    switch (dt) {
        case DType::Float32: f(float{}); return;
        case DType::Float64: f(double{}); return;
        case DType::Int64: f(std::int64_t{}); return;
        case DType::Int32: f(std::int32_t{}); return;
        case DType::Bool: f(bool{}); return;
        case DType::UInt8: f(std::uint8_t{}); return;
        case DType::BFloat16: f(bf16{}); return;
        case DType::Float16: f(f16{}); return;
    }
    throw std::invalid_argument("cuda: unknown dtype");
}

// Floating-point dtypes only; anything else throws TypeError-worthy
// std::invalid_argument naming the op.
template <typename F> void dispatch_floating(DType dt, const char* op, F&& f) {
    switch (dt) {
        case DType::Float32: f(float{}); return;
        case DType::Float64: f(double{}); return;
        case DType::BFloat16: f(bf16{}); return;
        case DType::Float16: f(f16{}); return;
        default:
            throw std::invalid_argument(std::string(op) + ": expected a floating-point array, got " +
                                        dtype_name(dt));
    }
}

// Every dtype but bool (arithmetic).
template <typename F> void dispatch_numeric(DType dt, const char* op, F&& f) {
    if (dt == DType::Bool) {
        throw std::invalid_argument(std::string(op) + ": not defined for bool arrays");
    }
    dispatch_all(dt, f);
}

}  // namespace cuda
}  // namespace nnforge
