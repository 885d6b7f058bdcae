// Binds the CUDA GEMM (cuda/gemm.h) into nnforge._C.cuda:
//   gemm(a, b, out=None, *, alpha=1, beta=0, bias=None, activation='none',
//        allow_tf32=False, kernel='auto') -> out
//       out = act(alpha * a @ b + beta * out + bias) with numpy.matmul's batch
//       broadcasting for DeviceArrays of 2 or more dims (one dtype: float32,
//       float64, bfloat16, float16), any strides (transposes are views).
//       activation: 'none', 'relu', 'gelu' (erf), 'gelu_tanh'; kernel: 'auto',
//       'simt', 'tensor_core', 'wgmma' (sm_90a, by name only until verified; for
//       tests and benchmarks).
//   gemm_kernel_for(a, b, *, allow_tf32=False, kernel='auto') -> 'simt' | 'tensor_core' | 'wgmma'
// Bad dtypes raise TypeError, bad shapes ValueError, naming cuda.gemm and the
// shapes. Launches are asynchronous and run with the GIL released. In a build
// without CUDA this binds nothing (Python checks _C.cuda.is_built() first).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings/bindings.h"

namespace py = pybind11;

#if NNFORGE_WITH_CUDA

#include <optional>
#include <string>

#include "cuda/device_array.h"
#include "cuda/gemm.h"

namespace nnforge {
namespace {

using cuda::DeviceArray;
using cuda::DType;

bool gemm_dtype(DType dt) {
    return dt == DType::Float32 || dt == DType::Float64 || dt == DType::BFloat16 ||
           dt == DType::Float16;
}

void check_dtypes(const DeviceArray& a, const DeviceArray& b) {
    if (!gemm_dtype(a.dtype) || a.dtype != b.dtype) {
        throw py::type_error(std::string("cuda.gemm: a and b must share one of float32, float64, "
                                         "bfloat16, float16; got a ") +
                             cuda::dtype_name(a.dtype) + " " + cuda::shape_str(a.shape) + " and b " +
                             cuda::dtype_name(b.dtype) + " " + cuda::shape_str(b.shape));
    }
}

cuda::GemmKernel parse_kernel(const std::string& s) {
    if (s == "auto") return cuda::GemmKernel::automatic;
    if (s == "simt") return cuda::GemmKernel::simt;
    if (s == "tensor_core") return cuda::GemmKernel::tensor_core;
    if (s == "wgmma") return cuda::GemmKernel::wgmma;
    throw std::invalid_argument("cuda.gemm: kernel must be 'auto', 'simt', 'tensor_core' or "
                                "'wgmma', got '" + s + "'");
}

}  // namespace

void bind_cuda_gemm(py::module_& m) {
    m.def(
        "gemm",
        [](const DeviceArray& a, const DeviceArray& b, std::optional<DeviceArray> out,
           double alpha, double beta, std::optional<DeviceArray> bias,
           const std::string& activation, bool allow_tf32, const std::string& kernel) {
            check_dtypes(a, b);
            cuda::GemmOptions o;
            o.alpha = alpha;
            o.beta = beta;
            o.bias = bias ? &*bias : nullptr;
            o.activation = cuda::parse_gemm_activation(activation);
            o.allow_tf32 = allow_tf32;
            o.kernel = parse_kernel(kernel);
            py::gil_scoped_release release;
            return cuda::gemm(a, b, o, out ? &*out : nullptr);
        },
        py::arg("a"), py::arg("b"), py::arg("out") = py::none(), py::kw_only(),
        py::arg("alpha") = 1.0, py::arg("beta") = 0.0, py::arg("bias") = py::none(),
        py::arg("activation") = "none", py::arg("allow_tf32") = false,
        py::arg("kernel") = "auto",
        "out = act(alpha * a @ b + beta * out + bias), numpy.matmul's batch broadcasting.");
    m.def(
        "gemm_kernel_for",
        [](const DeviceArray& a, const DeviceArray& b, bool allow_tf32, const std::string& kernel) {
            check_dtypes(a, b);
            cuda::GemmOptions o;
            o.allow_tf32 = allow_tf32;
            o.kernel = parse_kernel(kernel);
            return cuda::gemm_kernel_for(a, b, o);
        },
        py::arg("a"), py::arg("b"), py::kw_only(), py::arg("allow_tf32") = false,
        py::arg("kernel") = "auto", "The kernel gemm would run: 'simt' or 'tensor_core'.");
}

}  // namespace nnforge

#else  // !NNFORGE_WITH_CUDA

namespace nnforge {
void bind_cuda_gemm(py::module_&) {}
}  // namespace nnforge

#endif
