// Binds the fused cross-entropy kernels (cpu/loss.cpp) into nnforge._C.cpu:
//   cross_entropy_forward(z, target, weight, ignore_index, smoothing)
//       -> (loss, lse, w_y, bad)   bad: the flat position of the first target
//                                   outside [0, C) that is not ignore_index (the
//                                   kernel did not run then), or -1
//   cross_entropy_backward(z, target, weight, lse, w_y, grad, ignore_index, smoothing) -> dz
// z is (N, C, D) float32/float64; target (N, D) int64; weight None or (C,) of z's
// dtype; lse, w_y, grad (N, D) of z's dtype; all C-contiguous. A bad argument
// raises ValueError naming the kernel and the argument (TypeError for a
// non-array). The GIL is released while a kernel runs.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "bindings/args.h"
#include "bindings/bindings.h"
#include "cpu/loss.h"

namespace py = pybind11;

namespace nnforge {
namespace {

using bind_args::check_c_contiguous;
using bind_args::dtype_str;
using bind_args::fail;
using bind_args::require_array;
using bind_args::shape_str;

// The argument as a C-contiguous array of the given dtype and shape.
py::array checked(const char* kernel, const char* arg, const py::object& obj,
                  const py::dtype& dtype, const std::vector<py::ssize_t>& shape) {
    py::array a = require_array(kernel, arg, obj);
    if (!a.dtype().equal(dtype)) {
        fail(kernel, std::string(arg) + " has dtype " + dtype_str(a) +
                         ", expected " + std::string(py::str(dtype)));
    }
    bool same = a.ndim() == static_cast<py::ssize_t>(shape.size());
    for (std::size_t k = 0; same && k < shape.size(); ++k) same = a.shape(k) == shape[k];
    if (!same) {
        py::array want(dtype, shape);
        fail(kernel, std::string(arg) + " has shape " + shape_str(a) + ", expected " +
                         shape_str(want));
    }
    check_c_contiguous(kernel, arg, a);
    return a;
}

struct Inputs {
    py::array z, target, weight;  // weight: empty when None
    CrossEntropyShape shape;
    bool is_double = false;
    bool has_weight = false;
};

Inputs check_inputs(const char* kernel, const py::object& z_obj, const py::object& t_obj,
                    const py::object& w_obj) {
    Inputs in;
    if (!py::isinstance<py::array>(z_obj)) {
        throw py::type_error(std::string(kernel) + ": z must be a numpy array");
    }
    py::array z = py::reinterpret_borrow<py::array>(z_obj);
    if (z.ndim() != 3) fail(kernel, "z must have shape (N, C, D), got " + shape_str(z));
    if (z.dtype().equal(py::dtype::of<double>())) {
        in.is_double = true;
    } else if (!z.dtype().equal(py::dtype::of<float>())) {
        fail(kernel, "z has dtype " + dtype_str(z) +
                         "; expected float32 or float64");
    }
    in.shape = {z.shape(0), z.shape(1), z.shape(2)};
    in.z = checked(kernel, "z", z_obj, z.dtype(), {z.shape(0), z.shape(1), z.shape(2)});
    in.target = checked(kernel, "target", t_obj, py::dtype::of<int64_t>(),
                        {in.shape.n, in.shape.d});
    in.has_weight = !w_obj.is_none();
    if (in.has_weight) in.weight = checked(kernel, "weight", w_obj, z.dtype(), {in.shape.c});
    return in;
}

template <typename T>
const T* data(const py::array& a) { return static_cast<const T*>(a.data()); }
template <typename T>
T* mutable_data(py::array& a) { return static_cast<T*>(a.mutable_data()); }

py::tuple forward(const py::object& z_obj, const py::object& t_obj, const py::object& w_obj,
                  int64_t ignore_index, double smoothing) {
    const char* kernel = "cross_entropy_forward";
    Inputs in = check_inputs(kernel, z_obj, t_obj, w_obj);
    if (!(smoothing >= 0.0 && smoothing <= 1.0)) fail(kernel, "smoothing must be in [0, 1]");
    const std::vector<py::ssize_t> pos_shape{in.shape.n, in.shape.d};
    py::array loss(in.z.dtype(), pos_shape), lse(in.z.dtype(), pos_shape),
        wy(in.z.dtype(), pos_shape);
    const int64_t* y = data<int64_t>(in.target);
    const int64_t bad = cross_entropy_first_bad_target(y, in.shape, ignore_index);
    if (bad >= 0) return py::make_tuple(loss, lse, wy, bad);  // the caller raises IndexError
    {
        py::gil_scoped_release release;
        if (in.is_double) {
            cross_entropy_forward(data<double>(in.z), y,
                                        in.has_weight ? data<double>(in.weight) : nullptr,
                                        in.shape, ignore_index, smoothing,
                                        mutable_data<double>(loss), mutable_data<double>(lse),
                                        mutable_data<double>(wy));
        } else {
            cross_entropy_forward(data<float>(in.z), y,
                                        in.has_weight ? data<float>(in.weight) : nullptr,
                                        in.shape, ignore_index, smoothing,
                                        mutable_data<float>(loss), mutable_data<float>(lse),
                                        mutable_data<float>(wy));
        }
    }
    return py::make_tuple(loss, lse, wy, bad);
}

py::array backward(const py::object& z_obj, const py::object& t_obj, const py::object& w_obj,
                   const py::object& lse_obj, const py::object& wy_obj, const py::object& g_obj,
                   int64_t ignore_index, double smoothing) {
    const char* kernel = "cross_entropy_backward";
    Inputs in = check_inputs(kernel, z_obj, t_obj, w_obj);
    const std::vector<py::ssize_t> pos_shape{in.shape.n, in.shape.d};
    const py::array lse = checked(kernel, "lse", lse_obj, in.z.dtype(), pos_shape);
    const py::array wy = checked(kernel, "w_y", wy_obj, in.z.dtype(), pos_shape);
    const py::array g = checked(kernel, "grad", g_obj, in.z.dtype(), pos_shape);
    // Bounds: targets must be in [0, C) or ignore_index (the forward checked them;
    // checked again here, cheaply, because an index out of range would write out of bounds).
    const int64_t* y = data<int64_t>(in.target);
    const int64_t bad = cross_entropy_first_bad_target(y, in.shape, ignore_index);
    if (bad >= 0) {
        throw py::index_error(std::string(kernel) + ": target " + std::to_string(y[bad]) +
                              " is out of bounds for " + std::to_string(in.shape.c) + " classes");
    }
    py::array gz(in.z.dtype(), std::vector<py::ssize_t>{in.shape.n, in.shape.c, in.shape.d});
    {
        py::gil_scoped_release release;
        if (in.is_double) {
            cross_entropy_backward(data<double>(in.z), y,
                                   in.has_weight ? data<double>(in.weight) : nullptr,
                                   data<double>(lse), data<double>(wy), data<double>(g), in.shape,
                                   ignore_index, smoothing, mutable_data<double>(gz));
        } else {
            cross_entropy_backward(data<float>(in.z), y,
                                   in.has_weight ? data<float>(in.weight) : nullptr,
                                   data<float>(lse), data<float>(wy), data<float>(g), in.shape,
                                   ignore_index, smoothing, mutable_data<float>(gz));
        }
    }
    return gz;
}

}  // namespace

void bind_loss(py::module_& m) {
    m.def("cross_entropy_forward", &forward, py::arg("z"), py::arg("target"), py::arg("weight"),
          py::arg("ignore_index"), py::arg("smoothing"),
          "Fused log-softmax + NLL over (N, C, D) logits: (loss, lse, w_y, bad) per (N, D) "
          "position; bad is the first position with an out-of-range target, or -1.");
    m.def("cross_entropy_backward", &backward, py::arg("z"), py::arg("target"),
          py::arg("weight"), py::arg("lse"), py::arg("w_y"), py::arg("grad"),
          py::arg("ignore_index"), py::arg("smoothing"),
          "dL/dz of the fused cross entropy for a per-position upstream gradient.");
}

}  // namespace nnforge
