// Binds the fused optimizer updates (cpu/optim.cpp) into nnforge._C.cpu:
// sgd_update, adam_update, rmsprop_update, adagrad_update, adadelta_update.
//
// Each takes the parameter, its gradient and its state buffers as numpy
// arrays and updates them in place. Every array must be a numpy array of the
// parameter's size and dtype (float32 or float64), C-contiguous, writeable
// (the gradient may be read-only) and must not overlap another; a bad one
// raises ValueError (TypeError for a non-array) naming the kernel and the
// argument. Optional state buffers are None where the options do not use
// them. The GIL is released while the kernel runs.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "bindings/bindings.h"
#include "cpu/optim.h"

namespace py = pybind11;

namespace nnforge {
namespace {

// One argument of a kernel call, checked against the parameter.
struct Operand {
    const char* name;
    py::object obj;
    bool writeable;
    bool required;
};

class CheckedCall {
public:
    // Checks every operand (the first is the parameter) and records its data
    // pointer; throws std::invalid_argument / py::type_error on a bad one.
    CheckedCall(const char* kernel, const std::vector<Operand>& operands) : kernel_(kernel) {
        const Operand& param = operands.front();
        if (!py::isinstance<py::array>(param.obj)) not_an_array(param);
        const py::array p = py::reinterpret_borrow<py::array>(param.obj);
        if (p.dtype().equal(py::dtype::of<float>())) {
            is_double_ = false;
        } else if (p.dtype().equal(py::dtype::of<double>())) {
            is_double_ = true;
        } else {
            fail(std::string("param has dtype ") + dtype_name(p) + "; expected float32 or float64");
        }
        size_ = p.size();
        const std::string param_dtype = dtype_name(p);

        for (const Operand& op : operands) {
            if (op.obj.is_none()) {
                if (op.required) fail(std::string(op.name) + " is required with these options, got None");
                data_.push_back(nullptr);
                continue;
            }
            if (!py::isinstance<py::array>(op.obj)) not_an_array(op);
            const py::array a = py::reinterpret_borrow<py::array>(op.obj);
            const std::string name = op.name;
            if (!a.dtype().equal(p.dtype())) {
                fail(name + " has dtype " + dtype_name(a) + " but param has dtype " + param_dtype);
            }
            if (a.size() != size_) {
                fail(name + " has " + std::to_string(a.size()) + " elements but param has " +
                     std::to_string(size_));
            }
            if (!(a.flags() & py::array::c_style)) fail(name + " must be C-contiguous");
            if (op.writeable && !a.writeable()) fail(name + " must be writeable");
            const auto* begin = static_cast<const char*>(a.data());
            for (std::size_t k = 0; k < ranges_.size(); ++k) {
                const Range& r = ranges_[k];
                if (a.nbytes() > 0 && begin < r.end && r.begin < begin + a.nbytes()) {
                    fail(name + " overlaps " + r.name + " in memory");
                }
            }
            ranges_.push_back({op.name, begin, begin + a.nbytes()});
            data_.push_back(const_cast<void*>(a.data()));
        }
    }

    bool is_double() const { return is_double_; }
    int64_t size() const { return static_cast<int64_t>(size_); }

    // The data pointer of operand k as T* (null for None).
    template <typename T>
    T* ptr(std::size_t k) const {
        return static_cast<T*>(data_[k]);
    }

    [[noreturn]] void fail(const std::string& what) const {
        throw std::invalid_argument(std::string(kernel_) + ": " + what);
    }

private:
    struct Range {
        const char* name;
        const char* begin;
        const char* end;
    };

