// Binds the activation kernels (cpu/activation.cpp) into nnforge._C.cpu:
// erf(x), gelu(x, approximate), gelu_backward(grad, x, approximate).
//
// Inputs are numpy arrays of float32 or float64, C-contiguous, of one dtype
// and (for gelu_backward) one shape; each call returns a new array of that
// shape and dtype. A bad argument raises ValueError naming the kernel and the
// argument (TypeError for a non-array). The GIL is released while the kernel runs.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "bindings/args.h"
#include "bindings/bindings.h"
#include "cpu/activation.h"

namespace py = pybind11;

namespace nnforge {
namespace {

using bind_args::require_array;
using bind_args::shape_str;

// The argument as an array, checked: float32/float64 and C-contiguous.
py::array checked(const char* kernel, const char* arg, const py::object& obj) {
    py::array a = require_array(kernel, arg, obj);
    if (!a.dtype().equal(py::dtype::of<float>()) && !a.dtype().equal(py::dtype::of<double>())) {
        throw std::invalid_argument(std::string(kernel) + ": " + arg + " has dtype " +
                                    std::string(py::str(a.dtype())) +
                                    "; expected float32 or float64");
    }
    if (!(a.flags() & py::array::c_style)) {
        throw std::invalid_argument(std::string(kernel) + ": " + arg + " must be C-contiguous");
    }
    return a;
}

bool tanh_flag(const char* kernel, const std::string& approximate) {
    if (approximate == "none") return false;
    if (approximate == "tanh") return true;
    throw std::invalid_argument(std::string(kernel) +
                                ": approximate must be 'none' or 'tanh', got '" + approximate +
                                "'");
}

py::array new_like(const py::array& a) {
    std::vector<py::ssize_t> shape(a.shape(), a.shape() + a.ndim());
    return py::array(a.dtype(), shape);
}

template <typename T>
T* ptr(py::array& a) { return static_cast<T*>(a.mutable_data()); }
template <typename T>
const T* cptr(const py::array& a) { return static_cast<const T*>(a.data()); }

// Runs a unary kernel y = f(x): f(const T*, T*, n) for T = float or double.
template <typename F>
py::array unary(const char* kernel, const py::object& x_obj, const F& f) {
    const py::array x = checked(kernel, "x", x_obj);
    py::array y = new_like(x);
    const int64_t n = x.size();
    const bool is_double = x.dtype().equal(py::dtype::of<double>());
    {
        py::gil_scoped_release release;
        if (is_double) {
            f(cptr<double>(x), ptr<double>(y), n);
        } else {
            f(cptr<float>(x), ptr<float>(y), n);
        }
    }
    return y;
}

}  // namespace

void bind_activation(py::module_& m) {
    m.def(
        "erf",
        [](const py::object& x) {
            return unary("erf", x, [](const auto* in, auto* out, int64_t n) {
                erf_forward(in, out, n);
            });
        },
        py::arg("x"), "erf(x), elementwise: a new array of x's shape and dtype.");

    m.def(
        "gelu",
        [](const py::object& x, const std::string& approximate) {
            const bool approx = tanh_flag("gelu", approximate);
            return unary("gelu", x, [approx](const auto* in, auto* out, int64_t n) {
                gelu_forward(in, out, n, approx);
            });
        },
        py::arg("x"), py::arg("approximate") = "none",
        "GELU(x) = x Phi(x), elementwise; approximate='tanh' uses the tanh form.");

    m.def(
        "gelu_backward",
        [](const py::object& g_obj, const py::object& x_obj, const std::string& approximate) {
            const char* kernel = "gelu_backward";
            const bool approx = tanh_flag(kernel, approximate);
            const py::array g = checked(kernel, "grad", g_obj);
            const py::array x = checked(kernel, "x", x_obj);
            if (!g.dtype().equal(x.dtype())) {
                throw std::invalid_argument(std::string(kernel) + ": grad has dtype " +
                                            std::string(py::str(g.dtype())) + " but x has dtype " +
                                            std::string(py::str(x.dtype())));
            }
            if (shape_str(g) != shape_str(x)) {
                throw std::invalid_argument(std::string(kernel) + ": grad of shape " +
                                            shape_str(g) + " and x of shape " + shape_str(x) +
                                            " must have the same shape");
            }
            py::array dx = new_like(x);
            const int64_t n = x.size();
            const bool is_double = x.dtype().equal(py::dtype::of<double>());
            {
                py::gil_scoped_release release;
                if (is_double) {
                    gelu_backward(cptr<double>(g), cptr<double>(x), ptr<double>(dx), n, approx);
                } else {
                    gelu_backward(cptr<float>(g), cptr<float>(x), ptr<float>(dx), n, approx);
                }
            }
            return dx;
        },
        py::arg("grad"), py::arg("x"), py::arg("approximate") = "none",
        "grad * GELU'(x), elementwise (approximate='tanh': of the tanh form).");
}

}  // namespace nnforge
