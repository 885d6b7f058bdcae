// Binds the pooling kernels (cpu/pool.cpp) into nnforge._C.cpu. Every array is
// (N, C, H, W), C-contiguous, float32 or float64 (indices int64); 1-D pooling
// passes H = 1 with kernel, stride 1, padding 0 and dilation 1 along H.
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
// kernel, stride, padding, dilation, *_hw are (h, w) pairs. Output sizes follow
// PyTorch's rule (pool_out_size below). A bad argument raises ValueError naming
// the kernel and the argument (TypeError for a non-array, IndexError for an
// index outside its input plane). The GIL is released while a kernel runs.
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
#include "cpu/pool.h"

namespace py = pybind11;

namespace nnforge {
namespace {

using bind_args::check_c_contiguous;
using bind_args::dtype_str;
using bind_args::fail;
using bind_args::is_double;
using bind_args::require_array;
using bind_args::shape_str;

using Pair = std::array<int64_t, 2>;
constexpr int64_t kMaxParam = int64_t{1} << 31;

std::string pair_str(const Pair& p) {
    return "(" + std::to_string(p[0]) + ", " + std::to_string(p[1]) + ")";
}

// The argument as a 4-D C-contiguous array: float32/float64 (dtype None) or `dtype`.
py::array checked(const char* kernel, const char* arg, const py::object& obj,
                  const py::dtype* dtype = nullptr) {
    py::array a = require_array(kernel, arg, obj);
    const bool ok = dtype ? a.dtype().equal(*dtype)
                          : a.dtype().equal(py::dtype::of<float>()) ||
                                a.dtype().equal(py::dtype::of<double>());
    if (!ok) {
        fail(kernel, std::string(arg) + " has dtype " + dtype_str(a) +
                         ", expected " + (dtype ? std::string(py::str(*dtype))
                                                : std::string("float32 or float64")));
    }
    if (a.ndim() != 4) {
        fail(kernel, std::string(arg) + " must be 4-D (N, C, H, W), got shape " + shape_str(a));
    }
    check_c_contiguous(kernel, arg, a);
    return a;
}

void check_pair(const char* kernel, const char* arg, const Pair& p, int64_t min) {
    for (int64_t v : p) {
        if (v < min || v > kMaxParam) {
            fail(kernel, std::string(arg) + " must be in [" + std::to_string(min) +
                             ", 2^31], got " + pair_str(p));
        }
    }
}

// PyTorch's pooling output size along one axis (its last window must start
// inside the input or the left padding in ceil mode).
int64_t pool_out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
    const int64_t num = in + 2 * p - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
    int64_t out = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;
    if (ceil_mode && (out - 1) * s >= in + p) --out;
    return out;
}

// The geometry of a windowed pooling of an (n, c, ih, iw) input, checked (PyTorch's rules).
PoolGeom window_geom(const char* kernel, int64_t n, int64_t c, int64_t ih, int64_t iw,
                     const Pair& k, const Pair& s, const Pair& p, const Pair& d, bool ceil_mode) {
    check_pair(kernel, "kernel_size", k, 1);
    check_pair(kernel, "stride", s, 1);
    check_pair(kernel, "padding", p, 0);
    check_pair(kernel, "dilation", d, 1);
    if (p[0] > k[0] / 2 || p[1] > k[1] / 2) {
        fail(kernel, "padding " + pair_str(p) + " must be at most half of kernel_size " +
                         pair_str(k));
    }
    PoolGeom g;
    g.planes = n * c;
    g.ih = ih, g.iw = iw;
    g.kh = k[0], g.kw = k[1], g.sh = s[0], g.sw = s[1];
    g.ph = p[0], g.pw = p[1], g.dh = d[0], g.dw = d[1];
    g.oh = pool_out_size(g.ih, g.kh, g.sh, g.ph, g.dh, ceil_mode);
    g.ow = pool_out_size(g.iw, g.kw, g.sw, g.pw, g.dw, ceil_mode);
    if (g.oh < 1 || g.ow < 1) {
        fail(kernel, "input of size (" + std::to_string(ih) + ", " + std::to_string(iw) +
                         ") gives output size (" + std::to_string(g.oh) + ", " +
                         std::to_string(g.ow) + "), too small (kernel_size " + pair_str(k) +
                         ", stride " + pair_str(s) + ", padding " + pair_str(p) + ", dilation " +
                         pair_str(d) + ")");
    }
    return g;
}

PoolGeom window_geom(const char* kernel, const py::array& x, const Pair& k, const Pair& s,
                     const Pair& p, const Pair& d, bool ceil_mode) {
    return window_geom(kernel, x.shape(0), x.shape(1), x.shape(2), x.shape(3), k, s, p, d,
                       ceil_mode);
}

py::array new_like(const py::array& x, int64_t h, int64_t w) {
    return py::array(x.dtype(), std::vector<py::ssize_t>{x.shape(0), x.shape(1), h, w});
}

py::array new_indices(const py::array& x, int64_t h, int64_t w) {
    return py::array(py::dtype::of<int64_t>(),
                     std::vector<py::ssize_t>{x.shape(0), x.shape(1), h, w});
}


template <typename T>
const T* cdata(const py::array& a) { return static_cast<const T*>(a.data()); }
template <typename T>
T* mdata(py::array& a) { return static_cast<T*>(a.mutable_data()); }

void check_grad_shape(const char* kernel, const py::array& gy, const PoolGeom& g) {
    if (gy.shape(2) != g.oh || gy.shape(3) != g.ow) {
        fail(kernel, "gy has shape " + shape_str(gy) + ", expected output size (" +
                         std::to_string(g.oh) + ", " + std::to_string(g.ow) + ")");
    }
}

PoolGeom grad_geom(const char* kernel, const py::array& gy, const Pair& input_hw) {
    check_pair(kernel, "input_hw", input_hw, 0);
    PoolGeom g;
    g.planes = gy.shape(0) * gy.shape(1);
    g.ih = input_hw[0], g.iw = input_hw[1];
    g.oh = gy.shape(2), g.ow = gy.shape(3);
    return g;
}

// Calls fn(T{}) with T the float type of `a` (double or float), the GIL released.
template <typename Fn>
void with_dtype(const py::array& a, Fn&& fn) {
    const bool dbl = is_double(a);
    py::gil_scoped_release release;
    if (dbl) {
        fn(double{});
    } else {
        fn(float{});
    }
}

// (y, indices or None) of a max pooling of x with geometry g, run by
// pool(x, y, indices or nullptr, g).
template <typename Pool>
py::tuple max_with_indices(const py::array& x, const PoolGeom& g, bool return_indices,
                           Pool pool) {
    py::array y = new_like(x, g.oh, g.ow);
    py::object idx_obj = py::none();
    int64_t* idx = nullptr;
    if (return_indices) {
        py::array idx_arr = new_indices(x, g.oh, g.ow);
        idx = mdata<int64_t>(idx_arr);
        idx_obj = idx_arr;
    }
    with_dtype(x, [&](auto t) {
        using T = decltype(t);
        pool(cdata<T>(x), mdata<T>(y), idx, g);
    });
    return py::make_tuple(y, idx_obj);
}

// ------------------------------------------------------------------ max pooling
py::tuple max_forward(const py::object& x_obj, const Pair& k, const Pair& s, const Pair& p,
                      const Pair& d, bool ceil_mode, bool return_indices) {
    const char* kernel = "max_pool2d_forward";
    const py::array x = checked(kernel, "x", x_obj);
    const PoolGeom g = window_geom(kernel, x, k, s, p, d, ceil_mode);
    return max_with_indices(x, g, return_indices, [](auto* in, auto* out, int64_t* idx,
                                                     const PoolGeom& geom) {
        max_pool2d_forward(in, out, idx, geom);
    });
}

py::array max_backward(const py::object& gy_obj, const py::object& idx_obj, const Pair& input_hw) {
    const char* kernel = "max_pool2d_backward";
    const py::array gy = checked(kernel, "gy", gy_obj);
    const py::dtype i64 = py::dtype::of<int64_t>();
    const py::array idx = checked(kernel, "indices", idx_obj, &i64);
    for (int k = 0; k < 4; ++k) {
        if (idx.shape(k) != gy.shape(k)) {
            fail(kernel, "indices have shape " + shape_str(idx) + ", gy " + shape_str(gy) +
                             "; expected the same");
        }
    }
    const PoolGeom g = grad_geom(kernel, gy, input_hw);
    py::array gx = new_like(gy, g.ih, g.iw);
    int64_t bad = 0;
    with_dtype(gy, [&](auto t) {
        using T = decltype(t);
        bad = max_pool2d_backward(cdata<T>(gy), cdata<int64_t>(idx), mdata<T>(gx), g);
    });
    if (bad) {
        throw py::index_error(std::string(kernel) + ": " + std::to_string(bad) +
                              " indices are outside their input plane of size " +
                              pair_str(input_hw));
    }
    return gx;
}

// ------------------------------------------------------------------ average pooling
PoolGeom avg_geom(const char* kernel, const py::array& x, const Pair& k, const Pair& s,
                  const Pair& p, bool ceil_mode, int64_t divisor_override) {
    if (divisor_override < 0) fail(kernel, "divisor_override must be positive (0: none)");
    return window_geom(kernel, x, k, s, p, Pair{1, 1}, ceil_mode);
}

py::array avg_forward(const py::object& x_obj, const Pair& k, const Pair& s, const Pair& p,
                      bool ceil_mode, bool count_include_pad, int64_t divisor_override) {
    const char* kernel = "avg_pool2d_forward";
    const py::array x = checked(kernel, "x", x_obj);
    const PoolGeom g = avg_geom(kernel, x, k, s, p, ceil_mode, divisor_override);
    py::array y = new_like(x, g.oh, g.ow);
    with_dtype(x, [&](auto t) {
        using T = decltype(t);
        avg_pool2d_forward(cdata<T>(x), mdata<T>(y), g, count_include_pad, divisor_override);
    });
    return y;
}

py::array avg_backward(const py::object& gy_obj, const Pair& input_hw, const Pair& k,
                       const Pair& s, const Pair& p, bool ceil_mode, bool count_include_pad,
                       int64_t divisor_override) {
    const char* kernel = "avg_pool2d_backward";
    const py::array gy = checked(kernel, "gy", gy_obj);
    check_pair(kernel, "input_hw", input_hw, 0);
    if (divisor_override < 0) fail(kernel, "divisor_override must be positive (0: none)");
    const PoolGeom g = window_geom(kernel, gy.shape(0), gy.shape(1), input_hw[0], input_hw[1], k,
                                   s, p, Pair{1, 1}, ceil_mode);
    check_grad_shape(kernel, gy, g);
    py::array gx = new_like(gy, g.ih, g.iw);
    with_dtype(gy, [&](auto t) {
        using T = decltype(t);
        avg_pool2d_backward(cdata<T>(gy), mdata<T>(gx), g, count_include_pad, divisor_override);
    });
    return gx;
}

// ------------------------------------------------------------------ adaptive pooling
PoolGeom adaptive_geom(const char* kernel, const py::array& x, const Pair& out) {
    check_pair(kernel, "output_size", out, 0);
    PoolGeom g;
    g.planes = x.shape(0) * x.shape(1);
    g.ih = x.shape(2), g.iw = x.shape(3);
    g.oh = out[0], g.ow = out[1];
    if ((g.oh > 0 && g.ih == 0) || (g.ow > 0 && g.iw == 0)) {
        fail(kernel, "input of shape " + shape_str(x) + " is empty along H or W");
    }
    return g;
}

py::array adaptive_avg_forward(const py::object& x_obj, const Pair& out) {
    const char* kernel = "adaptive_avg_pool2d_forward";
    const py::array x = checked(kernel, "x", x_obj);
    const PoolGeom g = adaptive_geom(kernel, x, out);
    py::array y = new_like(x, g.oh, g.ow);
    with_dtype(x, [&](auto t) {
        using T = decltype(t);
        adaptive_avg_pool2d_forward(cdata<T>(x), mdata<T>(y), g);
    });
    return y;
}

py::array adaptive_avg_backward(const py::object& gy_obj, const Pair& input_hw) {
    const char* kernel = "adaptive_avg_pool2d_backward";
    const py::array gy = checked(kernel, "gy", gy_obj);
    const PoolGeom g = grad_geom(kernel, gy, input_hw);
    if ((g.oh > 0 && g.ih == 0) || (g.ow > 0 && g.iw == 0)) {
        fail(kernel, "input_hw " + pair_str(input_hw) + " is empty");
    }
    py::array gx = new_like(gy, g.ih, g.iw);
    with_dtype(gy, [&](auto t) {
        using T = decltype(t);
        adaptive_avg_pool2d_backward(cdata<T>(gy), mdata<T>(gx), g);
    });
    return gx;
}

py::tuple adaptive_max_forward(const py::object& x_obj, const Pair& out, bool return_indices) {
    const char* kernel = "adaptive_max_pool2d_forward";
    const py::array x = checked(kernel, "x", x_obj);
    const PoolGeom g = adaptive_geom(kernel, x, out);
    return max_with_indices(x, g, return_indices, [](auto* in, auto* out_, int64_t* idx,
                                                     const PoolGeom& geom) {
        adaptive_max_pool2d_forward(in, out_, idx, geom);
    });
}

}  // namespace

