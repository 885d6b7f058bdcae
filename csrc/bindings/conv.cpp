// Binds the 2-D convolution kernels (cpu/conv.h) into nnforge._C.cpu:
//   conv2d_forward(x, weight, bias, stride, padding, dilation, groups) -> y
//   conv2d_backward_input(grad_output, weight, bias, input_size, stride, padding,
//                         dilation, groups) -> grad_input   (+ bias per input channel:
//                                                            conv_transpose2d's forward)
//   conv2d_backward_weight(x, grad_output, kernel_size, stride, padding, dilation,
//                          groups, weight=True, bias=False) -> (grad_weight, grad_bias)
//   conv2d_algorithm(x_shape, weight_shape, stride, padding, dilation, groups, pass) -> str
// Arrays: NCHW, float32 or float64 (one dtype for all), C-contiguous; weight
// (C_out, C_in / groups, kh, kw); bias None or (channels,). stride and
// dilation are (h, w) pairs, padding is (top, bottom, left, right). Each takes
// keyword-only isa=None|'scalar'|'avx2'|'avx512', algorithm='auto'|'im2col'|
// 'pointwise'|'direct' and threads=0 (nnforge's setting), for tests and
// benchmarks. A bad argument raises ValueError (TypeError for a non-array)
// naming the kernel and the argument. The GIL is released while a kernel runs.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "bindings/args.h"
#include "bindings/bindings.h"
#include "cpu/conv.h"

namespace py = pybind11;

