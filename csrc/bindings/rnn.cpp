// Binds the whole-layer recurrent drivers (cpu/rnn.cpp) into nnforge._C.cpu:
//   rnn_forward(mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh, peephole, lengths, coupled,
//               save=True) -> (y, h_n, c_n, gates, cells, gh_n)
//       (save=False, for inference: gates, cells and gh_n come back None)
//   rnn_backward(mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh, peephole, lengths, coupled,
//                y, gates, cells, gh_n, dy, dh_n, dc_n, need_dx=True, need_dw=True)
//       -> (dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dpeephole)
//       (need_dx=False: dx is None; need_dw=False: the weight and bias
//        gradients are None; their GEMMs are skipped)
// mode is "rnn_tanh", "rnn_relu", "lstm" or "gru"; shapes and gate layouts as
// in cpu/rnn.h. c0, cells, dc_n, dc0 exist for "lstm" only and gh_n for "gru"
// (None otherwise); b_ih, b_hh and peephole may be None (then so are their
// gradients); lengths None (every row runs T steps) or int64 (B,) in [0, T].
// All arrays float32 or float64 (one dtype), C-contiguous. A bad argument
// raises ValueError naming the kernel, the argument and the shapes (TypeError
// for a non-array). The GIL is released while a kernel runs.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "bindings/args.h"
#include "bindings/bindings.h"
#include "cpu/rnn.h"

namespace py = pybind11;