void bind_pool(py::module_& m) {
    m.def("max_pool2d_forward", &max_forward, py::arg("x"), py::arg("kernel"), py::arg("stride"),
          py::arg("padding"), py::arg("dilation"), py::arg("ceil_mode"),
          py::arg("return_indices"),
          "Max pooling of (N, C, H, W): (y, flat indices within each plane or None).");
    m.def("max_pool2d_backward", &max_backward, py::arg("gy"), py::arg("indices"),
          py::arg("input_hw"), "Scatters gy through the max-pooling indices into (N, C, H, W).");
    m.def("avg_pool2d_forward", &avg_forward, py::arg("x"), py::arg("kernel"), py::arg("stride"),
          py::arg("padding"), py::arg("ceil_mode"), py::arg("count_include_pad"),
          py::arg("divisor_override"), "Average pooling of (N, C, H, W).");
    m.def("avg_pool2d_backward", &avg_backward, py::arg("gy"), py::arg("input_hw"),
          py::arg("kernel"), py::arg("stride"), py::arg("padding"), py::arg("ceil_mode"),
          py::arg("count_include_pad"), py::arg("divisor_override"),
          "Gradient of average pooling with respect to its input.");
    m.def("adaptive_avg_pool2d_forward", &adaptive_avg_forward, py::arg("x"),
          py::arg("output_hw"), "Adaptive average pooling of (N, C, H, W) to output_hw.");
    m.def("adaptive_avg_pool2d_backward", &adaptive_avg_backward, py::arg("gy"),
          py::arg("input_hw"), "Gradient of adaptive average pooling.");
    m.def("adaptive_max_pool2d_forward", &adaptive_max_forward, py::arg("x"),
          py::arg("output_hw"), py::arg("return_indices"),
          "Adaptive max pooling of (N, C, H, W): (y, flat indices or None).");
}

}  // namespace nnforge
