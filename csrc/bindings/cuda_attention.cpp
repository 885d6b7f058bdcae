// Binds the CUDA fused attention (cuda/attention.h) into nnforge._C.cuda, with
// the CPU binding's signatures (bindings/attention.cpp):
//   sdpa_forward(q, k, v, mask, is_causal, scale, dropout_p, seed, *, kernel='auto')
//       -> (out, lse); kernel 'simt' skips the tensor-core kernel (bf16/fp16,
//       head dim 64 or 128, no dropout), for tests and benchmarks
//   sdpa_backward(q, k, v, mask, out, gout, lse, is_causal, scale, dropout_p, seed,
//                 mask_grad=False, *, kernel='auto') -> (dq, dk, dv, dmask or None)
//       (the tensor-core backward also needs mask_grad=False)
// q (B, Hq, L, E), k (B, Hk, S, E), v (B, Hk, S, Ev) DeviceArrays with a
// contiguous last dim; mask None or 4-D bool / q-dtype (B or 1, Hq or 1,
// L or 1, S). lse is float32 (float64 for float64 inputs). Bad dtypes raise
// TypeError, bad shapes ValueError, naming the op and the shapes. In a build
// without CUDA this binds nothing.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings/bindings.h"

namespace py = pybind11;

#if NNFORGE_WITH_CUDA

#include <cstdint>
#include <optional>
#include <string>

#include "cuda/attention.h"
#include "cuda/device_array.h"

namespace nnforge {
namespace {

using cuda::DeviceArray;
using cuda::DType;

void check_dtypes(const char* op, const DeviceArray& q, const DeviceArray& k,
                  const DeviceArray& v, const std::optional<DeviceArray>& mask) {
    const DType dt = q.dtype;
    const bool ok = dt == DType::Float32 || dt == DType::Float64 || dt == DType::BFloat16 ||
                    dt == DType::Float16;
    if (!ok || k.dtype != dt || v.dtype != dt) {
        throw py::type_error(std::string(op) + ": q, k, v must share one of float32, float64, "
                             "bfloat16, float16; got q " + cuda::dtype_name(q.dtype) + " " +
                             cuda::shape_str(q.shape) + ", k " + cuda::dtype_name(k.dtype) + " " +
                             cuda::shape_str(k.shape) + ", v " + cuda::dtype_name(v.dtype) + " " +
                             cuda::shape_str(v.shape));
    }
    if (mask && mask->dtype != DType::Bool && mask->dtype != dt) {
        throw py::type_error(std::string(op) + ": mask must be bool or q's dtype (" +
                             cuda::dtype_name(dt) + "), got " + cuda::dtype_name(mask->dtype));
    }
}

cuda::SdpaOptions options(const char* op, bool causal, double scale, double dropout_p,
                          std::uint64_t seed, const std::string& kernel) {
    if (kernel != "auto" && kernel != "simt") {
        throw std::invalid_argument(std::string(op) + ": kernel must be 'auto' or 'simt', got '" +
                                    kernel + "'");
    }
    if (!(dropout_p >= 0.0 && dropout_p <= 1.0)) {
        throw std::invalid_argument(std::string(op) + ": dropout_p must be in [0, 1], got " +
                                    std::to_string(dropout_p));
    }
    cuda::SdpaOptions o;
    o.causal = causal;
    o.scale = scale;
    o.dropout_p = dropout_p;
    o.seed = seed;
    o.simt_only = kernel == "simt";
    return o;
}

}  // namespace

void bind_cuda_attention(py::module_& m) {
    m.def(
        "sdpa_forward",
        [](const DeviceArray& q, const DeviceArray& k, const DeviceArray& v,
           std::optional<DeviceArray> mask, bool is_causal, double scale, double dropout_p,
           std::uint64_t seed, const std::string& kernel) {
            const char* op = "cuda.sdpa_forward";
            check_dtypes(op, q, k, v, mask);
            cuda::SdpaOptions o = options(op, is_causal, scale, dropout_p, seed, kernel);
            py::gil_scoped_release release;
            return cuda::sdpa_forward(q, k, v, mask ? &*mask : nullptr, o);
        },
        py::arg("q"), py::arg("k"), py::arg("v"), py::arg("mask"), py::arg("is_causal"),
        py::arg("scale"), py::arg("dropout_p") = 0.0, py::arg("seed") = 0, py::kw_only(),
        py::arg("kernel") = "auto",
        "(out, lse): fused softmax(scale q k^T + mask) v (FlashAttention-2 style).");
    m.def(
        "sdpa_backward",
        [](const DeviceArray& q, const DeviceArray& k, const DeviceArray& v,
           std::optional<DeviceArray> mask, const DeviceArray& out, const DeviceArray& gout,
           const DeviceArray& lse, bool is_causal, double scale, double dropout_p,
           std::uint64_t seed, bool mask_grad, const std::string& kernel) {
            const char* op = "cuda.sdpa_backward";
            check_dtypes(op, q, k, v, mask);
            const cuda::SdpaOptions o = options(op, is_causal, scale, dropout_p, seed, kernel);
            py::gil_scoped_release release;
            return cuda::sdpa_backward(q, k, v, mask ? &*mask : nullptr, out, gout, lse, o,
                                       mask_grad);
        },
        py::arg("q"), py::arg("k"), py::arg("v"), py::arg("mask"), py::arg("out"),
        py::arg("gout"), py::arg("lse"), py::arg("is_causal"), py::arg("scale"),
        py::arg("dropout_p") = 0.0, py::arg("seed") = 0, py::arg("mask_grad") = false,
        py::kw_only(), py::arg("kernel") = "auto",
        "(dq, dk, dv, dmask or None): the fused backward, P recomputed from lse.");
}

}  // namespace nnforge

#else  // !NNFORGE_WITH_CUDA

namespace nnforge {
void bind_cuda_attention(py::module_&) {}
}  // namespace nnforge

#endif