namespace nnforge {
namespace {

using bind_args::check_c_contiguous;
using bind_args::dtype_str;
using bind_args::fail;
using bind_args::require_array;
using bind_args::shape_str;

// The argument as a C-contiguous float32/float64 array of `ndim` dims (and
// of `dtype` when given).
py::array array_arg(const char* kernel, const char* arg, const py::object& obj, int ndim,
                    const py::dtype* dtype) {
    py::array a = require_array(kernel, arg, obj);
    if (dtype) {
        if (!a.dtype().equal(*dtype)) {
            fail(kernel, std::string(arg) + " has dtype " + dtype_str(a) +
                             ", expected " + std::string(py::str(*dtype)) + " like the others");
        }
    } else if (!a.dtype().equal(py::dtype::of<float>()) &&
               !a.dtype().equal(py::dtype::of<double>())) {
        fail(kernel, std::string(arg) + " has dtype " + dtype_str(a) +
                         "; expected float32 or float64");
    }
    if (a.ndim() != ndim) {
        fail(kernel, std::string(arg) + " must have " + std::to_string(ndim) +
                         " dims, got shape " + shape_str(a));
    }
    check_c_contiguous(kernel, arg, a);
    return a;
}

ConvOptions options_from(const char* kernel, const py::object& isa, const std::string& algorithm,
                         int threads) {
    ConvOptions o;
    if (!isa.is_none()) {
        const std::string s = py::str(isa);
        o.force_isa = true;
        if (s == "scalar") {
            o.isa = Isa::scalar;
        } else if (s == "avx2") {
            o.isa = Isa::avx2;
        } else if (s == "avx512") {
            o.isa = Isa::avx512;
        } else {
            fail(kernel, "isa must be None, 'scalar', 'avx2' or 'avx512', got '" + s + "'");
        }
        const CpuFeatures& f = cpu_features();
        const bool ok = o.isa == Isa::scalar ||
                        (o.isa == Isa::avx2 && f.avx2 && f.fma) ||
                        (o.isa == Isa::avx512 && f.avx512f && f.avx512bw && f.avx512dq &&
                         f.avx512vl && f.fma);
        if (!ok) throw std::runtime_error(std::string(kernel) + ": this CPU has no " + s);
    }
    if (algorithm == "auto") {
        o.algorithm = ConvAlgorithm::automatic;
    } else if (algorithm == "im2col") {
        o.algorithm = ConvAlgorithm::im2col;
    } else if (algorithm == "pointwise") {
        o.algorithm = ConvAlgorithm::pointwise;
    } else if (algorithm == "direct") {
        o.algorithm = ConvAlgorithm::direct;
    } else {
        fail(kernel, "algorithm must be 'auto', 'im2col', 'pointwise' or 'direct', got '" +
                         algorithm + "'");
    }
    if (threads < 0) fail(kernel, "threads must be >= 0, got " + std::to_string(threads));
    o.threads = threads;
    return o;
}

// The geometry arguments and the shapes they imply; `in_hw` is the input's
// (H, W) and `out_hw` the output's when known (else -1: computed here).
Conv2dShape make_shape(const char* kernel, int64_t n, int64_t c_in, std::array<int64_t, 2> in_hw,
                       const py::array& w, std::array<int64_t, 2> out_hw,
                       std::array<int64_t, 2> stride, std::array<int64_t, 4> padding,
                       std::array<int64_t, 2> dilation, int64_t groups) {
    if (stride[0] < 1 || stride[1] < 1)
        fail(kernel, "stride must be positive, got (" + std::to_string(stride[0]) + ", " +
                         std::to_string(stride[1]) + ")");
    if (dilation[0] < 1 || dilation[1] < 1) fail(kernel, "dilation must be positive");
    for (int64_t p : padding)
        if (p < 0) fail(kernel, "padding must be non-negative");
    if (groups < 1) fail(kernel, "groups must be positive, got " + std::to_string(groups));
    Conv2dShape s;
    s.n = n, s.c_in = c_in, s.h = in_hw[0], s.w = in_hw[1];
    s.c_out = w.shape(0), s.kh = w.shape(2), s.kw = w.shape(3);
    s.stride_h = stride[0], s.stride_w = stride[1];
    s.pad_top = padding[0], s.pad_left = padding[2];
    s.dil_h = dilation[0], s.dil_w = dilation[1];
    s.groups = groups;
    if (c_in % groups || s.c_out % groups)
        fail(kernel, "groups=" + std::to_string(groups) + " must divide the input channels (" +
                         std::to_string(c_in) + ") and the output channels (" +
                         std::to_string(s.c_out) + ")");
    if (w.shape(1) * groups != c_in)
        fail(kernel, "weight of shape " + shape_str(w) + " needs " +
                         std::to_string(w.shape(1) * groups) + " input channels (groups=" +
                         std::to_string(groups) + "), got " + std::to_string(c_in));
    if (s.h < 1 || s.w < 1) fail(kernel, "the input's spatial size must be positive");
    const int64_t most_h = conv_output_size(s.h, s.kh, s.stride_h, padding[0], padding[1], s.dil_h);
    const int64_t most_w = conv_output_size(s.w, s.kw, s.stride_w, padding[2], padding[3], s.dil_w);
    if (most_h < 1 || most_w < 1)
        fail(kernel, "kernel (" + std::to_string(s.kh) + ", " + std::to_string(s.kw) +
                         ") with dilation (" + std::to_string(s.dil_h) + ", " +
                         std::to_string(s.dil_w) + ") is larger than the padded input (" +
                         std::to_string(s.h + padding[0] + padding[1]) + ", " +
                         std::to_string(s.w + padding[2] + padding[3]) + ")");
    s.oh = out_hw[0] < 0 ? most_h : out_hw[0];
    s.ow = out_hw[1] < 0 ? most_w : out_hw[1];
    if (s.oh < 1 || s.ow < 1 || s.oh > most_h || s.ow > most_w)
        fail(kernel, "output size (" + std::to_string(s.oh) + ", " + std::to_string(s.ow) +
                         ") does not fit the input size (" + std::to_string(s.h) + ", " +
                         std::to_string(s.w) + ") (at most (" + std::to_string(most_h) + ", " +
                         std::to_string(most_w) + "))");
    const std::string err = conv2d_shape_error(s);
    if (!err.empty()) fail(kernel, err);
    return s;
}

template <typename T>
const T* ptr(const py::array& a) { return static_cast<const T*>(a.data()); }
template <typename T>
T* mptr(py::array& a) { return static_cast<T*>(a.mutable_data()); }

// The bias array's data, or a null pointer for None (call with the GIL held).
const void* bias_data(const py::object& b) {
    return b.is_none() ? nullptr : py::reinterpret_borrow<py::array>(b).data();
}

py::object optional_bias(const char* kernel, const py::object& b, const py::dtype& dt,
                         int64_t channels) {
    if (b.is_none()) return py::none();
    py::array a = array_arg(kernel, "bias", b, 1, &dt);
    if (a.shape(0) != channels)
        fail(kernel, "bias of shape " + shape_str(a) + " needs " + std::to_string(channels) +
                         " entries");
    return a;
}

py::array forward(const py::object& x_obj, const py::object& w_obj, const py::object& b_obj,
                  std::array<int64_t, 2> stride, std::array<int64_t, 4> padding,
                  std::array<int64_t, 2> dilation, int64_t groups, const py::object& isa,
                  const std::string& algorithm, int threads) {
    const char* kernel = "conv2d_forward";
    const py::array x = array_arg(kernel, "x", x_obj, 4, nullptr);
    const py::dtype dt = x.dtype();
    const py::array w = array_arg(kernel, "weight", w_obj, 4, &dt);
    const Conv2dShape s = make_shape(kernel, x.shape(0), x.shape(1), {x.shape(2), x.shape(3)}, w,
                                     {-1, -1}, stride, padding, dilation, groups);
    const py::object b = optional_bias(kernel, b_obj, dt, s.c_out);
    const ConvOptions o = options_from(kernel, isa, algorithm, threads);
    try {
        conv2d_algorithm(s, ConvPass::forward, o.algorithm);
    } catch (const std::invalid_argument& e) {
        fail(kernel, e.what());
    }
    py::array y(dt, std::vector<py::ssize_t>{s.n, s.c_out, s.oh, s.ow});
    const bool dbl = dt.equal(py::dtype::of<double>());
    const void* bp = bias_data(b);
    py::gil_scoped_release release;
    if (dbl) {
        conv2d_forward(ptr<double>(x), ptr<double>(w), static_cast<const double*>(bp),
                       mptr<double>(y), s, o);
    } else {
        conv2d_forward(ptr<float>(x), ptr<float>(w), static_cast<const float*>(bp),
                       mptr<float>(y), s, o);
    }
    return y;
}

py::array backward_input(const py::object& dy_obj, const py::object& w_obj,
                         const py::object& b_obj, std::array<int64_t, 2> input_size,
                         std::array<int64_t, 2> stride, std::array<int64_t, 4> padding,
                         std::array<int64_t, 2> dilation, int64_t groups, const py::object& isa,
                         const std::string& algorithm, int threads) {
    const char* kernel = "conv2d_backward_input";
    const py::array dy = array_arg(kernel, "grad_output", dy_obj, 4, nullptr);
    const py::dtype dt = dy.dtype();
    const py::array w = array_arg(kernel, "weight", w_obj, 4, &dt);
    if (dy.shape(1) != w.shape(0))
        fail(kernel, "grad_output of shape " + shape_str(dy) + " has " +
                         std::to_string(dy.shape(1)) + " channels, weight of shape " +
                         shape_str(w) + " gives " + std::to_string(w.shape(0)));
    if (groups < 1) fail(kernel, "groups must be positive, got " + std::to_string(groups));
    const Conv2dShape s = make_shape(kernel, dy.shape(0), w.shape(1) * groups, input_size, w,
                                     {dy.shape(2), dy.shape(3)}, stride, padding, dilation, groups);
    const py::object b = optional_bias(kernel, b_obj, dt, s.c_in);
    const ConvOptions o = options_from(kernel, isa, algorithm, threads);
    try {
        conv2d_algorithm(s, ConvPass::backward_input, o.algorithm);
    } catch (const std::invalid_argument& e) {
        fail(kernel, e.what());
    }
    py::array dx(dt, std::vector<py::ssize_t>{s.n, s.c_in, s.h, s.w});
    const bool dbl = dt.equal(py::dtype::of<double>());
    const void* bp = bias_data(b);
    py::gil_scoped_release release;
    if (dbl) {
        conv2d_backward_input(ptr<double>(dy), ptr<double>(w), static_cast<const double*>(bp),
                              mptr<double>(dx), s, o);
    } else {
        conv2d_backward_input(ptr<float>(dy), ptr<float>(w), static_cast<const float*>(bp),
                              mptr<float>(dx), s, o);
    }
    return dx;
}

py::tuple backward_weight(const py::object& x_obj, const py::object& dy_obj,
                          std::array<int64_t, 2> kernel_size, std::array<int64_t, 2> stride,
                          std::array<int64_t, 4> padding, std::array<int64_t, 2> dilation,
                          int64_t groups, bool need_weight, bool need_bias, const py::object& isa,
                          const std::string& algorithm, int threads) {
    const char* kernel = "conv2d_backward_weight";
    const py::array x = array_arg(kernel, "x", x_obj, 4, nullptr);
    const py::dtype dt = x.dtype();
    const py::array dy = array_arg(kernel, "grad_output", dy_obj, 4, &dt);
    if (dy.shape(0) != x.shape(0))
        fail(kernel, "grad_output of shape " + shape_str(dy) + " and x of shape " +
                         shape_str(x) + " differ in batch size");
    if (groups < 1) fail(kernel, "groups must be positive, got " + std::to_string(groups));
    if (kernel_size[0] < 1 || kernel_size[1] < 1) fail(kernel, "kernel_size must be positive");
    if (x.shape(1) % groups) fail(kernel, "groups must divide the input channels");
    // A weight-shaped placeholder for make_shape's checks.
    py::array w(dt, std::vector<py::ssize_t>{dy.shape(1), x.shape(1) / groups, kernel_size[0],
                                             kernel_size[1]});
    const Conv2dShape s = make_shape(kernel, x.shape(0), x.shape(1), {x.shape(2), x.shape(3)}, w,
                                     {dy.shape(2), dy.shape(3)}, stride, padding, dilation, groups);
    const ConvOptions o = options_from(kernel, isa, algorithm, threads);
    if (need_weight) {
        try {
            conv2d_algorithm(s, ConvPass::backward_weight, o.algorithm);
        } catch (const std::invalid_argument& e) {
            fail(kernel, e.what());
        }
    }
    py::array dw = need_weight ? w : py::array();
    py::array db = need_bias ? py::array(dt, std::vector<py::ssize_t>{s.c_out}) : py::array();
    const bool dbl = dt.equal(py::dtype::of<double>());
    {
        py::gil_scoped_release release;
        if (dbl) {
            conv2d_backward_weight(ptr<double>(x), ptr<double>(dy),
                                   need_weight ? mptr<double>(dw) : nullptr,
                                   need_bias ? mptr<double>(db) : nullptr, s, o);
        } else {
            conv2d_backward_weight(ptr<float>(x), ptr<float>(dy),
                                   need_weight ? mptr<float>(dw) : nullptr,
                                   need_bias ? mptr<float>(db) : nullptr, s, o);
        }
    }
    return py::make_tuple(need_weight ? py::object(dw) : py::object(py::none()),
                          need_bias ? py::object(db) : py::object(py::none()));
}

std::string algorithm_name(ConvAlgorithm a) {
    switch (a) {
        case ConvAlgorithm::im2col: return "im2col";
        case ConvAlgorithm::pointwise: return "pointwise";
        case ConvAlgorithm::direct: return "direct";
        default: return "auto";
    }
}

}  // namespace

void bind_conv(py::module_& m) {
    m.def("conv2d_forward", &forward, py::arg("x"), py::arg("weight"), py::arg("bias"),
          py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("groups"),
          py::kw_only(), py::arg("isa") = py::none(), py::arg("algorithm") = "auto",
          py::arg("threads") = 0,
          "y = conv2d(x, weight) + bias, NCHW; padding is (top, bottom, left, right).");
    m.def("conv2d_backward_input", &backward_input, py::arg("grad_output"), py::arg("weight"),
          py::arg("bias"), py::arg("input_size"), py::arg("stride"), py::arg("padding"),
          py::arg("dilation"), py::arg("groups"), py::kw_only(), py::arg("isa") = py::none(),
          py::arg("algorithm") = "auto", py::arg("threads") = 0,
          "dL/dx of conv2d for dL/dy (plus bias per input channel when given: "
          "conv_transpose2d's forward).");
    m.def("conv2d_backward_weight", &backward_weight, py::arg("x"), py::arg("grad_output"),
          py::arg("kernel_size"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
          py::arg("groups"), py::arg("weight") = true, py::arg("bias") = false, py::kw_only(),
          py::arg("isa") = py::none(), py::arg("algorithm") = "auto", py::arg("threads") = 0,
          "(dL/dweight or None, dL/dbias or None) of conv2d for dL/dy.");
    m.def(
        "conv2d_algorithm",
        [](std::array<int64_t, 4> x_shape, std::array<int64_t, 4> w_shape,
           std::array<int64_t, 2> stride, std::array<int64_t, 4> padding,
           std::array<int64_t, 2> dilation, int64_t groups, const std::string& pass) {
            const char* kernel = "conv2d_algorithm";
            py::array w(py::dtype::of<float>(),
                        std::vector<py::ssize_t>{w_shape[0], w_shape[1], w_shape[2], w_shape[3]});
            const Conv2dShape s = make_shape(kernel, x_shape[0], x_shape[1],
                                             {x_shape[2], x_shape[3]}, w, {-1, -1}, stride,
                                             padding, dilation, groups);
            ConvPass p = ConvPass::forward;
            if (pass == "backward_input") {
                p = ConvPass::backward_input;
            } else if (pass == "backward_weight") {
                p = ConvPass::backward_weight;
            } else if (pass != "forward") {
                fail(kernel, "pass must be 'forward', 'backward_input' or 'backward_weight'");
            }
            return algorithm_name(conv2d_algorithm(s, p, ConvAlgorithm::automatic));
        },
        py::arg("x_shape"), py::arg("weight_shape"), py::arg("stride"), py::arg("padding"),
        py::arg("dilation"), py::arg("groups"), py::arg("pass") = "forward",
        "The algorithm the kernels pick for this shape: 'im2col', 'pointwise' or 'direct'.");
}

}  // namespace nnforge
