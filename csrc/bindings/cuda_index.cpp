// Binds the CUDA indexing and scan kernels (cuda/index_ops.h) into
// nnforge._C.cuda:
//   index_apply(mode, base, index, size, stride, values)   mode: "gather" | "put" | "add"
//   index_check(index, size, axis)          IndexError when an index is outside [-size, size)
//   index_add_segments(base, values, perm, starts, rows, stride)
//   flip(a, axes) -> contiguous copy;  nonzero(a) -> (ndim, count) int64
//   scan(x, outer, n, inner, prod=False) -> inclusive cumsum / cumprod along n
// Wrong dtypes raise TypeError, bad shapes ValueError, naming the op and the
// arrays. Launches run with the GIL released. In a build without CUDA this
// binds nothing (Python checks _C.cuda.is_built() first).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings/bindings.h"

namespace py = pybind11;

#if NNFORGE_WITH_CUDA

#include <cstdint>
#include <string>
#include <vector>

#include "cuda/device_array.h"
#include "cuda/index_ops.h"

namespace nnforge {
namespace {

using cuda::DeviceArray;
using cuda::DType;

void check_int64(const char* op, const char* arg, const DeviceArray& a) {
    if (a.dtype != DType::Int64) {
        throw py::type_error(std::string(op) + ": " + arg + " must be int64, got " + a.describe());
    }
}

cuda::IndexMode mode_arg(const std::string& mode) {
    if (mode == "gather") return cuda::IndexMode::Gather;
    if (mode == "put") return cuda::IndexMode::Put;
    if (mode == "add") return cuda::IndexMode::Add;
    throw py::value_error("cuda.index_apply: mode must be 'gather', 'put' or 'add', got '" + mode +
                          "'");
}

}  // namespace

void bind_cuda_index(py::module_& m) {
    m.def(
        "index_apply",
        [](const std::string& mode, const DeviceArray& base, const DeviceArray& index,
           std::int64_t size, std::int64_t stride, const DeviceArray& values) {
            const cuda::IndexMode md = mode_arg(mode);
            check_int64("cuda.index_apply", "index", index);
            if (values.dtype != base.dtype) {
                throw py::type_error("cuda.index_apply: values " + values.describe() +
                                     " must have the dtype of base " + base.describe());
            }
            py::gil_scoped_release release;
            cuda::index_apply(md, base, index, size, stride, values);
        },
        py::arg("mode"), py::arg("base"), py::arg("index"), py::arg("size"), py::arg("stride"),
        py::arg("values"),
        "For every element e of the common shape: ptr = base[e] + wrap(index[e], size) * stride; "
        "gather: values[e] = *ptr, put: *ptr = values[e], add: *ptr += values[e] (atomic).");
    m.def(
        "index_check",
        [](const DeviceArray& index, std::int64_t size, std::int64_t axis) {
            check_int64("cuda.index_check", "index", index);
            py::gil_scoped_release release;
            cuda::index_check(index, size, axis);
        },
        py::arg("index"), py::arg("size"), py::arg("axis"),
        "IndexError (numpy's message) when an index lies outside [-size, size); synchronizes.");
    m.def(
        "index_add_segments",
        [](const DeviceArray& base, const DeviceArray& values, const DeviceArray& perm,
           const DeviceArray& starts, const DeviceArray& rows, std::int64_t stride) {
            check_int64("cuda.index_add_segments", "perm", perm);
            check_int64("cuda.index_add_segments", "starts", starts);
            check_int64("cuda.index_add_segments", "rows", rows);
            if (values.dtype != base.dtype) {
                throw py::type_error("cuda.index_add_segments: values " + values.describe() +
                                     " must have the dtype of base " + base.describe());
            }
            py::gil_scoped_release release;
            cuda::index_add_segments(base, values, perm, starts, rows, stride);
        },
        py::arg("base"), py::arg("values"), py::arg("perm"), py::arg("starts"), py::arg("rows"),
        py::arg("stride"),
        "Deterministic base[rows[u] * stride + q] += sum over the segment u of values[perm[j], q].");
    m.def(
        "flip",
        [](const DeviceArray& a, const std::vector<int>& axes) {
            py::gil_scoped_release release;
            return cuda::flip(a, axes);
        },
        py::arg("a"), py::arg("axes"), "A contiguous copy of a reversed along axes.");
    m.def(
        "nonzero",
        [](const DeviceArray& a) {
            py::gil_scoped_release release;
            return cuda::nonzero(a);
        },
        py::arg("a"), "(ndim, count) int64 coordinates of the nonzero elements, C order.");
    m.def(
        "scan",
        [](const DeviceArray& x, std::int64_t outer, std::int64_t n, std::int64_t inner,
           bool prod) {
            if (x.dtype != DType::Float32 && x.dtype != DType::Float64 &&
                x.dtype != DType::Int64) {
                throw py::type_error("cuda.scan: x must be float32, float64 or int64, got " +
                                     x.describe());
            }
            py::gil_scoped_release release;
            return cuda::scan_lines(x, outer, n, inner, prod);
        },
        py::arg("x"), py::arg("outer"), py::arg("n"), py::arg("inner"), py::arg("prod") = false,
        "Inclusive cumsum (prod=True: cumprod) of a C-contiguous (outer, n, inner) array along n.");
}

}  // namespace nnforge

#else  // !NNFORGE_WITH_CUDA

namespace nnforge {
void bind_cuda_index(py::module_&) {}
}  // namespace nnforge

#endif
