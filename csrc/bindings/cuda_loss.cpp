// Binds the CUDA fused cross entropy and row logsumexp (cuda/loss.h) into
// nnforge._C.cuda, over C-contiguous float32/float64 DeviceArrays:
//   cross_entropy_forward(z, target, weight, ignore_index, smoothing)
//       -> (loss, lse, wy, bad_position, bad_target)
//          z (N, C, D), target (N, D) int64, weight (C,) or None; per-position
//          results (N, D); bad_position is -1, or the flat position of the first
//          target outside [0, C) that is not ignore_index (read back from a
//          device-side flag: this call synchronizes once)
//   cross_entropy_backward(z, target, weight, lse, wy, g, ignore_index, smoothing) -> gz
//   logsumexp_rows(x) -> (R,)   x (R, N)
// Other dtypes raise TypeError, bad shapes or layouts ValueError, naming the op
// and the shapes. Kernels run with the GIL released. In a build without CUDA
// this binds nothing (Python checks _C.cuda.is_built() first).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings/bindings.h"

namespace py = pybind11;

#if NNFORGE_WITH_CUDA

#include <optional>
#include <string>

#include "cuda/device_array.h"
#include "cuda/loss.h"

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

void check_target(const char* op, const DeviceArray& t) {
    if (t.dtype != DType::Int64) {
        throw py::type_error(std::string(op) + ": target must be int64, got " + t.describe());
    }
}

const DeviceArray* opt(const std::optional<DeviceArray>& a) { return a ? &*a : nullptr; }

}  // namespace

void bind_cuda_loss(py::module_& m) {
    m.def(
        "cross_entropy_forward",
        [](const DeviceArray& z, const DeviceArray& target, std::optional<DeviceArray> weight,
           std::int64_t ignore_index, double smoothing) {
            const char* op = "cuda.cross_entropy_forward";
            check_float(op, "z", z);
            check_target(op, target);
            if (weight) check_float(op, "weight", *weight);
            cuda::CrossEntropyForward r;
            {
                py::gil_scoped_release release;
                r = cuda::cross_entropy_forward(z, target, opt(weight), ignore_index, smoothing);
            }
            return py::make_tuple(r.loss, r.lse, r.wy, r.bad_position, r.bad_target);
        },
        py::arg("z"), py::arg("target"), py::arg("weight"), py::arg("ignore_index"),
        py::arg("smoothing"),
        "(loss, lse, wy, bad_position, bad_target) per position of (N, C, D) logits.");
    m.def(
        "cross_entropy_backward",
        [](const DeviceArray& z, const DeviceArray& target, std::optional<DeviceArray> weight,
           const DeviceArray& lse, const DeviceArray& wy, const DeviceArray& g,
           std::int64_t ignore_index, double smoothing) {
            const char* op = "cuda.cross_entropy_backward";
            check_float(op, "z", z);
            check_target(op, target);
            if (weight) check_float(op, "weight", *weight);
            py::gil_scoped_release release;
            return cuda::cross_entropy_backward(z, target, opt(weight), lse, wy, g, ignore_index,
                                                smoothing);
        },
        py::arg("z"), py::arg("target"), py::arg("weight"), py::arg("lse"), py::arg("wy"),
        py::arg("g"), py::arg("ignore_index"), py::arg("smoothing"),
        "dL/dz of cross_entropy_forward for the upstream gradient g (N, D).");
    m.def(
        "logsumexp_rows",
        [](const DeviceArray& x) {
            check_float("cuda.logsumexp", "x", x);
            py::gil_scoped_release release;
            return cuda::logsumexp_rows(x);
        },
        py::arg("x"), "log sum exp of each row of a C-contiguous (rows, cols) array.");
}

}  // namespace nnforge

#else  // !NNFORGE_WITH_CUDA

namespace nnforge {
void bind_cuda_loss(py::module_&) {}
}  // namespace nnforge

#endif
