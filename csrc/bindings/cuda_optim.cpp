// Binds the CUDA fused optimizer updates (cuda/optim.h) into nnforge._C.cuda,
// with the CPU bindings' names and arguments (csrc/bindings/optim.cpp):
//   sgd_update(param, grad, momentum_buffer, *, lr, momentum, dampening,
//              weight_decay, nesterov, maximize, first_step)
//   adam_update(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, *, step, lr, beta1,
//               beta2, eps, weight_decay, amsgrad, maximize, decoupled_weight_decay)
//   rmsprop_update(param, grad, square_avg, grad_avg, momentum_buffer, *, lr, alpha,
//                  eps, weight_decay, momentum, centered, maximize)
//   adagrad_update(param, grad, sum, *, step, lr, lr_decay, weight_decay, eps, maximize)
//   adadelta_update(param, grad, square_avg, acc_delta, *, lr, rho, eps, weight_decay,
//                   maximize)
// Each updates param and its state in place, on C-contiguous DeviceArrays of one
// floating dtype (float32, float64, float16, bfloat16: the reduced ones in float32
// and rounded back). A non-floating param raises TypeError; mismatched, strided,
// aliased or missing buffers ValueError. Launches are asynchronous (GIL released).
// In a build without CUDA this binds nothing.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings/bindings.h"

namespace py = pybind11;

#if NNFORGE_WITH_CUDA

#include <optional>
#include <string>

#include "cuda/device_array.h"
#include "cuda/optim.h"

namespace nnforge {
namespace {

using cuda::DeviceArray;

void check_param(const char* op, const DeviceArray& p) {
    if (!cuda::is_floating(p.dtype)) {
        throw py::type_error(std::string("cuda.") + op + ": param has dtype " +
                             cuda::dtype_name(p.dtype) +
                             "; optimizers update floating-point tensors");
    }
}

const DeviceArray* opt(const std::optional<DeviceArray>& a) { return a ? &*a : nullptr; }

}  // namespace

void bind_cuda_optim(py::module_& m) {
    m.def(
        "sgd_update",
        [](const DeviceArray& param, const DeviceArray& grad,
           std::optional<DeviceArray> momentum_buffer, double lr, double momentum,
           double dampening, double weight_decay, bool nesterov, bool maximize, bool first_step) {
            check_param("sgd_update", param);
            const SgdOptions o{lr, momentum, dampening, weight_decay, nesterov, maximize,
                               first_step};
            py::gil_scoped_release release;
            cuda::sgd_update(param, grad, opt(momentum_buffer), o);
        },
        py::arg("param"), py::arg("grad"), py::arg("momentum_buffer").none(true), py::kw_only(),
        py::arg("lr"), py::arg("momentum") = 0.0, py::arg("dampening") = 0.0,
        py::arg("weight_decay") = 0.0, py::arg("nesterov") = false, py::arg("maximize") = false,
        py::arg("first_step") = false,
        "One SGD step in place on param (and momentum_buffer, None when momentum == 0).");
    m.def(
        "adam_update",
        [](const DeviceArray& param, const DeviceArray& grad, const DeviceArray& exp_avg,
           const DeviceArray& exp_avg_sq, std::optional<DeviceArray> max_exp_avg_sq,
           std::int64_t step, double lr, double beta1, double beta2, double eps,
           double weight_decay, bool amsgrad, bool maximize, bool decoupled_weight_decay) {
            check_param("adam_update", param);
            const AdamOptions o{lr,   beta1,   beta2,    eps, weight_decay,
                                step, amsgrad, maximize, decoupled_weight_decay};
            py::gil_scoped_release release;
            cuda::adam_update(param, grad, exp_avg, exp_avg_sq, opt(max_exp_avg_sq), o);
        },
        py::arg("param"), py::arg("grad"), py::arg("exp_avg"), py::arg("exp_avg_sq"),
        py::arg("max_exp_avg_sq").none(true), py::kw_only(), py::arg("step"), py::arg("lr"),
        py::arg("beta1") = 0.9, py::arg("beta2") = 0.999, py::arg("eps") = 1e-8,
        py::arg("weight_decay") = 0.0, py::arg("amsgrad") = false, py::arg("maximize") = false,
        py::arg("decoupled_weight_decay") = false,
        "One Adam (decoupled_weight_decay: AdamW) step in place; step counts from 1.");
    m.def(
        "rmsprop_update",
        [](const DeviceArray& param, const DeviceArray& grad, const DeviceArray& square_avg,
           std::optional<DeviceArray> grad_avg, std::optional<DeviceArray> momentum_buffer,
           double lr, double alpha, double eps, double weight_decay, double momentum,
           bool centered, bool maximize) {
            check_param("rmsprop_update", param);
            const RmspropOptions o{lr, alpha, eps, weight_decay, momentum, centered, maximize};
            py::gil_scoped_release release;
            cuda::rmsprop_update(param, grad, square_avg, opt(grad_avg), opt(momentum_buffer), o);
        },
        py::arg("param"), py::arg("grad"), py::arg("square_avg"), py::arg("grad_avg").none(true),
        py::arg("momentum_buffer").none(true), py::kw_only(), py::arg("lr"),
        py::arg("alpha") = 0.99, py::arg("eps") = 1e-8, py::arg("weight_decay") = 0.0,
        py::arg("momentum") = 0.0, py::arg("centered") = false, py::arg("maximize") = false,
        "One RMSprop step in place (grad_avg None unless centered, momentum_buffer None "
        "unless momentum > 0).");
    m.def(
        "adagrad_update",
        [](const DeviceArray& param, const DeviceArray& grad, const DeviceArray& state_sum,
           std::int64_t step, double lr, double lr_decay, double weight_decay, double eps,
           bool maximize) {
            check_param("adagrad_update", param);
            const AdagradOptions o{lr, lr_decay, weight_decay, eps, step, maximize};
            py::gil_scoped_release release;
            cuda::adagrad_update(param, grad, state_sum, o);
        },
        py::arg("param"), py::arg("grad"), py::arg("sum"), py::kw_only(), py::arg("step"),
        py::arg("lr"), py::arg("lr_decay") = 0.0, py::arg("weight_decay") = 0.0,
        py::arg("eps") = 1e-10, py::arg("maximize") = false,
        "One Adagrad step in place on param and sum; step counts from 1.");
    m.def(
        "adadelta_update",
        [](const DeviceArray& param, const DeviceArray& grad, const DeviceArray& square_avg,
           const DeviceArray& acc_delta, double lr, double rho, double eps, double weight_decay,
           bool maximize) {
            check_param("adadelta_update", param);
            const AdadeltaOptions o{lr, rho, eps, weight_decay, maximize};
            py::gil_scoped_release release;
            cuda::adadelta_update(param, grad, square_avg, acc_delta, o);
        },
        py::arg("param"), py::arg("grad"), py::arg("square_avg"), py::arg("acc_delta"),
        py::kw_only(), py::arg("lr") = 1.0, py::arg("rho") = 0.9, py::arg("eps") = 1e-6,
        py::arg("weight_decay") = 0.0, py::arg("maximize") = false,
        "One Adadelta step in place on param, square_avg and acc_delta.");
}

}  // namespace nnforge

#else  // !NNFORGE_WITH_CUDA

namespace nnforge {
void bind_cuda_optim(py::module_&) {}
}  // namespace nnforge

#endif
