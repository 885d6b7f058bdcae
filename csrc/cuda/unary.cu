// Unary elementwise kernels: y = f(x), forward only (their derivatives are
// written in the Python ops as products of these, except GELU's, which has
// its own kernel in binary.cu).
//
//   sigmoid(x)   = 1 / (1 + e^-x) for x >= 0, e^x / (1 + e^x) otherwise (no overflow)
//   gelu(x)      = x Phi(x) = x (1 + erf(x / sqrt 2)) / 2
//   gelu_tanh(x) = x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2
//   sign(x)      = (x > 0) - (x < 0), 0 for nan (PyTorch)
//   round(x)     = nearest, ties to even (numpy, PyTorch)
//   rsqrt(x)     = 1 / sqrt(x) (correctly rounded sqrt, then a division: the
//                  CPU twin's result, not the approximate rsqrtf)
// Half and bfloat16 are computed in float, float32 in float, float64 in double.
// Launch geometry: elementwise.cuh (16-byte vector loads when contiguous).
#include <cmath>
#include <type_traits>
#include <map>
#include <stdexcept>

#include "cuda/elementwise.cuh"
#include "cuda/elementwise.h"

namespace nnforge {
namespace cuda {
namespace {

template <typename C> __device__ __forceinline__ C sigmoid_of(C x) {
    if (x >= C(0)) return C(1) / (C(1) + exp(-x));
    const C e = exp(x);
    return e / (C(1) + e);
}

template <typename C> __device__ __forceinline__ C gelu_tanh_of(C x) {
    const C k = C(0.7978845608028654);  // sqrt(2 / pi)
    return C(0.5) * x * (C(1) + tanh(k * (x + C(0.044715) * x * x * x)));
}

// One functor per op, on the compute type C.
#define NNF_UNARY(NAME, EXPR)                                                  \
    struct NAME {                                                              \
        template <typename C> __device__ __forceinline__ C operator()(C x) const { \
            return EXPR;                                                       \
        }                                                                      \
    };
NNF_UNARY(Neg, -x)
NNF_UNARY(Square, x * x)
NNF_UNARY(Relu, (x > C(0) || x != x) ? x : C(0))
NNF_UNARY(Exp, exp(x))
NNF_UNARY(Expm1, expm1(x))
NNF_UNARY(Log, log(x))
NNF_UNARY(Log1p, log1p(x))
NNF_UNARY(Sqrt, sqrt(x))
NNF_UNARY(Rsqrt, C(1) / sqrt(x))
NNF_UNARY(Reciprocal, C(1) / x)
NNF_UNARY(Sin, sin(x))
NNF_UNARY(Cos, cos(x))
NNF_UNARY(Tanh, tanh(x))
NNF_UNARY(Sigmoid, sigmoid_of(x))
NNF_UNARY(Erf, erf(x))
NNF_UNARY(Gelu, C(0.5) * x * (C(1) + erf(x * C(0.7071067811865476))))
NNF_UNARY(GeluTanh, gelu_tanh_of(x))
NNF_UNARY(Floor, floor(x))
NNF_UNARY(Ceil, ceil(x))
NNF_UNARY(Round, rint(x))
NNF_UNARY(Trunc, trunc(x))
#undef NNF_UNARY

// Unsigned types have no negative values (and the compiler warns on x < 0).
struct Abs {
    template <typename C> __device__ __forceinline__ C operator()(C x) const {
        if constexpr (std::is_unsigned<C>::value) return x;
        else return x < C(0) ? -x : x;
    }
};
struct Sign {
    template <typename C> __device__ __forceinline__ C operator()(C x) const {
        if constexpr (std::is_unsigned<C>::value) return C(x > C(0));
        else return C((x > C(0)) - (x < C(0)));
    }
};

// Ops with a bool result.
struct IsNan {
    template <typename C> __device__ bool operator()(C x) const { return x != x; }
};
struct IsInf {
    template <typename C> __device__ bool operator()(C x) const { return isinf(x); }
};
struct IsFinite {
    template <typename C> __device__ bool operator()(C x) const { return isfinite(x); }
};
struct LogicalNot {
    template <typename C> __device__ bool operator()(C x) const { return x == C(0); }
};

// x of storage type T -> F on Compute<T> -> Out.
template <typename F, typename T, typename Out>
struct Lift {
    F f;
    __device__ __forceinline__ Out operator()(T x) const {
        using C = typename Compute<T>::type;
        return convert<Out>(f(convert<C>(x)));
    }
};

enum class Kind { Numeric, Floating, FloatingToBool, AnyToBool };

// Instantiates F only for the dtypes its kind admits.
template <Kind K, typename F>
void run(const char* name, const DeviceArray& x, const DeviceArray& out) {
    const std::array<const DeviceArray*, 1> in{&x};
    auto launch = [&](auto tag) {
        using T = decltype(tag);
        using Out = std::conditional_t<K == Kind::FloatingToBool || K == Kind::AnyToBool, bool, T>;
        launch_elementwise<Out, T, 1>(out, in, Lift<F, T, Out>{F{}}, name);
    };
    if constexpr (K == Kind::Numeric) dispatch_numeric(x.dtype, name, launch);
    else if constexpr (K == Kind::AnyToBool) dispatch_all(x.dtype, launch);
    else dispatch_floating(x.dtype, name, launch);
}

using Runner = void (*)(const char*, const DeviceArray&, const DeviceArray&);
struct Entry {
    Kind kind;
    Runner run;
};

const std::map<std::string, Entry>& table() {
    static const std::map<std::string, Entry> t = {
        {"neg", {Kind::Numeric, run<Kind::Numeric, Neg>}},
        {"abs", {Kind::Numeric, run<Kind::Numeric, Abs>}},
        {"square", {Kind::Numeric, run<Kind::Numeric, Square>}},
        {"sign", {Kind::Numeric, run<Kind::Numeric, Sign>}},
        {"relu", {Kind::Numeric, run<Kind::Numeric, Relu>}},
        {"exp", {Kind::Floating, run<Kind::Floating, Exp>}},
        {"expm1", {Kind::Floating, run<Kind::Floating, Expm1>}},
        {"log", {Kind::Floating, run<Kind::Floating, Log>}},
        {"log1p", {Kind::Floating, run<Kind::Floating, Log1p>}},
        {"sqrt", {Kind::Floating, run<Kind::Floating, Sqrt>}},
        {"rsqrt", {Kind::Floating, run<Kind::Floating, Rsqrt>}},
        {"reciprocal", {Kind::Floating, run<Kind::Floating, Reciprocal>}},
        {"sin", {Kind::Floating, run<Kind::Floating, Sin>}},
        {"cos", {Kind::Floating, run<Kind::Floating, Cos>}},
        {"tanh", {Kind::Floating, run<Kind::Floating, Tanh>}},
        {"sigmoid", {Kind::Floating, run<Kind::Floating, Sigmoid>}},
        {"erf", {Kind::Floating, run<Kind::Floating, Erf>}},
        {"gelu", {Kind::Floating, run<Kind::Floating, Gelu>}},
        {"gelu_tanh", {Kind::Floating, run<Kind::Floating, GeluTanh>}},
        {"floor", {Kind::Floating, run<Kind::Floating, Floor>}},
        {"ceil", {Kind::Floating, run<Kind::Floating, Ceil>}},
        {"round", {Kind::Floating, run<Kind::Floating, Round>}},
        {"trunc", {Kind::Floating, run<Kind::Floating, Trunc>}},
        {"isnan", {Kind::FloatingToBool, run<Kind::FloatingToBool, IsNan>}},
        {"isinf", {Kind::FloatingToBool, run<Kind::FloatingToBool, IsInf>}},
        {"isfinite", {Kind::FloatingToBool, run<Kind::FloatingToBool, IsFinite>}},
        {"logical_not", {Kind::AnyToBool, run<Kind::AnyToBool, LogicalNot>}},
    };
    return t;
}

}  // namespace

bool is_unary_op(const std::string& op) { return table().count(op) != 0; }

DeviceArray unary(const std::string& op, const DeviceArray& x, const DeviceArray* out) {
    const auto it = table().find(op);
    if (it == table().end()) throw std::invalid_argument("cuda.unary: unknown op '" + op + "'");
    const Entry& e = it->second;
    const bool to_bool = e.kind == Kind::FloatingToBool || e.kind == Kind::AnyToBool;
    const DType out_dtype = to_bool ? DType::Bool : x.dtype;
    DeviceArray result;
    if (out != nullptr) {
        if (out->shape != x.shape || out->dtype != out_dtype || out->device != x.device) {
            throw std::invalid_argument("cuda." + op + ": out is " + out->describe() +
                                        ", expected " + dtype_name(out_dtype) + " " +
                                        shape_str(x.shape) + " on cuda:" +
                                        std::to_string(x.device));
        }
        result = *out;
    } else {
        result = DeviceArray::empty(x.shape, out_dtype, x.device);
    }
    e.run(op.c_str(), x, result);
    return result;
}

}  // namespace cuda
}  // namespace nnforge
