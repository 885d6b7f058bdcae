// Binds the fused scaled dot-product attention kernels (cpu/attention.cpp)
// into nnforge._C.cpu. q (B, Hq, L, E), k (B, Hk, S, E), v (B, Hk, S, Ev) are
// 4-D float32/float64 numpy arrays of one dtype, each with its last dim
// contiguous (other strides free, e.g. a (B, L, H, E) array transposed);
// Hq must be a multiple of Hk. mask is None or a 4-D bool / q-dtype array whose
// dims are each 1 (broadcast, never expanded) or (B, Hq, L, S)'s, with its
// last dim contiguous.
//   sdpa_forward(q, k, v, mask, is_causal, scale, dropout_p, seed) -> (out, lse)
//   sdpa_backward(q, k, v, mask, out, gout, lse, is_causal, scale, dropout_p, seed,
//                 mask_grad=False) -> (dq, dk, dv, dmask)
//       dmask (None unless mask_grad; an additive mask only): dS = P o (dP - D)
//       summed over the mask's broadcast dims: shape (B or 1, Hq or 1, L or 1, S),
//       1 wherever the mask's stride is 0
//   sdpa_dropout_mask(seed, b, h, l, s, dropout_p) -> bool (b, h, l, s): the keep mask
//       the kernels use (for tests)
// out, gout (B, Hq, L, Ev) and lse (B, Hq, L) are C-contiguous. A bad argument
// raises ValueError naming the kernel, the argument and the shapes (TypeError
// for a non-array). The GIL is released while a kernel runs.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "bindings/args.h"
#include "bindings/bindings.h"
#include "cpu/attention.h"

namespace py = pybind11;

