// Binds the CUDA recurrent layers (cuda/rnn.h) into nnforge._C.cuda, the GPU
// twins of nnforge._C.cpu.rnn_forward / rnn_backward (bindings/rnn.cpp):
//   rnn_forward(mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh, peephole, lengths, coupled=False,
//               save=True) -> (y, h_n, c_n, gates, cells, gh_n)
//       (save=False, for inference: gates, cells and gh_n come back None)
//   rnn_backward(mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh, peephole, lengths, coupled,
//                y, gates, cells, gh_n, dy, dh_n, dc_n, need_dx=True, need_dw=True)
//       -> (dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dpeephole)
//   rnn_time_reverse(a, lengths) -> a with each row's first lengths[b] steps reversed
// mode is "rnn_tanh", "rnn_relu", "lstm" or "gru"; c0, cells, dc_n, dc0 exist
// for "lstm" only and gh_n for "gru" (None otherwise); b_ih, b_hh and peephole
// may be None (then so are their gradients); lengths None or an int64 (B,)
// DeviceArray (values are not range-checked here: backend/cuda_rnn.py checks
// them on the host). All float arrays C-contiguous float32 or float64 DeviceArrays
// of one dtype on one device: another dtype for x raises TypeError, bad shapes,
// layouts or mixed dtypes ValueError naming the op, the argument and the shapes.
// Launches are asynchronous and run with the GIL released. In a build without
// CUDA this binds nothing (Python checks _C.cuda.is_built() first).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings/bindings.h"

namespace py = pybind11;

#if NNFORGE_WITH_CUDA

#include <optional>
#include <string>

#include "cuda/device_array.h"
#include "cuda/rnn.h"

namespace nnforge {
namespace {

using cuda::DeviceArray;
using cuda::DType;

using Opt = std::optional<DeviceArray>;

const DeviceArray* opt(const Opt& a) { return a ? &*a : nullptr; }

py::object maybe(bool has, const DeviceArray& a) { return has ? py::cast(a) : py::none(); }

cuda::RnnLayer layer(const char* op, const std::string& mode, const DeviceArray& x,
                     const DeviceArray& h0, const Opt& c0, const DeviceArray& w_ih,
                     const DeviceArray& w_hh, const Opt& b_ih, const Opt& b_hh,
                     const Opt& peephole, const Opt& lengths, bool coupled) {
    if (x.dtype != DType::Float32 && x.dtype != DType::Float64) {
        throw py::type_error(std::string(op) + ": x must be float32 or float64, got " +
                             x.describe());
    }
    cuda::RnnLayer L;
    L.mode = cuda::parse_rnn_mode(mode, op);
    L.coupled = coupled;
    L.x = &x;
    L.h0 = &h0;
    L.c0 = opt(c0);
    L.w_ih = &w_ih;
    L.w_hh = &w_hh;
    L.b_ih = opt(b_ih);
    L.b_hh = opt(b_hh);
    L.peephole = opt(peephole);
    L.lengths = opt(lengths);
    return L;
}

}  // namespace

void bind_cuda_rnn(py::module_& m) {
    m.def(
        "rnn_forward",
        [](const std::string& mode, const DeviceArray& x, const DeviceArray& h0, Opt c0,
           const DeviceArray& w_ih, const DeviceArray& w_hh, Opt b_ih, Opt b_hh, Opt peephole,
           Opt lengths, bool coupled, bool save) {
            const cuda::RnnLayer L = layer("cuda.rnn_forward", mode, x, h0, c0, w_ih, w_hh,
                                           b_ih, b_hh, peephole, lengths, coupled);
            cuda::RnnForwardResult r;
            {
                py::gil_scoped_release release;
                r = cuda::rnn_forward(L, save);
            }
            return py::make_tuple(r.y, r.h_n, maybe(r.has_c_n, r.c_n), maybe(r.saved, r.gates),
                                  maybe(r.saved && L.mode == cuda::RnnCell::lstm, r.cells),
                                  maybe(r.saved && L.mode == cuda::RnnCell::gru, r.gh_n));
        },
        py::arg("mode"), py::arg("x"), py::arg("h0"), py::arg("c0"), py::arg("w_ih"),
        py::arg("w_hh"), py::arg("b_ih"), py::arg("b_hh"), py::arg("peephole"),
        py::arg("lengths"), py::arg("coupled") = false, py::arg("save") = true,
        "One direction of one recurrent layer over x (T, B, I): "
        "(y, h_n, c_n, gates, cells, gh_n); see csrc/cuda/rnn.h for the layouts. "
        "save=False (inference) returns None for gates, cells and gh_n.");
    m.def(
        "rnn_backward",
        [](const std::string& mode, const DeviceArray& x, const DeviceArray& h0, Opt c0,
           const DeviceArray& w_ih, const DeviceArray& w_hh, Opt b_ih, Opt b_hh, Opt peephole,
           Opt lengths, bool coupled, const DeviceArray& y, const DeviceArray& gates,
           Opt cells, Opt gh_n, const DeviceArray& dy, const DeviceArray& dh_n, Opt dc_n,
           bool need_dx, bool need_dw) {
            const cuda::RnnLayer L = layer("cuda.rnn_backward", mode, x, h0, c0, w_ih, w_hh,
                                           b_ih, b_hh, peephole, lengths, coupled);
            cuda::RnnBackwardResult r;
            {
                py::gil_scoped_release release;
                r = cuda::rnn_backward(L, y, gates, opt(cells), opt(gh_n), dy, dh_n, opt(dc_n),
                                       need_dx, need_dw);
            }
            return py::make_tuple(maybe(r.has_dx, r.dx), r.dh0, maybe(r.has_dc0, r.dc0),
                                  maybe(r.has_dw, r.dw_ih), maybe(r.has_dw, r.dw_hh),
                                  maybe(r.has_db_ih, r.db_ih), maybe(r.has_db_hh, r.db_hh),
                                  maybe(r.has_dpeephole, r.dpeephole));
        },
        py::arg("mode"), py::arg("x"), py::arg("h0"), py::arg("c0"), py::arg("w_ih"),
        py::arg("w_hh"), py::arg("b_ih"), py::arg("b_hh"), py::arg("peephole"),
        py::arg("lengths"), py::arg("coupled"), py::arg("y"), py::arg("gates"),
        py::arg("cells"), py::arg("gh_n"), py::arg("dy"), py::arg("dh_n"), py::arg("dc_n"),
        py::arg("need_dx") = true, py::arg("need_dw") = true,
        "Backward through time of rnn_forward: "
        "(dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dpeephole); need_dx / need_dw False "
        "skip (and return None for) dx / the parameter gradients.");
    m.def(
        "rnn_time_reverse",
        [](const DeviceArray& a, Opt lengths) {
            py::gil_scoped_release release;
            return cuda::rnn_time_reverse(a, opt(lengths));
        },
        py::arg("a"), py::arg("lengths"),
        "a (T, B, ...) C-contiguous with each row's first lengths[b] steps in reverse order "
        "(all T steps when lengths is None); later steps stay in place.");
}

}  // namespace nnforge

#else  // !NNFORGE_WITH_CUDA

namespace nnforge {
void bind_cuda_rnn(py::module_&) {}
}  // namespace nnforge

#endif