namespace nnforge {
namespace {

using bind_args::check_c_contiguous;
using bind_args::dtype_str;
using bind_args::fail;
using bind_args::require_array;
using bind_args::shape_str;

using Shape = std::vector<py::ssize_t>;

Shape shape_of(const py::array& a) {
    return Shape(a.shape(), a.shape() + a.ndim());
}

// The argument as a C-contiguous array of the given dtype and shape.
py::array checked(const char* kernel, const char* arg, const py::object& obj,
                  const py::dtype& dtype, const Shape& shape) {
    py::array a = require_array(kernel, arg, obj);
    if (!a.dtype().equal(dtype)) {
        fail(kernel, std::string(arg) + " has dtype " + dtype_str(a) +
                         ", expected " + std::string(py::str(dtype)));
    }
    if (shape_of(a) != shape) {
        fail(kernel, std::string(arg) + " has shape " + shape_str(shape_of(a)) + ", expected " +
                         shape_str(shape));
    }
    check_c_contiguous(kernel, arg, a);
    return a;
}

// None when obj is None, else checked(...); `allowed` false: obj must be None.
py::object optional(const char* kernel, const char* arg, const py::object& obj,
                    const py::dtype& dtype, const Shape& shape, bool allowed, const char* why) {
    if (obj.is_none()) return py::none();
    if (!allowed) fail(kernel, std::string(arg) + " must be None " + why);
    return checked(kernel, arg, obj, dtype, shape);
}

RnnMode parse_mode(const char* kernel, const std::string& mode) {
    if (mode == "rnn_tanh") return RnnMode::rnn_tanh;
    if (mode == "rnn_relu") return RnnMode::rnn_relu;
    if (mode == "lstm") return RnnMode::lstm;
    if (mode == "gru") return RnnMode::gru;
    fail(kernel, "mode must be 'rnn_tanh', 'rnn_relu', 'lstm' or 'gru', got '" + mode + "'");
}

template <typename T>
const T* ptr(const py::object& a) {
    return a.is_none() ? nullptr
                       : static_cast<const T*>(py::reinterpret_borrow<py::array>(a).data());
}
template <typename T>
T* mptr(const py::object& a) {
    return a.is_none() ? nullptr
                       : static_cast<T*>(py::reinterpret_borrow<py::array>(a).mutable_data());
}

// The checked inputs shared by forward and backward.
struct Layer {
    RnnSpec spec;
    py::dtype dtype;
    bool is_double = false;
    py::array x, h0, w_ih, w_hh;
    py::object c0, b_ih, b_hh, peephole, lengths;
};

Layer check_layer(const char* kernel, const std::string& mode, const py::object& x_obj,
                  const py::object& h0_obj, const py::object& c0_obj, const py::object& w_ih_obj,
                  const py::object& w_hh_obj, const py::object& b_ih_obj,
                  const py::object& b_hh_obj, const py::object& peep_obj,
                  const py::object& lengths_obj, bool coupled) {
    Layer L;
    RnnSpec& s = L.spec;
    s.mode = parse_mode(kernel, mode);
    const bool lstm = s.mode == RnnMode::lstm;
    if (coupled && !lstm) fail(kernel, "coupled=True needs mode 'lstm', got '" + mode + "'");
    s.coupled = coupled;
    s.peephole = !peep_obj.is_none();
    if (s.peephole && !lstm) fail(kernel, "peephole must be None for mode '" + mode + "'");

    py::array x = require_array(kernel, "x", x_obj);
    if (x.ndim() != 3) fail(kernel, "x must have shape (T, B, I), got " + shape_str(shape_of(x)));
    if (x.dtype().equal(py::dtype::of<double>())) {
        L.is_double = true;
    } else if (!x.dtype().equal(py::dtype::of<float>())) {
        fail(kernel, "x has dtype " + dtype_str(x) +
                         "; expected float32 or float64");
    }
    L.dtype = x.dtype();
    s.steps = x.shape(0);
    s.batch = x.shape(1);
    s.input = x.shape(2);
    L.x = checked(kernel, "x", x_obj, L.dtype, shape_of(x));

    py::array w_hh = require_array(kernel, "w_hh", w_hh_obj);
    if (w_hh.ndim() != 2) {
        fail(kernel, "w_hh must have shape (G*H, H), got " + shape_str(shape_of(w_hh)));
    }
    s.hidden = w_hh.shape(1);
    const py::ssize_t GH = s.gate_blocks() * s.hidden, H = s.hidden, B = s.batch;
    L.w_hh = checked(kernel, "w_hh", w_hh_obj, L.dtype, {GH, H});
    L.w_ih = checked(kernel, "w_ih", w_ih_obj, L.dtype, {GH, s.input});
    L.h0 = checked(kernel, "h0", h0_obj, L.dtype, {B, H});
    if (lstm && c0_obj.is_none()) fail(kernel, "c0 is required for mode 'lstm'");
    L.c0 = optional(kernel, "c0", c0_obj, L.dtype, {B, H}, lstm, "unless mode is 'lstm'");
    L.b_ih = optional(kernel, "b_ih", b_ih_obj, L.dtype, {GH}, true, "");
    L.b_hh = optional(kernel, "b_hh", b_hh_obj, L.dtype, {GH}, true, "");
    L.peephole = optional(kernel, "peephole", peep_obj, L.dtype, {s.peephole_size()}, true, "");
    L.lengths = py::none();
    if (!lengths_obj.is_none()) {
        py::array len = checked(kernel, "lengths", lengths_obj, py::dtype::of<int64_t>(), {B});
        const int64_t* l = static_cast<const int64_t*>(len.data());
        for (py::ssize_t b = 0; b < B; ++b) {
            if (l[b] < 0 || l[b] > s.steps) {
                fail(kernel, "lengths[" + std::to_string(b) + "] = " + std::to_string(l[b]) +
                                 " is outside [0, T] for x of shape " + shape_str(shape_of(x)));
            }
        }
        L.lengths = len;
    }
    return L;
}

template <typename T>
RnnParams<T> params(const Layer& L) {
    RnnParams<T> p;
    p.w_ih = static_cast<const T*>(L.w_ih.data());
    p.w_hh = static_cast<const T*>(L.w_hh.data());
    p.b_ih = ptr<T>(L.b_ih);
    p.b_hh = ptr<T>(L.b_hh);
    p.peephole = ptr<T>(L.peephole);
    return p;
}

const int64_t* lengths_ptr(const Layer& L) {
    return L.lengths.is_none() ? nullptr : ptr<int64_t>(L.lengths);
}

py::object new_or_none(bool make, const py::dtype& dtype, const Shape& shape) {
    if (!make) return py::none();
    return py::array(dtype, shape);
}

py::tuple forward(const std::string& mode, const py::object& x, const py::object& h0,
                  const py::object& c0, const py::object& w_ih, const py::object& w_hh,
                  const py::object& b_ih, const py::object& b_hh, const py::object& peephole,
                  const py::object& lengths, bool coupled, bool save) {
    const char* kernel = "rnn_forward";
    Layer L = check_layer(kernel, mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh, peephole, lengths,
                          coupled);
    const RnnSpec& s = L.spec;
    const bool lstm = s.mode == RnnMode::lstm, gru = s.mode == RnnMode::gru;
    const py::ssize_t T = s.steps, B = s.batch, H = s.hidden, GH = s.gate_blocks() * H;
    py::array y(L.dtype, Shape{T, B, H}), h_n(L.dtype, Shape{B, H});
    py::object gates = new_or_none(save, L.dtype, {T, B, GH});
    py::object c_n = new_or_none(lstm, L.dtype, {B, H});
    py::object cells = new_or_none(save && lstm, L.dtype, {T, B, H});
    py::object gh_n = new_or_none(save && gru, L.dtype, {T, B, H});
    const int64_t* len = lengths_ptr(L);
    auto run = [&](auto zero) {
        using V = decltype(zero);
        RnnSaved<V> saved{mptr<V>(gates), mptr<V>(cells), mptr<V>(gh_n)};
        const RnnParams<V> p = params<V>(L);
        const V* xp = static_cast<const V*>(L.x.data());
        const V* h0p = static_cast<const V*>(L.h0.data());
        const V* c0p = ptr<V>(L.c0);
        V* yp = mptr<V>(y);
        V* hnp = mptr<V>(h_n);
        V* cnp = mptr<V>(c_n);
        py::gil_scoped_release release;
        rnn_layer_forward<V>(s, p, xp, h0p, c0p, len, yp, hnp, cnp, saved);
    };
    if (L.is_double) run(0.0); else run(0.0f);
    return py::make_tuple(y, h_n, c_n, gates, cells, gh_n);
}

py::tuple backward(const std::string& mode, const py::object& x, const py::object& h0,
                   const py::object& c0, const py::object& w_ih, const py::object& w_hh,
                   const py::object& b_ih, const py::object& b_hh, const py::object& peephole,
                   const py::object& lengths, bool coupled, const py::object& y_obj,
                   const py::object& gates_obj, const py::object& cells_obj,
                   const py::object& gh_n_obj, const py::object& dy_obj,
                   const py::object& dh_n_obj, const py::object& dc_n_obj, bool need_dx,
                   bool need_dw) {
    const char* kernel = "rnn_backward";
    Layer L = check_layer(kernel, mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh, peephole, lengths,
                          coupled);
    const RnnSpec& s = L.spec;
    const bool lstm = s.mode == RnnMode::lstm, gru = s.mode == RnnMode::gru;
    const py::ssize_t T = s.steps, B = s.batch, I = s.input, H = s.hidden;
    const py::ssize_t GH = s.gate_blocks() * H;
    const py::array y = checked(kernel, "y", y_obj, L.dtype, {T, B, H});
    const py::array gates = checked(kernel, "gates", gates_obj, L.dtype, {T, B, GH});
    if (lstm && cells_obj.is_none()) fail(kernel, "cells is required for mode 'lstm'");
    if (gru && gh_n_obj.is_none()) fail(kernel, "gh_n is required for mode 'gru'");
    if (lstm && dc_n_obj.is_none()) fail(kernel, "dc_n is required for mode 'lstm'");
    const py::object cells =
        optional(kernel, "cells", cells_obj, L.dtype, {T, B, H}, lstm, "unless mode is 'lstm'");
    const py::object gh_n =
        optional(kernel, "gh_n", gh_n_obj, L.dtype, {T, B, H}, gru, "unless mode is 'gru'");
    const py::array dy = checked(kernel, "dy", dy_obj, L.dtype, {T, B, H});
    const py::array dh_n = checked(kernel, "dh_n", dh_n_obj, L.dtype, {B, H});
    const py::object dc_n =
        optional(kernel, "dc_n", dc_n_obj, L.dtype, {B, H}, lstm, "unless mode is 'lstm'");

    py::array dh0(L.dtype, Shape{B, H});
    py::object dx = new_or_none(need_dx, L.dtype, {T, B, I});
    py::object dw_ih = new_or_none(need_dw, L.dtype, {GH, I});
    py::object dw_hh = new_or_none(need_dw, L.dtype, {GH, H});
    py::object dc0 = new_or_none(lstm, L.dtype, {B, H});
    py::object db_ih = new_or_none(need_dw && !L.b_ih.is_none(), L.dtype, {GH});
    py::object db_hh = new_or_none(need_dw && !L.b_hh.is_none(), L.dtype, {GH});
    py::object dpeep = new_or_none(need_dw && s.peephole, L.dtype, {s.peephole_size()});
    const int64_t* len = lengths_ptr(L);
    auto run = [&](auto zero) {
        using V = decltype(zero);
        RnnSaved<V> saved{const_cast<V*>(ptr<V>(gates)), const_cast<V*>(ptr<V>(cells)),
                          const_cast<V*>(ptr<V>(gh_n))};
        RnnGrads<V> g{mptr<V>(dx),    mptr<V>(dh0),   mptr<V>(dc0),   mptr<V>(dw_ih),
                      mptr<V>(dw_hh), mptr<V>(db_ih), mptr<V>(db_hh), mptr<V>(dpeep)};
        const RnnParams<V> p = params<V>(L);
        const V* xp = static_cast<const V*>(L.x.data());
        const V* h0p = static_cast<const V*>(L.h0.data());
        const V* c0p = ptr<V>(L.c0);
        const V* yp = ptr<V>(y);
        const V* dyp = ptr<V>(dy);
        const V* dhp = ptr<V>(dh_n);
        const V* dcp = ptr<V>(dc_n);
        py::gil_scoped_release release;
        rnn_layer_backward<V>(s, p, xp, h0p, c0p, len, yp, saved, dyp, dhp, dcp, g);
    };
    if (L.is_double) run(0.0); else run(0.0f);
    return py::make_tuple(dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dpeep);
}

}  // namespace

void bind_rnn(py::module_& m) {
    m.def("rnn_forward", &forward, py::arg("mode"), py::arg("x"), py::arg("h0"), py::arg("c0"),
          py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih"), py::arg("b_hh"),
          py::arg("peephole"), py::arg("lengths"), py::arg("coupled") = false,
          py::arg("save") = true,
          "One direction of one recurrent layer over x (T, B, I): "
          "(y, h_n, c_n, gates, cells, gh_n); see csrc/cpu/rnn.h for the layouts. "
          "save=False (inference) returns None for gates, cells and gh_n.");
    m.def("rnn_backward", &backward, py::arg("mode"), py::arg("x"), py::arg("h0"),
          py::arg("c0"), py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih"), py::arg("b_hh"),
          py::arg("peephole"), py::arg("lengths"), py::arg("coupled"), py::arg("y"),
          py::arg("gates"), py::arg("cells"), py::arg("gh_n"), py::arg("dy"), py::arg("dh_n"),
          py::arg("dc_n"), py::arg("need_dx") = true, py::arg("need_dw") = true,
          "Backward through time of rnn_forward: "
          "(dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dpeephole); need_dx / need_dw False "
          "skip (and return None for) dx / the parameter gradients.");
}

}  // namespace nnforge
