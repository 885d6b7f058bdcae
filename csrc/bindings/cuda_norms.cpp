// Binds the CUDA softmax and layer norm row kernels (cuda/norms.h) into
// nnforge._C.cuda, over C-contiguous (rows, cols) float32/float64 DeviceArrays:
//   softmax_forward(x, log=False) -> y                 (log=True: log-softmax)
//   softmax_backward(g, y, log=False) -> gx
//   layer_norm_forward(x, weight, bias, eps) -> (y, mean, rstd)
//   layer_norm_backward(g, x, mean, rstd, weight, need_gx, need_gw, need_gb)
//       -> (gx | None, gw | None, gb | None)
// Other dtypes raise TypeError, bad shapes or layouts ValueError, naming the op
// and the shapes. Launches are asynchronous and run with the GIL released. In a
// build without CUDA this binds nothing (Python checks _C.cuda.is_built() first).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings/bindings.h"

namespace py = pybind11;

#if NNFORGE_WITH_CUDA

#include <optional>
#include <string>

#include "cuda/device_array.h"
#include "cuda/norms.h"

namespace nnforge {
namespace {

using cuda::DeviceArray;
using cuda::DType;

void check_float(const char* op, const char* arg, const DeviceArray& a) {
    if (a.dtype != DType::Float32 && a.dtype != DType::Float64) {
        throw py::type_error(std::string(op) + ": " + arg + " must be float32 or float64, got " +
                             a.describe());
    }
}

const DeviceArray* opt(const std::optional<DeviceArray>& a) { return a ? &*a : nullptr; }

py::object maybe(bool has, const DeviceArray& a) {
    return has ? py::cast(a) : py::none();
}

}  // namespace

void bind_cuda_norms(py::module_& m) {
    m.def(
        "softmax_forward",
        [](const DeviceArray& x, bool log) {
            check_float("cuda.softmax_forward", "x", x);
            py::gil_scoped_release release;
            return cuda::softmax_rows_forward(x, log);
        },
        py::arg("x"), py::arg("log") = false,
        "Row softmax (log=True: log-softmax) of a C-contiguous (rows, cols) array.");
    m.def(
        "softmax_backward",
        [](const DeviceArray& g, const DeviceArray& y, bool log) {
            check_float("cuda.softmax_backward", "y", y);
            check_float("cuda.softmax_backward", "g", g);
            py::gil_scoped_release release;
            return cuda::softmax_rows_backward(g, y, log);
        },
        py::arg("g"), py::arg("y"), py::arg("log") = false,
        "Row softmax (log=True: log-softmax) gradient from the output y.");
    m.def(
        "layer_norm_forward",
        [](const DeviceArray& x, std::optional<DeviceArray> weight,
           std::optional<DeviceArray> bias, double eps) {
            check_float("cuda.layer_norm_forward", "x", x);
            cuda::LayerNormForward r;
            {
                py::gil_scoped_release release;
                r = cuda::layer_norm_rows_forward(x, opt(weight), opt(bias), eps);
            }
            return py::make_tuple(r.y, r.mean, r.rstd);
        },
        py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("eps"),
        "(y, mean, rstd): layer norm of each row of a C-contiguous (rows, cols) array.");
    m.def(
        "layer_norm_backward",
        [](const DeviceArray& g, const DeviceArray& x, const DeviceArray& mean,
           const DeviceArray& rstd, std::optional<DeviceArray> weight, bool need_gx,
           bool need_gw, bool need_gb) {
            check_float("cuda.layer_norm_backward", "x", x);
            cuda::LayerNormBackward r;
            {
                py::gil_scoped_release release;
                r = cuda::layer_norm_rows_backward(g, x, mean, rstd, opt(weight), need_gx,
                                                   need_gw, need_gb);
            }
            return py::make_tuple(maybe(r.has_gx, r.gx), maybe(r.has_gw, r.gw),
                                  maybe(r.has_gb, r.gb));
        },
        py::arg("g"), py::arg("x"), py::arg("mean"), py::arg("rstd"), py::arg("weight"),
        py::arg("need_gx"), py::arg("need_gw"), py::arg("need_gb"),
        "(gx, gw, gb) of row layer norm, None where not asked for.");
}

}  // namespace nnforge

#else  // !NNFORGE_WITH_CUDA

namespace nnforge {
void bind_cuda_norms(py::module_&) {}
}  // namespace nnforge

#endif
