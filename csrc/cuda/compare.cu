// Comparison and logical kernels: c = f(a, b) -> bool, with broadcasting.
//   eq ne lt le gt ge: IEEE comparisons (any comparison with nan is false,
//     except ne, which is true), over every dtype.
//   logical_and/or/xor: on "not zero" of each operand, every dtype.
// Launch geometry: elementwise.cuh (the output vector is VEC bools).
// Also the front door binary(), which sends each op to its file.
#include <map>
#include <stdexcept>

#include "cuda/binary_ops.cuh"

namespace nnforge {
namespace cuda {

bool is_binary_arith_op(const std::string& op);  // binary.cu
DeviceArray binary_arith(const std::string& op, const DeviceArray& a, const DeviceArray& b,
                         const DeviceArray* out);

namespace {

#define NNF_COMPARE(NAME, EXPR)                                                         \
    struct NAME {                                                                       \
        template <typename C> __device__ __forceinline__ bool operator()(C a, C b) const { \
            return EXPR;                                                                \
        }                                                                               \
    };
NNF_COMPARE(Eq, a == b)
NNF_COMPARE(Ne, a != b)
NNF_COMPARE(Lt, a < b)
NNF_COMPARE(Le, a <= b)
NNF_COMPARE(Gt, a > b)
NNF_COMPARE(Ge, a >= b)
NNF_COMPARE(LogicalAnd, (a != C(0)) && (b != C(0)))
NNF_COMPARE(LogicalOr, (a != C(0)) || (b != C(0)))
NNF_COMPARE(LogicalXor, (a != C(0)) != (b != C(0)))
#undef NNF_COMPARE

const std::map<std::string, Entry2>& table() {
    static const std::map<std::string, Entry2> t = {
        {"eq", {Kind2::AllToBool, run2<Kind2::AllToBool, Eq>}},
        {"ne", {Kind2::AllToBool, run2<Kind2::AllToBool, Ne>}},
        {"lt", {Kind2::AllToBool, run2<Kind2::AllToBool, Lt>}},
        {"le", {Kind2::AllToBool, run2<Kind2::AllToBool, Le>}},
        {"gt", {Kind2::AllToBool, run2<Kind2::AllToBool, Gt>}},
        {"ge", {Kind2::AllToBool, run2<Kind2::AllToBool, Ge>}},
        {"logical_and", {Kind2::AllToBool, run2<Kind2::AllToBool, LogicalAnd>}},
        {"logical_or", {Kind2::AllToBool, run2<Kind2::AllToBool, LogicalOr>}},
        {"logical_xor", {Kind2::AllToBool, run2<Kind2::AllToBool, LogicalXor>}},
    };
    return t;
}

}  // namespace

bool is_binary_op(const std::string& op) {
    return table().count(op) != 0 || is_binary_arith_op(op);
}

DeviceArray binary(const std::string& op, const DeviceArray& a, const DeviceArray& b,
                   const DeviceArray* out) {
    const auto it = table().find(op);
    if (it != table().end()) return run_binary(op, it->second, a, b, out);
    if (is_binary_arith_op(op)) return binary_arith(op, a, b, out);
    throw std::invalid_argument("cuda.binary: unknown op '" + op + "'");
}

}  // namespace cuda
}  // namespace nnforge
