// Binds the batch-norm kernels (cpu/batchnorm.cpp) into nnforge._C.cpu. x, y,
// gy are (N, C, S) C-contiguous float32/float64 (S: the spatial dims
// flattened, 1 for (N, C)); weight, bias, mean, var, invstd are (C,) of x's
// dtype (weight and bias may be None).
//   batch_norm_forward_train(x, weight, bias, eps) -> (y, mean, invstd, var)   (var biased)
//   batch_norm_forward_eval(x, weight, bias, mean, var, eps) -> y
//   batch_norm_backward(gy, x, weight, mean, invstd, training, need_input, need_weight,
//                       need_bias) -> (gx, gw, gb), each None when not needed
// A bad argument raises ValueError naming the kernel and the argument
// (TypeError for a non-array). The GIL is released while a kernel runs.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "bindings/args.h"
#include "bindings/bindings.h"
#include "cpu/batchnorm.h"

namespace py = pybind11;

namespace nnforge {
namespace {

using bind_args::check_float_dtype;
using bind_args::dtype_str;
using bind_args::fail;
using bind_args::is_double;
using bind_args::require_c_array;
using bind_args::shape_str;

// x (or gy): a 3-D float32/float64 array.
py::array data_array(const char* kernel, const char* arg, const py::object& obj) {
    py::array a = require_c_array(kernel, arg, obj);
    check_float_dtype(kernel, arg, a);
    if (a.ndim() != 3) {
        fail(kernel, std::string(arg) + " must be 3-D (N, C, S), got shape " + shape_str(a));
    }
    return a;
}

// A (C,) array of x's dtype, or an empty array for None when allowed.
py::array channel_array(const char* kernel, const char* arg, const py::object& obj,
                        const py::array& x, bool optional) {
    if (obj.is_none()) {
        if (!optional) fail(kernel, std::string(arg) + " must not be None");
        return py::array();
    }
    py::array a = require_c_array(kernel, arg, obj);
    if (!a.dtype().equal(x.dtype())) {
        fail(kernel, std::string(arg) + " has dtype " + dtype_str(a) +
                         ", expected " + dtype_str(x) + " (x's)");
    }
    if (a.ndim() != 1 || a.shape(0) != x.shape(1)) {
        fail(kernel, std::string(arg) + " has shape " + shape_str(a) + ", expected (" +
                         std::to_string(x.shape(1)) + ",) for x of shape " + shape_str(x));
    }
    return a;
}

BatchNormShape shape_of(const py::array& x) { return {x.shape(0), x.shape(1), x.shape(2)}; }

template <typename T>
const T* cdata(const py::array& a) { return static_cast<const T*>(a.data()); }
template <typename T>
const T* opt(const py::array& a, const py::object& obj) {
    return obj.is_none() ? nullptr : static_cast<const T*>(a.data());
}
template <typename T>
T* mdata(py::array& a) { return static_cast<T*>(a.mutable_data()); }

py::array channels(const py::array& x) {
    return py::array(x.dtype(), std::vector<py::ssize_t>{x.shape(1)});
}

py::tuple forward_train(const py::object& x_obj, const py::object& w_obj,
                        const py::object& b_obj, double eps) {
    const char* kernel = "batch_norm_forward_train";
    const py::array x = data_array(kernel, "x", x_obj);
    const py::array w = channel_array(kernel, "weight", w_obj, x, true);
    const py::array b = channel_array(kernel, "bias", b_obj, x, true);
    if (!(eps >= 0.0)) fail(kernel, "eps must be >= 0");
    const BatchNormShape s = shape_of(x);
    if (s.c > 0 && s.n * s.s < 1) {
        fail(kernel, "x of shape " + shape_str(x) + " has no values per channel");
    }
    py::array y(x.dtype(), std::vector<py::ssize_t>{s.n, s.c, s.s});
    py::array mean = channels(x), invstd = channels(x), var = channels(x);
    const bool dbl = is_double(x);
    {
        py::gil_scoped_release release;
        if (dbl) {
            batch_norm_forward_train(cdata<double>(x), opt<double>(w, w_obj),
                                     opt<double>(b, b_obj), s, eps, mdata<double>(y),
                                     mdata<double>(mean), mdata<double>(invstd),
                                     mdata<double>(var));
        } else {
            batch_norm_forward_train(cdata<float>(x), opt<float>(w, w_obj), opt<float>(b, b_obj),
                                     s, eps, mdata<float>(y), mdata<float>(mean),
                                     mdata<float>(invstd), mdata<float>(var));
        }
    }
    return py::make_tuple(y, mean, invstd, var);
}

py::array forward_eval(const py::object& x_obj, const py::object& w_obj, const py::object& b_obj,
                       const py::object& mean_obj, const py::object& var_obj, double eps) {
    const char* kernel = "batch_norm_forward_eval";
    const py::array x = data_array(kernel, "x", x_obj);
    const py::array w = channel_array(kernel, "weight", w_obj, x, true);
    const py::array b = channel_array(kernel, "bias", b_obj, x, true);
    const py::array mean = channel_array(kernel, "mean", mean_obj, x, false);
    const py::array var = channel_array(kernel, "var", var_obj, x, false);
    if (!(eps >= 0.0)) fail(kernel, "eps must be >= 0");
    const BatchNormShape s = shape_of(x);
    py::array y(x.dtype(), std::vector<py::ssize_t>{s.n, s.c, s.s});
    const bool dbl = is_double(x);
    {
        py::gil_scoped_release release;
        if (dbl) {
            batch_norm_forward_eval(cdata<double>(x), opt<double>(w, w_obj),
                                    opt<double>(b, b_obj), cdata<double>(mean),
                                    cdata<double>(var), s, eps, mdata<double>(y));
        } else {
            batch_norm_forward_eval(cdata<float>(x), opt<float>(w, w_obj), opt<float>(b, b_obj),
                                    cdata<float>(mean), cdata<float>(var), s, eps,
                                    mdata<float>(y));
        }
    }
    return y;
}

py::tuple backward(const py::object& gy_obj, const py::object& x_obj, const py::object& w_obj,
                   const py::object& mean_obj, const py::object& invstd_obj, bool training,
                   bool need_input, bool need_weight, bool need_bias) {
    const char* kernel = "batch_norm_backward";
    const py::array x = data_array(kernel, "x", x_obj);
    const py::array gy = data_array(kernel, "gy", gy_obj);
    if (!gy.dtype().equal(x.dtype()) || gy.shape(0) != x.shape(0) || gy.shape(1) != x.shape(1) ||
        gy.shape(2) != x.shape(2)) {
        fail(kernel, "gy of shape " + shape_str(gy) + " and dtype " +
                         std::string(py::str(gy.dtype())) + " does not match x of shape " +
                         shape_str(x) + " and dtype " + dtype_str(x));
    }
    const py::array w = channel_array(kernel, "weight", w_obj, x, true);
    const py::array mean = channel_array(kernel, "mean", mean_obj, x, false);
    const py::array invstd = channel_array(kernel, "invstd", invstd_obj, x, false);
    const BatchNormShape s = shape_of(x);
    py::object gx_obj = py::none(), gw_obj = py::none(), gb_obj = py::none();
    py::array gx, gw, gb;
    if (need_input) gx_obj = gx = py::array(x.dtype(), std::vector<py::ssize_t>{s.n, s.c, s.s});
    if (need_weight) gw_obj = gw = channels(x);
    if (need_bias) gb_obj = gb = channels(x);
    const bool dbl = is_double(x);
    {
        py::gil_scoped_release release;
        if (dbl) {
            batch_norm_backward(cdata<double>(gy), cdata<double>(x), opt<double>(w, w_obj),
                                cdata<double>(mean), cdata<double>(invstd), s, training,
                                need_input ? mdata<double>(gx) : nullptr,
                                need_weight ? mdata<double>(gw) : nullptr,
                                need_bias ? mdata<double>(gb) : nullptr);
        } else {
            batch_norm_backward(cdata<float>(gy), cdata<float>(x), opt<float>(w, w_obj),
                                cdata<float>(mean), cdata<float>(invstd), s, training,
                                need_input ? mdata<float>(gx) : nullptr,
                                need_weight ? mdata<float>(gw) : nullptr,
                                need_bias ? mdata<float>(gb) : nullptr);
        }
    }
    return py::make_tuple(gx_obj, gw_obj, gb_obj);
}

}  // namespace

void bind_batchnorm(py::module_& m) {
    m.def("batch_norm_forward_train", &forward_train, py::arg("x"), py::arg("weight"),
          py::arg("bias"), py::arg("eps"),
          "Batch norm of (N, C, S) with batch statistics: (y, mean, invstd, biased var).");
    m.def("batch_norm_forward_eval", &forward_eval, py::arg("x"), py::arg("weight"),
          py::arg("bias"), py::arg("mean"), py::arg("var"), py::arg("eps"),
          "Batch norm of (N, C, S) with given statistics (evaluation mode).");
    m.def("batch_norm_backward", &backward, py::arg("gy"), py::arg("x"), py::arg("weight"),
          py::arg("mean"), py::arg("invstd"), py::arg("training"), py::arg("need_input"),
          py::arg("need_weight"), py::arg("need_bias"),
          "Gradients (gx, gw, gb) of batch norm; training: the statistics are the batch's.");
}

}  // namespace nnforge
