// Binds the CUDA device queries into nnforge._C.cuda, then the array and kernel
// bindings. Works in every build: without CUDA the queries report no devices and
// the array/kernel names are absent.
#include <pybind11/pybind11.h>

#include "bindings/bindings.h"
#include "cuda/runtime.h"

namespace py = pybind11;

namespace nnforge {

// The DeviceArray class, copies and allocator statistics (cuda_array.cpp) and the
// kernels (cuda_kernels.cpp); both bind nothing in a build without CUDA.
void bind_cuda_array(py::module_& m_cuda);
void bind_cuda_kernels(py::module_& m_cuda);

void bind_cuda_runtime(py::module_& m_cuda) {
    m_cuda.def("is_built", &cuda_is_built, "True if nnforge was built with CUDA kernels.");
    m_cuda.def("device_count", &cuda_device_count,
               "Number of visible CUDA devices; 0 without a driver, a device or a CUDA build.");
    m_cuda.def("device_name", &cuda_device_name, py::arg("index"),
               "Name of CUDA device `index`; IndexError if out of range, RuntimeError "
               "without a CUDA build.");
    bind_cuda_array(m_cuda);
    bind_cuda_kernels(m_cuda);
}

}  // namespace nnforge