    static std::string dtype_name(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

    [[noreturn]] void not_an_array(const Operand& op) const {
        throw py::type_error(std::string(kernel_) + ": " + op.name + " must be a numpy array, got " +
                             py::str(py::type::of(op.obj).attr("__name__")).cast<std::string>());
    }

    const char* kernel_;
    bool is_double_ = false;
    py::ssize_t size_ = 0;
    std::vector<void*> data_;
    std::vector<Range> ranges_;
};

void check_step(const CheckedCall& call, int64_t step) {
    if (step < 1) call.fail("step must be >= 1 (the step being taken), got " + std::to_string(step));
}

}  // namespace

void bind_optim(py::module_& m) {
    m.def(
        "sgd_update",
        [](py::object param, py::object grad, py::object momentum_buffer, double lr, double momentum,
           double dampening, double weight_decay, bool nesterov, bool maximize, bool first_step) {
            const CheckedCall call("sgd_update", {{"param", param, true, true},
                                                  {"grad", grad, false, true},
                                                  {"momentum_buffer", momentum_buffer, true,
                                                   momentum != 0.0}});
            const SgdOptions o{lr, momentum, dampening, weight_decay, nesterov, maximize, first_step};
            py::gil_scoped_release release;
            if (call.is_double()) {
                sgd_update(call.ptr<double>(0), call.ptr<const double>(1), call.ptr<double>(2),
                           call.size(), o);
            } else {
                sgd_update(call.ptr<float>(0), call.ptr<const float>(1), call.ptr<float>(2),
                           call.size(), o);
            }
        },
        py::arg("param"), py::arg("grad"), py::arg("momentum_buffer").none(true), py::kw_only(),
        py::arg("lr"), py::arg("momentum") = 0.0, py::arg("dampening") = 0.0,
        py::arg("weight_decay") = 0.0, py::arg("nesterov") = false, py::arg("maximize") = false,
        py::arg("first_step") = false,
        "One SGD step in place on param (and momentum_buffer, None when momentum == 0). "
        "first_step: the buffer is set to the gradient instead of decayed.");

    m.def(
        "adam_update",
        [](py::object param, py::object grad, py::object exp_avg, py::object exp_avg_sq,
           py::object max_exp_avg_sq, int64_t step, double lr, double beta1, double beta2, double eps,
           double weight_decay, bool amsgrad, bool maximize, bool decoupled_weight_decay) {
            const CheckedCall call("adam_update", {{"param", param, true, true},
                                                   {"grad", grad, false, true},
                                                   {"exp_avg", exp_avg, true, true},
                                                   {"exp_avg_sq", exp_avg_sq, true, true},
                                                   {"max_exp_avg_sq", max_exp_avg_sq, true, amsgrad}});
            check_step(call, step);
            const AdamOptions o{lr,   beta1,   beta2,   eps,      weight_decay,
                                step, amsgrad, maximize, decoupled_weight_decay};
            py::gil_scoped_release release;
            if (call.is_double()) {
                adam_update(call.ptr<double>(0), call.ptr<const double>(1), call.ptr<double>(2),
                            call.ptr<double>(3), call.ptr<double>(4), call.size(), o);
            } else {
                adam_update(call.ptr<float>(0), call.ptr<const float>(1), call.ptr<float>(2),
                            call.ptr<float>(3), call.ptr<float>(4), call.size(), o);
            }
        },
        py::arg("param"), py::arg("grad"), py::arg("exp_avg"), py::arg("exp_avg_sq"),
        py::arg("max_exp_avg_sq").none(true), py::kw_only(), py::arg("step"), py::arg("lr"),
        py::arg("beta1") = 0.9, py::arg("beta2") = 0.999, py::arg("eps") = 1e-8,
        py::arg("weight_decay") = 0.0, py::arg("amsgrad") = false, py::arg("maximize") = false,
        py::arg("decoupled_weight_decay") = false,
        "One Adam (decoupled_weight_decay: AdamW) step in place; step counts from 1 and sets the "
        "bias correction. max_exp_avg_sq is None unless amsgrad.");

    m.def(
        "rmsprop_update",
        [](py::object param, py::object grad, py::object square_avg, py::object grad_avg,
           py::object momentum_buffer, double lr, double alpha, double eps, double weight_decay,
           double momentum, bool centered, bool maximize) {
            const CheckedCall call("rmsprop_update",
                                   {{"param", param, true, true},
                                    {"grad", grad, false, true},
                                    {"square_avg", square_avg, true, true},
                                    {"grad_avg", grad_avg, true, centered},
                                    {"momentum_buffer", momentum_buffer, true, momentum > 0.0}});
            const RmspropOptions o{lr, alpha, eps, weight_decay, momentum, centered, maximize};
            py::gil_scoped_release release;
            if (call.is_double()) {
                rmsprop_update(call.ptr<double>(0), call.ptr<const double>(1), call.ptr<double>(2),
                               call.ptr<double>(3), call.ptr<double>(4), call.size(), o);
            } else {
                rmsprop_update(call.ptr<float>(0), call.ptr<const float>(1), call.ptr<float>(2),
                               call.ptr<float>(3), call.ptr<float>(4), call.size(), o);
            }
        },
        py::arg("param"), py::arg("grad"), py::arg("square_avg"), py::arg("grad_avg").none(true),
        py::arg("momentum_buffer").none(true), py::kw_only(), py::arg("lr"),
        py::arg("alpha") = 0.99, py::arg("eps") = 1e-8, py::arg("weight_decay") = 0.0,
        py::arg("momentum") = 0.0, py::arg("centered") = false, py::arg("maximize") = false,
        "One RMSprop step in place. grad_avg is None unless centered, momentum_buffer None "
        "unless momentum > 0.");

    m.def(
        "adagrad_update",
        [](py::object param, py::object grad, py::object state_sum, int64_t step, double lr,
           double lr_decay, double weight_decay, double eps, bool maximize) {
            const CheckedCall call("adagrad_update", {{"param", param, true, true},
                                                      {"grad", grad, false, true},
                                                      {"sum", state_sum, true, true}});
            check_step(call, step);
            const AdagradOptions o{lr, lr_decay, weight_decay, eps, step, maximize};
            py::gil_scoped_release release;
            if (call.is_double()) {
                adagrad_update(call.ptr<double>(0), call.ptr<const double>(1), call.ptr<double>(2),
                               call.size(), o);
            } else {
                adagrad_update(call.ptr<float>(0), call.ptr<const float>(1), call.ptr<float>(2),
                               call.size(), o);
            }
        },
        py::arg("param"), py::arg("grad"), py::arg("sum"), py::kw_only(), py::arg("step"),
        py::arg("lr"), py::arg("lr_decay") = 0.0, py::arg("weight_decay") = 0.0,
        py::arg("eps") = 1e-10, py::arg("maximize") = false,
        "One Adagrad step in place on param and sum; step counts from 1 and sets the "
        "learning-rate decay.");

    m.def(
        "adadelta_update",
        [](py::object param, py::object grad, py::object square_avg, py::object acc_delta, double lr,
           double rho, double eps, double weight_decay, bool maximize) {
            const CheckedCall call("adadelta_update", {{"param", param, true, true},
                                                       {"grad", grad, false, true},
                                                       {"square_avg", square_avg, true, true},
                                                       {"acc_delta", acc_delta, true, true}});
            const AdadeltaOptions o{lr, rho, eps, weight_decay, maximize};
            py::gil_scoped_release release;
            if (call.is_double()) {
                adadelta_update(call.ptr<double>(0), call.ptr<const double>(1), call.ptr<double>(2),
                                call.ptr<double>(3), call.size(), o);
            } else {
                adadelta_update(call.ptr<float>(0), call.ptr<const float>(1), call.ptr<float>(2),
                                call.ptr<float>(3), call.size(), o);
            }
        },
        py::arg("param"), py::arg("grad"), py::arg("square_avg"), py::arg("acc_delta"),
        py::kw_only(), py::arg("lr") = 1.0, py::arg("rho") = 0.9, py::arg("eps") = 1e-6,
        py::arg("weight_decay") = 0.0, py::arg("maximize") = false,
        "One Adadelta step in place on param, square_avg and acc_delta.");
}

}  // namespace nnforge
