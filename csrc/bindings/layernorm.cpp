// Binds the fused row kernels into nnforge._C.cpu: layer norm (cpu/layernorm.cpp)
// and softmax / log-softmax (cpu/softmax.cpp). Arrays are C-contiguous
// float32/float64; every array of a call shares x's dtype.
//   layer_norm_forward(x, weight, bias, eps) -> (y, mean, rstd)
//       x (R, N); weight, bias (N,) or None; mean, rstd (R,)
//   layer_norm_backward(gy, x, mean, rstd, weight, need_input, need_weight, need_bias)
//       -> (gx, gw, gb), each None when not needed
//   softmax_forward(x, dim, log) -> y           x of any shape, over dim (negative counts
//   softmax_backward(gy, y, dim, log) -> gx     from the end); log: log-softmax
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
#include "cpu/layernorm.h"
#include "cpu/softmax.h"

namespace py = pybind11;

namespace nnforge {
namespace {

using bind_args::check_float_dtype;
using bind_args::dtype_str;
using bind_args::fail;
using bind_args::is_double;
using bind_args::require_c_array;
using bind_args::shape_str;

// A C-contiguous float32/float64 array.
py::array float_array(const char* kernel, const char* arg, const py::object& obj) {
    py::array a = require_c_array(kernel, arg, obj);
    check_float_dtype(kernel, arg, a);
    return a;
}

// An array with exactly `ref`'s dtype and shape (gy against x or y).
py::array like(const char* kernel, const char* arg, const py::object& obj, const py::array& ref,
               const char* ref_name) {
    py::array a = require_c_array(kernel, arg, obj);
    bool same = a.dtype().equal(ref.dtype()) && a.ndim() == ref.ndim();
    for (py::ssize_t d = 0; same && d < a.ndim(); ++d) same = a.shape(d) == ref.shape(d);
    if (!same) {
        fail(kernel, std::string(arg) + " of shape " + shape_str(a) + " and dtype " +
                         dtype_str(a) + " does not match " + ref_name + " of shape " +
                         shape_str(ref) + " and dtype " + dtype_str(ref));
    }
    return a;
}

// A 1-D array of x's dtype and length `len`, or an empty array for None when allowed.
py::array vector_array(const char* kernel, const char* arg, const py::object& obj,
                       const py::array& x, py::ssize_t len, bool optional) {
    if (obj.is_none()) {
        if (!optional) fail(kernel, std::string(arg) + " must not be None");
        return py::array();
    }
    py::array a = require_c_array(kernel, arg, obj);
    if (!a.dtype().equal(x.dtype())) {
        fail(kernel, std::string(arg) + " has dtype " + dtype_str(a) + ", expected " +
                         dtype_str(x) + " (x's)");
    }
    if (a.ndim() != 1 || a.shape(0) != len) {
        fail(kernel, std::string(arg) + " has shape " + shape_str(a) + ", expected (" +
                         std::to_string(len) + ",) for x of shape " + shape_str(x));
    }
    return a;
}

py::array matrix_array(const char* kernel, const char* arg, const py::object& obj) {
    py::array a = float_array(kernel, arg, obj);
    if (a.ndim() != 2) {
        fail(kernel, std::string(arg) + " must be 2-D (rows, N), got shape " + shape_str(a));
    }
    return a;
}

template <typename T>
const T* cdata(const py::array& a) { return static_cast<const T*>(a.data()); }
template <typename T>
const T* opt(const py::array& a, const py::object& obj) {
    return obj.is_none() ? nullptr : static_cast<const T*>(a.data());
}
template <typename T>
T* mdata(py::array& a) { return static_cast<T*>(a.mutable_data()); }
template <typename T>
T* mopt(py::array& a, bool wanted) { return wanted ? static_cast<T*>(a.mutable_data()) : nullptr; }

py::array empty_like_shape(const py::array& x) {
    return py::array(x.dtype(), std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
}
py::array vector_of(const py::array& x, py::ssize_t len) {
    return py::array(x.dtype(), std::vector<py::ssize_t>{len});
}

// ---------------------------------------------------------------- layer norm
py::tuple ln_forward(const py::object& x_obj, const py::object& w_obj, const py::object& b_obj,
                     double eps) {
    const char* kernel = "layer_norm_forward";
    const py::array x = matrix_array(kernel, "x", x_obj);
    const py::ssize_t rows = x.shape(0), n = x.shape(1);
    const py::array w = vector_array(kernel, "weight", w_obj, x, n, true);
    const py::array b = vector_array(kernel, "bias", b_obj, x, n, true);
    if (!(eps >= 0.0)) fail(kernel, "eps must be >= 0, got " + std::to_string(eps));
    py::array y = empty_like_shape(x), mean = vector_of(x, rows), rstd = vector_of(x, rows);
    const bool dbl = is_double(x);
    {
        py::gil_scoped_release release;
        if (dbl) {
            layer_norm_forward(cdata<double>(x), opt<double>(w, w_obj), opt<double>(b, b_obj),
                               rows, n, eps, mdata<double>(y), mdata<double>(mean),
                               mdata<double>(rstd));
        } else {
            layer_norm_forward(cdata<float>(x), opt<float>(w, w_obj), opt<float>(b, b_obj), rows,
                               n, eps, mdata<float>(y), mdata<float>(mean), mdata<float>(rstd));
        }
    }
    return py::make_tuple(y, mean, rstd);
}

py::tuple ln_backward(const py::object& gy_obj, const py::object& x_obj,
                      const py::object& mean_obj, const py::object& rstd_obj,
                      const py::object& w_obj, bool need_input, bool need_weight,
                      bool need_bias) {
    const char* kernel = "layer_norm_backward";
    const py::array x = matrix_array(kernel, "x", x_obj);
    const py::array gy = like(kernel, "gy", gy_obj, x, "x");
    const py::ssize_t rows = x.shape(0), n = x.shape(1);
    const py::array mean = vector_array(kernel, "mean", mean_obj, x, rows, false);
    const py::array rstd = vector_array(kernel, "rstd", rstd_obj, x, rows, false);
    const py::array w = vector_array(kernel, "weight", w_obj, x, n, true);
    py::object gx_obj = py::none(), gw_obj = py::none(), gb_obj = py::none();
    py::array gx, gw, gb;
    if (need_input) gx_obj = gx = empty_like_shape(x);
    if (need_weight) gw_obj = gw = vector_of(x, n);
    if (need_bias) gb_obj = gb = vector_of(x, n);
    const bool dbl = is_double(x);
    {
        py::gil_scoped_release release;
        if (dbl) {
            layer_norm_backward(cdata<double>(gy), cdata<double>(x), cdata<double>(mean),
                                cdata<double>(rstd), opt<double>(w, w_obj), rows, n,
                                mopt<double>(gx, need_input), mopt<double>(gw, need_weight),
                                mopt<double>(gb, need_bias));
        } else {
            layer_norm_backward(cdata<float>(gy), cdata<float>(x), cdata<float>(mean),
                                cdata<float>(rstd), opt<float>(w, w_obj), rows, n,
                                mopt<float>(gx, need_input), mopt<float>(gw, need_weight),
                                mopt<float>(gb, need_bias));
        }
    }
    return py::make_tuple(gx_obj, gw_obj, gb_obj);
}

// ---------------------------------------------------------------- softmax
// x's shape seen as (outer, N, inner) around dim (wrapped; ValueError when out of range).
SoftmaxShape softmax_shape(const char* kernel, const py::array& x, int64_t dim) {
    const int64_t nd = x.ndim();
    if (nd == 0) fail(kernel, "x must have at least 1 dim, got shape ()");
    if (dim < -nd || dim >= nd) {
        fail(kernel, "dim " + std::to_string(dim) + " is out of range for x of shape " +
                         shape_str(x) + " (expected in [" + std::to_string(-nd) + ", " +
                         std::to_string(nd - 1) + "])");
    }
    if (dim < 0) dim += nd;
    SoftmaxShape s;
    s.outer = 1;
    for (int64_t d = 0; d < dim; ++d) s.outer *= x.shape(d);
    s.n = x.shape(dim);
    for (int64_t d = dim + 1; d < nd; ++d) s.inner *= x.shape(d);
    return s;
}

py::array sm_forward(const py::object& x_obj, int64_t dim, bool log) {
    const char* kernel = "softmax_forward";
    const py::array x = float_array(kernel, "x", x_obj);
    const SoftmaxShape s = softmax_shape(kernel, x, dim);
    py::array y = empty_like_shape(x);
    const bool dbl = is_double(x);
    {
        py::gil_scoped_release release;
        if (dbl) {
            softmax_forward(cdata<double>(x), s, log, mdata<double>(y));
        } else {
            softmax_forward(cdata<float>(x), s, log, mdata<float>(y));
        }
    }
    return y;
}

py::array sm_backward(const py::object& gy_obj, const py::object& y_obj, int64_t dim, bool log) {
    const char* kernel = "softmax_backward";
    const py::array y = float_array(kernel, "y", y_obj);
    const py::array gy = like(kernel, "gy", gy_obj, y, "y");
    const SoftmaxShape s = softmax_shape(kernel, y, dim);
    py::array gx = empty_like_shape(y);
    const bool dbl = is_double(y);
    {
        py::gil_scoped_release release;
        if (dbl) {
            softmax_backward(cdata<double>(gy), cdata<double>(y), s, log, mdata<double>(gx));
        } else {
            softmax_backward(cdata<float>(gy), cdata<float>(y), s, log, mdata<float>(gx));
        }
    }
    return gx;
}

}  // namespace

void bind_layernorm(py::module_& m) {
    m.def("layer_norm_forward", &ln_forward, py::arg("x"), py::arg("weight"), py::arg("bias"),
          py::arg("eps"),
          "Layer norm over the rows of x (R, N): (y, mean, rstd), biased variance.");
    m.def("layer_norm_backward", &ln_backward, py::arg("gy"), py::arg("x"), py::arg("mean"),
          py::arg("rstd"), py::arg("weight"), py::arg("need_input"), py::arg("need_weight"),
          py::arg("need_bias"), "Gradients (gx, gw, gb) of layer norm over the rows of x.");
    m.def("softmax_forward", &sm_forward, py::arg("x"), py::arg("dim"), py::arg("log") = false,
          "Softmax (log=True: log-softmax) of x over dim.");
    m.def("softmax_backward", &sm_backward, py::arg("gy"), py::arg("y"), py::arg("dim"),
          py::arg("log") = false,
          "Gradient of softmax (log=True: log-softmax) over dim, from its output y.");
}

}  // namespace nnforge