namespace nnforge {
namespace {

using bind_args::check_c_contiguous;
using bind_args::check_float_dtype;
using bind_args::dtype_str;
using bind_args::fail;
using bind_args::is_double;
using bind_args::require_array;
using bind_args::shape_str;


// Stride of dim d in elements (0 for a dim of size 1: it is never stepped).
int64_t elem_stride(const char* kernel, const char* arg, const py::array& a, int d) {
    if (a.shape(d) <= 1) return 0;
    const int64_t s = a.strides(d), item = a.itemsize();
    if (s % item != 0) fail(kernel, std::string(arg) + " has a stride that is not a whole element");
    return s / item;
}

// A 4-D float32/float64 array with its last dim contiguous.
py::array operand(const char* kernel, const char* arg, const py::object& obj) {
    py::array a = require_array(kernel, arg, obj);
    check_float_dtype(kernel, arg, a);
    if (a.ndim() != 4) {
        fail(kernel, std::string(arg) + " must be 4-D (B, H, rows, dim), got shape " + shape_str(a));
    }
    if (elem_stride(kernel, arg, a, 3) > 1) {
        fail(kernel, std::string(arg) + " of shape " + shape_str(a) +
                         " must be contiguous in its last dim");
    }
    return a;
}

// A C-contiguous array of `like`'s dtype and the given shape.
py::array exact(const char* kernel, const char* arg, const py::object& obj, const py::array& like,
                const std::vector<py::ssize_t>& shape) {
    py::array a = require_array(kernel, arg, obj);
    if (!a.dtype().equal(like.dtype())) {
        fail(kernel, std::string(arg) + " has dtype " + dtype_str(a) + ", expected " +
                         dtype_str(like) + " (q's)");
    }
    if (std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()) != shape) {
        fail(kernel, std::string(arg) + " has shape " + shape_str(a) + ", expected " +
                         shape_str(shape));
    }
    check_c_contiguous(kernel, arg, a);
    return a;
}

template <typename T>
void fill_view(const char* kernel, const char* arg, const py::array& a, const T** ptr,
               int64_t* sb, int64_t* sh, int64_t* sr) {
    *ptr = static_cast<const T*>(a.data());
    *sb = elem_stride(kernel, arg, a, 0);
    *sh = elem_stride(kernel, arg, a, 1);
    *sr = elem_stride(kernel, arg, a, 2);
}

// Checks q, k, v and the mask; fills everything in args but the pointers' type.
struct Checked {
    py::array q, k, v, mask;
    bool has_mask = false;
    int64_t b, hq, hk, l, s, e, ev;
};

Checked check_inputs(const char* kernel, const py::object& q_obj, const py::object& k_obj,
                     const py::object& v_obj, const py::object& mask_obj, double scale,
                     double dropout_p) {
    Checked c;
    c.q = operand(kernel, "q", q_obj);
    c.k = operand(kernel, "k", k_obj);
    c.v = operand(kernel, "v", v_obj);
    if (!c.k.dtype().equal(c.q.dtype()) || !c.v.dtype().equal(c.q.dtype())) {
        fail(kernel, "q, k and v must have one dtype, got " + dtype_str(c.q) + ", " +
                         dtype_str(c.k) + " and " + dtype_str(c.v));
    }
    c.b = c.q.shape(0), c.hq = c.q.shape(1), c.l = c.q.shape(2), c.e = c.q.shape(3);
    c.hk = c.k.shape(1), c.s = c.k.shape(2), c.ev = c.v.shape(3);
    const std::string shapes = "q " + shape_str(c.q) + ", k " + shape_str(c.k) + ", v " +
                               shape_str(c.v);
    if (c.k.shape(0) != c.b || c.v.shape(0) != c.b || c.v.shape(1) != c.hk ||
        c.v.shape(2) != c.s || c.k.shape(3) != c.e) {
        fail(kernel, "shapes do not match (q (B, Hq, L, E), k (B, Hk, S, E), v (B, Hk, S, Ev)): " +
                         shapes);
    }
    if ((c.hk == 0) != (c.hq == 0) || (c.hk > 0 && c.hq % c.hk != 0)) {
        fail(kernel, "the query heads must be a multiple of the key/value heads: " + shapes);
    }
    if (!std::isfinite(scale)) fail(kernel, "scale must be finite, got " + std::to_string(scale));
    if (!(dropout_p >= 0.0 && dropout_p <= 1.0)) {
        fail(kernel, "dropout_p must be in [0, 1], got " + std::to_string(dropout_p));
    }
    if (!mask_obj.is_none()) {
        c.mask = require_array(kernel, "mask", mask_obj);
        c.has_mask = true;
        const bool is_bool = c.mask.dtype().equal(py::dtype::of<bool>());
        if (!is_bool && !c.mask.dtype().equal(c.q.dtype())) {
            fail(kernel, "mask has dtype " + dtype_str(c.mask) + ", expected bool or " +
                             dtype_str(c.q) + " (q's)");
        }
        const std::vector<int64_t> full{c.b, c.hq, c.l, c.s};
        bool ok = c.mask.ndim() == 4;
        for (int d = 0; ok && d < 4; ++d) ok = c.mask.shape(d) == full[d] || c.mask.shape(d) == 1;
        if (!ok) {
            fail(kernel, "mask of shape " + shape_str(c.mask) + " does not broadcast to " +
                             shape_str(full) + " (B, Hq, L, S) for " + shapes);
        }
        if (elem_stride(kernel, "mask", c.mask, 3) > 1) {
            fail(kernel, "mask of shape " + shape_str(c.mask) + " must be contiguous in its last dim");
        }
    }
    return c;
}

template <typename T>
SdpaArgs<T> make_args(const char* kernel, const Checked& c, bool causal, double scale,
                      double dropout_p, uint64_t seed) {
    SdpaArgs<T> a;
    a.b = c.b, a.hq = c.hq, a.hk = c.hk, a.l = c.l, a.s = c.s, a.e = c.e, a.ev = c.ev;
    fill_view(kernel, "q", c.q, &a.q, &a.q_sb, &a.q_sh, &a.q_sr);
    fill_view(kernel, "k", c.k, &a.k, &a.k_sb, &a.k_sh, &a.k_sr);
    fill_view(kernel, "v", c.v, &a.v, &a.v_sb, &a.v_sh, &a.v_sr);
    if (c.has_mask) {
        a.mask_kind = c.mask.dtype().equal(py::dtype::of<bool>()) ? SdpaMask::boolean
                                                                  : SdpaMask::additive;
        a.mask = c.mask.data();
        a.m_sb = elem_stride(kernel, "mask", c.mask, 0);
        a.m_sh = elem_stride(kernel, "mask", c.mask, 1);
        a.m_sr = elem_stride(kernel, "mask", c.mask, 2);
    }
    a.causal = causal;
    a.scale = static_cast<T>(scale);
    a.dropout_p = dropout_p;
    a.seed = seed;
    return a;
}

py::tuple forward(const py::object& q_obj, const py::object& k_obj, const py::object& v_obj,
                  const py::object& mask_obj, bool causal, double scale, double dropout_p,
                  uint64_t seed) {
    const char* kernel = "sdpa_forward";
    const Checked c = check_inputs(kernel, q_obj, k_obj, v_obj, mask_obj, scale, dropout_p);
    py::array out(c.q.dtype(), std::vector<py::ssize_t>{c.b, c.hq, c.l, c.ev});
    py::array lse(c.q.dtype(), std::vector<py::ssize_t>{c.b, c.hq, c.l});
    if (is_double(c.q)) {
        const SdpaArgs<double> a = make_args<double>(kernel, c, causal, scale, dropout_p, seed);
        py::gil_scoped_release release;
        sdpa_forward(a, static_cast<double*>(out.mutable_data()),
                     static_cast<double*>(lse.mutable_data()));
    } else {
        const SdpaArgs<float> a = make_args<float>(kernel, c, causal, scale, dropout_p, seed);
        py::gil_scoped_release release;
        sdpa_forward(a, static_cast<float*>(out.mutable_data()),
                     static_cast<float*>(lse.mutable_data()));
    }
    return py::make_tuple(out, lse);
}

// The mask gradient's array (zeros) and where the kernel adds into it.
template <typename T>
SdpaMaskGrad<T> mask_grad_view(const SdpaArgs<T>& a, py::array* dmask) {
    SdpaMaskGrad<T> g;
    const int64_t l = a.m_sr != 0 ? a.l : 1, h = a.m_sh != 0 ? a.hq : 1;
    const int64_t b = a.m_sb != 0 ? a.b : 1;
    *dmask = py::array_t<T>(std::vector<py::ssize_t>{b, h, l, a.s});
    g.data = static_cast<T*>(dmask->mutable_data());
    std::fill(g.data, g.data + b * h * l * a.s, T(0));
    g.sr = a.m_sr != 0 ? a.s : 0;
    g.sh = a.m_sh != 0 ? l * a.s : 0;
    g.sb = a.m_sb != 0 ? h * l * a.s : 0;
    return g;
}

py::tuple backward(const py::object& q_obj, const py::object& k_obj, const py::object& v_obj,
                   const py::object& mask_obj, const py::object& out_obj,
                   const py::object& gout_obj, const py::object& lse_obj, bool causal,
                   double scale, double dropout_p, uint64_t seed, bool mask_grad) {
    const char* kernel = "sdpa_backward";
    const Checked c = check_inputs(kernel, q_obj, k_obj, v_obj, mask_obj, scale, dropout_p);
    if (mask_grad && (!c.has_mask || c.mask.dtype().equal(py::dtype::of<bool>()))) {
        fail(kernel, "mask_grad needs an additive (floating-point) mask");
    }
    const std::vector<py::ssize_t> oshape{c.b, c.hq, c.l, c.ev};
    const py::array out = exact(kernel, "out", out_obj, c.q, oshape);
    const py::array gout = exact(kernel, "gout", gout_obj, c.q, oshape);
    const py::array lse = exact(kernel, "lse", lse_obj, c.q, {c.b, c.hq, c.l});
    py::array dq(c.q.dtype(), std::vector<py::ssize_t>{c.b, c.hq, c.l, c.e});
    py::array dk(c.q.dtype(), std::vector<py::ssize_t>{c.b, c.hk, c.s, c.e});
    py::array dv(c.q.dtype(), std::vector<py::ssize_t>{c.b, c.hk, c.s, c.ev});
    py::object dmask_obj = py::none();
    py::array dmask;
    if (is_double(c.q)) {
        const SdpaArgs<double> a = make_args<double>(kernel, c, causal, scale, dropout_p, seed);
        SdpaMaskGrad<double> g;
        if (mask_grad) g = mask_grad_view(a, &dmask);
        py::gil_scoped_release release;
        sdpa_backward(a, static_cast<const double*>(out.data()),
                      static_cast<const double*>(gout.data()),
                      static_cast<const double*>(lse.data()),
                      static_cast<double*>(dq.mutable_data()),
                      static_cast<double*>(dk.mutable_data()),
                      static_cast<double*>(dv.mutable_data()), g);
    } else {
        const SdpaArgs<float> a = make_args<float>(kernel, c, causal, scale, dropout_p, seed);
        SdpaMaskGrad<float> g;
        if (mask_grad) g = mask_grad_view(a, &dmask);
        py::gil_scoped_release release;
        sdpa_backward(a, static_cast<const float*>(out.data()),
                      static_cast<const float*>(gout.data()), static_cast<const float*>(lse.data()),
                      static_cast<float*>(dq.mutable_data()), static_cast<float*>(dk.mutable_data()),
                      static_cast<float*>(dv.mutable_data()), g);
    }
    if (mask_grad) dmask_obj = dmask;
    return py::make_tuple(dq, dk, dv, dmask_obj);
}

py::array dropout_mask(uint64_t seed, int64_t b, int64_t h, int64_t l, int64_t s,
                       double dropout_p) {
    const char* kernel = "sdpa_dropout_mask";
    if (b < 0 || h < 0 || l < 0 || s < 0) {
        fail(kernel, "sizes must be >= 0, got " + shape_str(std::vector<int64_t>{b, h, l, s}));
    }
    if (!(dropout_p >= 0.0 && dropout_p <= 1.0)) {
        fail(kernel, "dropout_p must be in [0, 1], got " + std::to_string(dropout_p));
    }
    py::array_t<bool> keep(std::vector<py::ssize_t>{b, h, l, s});
    bool* k = keep.mutable_data();
    const uint64_t thr = sdpa_drop_threshold(dropout_p);
    {
        py::gil_scoped_release release;
        for (int64_t row = 0; row < b * h * l; ++row) {
            const uint64_t key = sdpa_row_key(seed, static_cast<uint64_t>(row));
            for (int64_t j = 0; j < s; ++j) k[row * s + j] = sdpa_keep(key, j, thr);
        }
    }
    return keep;
}

}  // namespace

void bind_attention(py::module_& m) {
    m.def("sdpa_forward", &forward, py::arg("q"), py::arg("k"), py::arg("v"), py::arg("mask"),
          py::arg("is_causal"), py::arg("scale"), py::arg("dropout_p"), py::arg("seed"),
          "Fused scaled dot-product attention: (out (B, Hq, L, Ev), lse (B, Hq, L)).");
    m.def("sdpa_backward", &backward, py::arg("q"), py::arg("k"), py::arg("v"), py::arg("mask"),
          py::arg("out"), py::arg("gout"), py::arg("lse"), py::arg("is_causal"), py::arg("scale"),
          py::arg("dropout_p"), py::arg("seed"), py::arg("mask_grad") = false,
          "Gradients (dq, dk, dv, dmask or None) of sdpa_forward, recomputing the scores from "
          "lse.");
    m.def("sdpa_dropout_mask", &dropout_mask, py::arg("seed"), py::arg("b"), py::arg("h"),
          py::arg("l"), py::arg("s"), py::arg("dropout_p"),
          "The attention-dropout keep mask (b, h, l, s) the kernels draw for a seed.");
}

}  // namespace nnforge
