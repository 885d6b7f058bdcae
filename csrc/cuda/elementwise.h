// Elementwise and reduction kernels, host-side view (bindings include this).
//
// Operands of a binary op must share one dtype (the Python backend promotes
// first); they broadcast with numpy's rules. Results are new C-contiguous
// arrays unless `out` is given (any strides, the result's shape and dtype; it
// may be one of the inputs with the same layout, for in-place updates).
#pragma once

#include <string>
#include <vector>

#include "cuda/device_array.h"

namespace nnforge {
namespace cuda {

// neg abs square sign relu | exp expm1 log log1p sqrt rsqrt reciprocal sin cos
// tanh sigmoid erf gelu gelu_tanh floor ceil round trunc | isnan isinf isfinite
// logical_not (these four give bool).
DeviceArray unary(const std::string& op, const DeviceArray& x, const DeviceArray* out = nullptr);

// add sub mul div floor_divide remainder pow maximum minimum gelu_backward
// gelu_tanh_backward (a = grad, b = x) | eq ne lt le gt ge logical_and
// logical_or logical_xor (these give bool).
DeviceArray binary(const std::string& op, const DeviceArray& a, const DeviceArray& b,
                   const DeviceArray* out = nullptr);

// cond ? a : b, cond bool, a and b of one dtype, all three broadcast.
DeviceArray where(const DeviceArray& cond, const DeviceArray& a, const DeviceArray& b);

// Reductions of a C-contiguous (rows, cols) view of x along cols:
// sum mean prod amax amin argmax argmin var (ddof) any all.
// Result: shape (rows,); dtype as numpy gives (sum of ints: int64; mean/var of
// ints: float64; arg*: int64; any/all: bool).
DeviceArray reduce_rows(const std::string& op, const DeviceArray& x, std::int64_t rows,
                        std::int64_t cols, std::int64_t ddof = 0);

bool is_unary_op(const std::string& op);
bool is_binary_op(const std::string& op);
bool is_reduce_op(const std::string& op);

}  // namespace cuda
}  // namespace nnforge
