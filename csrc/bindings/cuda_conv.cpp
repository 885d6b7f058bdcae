// Binds the CUDA convolution kernels (cuda/conv.h) into nnforge._C.cuda, over
// C-contiguous NCHW DeviceArrays of one dtype (float32/float64: SIMT kernels;
// bfloat16/float16: tensor cores on sm_80+, else float32 SIMT rounded back):
//   conv2d_forward(x, weight, bias, stride, padding, dilation, groups) -> y
//   conv2d_backward_input(grad_output, weight, bias, input_size, stride, padding,
//                         dilation, groups) -> grad_input   (+ bias per input channel:
//                                                            conv_transpose2d's forward)
//   conv2d_backward_weight(x, grad_output, kernel_size, stride, padding, dilation,
//                          groups, need_weight=True, need_bias=False)
//       -> (grad_weight | None, grad_bias | None)
// stride and dilation are (h, w) pairs, padding is (top, bottom, left, right);
// bias is None or (channels,). Other dtypes raise TypeError, bad shapes or
// layouts ValueError, naming the op and the shapes. Launches are asynchronous
// and run with the GIL released. In a build without CUDA this binds nothing.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings/bindings.h"

namespace py = pybind11;

#if NNFORGE_WITH_CUDA

#include <optional>
#include <string>

#include "cuda/conv.h"
#include "cuda/device_array.h"

namespace nnforge {
namespace {

using cuda::DeviceArray;
using cuda::DType;

void check_float(const char* op, const char* arg, const DeviceArray& a) {
    if (a.dtype != DType::Float32 && a.dtype != DType::Float64 && a.dtype != DType::BFloat16 &&
        a.dtype != DType::Float16) {
        throw py::type_error(std::string(op) + ": " + arg +
                             " must be float32, float64, bfloat16 or float16, got " +
                             a.describe());
    }
}

const DeviceArray* opt(const std::optional<DeviceArray>& a) { return a ? &*a : nullptr; }

py::object maybe(bool has, const DeviceArray& a) { return has ? py::cast(a) : py::none(); }

}  // namespace

void bind_cuda_conv(py::module_& m) {
    m.def(
        "conv2d_forward",
        [](const DeviceArray& x, const DeviceArray& w, std::optional<DeviceArray> bias,
           cuda::Pair stride, cuda::Pads padding, cuda::Pair dilation, std::int64_t groups) {
            const char* op = "cuda.conv2d_forward";
            check_float(op, "x", x);
            check_float(op, "weight", w);
            if (bias) check_float(op, "bias", *bias);
            py::gil_scoped_release release;
            return cuda::conv2d_forward(x, w, opt(bias), stride, padding, dilation, groups);
        },
        py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("stride"), py::arg("padding"),
        py::arg("dilation"), py::arg("groups"),
        "y = conv2d(x, weight) + bias, NCHW; padding is (top, bottom, left, right).");
    m.def(
        "conv2d_backward_input",
        [](const DeviceArray& dy, const DeviceArray& w, std::optional<DeviceArray> bias,
           cuda::Pair input_size, cuda::Pair stride, cuda::Pads padding, cuda::Pair dilation,
           std::int64_t groups) {
            const char* op = "cuda.conv2d_backward_input";
            check_float(op, "grad_output", dy);
            check_float(op, "weight", w);
            if (bias) check_float(op, "bias", *bias);
            py::gil_scoped_release release;
            return cuda::conv2d_backward_input(dy, w, opt(bias), input_size, stride, padding,
                                               dilation, groups);
        },
        py::arg("grad_output"), py::arg("weight"), py::arg("bias"), py::arg("input_size"),
        py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("groups"),
        "dL/dx of conv2d for dL/dy (plus bias per input channel when given: "
        "conv_transpose2d's forward).");
    m.def(
        "conv2d_backward_weight",
        [](const DeviceArray& x, const DeviceArray& dy, cuda::Pair kernel_size,
           cuda::Pair stride, cuda::Pads padding, cuda::Pair dilation, std::int64_t groups,
           bool need_weight, bool need_bias) {
            const char* op = "cuda.conv2d_backward_weight";
            check_float(op, "x", x);
            check_float(op, "grad_output", dy);
            cuda::ConvWeightGrads r;
            {
                py::gil_scoped_release release;
                r = cuda::conv2d_backward_weight(x, dy, kernel_size, stride, padding, dilation,
                                                 groups, need_weight, need_bias);
            }
            return py::make_tuple(maybe(r.has_dw, r.dw), maybe(r.has_db, r.db));
        },
        py::arg("x"), py::arg("grad_output"), py::arg("kernel_size"), py::arg("stride"),
        py::arg("padding"), py::arg("dilation"), py::arg("groups"), py::arg("need_weight") = true,
        py::arg("need_bias") = false,
        "(dL/dweight or None, dL/dbias or None) of conv2d for dL/dy.");
}

}  // namespace nnforge

#else  // !NNFORGE_WITH_CUDA

namespace nnforge {
void bind_cuda_conv(py::module_&) {}
}  // namespace nnforge

#endif
