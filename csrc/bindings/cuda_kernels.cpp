// Binds the CUDA elementwise and reduction kernels into nnforge._C.cuda:
//   unary(op, x, out=None), binary(op, a, b, out=None), where(cond, a, b),
//   reduce_rows(op, x, rows, cols, ddof=0)
// (op names and semantics: cuda/elementwise.h). Launches are asynchronous and
// run with the GIL released. In a build without CUDA this binds nothing.
#include <pybind11/pybind11.h>

namespace py = pybind11;

#if NNFORGE_WITH_CUDA

#include <optional>
#include <string>

#include "cuda/device_array.h"
#include "cuda/elementwise.h"

namespace nnforge {
namespace {

using cuda::DeviceArray;

void check_op(bool known, const char* fn, const std::string& op) {
    if (!known) throw std::invalid_argument(std::string(fn) + ": unknown op '" + op + "'");
}

}  // namespace

void bind_cuda_kernels(py::module_& m) {
    m.def("unary", [](const std::string& op, const DeviceArray& x,
                      std::optional<DeviceArray> out) {
        check_op(cuda::is_unary_op(op), "cuda.unary", op);
        py::gil_scoped_release release;
        return cuda::unary(op, x, out ? &*out : nullptr);
    }, py::arg("op"), py::arg("x"), py::arg("out") = py::none());
    m.def("binary", [](const std::string& op, const DeviceArray& a, const DeviceArray& b,
                       std::optional<DeviceArray> out) {
        check_op(cuda::is_binary_op(op), "cuda.binary", op);
        py::gil_scoped_release release;
        return cuda::binary(op, a, b, out ? &*out : nullptr);
    }, py::arg("op"), py::arg("a"), py::arg("b"), py::arg("out") = py::none());
    m.def("where", [](const DeviceArray& cond, const DeviceArray& a, const DeviceArray& b) {
        py::gil_scoped_release release;
        return cuda::where(cond, a, b);
    }, py::arg("cond"), py::arg("a"), py::arg("b"));
    m.def("reduce_rows", [](const std::string& op, const DeviceArray& x, std::int64_t rows,
                            std::int64_t cols, std::int64_t ddof) {
        check_op(cuda::is_reduce_op(op), "cuda.reduce_rows", op);
        py::gil_scoped_release release;
        return cuda::reduce_rows(op, x, rows, cols, ddof);
    }, py::arg("op"), py::arg("x"), py::arg("rows"), py::arg("cols"), py::arg("ddof") = 0);
}

}  // namespace nnforge

#else  // !NNFORGE_WITH_CUDA

namespace nnforge {
void bind_cuda_kernels(py::module_&) {}
}  // namespace nnforge

#endif
