// Binds the CUDA Philox4x32-10 random numbers (cuda/random.h) into
// nnforge._C.cuda. Each sampler is pure: it takes the stream (seed, offset)
// and returns (array, draws), draws being the 32-bit draws it used (a multiple
// of 4) by which the caller advances its offset (nf.cuda keeps that state):
//   philox_uniform(shape, dtype, device, seed, offset) -> (array in [0, 1), draws)
//   philox_normal(shape, dtype, device, seed, offset)  -> (standard normal array, draws)
//   philox_bernoulli(shape, dtype, device, probs, p, value, seed, offset)
//       -> (value where draw < probs[i] (or p), else 0; draws): with
//          p = 1 - p_drop, value = 1 / (1 - p_drop) the scaled dropout mask
//   philox_words(n, device, seed, offset) -> (the raw draws as int64, draws)
//   philox4x32_10(counter (4 ints), key (2 ints), device=0) -> 4 ints, from the device
// dtype: "float32", "float64", "float16" or "bfloat16" (else TypeError). Seeds
// and offsets are unsigned 64-bit. In a build without CUDA this binds nothing.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings/bindings.h"

namespace py = pybind11;

#if NNFORGE_WITH_CUDA

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "cuda/device_array.h"
#include "cuda/random.h"

namespace nnforge {
namespace {

using cuda::DeviceArray;
using cuda::DType;

DType float_dtype(const std::string& name, const char* op) {
    if (name == "float32") return DType::Float32;
    if (name == "float64") return DType::Float64;
    if (name == "float16") return DType::Float16;
    if (name == "bfloat16") return DType::BFloat16;
    throw py::type_error(std::string("cuda.") + op +
                         ": samples need a floating-point dtype (float32, float64, float16, "
                         "bfloat16), got " + name);
}

py::tuple result(const cuda::RandomResult& r) { return py::make_tuple(r.out, r.draws); }

}  // namespace

void bind_cuda_random(py::module_& m) {
    m.def(
        "philox_uniform",
        [](const std::vector<std::int64_t>& shape, const std::string& dtype, int device,
           std::uint64_t seed, std::uint64_t offset) {
            const DType dt = float_dtype(dtype, "philox_uniform");
            cuda::RandomResult r;
            {
                py::gil_scoped_release release;
                r = cuda::philox_uniform(shape, dt, device, seed, offset);
            }
            return result(r);
        },
        py::arg("shape"), py::arg("dtype"), py::arg("device"), py::arg("seed"), py::arg("offset"),
        "(uniform [0, 1) samples, draws used) from the Philox stream (seed, offset).");
    m.def(
        "philox_normal",
        [](const std::vector<std::int64_t>& shape, const std::string& dtype, int device,
           std::uint64_t seed, std::uint64_t offset) {
            const DType dt = float_dtype(dtype, "philox_normal");
            cuda::RandomResult r;
            {
                py::gil_scoped_release release;
                r = cuda::philox_normal(shape, dt, device, seed, offset);
            }
            return result(r);
        },
        py::arg("shape"), py::arg("dtype"), py::arg("device"), py::arg("seed"), py::arg("offset"),
        "(standard normal samples (Box-Muller), draws used) from the Philox stream.");
    m.def(
        "philox_bernoulli",
        [](const std::vector<std::int64_t>& shape, const std::string& dtype, int device,
           std::optional<DeviceArray> probs, double p, double value, std::uint64_t seed,
           std::uint64_t offset) {
            const DType dt = float_dtype(dtype, "philox_bernoulli");
            cuda::RandomResult r;
            {
                py::gil_scoped_release release;
                r = cuda::philox_bernoulli(shape, dt, device, probs ? &*probs : nullptr, p, value,
                                           seed, offset);
            }
            return result(r);
        },
        py::arg("shape"), py::arg("dtype"), py::arg("device"), py::arg("probs").none(true),
        py::arg("p"), py::arg("value"), py::arg("seed"), py::arg("offset"),
        "(value where a draw < probs[i] (or p) else 0, draws used): Bernoulli samples, or "
        "with value = 1 / (1 - p_drop) the scaled dropout mask.");
    m.def(
        "philox_words",
        [](std::int64_t n, int device, std::uint64_t seed, std::uint64_t offset) {
            cuda::RandomResult r;
            {
                py::gil_scoped_release release;
                r = cuda::philox_words(n, device, seed, offset);
            }
            return result(r);
        },
        py::arg("n"), py::arg("device"), py::arg("seed"), py::arg("offset"),
        "(the first n 32-bit draws of the stream as int64, draws used).");
    m.def(
        "philox4x32_10",
        [](std::array<std::uint32_t, 4> counter, std::array<std::uint32_t, 2> key, int device) {
            py::gil_scoped_release release;
            return cuda::philox_block_on_device(device, counter, key);
        },
        py::arg("counter"), py::arg("key"), py::arg("device") = 0,
        "One Philox4x32-10 block for a counter and key, computed on the device.");
}

}  // namespace nnforge

#else  // !NNFORGE_WITH_CUDA

namespace nnforge {
void bind_cuda_random(py::module_&) {}
}  // namespace nnforge

#endif
