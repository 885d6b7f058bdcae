// Binds the CUDA batch-norm kernels (cuda/batchnorm.h) into nnforge._C.cuda,
// with the CPU bindings' names and arguments (bindings/batchnorm.cpp). x, gy
// are C-contiguous (N, C, S) float32/float64 DeviceArrays; weight, bias, mean,
// var, invstd contiguous (C,) arrays of x's dtype (weight and bias may be None).
//   batch_norm_forward_train(x, weight, bias, eps) -> (y, mean, invstd, var)   (var biased)
//   batch_norm_forward_eval(x, weight, bias, mean, var, eps) -> y
//   batch_norm_backward(gy, x, weight, mean, invstd, training, need_input, need_weight,
//                       need_bias) -> (gx, gw, gb), each None when not needed
//   batch_norm_update_running_(running, stat, momentum, factor) -> None   (in place)
// Other dtypes raise TypeError, bad shapes ValueError, naming the op and the
// shapes. Launches are asynchronous and run with the GIL released. In a build
// without CUDA this binds nothing.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings/bindings.h"

namespace py = pybind11;

#if NNFORGE_WITH_CUDA

#include <optional>
#include <string>

#include "cuda/batchnorm.h"
#include "cuda/device_array.h"

namespace nnforge {
namespace {

using cuda::DeviceArray;
using cuda::DType;

void check_float(const char* op, const char* arg, const DeviceArray& a) {
    if (a.dtype != DType::Float32 && a.dtype != DType::Float64) {
        throw py::type_error(std::string(op) + ": " + arg + " must be float32 or float64, got " +
                             a.describe());
    }
}

const DeviceArray* opt(const std::optional<DeviceArray>& a) { return a ? &*a : nullptr; }

py::object maybe(bool has, const DeviceArray& a) { return has ? py::cast(a) : py::none(); }

}  // namespace

void bind_cuda_batchnorm(py::module_& m) {
    m.def(
        "batch_norm_forward_train",
        [](const DeviceArray& x, std::optional<DeviceArray> weight,
           std::optional<DeviceArray> bias, double eps) {
            check_float("cuda.batch_norm_forward_train", "x", x);
            cuda::BatchNormTrain r;
            {
                py::gil_scoped_release release;
                r = cuda::batch_norm_forward_train(x, opt(weight), opt(bias), eps);
            }
            return py::make_tuple(r.y, r.mean, r.invstd, r.var);
        },
        py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("eps"),
        "(y, mean, invstd, var): batch norm of (N, C, S) with the batch's statistics.");
    m.def(
        "batch_norm_forward_eval",
        [](const DeviceArray& x, std::optional<DeviceArray> weight,
           std::optional<DeviceArray> bias, const DeviceArray& mean, const DeviceArray& var,
           double eps) {
            check_float("cuda.batch_norm_forward_eval", "x", x);
            py::gil_scoped_release release;
            return cuda::batch_norm_forward_eval(x, opt(weight), opt(bias), mean, var, eps);
        },
        py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("mean"), py::arg("var"),
        py::arg("eps"), "Batch norm of (N, C, S) with the given per-channel statistics.");
    m.def(
        "batch_norm_backward",
        [](const DeviceArray& gy, const DeviceArray& x, std::optional<DeviceArray> weight,
           const DeviceArray& mean, const DeviceArray& invstd, bool training, bool need_input,
           bool need_weight, bool need_bias) {
            check_float("cuda.batch_norm_backward", "x", x);
            check_float("cuda.batch_norm_backward", "gy", gy);
            cuda::BatchNormBackward r;
            {
                py::gil_scoped_release release;
                r = cuda::batch_norm_backward(gy, x, opt(weight), mean, invstd, training,
                                              need_input, need_weight, need_bias);
            }
            return py::make_tuple(maybe(r.has_gx, r.gx), maybe(r.has_gw, r.gw),
                                  maybe(r.has_gb, r.gb));
        },
        py::arg("gy"), py::arg("x"), py::arg("weight"), py::arg("mean"), py::arg("invstd"),
        py::arg("training"), py::arg("need_input"), py::arg("need_weight"), py::arg("need_bias"),
        "(gx, gw, gb) of batch norm, None where not asked for.");
    m.def(
        "batch_norm_update_running_",
        [](const DeviceArray& running, const DeviceArray& stat, double momentum, double factor) {
            check_float("cuda.batch_norm_update_running_", "stat", stat);
            py::gil_scoped_release release;
            cuda::batch_norm_update_running_(running, stat, momentum, factor);
        },
        py::arg("running"), py::arg("stat"), py::arg("momentum"), py::arg("factor"),
        "In place: running = (1 - momentum) running + momentum factor stat.");
}

}  // namespace nnforge

#else  // !NNFORGE_WITH_CUDA

namespace nnforge {
void bind_cuda_batchnorm(py::module_&) {}
}  // namespace nnforge

#endif
