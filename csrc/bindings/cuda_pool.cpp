// Binds the CUDA pooling kernels (cuda/pool.h) into nnforge._C.cuda, over
// C-contiguous (N, C, H, W) float32/float64 DeviceArrays (indices int64), with
// the CPU bindings' names and arguments (bindings/pool.cpp):
//   max_pool2d_forward(x, kernel, stride, padding, dilation, ceil_mode, return_indices)
//       -> (y, indices or None)
//   max_pool2d_backward(gy, indices, input_hw) -> gx        (also adaptive max pooling's)
//   avg_pool2d_forward(x, kernel, stride, padding, ceil_mode, count_include_pad,
//                      divisor_override) -> y               (divisor_override 0: none)
//   avg_pool2d_backward(gy, input_hw, kernel, stride, padding, ceil_mode,
//                       count_include_pad, divisor_override) -> gx
//   adaptive_avg_pool2d_forward(x, output_hw) -> y
//   adaptive_avg_pool2d_backward(gy, input_hw) -> gx
//   adaptive_max_pool2d_forward(x, output_hw, return_indices) -> (y, indices or None)
// kernel, stride, padding, dilation, *_hw are (h, w) pairs. Other dtypes raise
// TypeError, bad shapes/geometry ValueError, indices outside their plane
// IndexError, naming the op and the shapes. Launches run with the GIL released.
// In a build without CUDA this binds nothing.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings/bindings.h"

namespace py = pybind11;

#if NNFORGE_WITH_CUDA

#include <cstdint>
#include <string>

#include "cuda/device_array.h"
#include "cuda/pool.h"

namespace nnforge {
namespace {

using cuda::DeviceArray;
using cuda::DType;
using cuda::PoolPair;

void check_float(const char* op, const char* arg, const DeviceArray& a) {
    if (a.dtype != DType::Float32 && a.dtype != DType::Float64) {
        throw py::type_error(std::string(op) + ": " + arg + " must be float32 or float64, got " +
                             a.describe());
    }
}

py::tuple with_indices(const cuda::PoolWithIndices& r) {
    return py::make_tuple(r.y, r.has_indices ? py::cast(r.indices) : py::none());
}

}  // namespace

void bind_cuda_pool(py::module_& m) {
    m.def(
        "max_pool2d_forward",
        [](const DeviceArray& x, const PoolPair& kernel, const PoolPair& stride,
           const PoolPair& padding, const PoolPair& dilation, bool ceil_mode,
           bool return_indices) {
            check_float("cuda.max_pool2d_forward", "x", x);
            cuda::PoolWithIndices r;
            {
                py::gil_scoped_release release;
                r = cuda::max_pool2d_forward(x, kernel, stride, padding, dilation, ceil_mode,
                                             return_indices);
            }
            return with_indices(r);
        },
        py::arg("x"), py::arg("kernel"), py::arg("stride"), py::arg("padding"),
        py::arg("dilation"), py::arg("ceil_mode"), py::arg("return_indices"),
        "Max pooling of (N, C, H, W): (y, flat indices within each plane or None).");
    m.def(
        "max_pool2d_backward",
        [](const DeviceArray& gy, const DeviceArray& indices, const PoolPair& input_hw) {
            check_float("cuda.max_pool2d_backward", "gy", gy);
            if (indices.dtype != DType::Int64) {
                throw py::type_error("cuda.max_pool2d_backward: indices must be int64, got " +
                                     indices.describe());
            }
            py::gil_scoped_release release;
            return cuda::max_pool2d_backward(gy, indices, input_hw);
        },
        py::arg("gy"), py::arg("indices"), py::arg("input_hw"),
        "Scatters gy through the max-pooling indices into (N, C, H, W) (atomicAdd).");
    m.def(
        "avg_pool2d_forward",
        [](const DeviceArray& x, const PoolPair& kernel, const PoolPair& stride,
           const PoolPair& padding, bool ceil_mode, bool count_include_pad,
           std::int64_t divisor_override) {
            check_float("cuda.avg_pool2d_forward", "x", x);
            py::gil_scoped_release release;
            return cuda::avg_pool2d_forward(x, kernel, stride, padding, ceil_mode,
                                            count_include_pad, divisor_override);
        },
        py::arg("x"), py::arg("kernel"), py::arg("stride"), py::arg("padding"),
        py::arg("ceil_mode"), py::arg("count_include_pad"), py::arg("divisor_override"),
        "Average pooling of (N, C, H, W).");
    m.def(
        "avg_pool2d_backward",
        [](const DeviceArray& gy, const PoolPair& input_hw, const PoolPair& kernel,
           const PoolPair& stride, const PoolPair& padding, bool ceil_mode,
           bool count_include_pad, std::int64_t divisor_override) {
            check_float("cuda.avg_pool2d_backward", "gy", gy);
            py::gil_scoped_release release;
            return cuda::avg_pool2d_backward(gy, input_hw, kernel, stride, padding, ceil_mode,
                                             count_include_pad, divisor_override);
        },
        py::arg("gy"), py::arg("input_hw"), py::arg("kernel"), py::arg("stride"),
        py::arg("padding"), py::arg("ceil_mode"), py::arg("count_include_pad"),
        py::arg("divisor_override"), "Gradient of average pooling with respect to its input.");
    m.def(
        "adaptive_avg_pool2d_forward",
        [](const DeviceArray& x, const PoolPair& output_hw) {
            check_float("cuda.adaptive_avg_pool2d_forward", "x", x);
            py::gil_scoped_release release;
            return cuda::adaptive_avg_pool2d_forward(x, output_hw);
        },
        py::arg("x"), py::arg("output_hw"), "Adaptive average pooling of (N, C, H, W).");
    m.def(
        "adaptive_avg_pool2d_backward",
        [](const DeviceArray& gy, const PoolPair& input_hw) {
            check_float("cuda.adaptive_avg_pool2d_backward", "gy", gy);
            py::gil_scoped_release release;
            return cuda::adaptive_avg_pool2d_backward(gy, input_hw);
        },
        py::arg("gy"), py::arg("input_hw"), "Gradient of adaptive average pooling.");
    m.def(
        "adaptive_max_pool2d_forward",
        [](const DeviceArray& x, const PoolPair& output_hw, bool return_indices) {
            check_float("cuda.adaptive_max_pool2d_forward", "x", x);
            cuda::PoolWithIndices r;
            {
                py::gil_scoped_release release;
                r = cuda::adaptive_max_pool2d_forward(x, output_hw, return_indices);
            }
            return with_indices(r);
        },
        py::arg("x"), py::arg("output_hw"), py::arg("return_indices"),
        "Adaptive max pooling of (N, C, H, W): (y, flat indices or None).");
}

}  // namespace nnforge

#else  // !NNFORGE_WITH_CUDA

namespace nnforge {
void bind_cuda_pool(py::module_&) {}
}  // namespace nnforge

#endif
