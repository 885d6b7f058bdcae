// Binary arithmetic kernels, c = f(a, b) with broadcasting, and where().
//
//   floor_divide, remainder: numpy's divmod (Python semantics): the remainder
//     takes the divisor's sign, a = b * floor_divide(a, b) + remainder(a, b);
//     integer division by zero gives 0 (numpy, with its warning).
//   pow on integers: repeated squaring; a negative exponent gives 1/a rounded
//     toward zero (0 unless a is 1 or -1).
//   maximum, minimum: nan wins (numpy.maximum, torch.maximum).
//   gelu_backward(g, x)      = g (Phi(x) + x phi(x)),  phi(x) = e^(-x^2/2) / sqrt(2 pi)
//   gelu_tanh_backward(g, x) = g (0.5 (1 + t) + 0.5 x (1 - t^2) k (1 + 3 c x^2)),
//     t = tanh(k (x + c x^3)), k = sqrt(2/pi), c = 0.044715
// where(cond, a, b) moves elements as raw 1/2/4/8-byte words (dtype-free).
// Launch geometry: elementwise.cuh.
#include <cmath>
#include <map>
#include <stdexcept>

#include "cuda/binary_ops.cuh"

namespace nnforge {
namespace cuda {
namespace {

#define NNF_BINARY(NAME, EXPR)                                                       \
    struct NAME {                                                                    \
        template <typename C> __device__ __forceinline__ C operator()(C a, C b) const { \
            return EXPR;                                                             \
        }                                                                            \
    };
NNF_BINARY(Add, a + b)
NNF_BINARY(Sub, a - b)
NNF_BINARY(Mul, a * b)
NNF_BINARY(Div, a / b)
NNF_BINARY(Maximum, (a != a || a > b) ? a : b)
NNF_BINARY(Minimum, (a != a || a < b) ? a : b)
#undef NNF_BINARY

struct FloorDivide {
    template <typename C> __device__ C operator()(C a, C b) const {
        if constexpr (std::is_floating_point<C>::value) {
            if (b == C(0)) return a / b;
            C mod = fmod(a, b);
            C div = (a - mod) / b;
            if (mod != C(0) && ((b < C(0)) != (mod < C(0)))) div -= C(1);
            if (div == C(0)) return copysign(C(0), a / b);
            C fl = floor(div);
            if (div - fl > C(0.5)) fl += C(1);
            return fl;
        } else {
            if (b == C(0)) return C(0);
            C q = a / b;
            if constexpr (std::is_signed<C>::value) {
                if ((a % b != 0) && ((a < 0) != (b < 0))) q -= 1;
            }
            return q;
        }
    }
};

struct Remainder {
    template <typename C> __device__ C operator()(C a, C b) const {
        if constexpr (std::is_floating_point<C>::value) {
            C mod = fmod(a, b);
            if (mod != C(0)) {
                if ((b < C(0)) != (mod < C(0))) mod += b;
            } else {
                mod = copysign(C(0), b);
            }
            return mod;
        } else {
            if (b == C(0)) return C(0);
            C r = a % b;
            if constexpr (std::is_signed<C>::value) {
                if (r != 0 && ((r < 0) != (b < 0))) r += b;
            }
            return r;
        }
    }
};

struct Pow {
    template <typename C> __device__ C operator()(C a, C b) const {
        if constexpr (std::is_floating_point<C>::value) {
            return pow(a, b);
        } else {
            if constexpr (std::is_signed<C>::value) {
                if (b < 0) return a == 1 ? C(1) : (a == -1 ? C((b & 1) ? -1 : 1) : C(0));
            }
            C result = 1, base = a;
            for (C e = b; e > 0; e >>= 1) {
                if (e & 1) result *= base;
                base *= base;
            }
            return result;
        }
    }
};

struct GeluBackward {  // a = upstream gradient, b = x
    template <typename C> __device__ C operator()(C g, C x) const {
        const C cdf = C(0.5) * (C(1) + erf(x * C(0.7071067811865476)));
        const C pdf = exp(C(-0.5) * x * x) * C(0.3989422804014327);
        return g * (cdf + x * pdf);
    }
};

struct GeluTanhBackward {
    template <typename C> __device__ C operator()(C g, C x) const {
        const C k = C(0.7978845608028654), c = C(0.044715);
        const C t = tanh(k * (x + c * x * x * x));
        return g * (C(0.5) * (C(1) + t) +
                    C(0.5) * x * (C(1) - t * t) * k * (C(1) + C(3) * c * x * x));
    }
};

const std::map<std::string, Entry2>& table() {
    static const std::map<std::string, Entry2> t = {
        {"add", {Kind2::All, run2<Kind2::All, Add>}},
        {"mul", {Kind2::All, run2<Kind2::All, Mul>}},
        {"maximum", {Kind2::All, run2<Kind2::All, Maximum>}},
        {"minimum", {Kind2::All, run2<Kind2::All, Minimum>}},
        {"sub", {Kind2::Numeric, run2<Kind2::Numeric, Sub>}},
        {"floor_divide", {Kind2::Numeric, run2<Kind2::Numeric, FloorDivide>}},
        {"remainder", {Kind2::Numeric, run2<Kind2::Numeric, Remainder>}},
        {"pow", {Kind2::Numeric, run2<Kind2::Numeric, Pow>}},
        {"div", {Kind2::Floating, run2<Kind2::Floating, Div>}},
        {"gelu_backward", {Kind2::Floating, run2<Kind2::Floating, GeluBackward>}},
        {"gelu_tanh_backward", {Kind2::Floating, run2<Kind2::Floating, GeluTanhBackward>}},
    };
    return t;
}

// ------------------------------------------------------------------ where
template <typename W>
__global__ void where_kernel(W* __restrict__ out, const bool* __restrict__ cond,
                             const W* __restrict__ a, const W* __restrict__ b,
                             OffsetCalc<4> calc, std::int64_t n) {
    for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
         i += std::int64_t(gridDim.x) * blockDim.x) {
        std::int64_t off[4];
        calc.get(i, off);
        out[off[0]] = cond[off[1]] ? a[off[2]] : b[off[3]];
    }
}

template <typename W>
void launch_where(const DeviceArray& out, const DeviceArray& cond, const DeviceArray& a,
                  const DeviceArray& b) {
    const std::int64_t n = out.numel();
    const OffsetCalc<4> calc = make_offset_calc<4>(
        out.shape,
        {out.strides, broadcast_strides(cond, out.shape, "where"),
         broadcast_strides(a, out.shape, "where"), broadcast_strides(b, out.shape, "where")},
        "where");
    const int grid = grid_for(n, kElementwiseThreads, out.device);
    where_kernel<W><<<grid, kElementwiseThreads, 0, default_stream(out.device)>>>(
        static_cast<W*>(out.data()), static_cast<const bool*>(cond.data()),
        static_cast<const W*>(a.data()), static_cast<const W*>(b.data()), calc, n);
    check_launch("where", dtype_name(out.dtype));
}

}  // namespace

DeviceArray run_binary(const std::string& op, const Entry2& e, const DeviceArray& a,
                       const DeviceArray& b, const DeviceArray* out) {
    if (a.dtype != b.dtype) {
        throw std::invalid_argument("cuda." + op + ": operands have dtypes " +
                                    dtype_name(a.dtype) + " and " + dtype_name(b.dtype) +
                                    "; promote them to one dtype first");
    }
    if (a.device != b.device) {
        throw std::invalid_argument("cuda." + op + ": operands are on cuda:" +
                                    std::to_string(a.device) + " and cuda:" +
                                    std::to_string(b.device));
    }
    const Shape shape = broadcast_shapes(a.shape, b.shape, ("cuda." + op).c_str());
    const DType out_dtype = e.kind == Kind2::AllToBool ? DType::Bool : a.dtype;
    DeviceArray result;
    if (out != nullptr) {
        if (out->shape != shape || out->dtype != out_dtype || out->device != a.device) {
            throw std::invalid_argument("cuda." + op + ": out is " + out->describe() +
                                        ", expected " + dtype_name(out_dtype) + " " +
                                        shape_str(shape) + " on cuda:" +
                                        std::to_string(a.device));
        }
        result = *out;
    } else {
        result = DeviceArray::empty(shape, out_dtype, a.device);
    }
    e.run(op.c_str(), a, b, result);
    return result;
}

bool is_binary_arith_op(const std::string& op) { return table().count(op) != 0; }

DeviceArray binary_arith(const std::string& op, const DeviceArray& a, const DeviceArray& b,
                         const DeviceArray* out) {
    return run_binary(op, table().at(op), a, b, out);
}

DeviceArray where(const DeviceArray& cond, const DeviceArray& a, const DeviceArray& b) {
    if (cond.dtype != DType::Bool) {
        throw std::invalid_argument(std::string("cuda.where: cond must be bool, got ") +
                                    dtype_name(cond.dtype));
    }
    if (a.dtype != b.dtype) {
        throw std::invalid_argument(std::string("cuda.where: a and b have dtypes ") +
                                    dtype_name(a.dtype) + " and " + dtype_name(b.dtype));
    }
    if (cond.device != a.device || a.device != b.device) {
        throw std::invalid_argument("cuda.where: operands are on different devices");
    }
    const Shape shape = broadcast_shapes(broadcast_shapes(cond.shape, a.shape, "cuda.where"),
                                         b.shape, "cuda.where");
    DeviceArray out = DeviceArray::empty(shape, a.dtype, a.device);
    if (out.numel() == 0) return out;
    DeviceGuard guard(out.device);
    switch (itemsize(a.dtype)) {
        case 1: launch_where<std::uint8_t>(out, cond, a, b); break;
        case 2: launch_where<std::uint16_t>(out, cond, a, b); break;
        case 4: launch_where<std::uint32_t>(out, cond, a, b); break;
        default: launch_where<std::uint64_t>(out, cond, a, b); break;
    }
    return out;
}

}  // namespace cuda
}  // namespace nnforge
