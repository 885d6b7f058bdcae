// Shared by binary.cu and compare.cu: the dispatch of a two-input functor over
// the dtypes its kind admits, and the result array (broadcast shape, or `out`).
#pragma once

#include <string>
#include <type_traits>

#include "cuda/elementwise.cuh"
#include "cuda/elementwise.h"

namespace nnforge {
namespace cuda {

// a, b of storage type T -> F on Compute<T> -> Out.
template <typename F, typename T, typename Out>
struct Lift2 {
    F f;
    __device__ __forceinline__ Out operator()(T a, T b) const {
        using C = typename Compute<T>::type;
        return convert<Out>(f(convert<C>(a), convert<C>(b)));
    }
};

enum class Kind2 { All, Numeric, Floating, AllToBool };

template <Kind2 K, typename F>
void run2(const char* name, const DeviceArray& a, const DeviceArray& b, const DeviceArray& out) {
    const std::array<const DeviceArray*, 2> in{&a, &b};
    auto launch = [&](auto tag) {
        using T = decltype(tag);
        using Out = std::conditional_t<K == Kind2::AllToBool, bool, T>;
        launch_elementwise<Out, T, 2>(out, in, Lift2<F, T, Out>{F{}}, name);
    };
    if constexpr (K == Kind2::Numeric) dispatch_numeric(a.dtype, name, launch);
    else if constexpr (K == Kind2::Floating) dispatch_floating(a.dtype, name, launch);
    else dispatch_all(a.dtype, launch);
}

using Runner2 = void (*)(const char*, const DeviceArray&, const DeviceArray&, const DeviceArray&);
struct Entry2 {
    Kind2 kind;
    Runner2 run;
};

// Checks the operands (one dtype, one device), makes or checks the result, runs.
DeviceArray run_binary(const std::string& op, const Entry2& e, const DeviceArray& a,
                       const DeviceArray& b, const DeviceArray* out);

}  // namespace cuda
}  // namespace nnforge
