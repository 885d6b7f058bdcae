// Binds the CUDA device queries into nnforge._C.cuda. Works in every build:
// without CUDA the functions report no devices.
#include <pybind11/pybind11.h>

#include "bindings/bindings.h"
#include "cuda/runtime.h"

namespace py = pybind11;

namespace nnforge {

void bind_cuda_runtime(py::module_& m_cuda) {
    m_cuda.def("is_built", &cuda_is_built, "True if nnforge was built with CUDA kernels.");
    m_cuda.def("device_count", &cuda_device_count,
               "Number of visible CUDA devices; 0 without a driver, a device or a CUDA build.");
    m_cuda.def("device_name", &cuda_device_name, py::arg("index"),
               "Name of CUDA device `index`; IndexError if out of range, RuntimeError "
               "without a CUDA build.");
}

}  // namespace nnforge
