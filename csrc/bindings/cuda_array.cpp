// Binds the CUDA runtime into nnforge._C.cuda: the DeviceArray class (the CUDA
// backend's array), host<->device copies, device copies/fill/arange, the
// device context (synchronize, current/set device) and the caching
// allocator's statistics. Errors: CudaOutOfMemory -> MemoryError, CudaError ->
// RuntimeError, bad arguments -> ValueError/TypeError/IndexError naming the
// function and the argument.
//
// bfloat16 arrays have ml_dtypes' numpy bfloat16 dtype on the host (nf.bfloat16's
// CPU storage): DeviceArray.dtype, from_numpy and numpy() use it, imported on
// first use; without ml_dtypes they raise a TypeError saying so. dtype_name and
// every dtype argument also take the string "bfloat16", which needs no ml_dtypes.
//
// In a build without CUDA this file binds nothing: Python checks
// _C.cuda.is_built() before it touches any of these names.
#include <pybind11/gil_safe_call_once.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

namespace py = pybind11;

#if NNFORGE_WITH_CUDA

#include <cstdint>
#include <string>
#include <vector>

#include "cuda/allocator.h"
#include "cuda/context.h"
#include "cuda/copy.h"
#include "cuda/device_array.h"
#include "cuda/errors.h"

namespace nnforge {
namespace {

using cuda::DeviceArray;
using cuda::DType;
using cuda::Shape;

// ml_dtypes.bfloat16 as a numpy dtype, imported once (TypeError without ml_dtypes;
// a later call tries again).
py::dtype bfloat16_numpy_dtype() {
    PYBIND11_CONSTINIT static py::gil_safe_call_once_and_store<py::object> storage;
    return storage
        .call_once_and_store_result([]() -> py::object {
            try {
                return py::dtype::from_args(py::module_::import("ml_dtypes").attr("bfloat16"));
            } catch (py::error_already_set& e) {
                if (!e.matches(PyExc_ImportError)) throw;
                throw py::type_error(
                    "DeviceArray: a bfloat16 array has ml_dtypes' bfloat16 dtype on the host, "
                    "and ml_dtypes is not installed (pip install ml_dtypes)");
            }
        })
        .get_stored()
        .cast<py::dtype>();
}

// numpy dtype -> DType (native byte order only); TypeError naming op/arg.
DType dtype_from_numpy(const py::dtype& dt, const char* op, const char* arg) {
    const char kind = dt.kind();
    const auto size = dt.itemsize();
    if (!dt.attr("isnative").cast<bool>()) {
        throw py::type_error(std::string(op) + ": " + arg +
                             " has a non-native byte order; convert it first");
    }
    if (kind == 'f' && size == 4) return DType::Float32;
    if (kind == 'f' && size == 8) return DType::Float64;
    if (kind == 'f' && size == 2) return DType::Float16;
    if (kind == 'i' && size == 8) return DType::Int64;
    if (kind == 'i' && size == 4) return DType::Int32;
    if (kind == 'u' && size == 1) return DType::UInt8;
    if (kind == 'b' && size == 1) return DType::Bool;
    // ml_dtypes' bfloat16 (kind 'V'); matched by name, so ml_dtypes need not be imported here.
    if (kind == 'V' && size == 2 && dt.attr("name").cast<std::string>() == "bfloat16") {
        return DType::BFloat16;
    }
    throw py::type_error(std::string(op) + ": " + arg + " has dtype " +
                         std::string(py::str(dt)) +
                         ", which the CUDA backend does not store (float32, float64, float16, "
                         "bfloat16, int64, int32, uint8, bool)");
}

DType dtype_arg(const py::object& obj, const char* op) {
    if (py::isinstance<py::str>(obj) && obj.cast<std::string>() == "bfloat16") {
        return DType::BFloat16;
    }
    const py::dtype dt = py::dtype::from_args(obj);
    return dtype_from_numpy(dt, op, "dtype");
}

py::dtype numpy_dtype(DType dt) {
    if (dt == DType::BFloat16) return bfloat16_numpy_dtype();
    return py::dtype(cuda::dtype_name(dt));
}

py::tuple to_tuple(const Shape& v, std::int64_t scale = 1) {
    py::tuple t(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) t[i] = py::int_(v[i] * scale);
    return t;
}

Shape shape_arg(const std::vector<std::int64_t>& v) { return Shape(v.begin(), v.end()); }

cuda::Scalar scalar_arg(const py::object& value, const char* op) {
    if (py::isinstance<py::bool_>(value)) return cuda::Scalar::of_int(value.cast<bool>() ? 1 : 0);
    if (py::isinstance<py::int_>(value)) {
        try {
            return cuda::Scalar::of_int(value.cast<std::int64_t>());
        } catch (const py::cast_error&) {
            throw std::overflow_error(std::string(op) + ": value " +
                                      std::string(py::str(value)) + " does not fit in int64");
        }
    }
    try {
        return cuda::Scalar::of(value.cast<double>());
    } catch (const py::cast_error&) {
        throw py::type_error(std::string(op) + ": value must be a number, got " +
                             std::string(py::str(py::type::of(value).attr("__name__"))));
    }
}

DeviceArray from_numpy(const py::array& a, int device) {
    const DType dt = dtype_from_numpy(a.dtype(), "DeviceArray.from_numpy", "array");
    cuda::check_device_index(device, "DeviceArray.from_numpy");
    if (!(a.flags() & py::array::c_style)) {
        throw std::invalid_argument("DeviceArray.from_numpy: array must be C-contiguous "
                                    "(np.ascontiguousarray it first)");
    }
    Shape shape(a.shape(), a.shape() + a.ndim());
    const void* src = a.data();
    py::gil_scoped_release release;
    return cuda::from_host(src, shape, dt, device);
}

py::array to_numpy(const DeviceArray& x) {
    std::vector<py::ssize_t> shape(x.shape.begin(), x.shape.end());
    py::array out(numpy_dtype(x.dtype), shape);
    void* dst = out.mutable_data();
    {
        py::gil_scoped_release release;
        cuda::to_host(x, dst);
    }
    return out;
}

py::dict cuda_array_interface(const DeviceArray& x) {
    // No "stream" entry means "no synchronization needed" to consumers, so
    // finish the queued work first.
    {
        py::gil_scoped_release release;
        cuda::synchronize(x.device);
    }
    py::dict d;
    d["shape"] = to_tuple(x.shape);
    // bfloat16: "<V2", ml_dtypes' typestr, which PyTorch also exports (consumers see
    // 2-byte opaque items); written out so that ml_dtypes is not needed for it.
    d["typestr"] = x.dtype == DType::BFloat16 ? py::str("<V2")
                                               : py::str(numpy_dtype(x.dtype).attr("str"));
    d["data"] = py::make_tuple(py::int_(reinterpret_cast<std::uintptr_t>(x.data())), false);
    d["strides"] = x.is_contiguous() ? py::object(py::none())
                                     : py::object(to_tuple(x.strides, cuda::itemsize(x.dtype)));
    d["version"] = 3;
    return d;
}

}  // namespace

void bind_cuda_array(py::module_& m) {
    // CudaError is a std::runtime_error: pybind11 already makes it a RuntimeError.
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const cuda::CudaOutOfMemory& e) {
            PyErr_SetString(PyExc_MemoryError, e.what());
        }
    });

    py::class_<DeviceArray>(m, "DeviceArray",
                            "An n-d array in GPU memory: shape, strides, dtype, device. Views "
                            "share (and keep alive) their base's memory.")
        .def_property_readonly("shape", [](const DeviceArray& a) { return to_tuple(a.shape); })
        .def_property_readonly(
            "strides",
            [](const DeviceArray& a) { return to_tuple(a.strides, cuda::itemsize(a.dtype)); },
            "Strides in bytes, as numpy reports them.")
        .def_property_readonly("element_strides",
                               [](const DeviceArray& a) { return to_tuple(a.strides); })
        .def_property_readonly("dtype", [](const DeviceArray& a) { return numpy_dtype(a.dtype); })
        .def_property_readonly("dtype_name",
                               [](const DeviceArray& a) { return cuda::dtype_name(a.dtype); })
        .def_property_readonly("ndim", &DeviceArray::ndim)
        .def_property_readonly("size", &DeviceArray::numel)
        .def_property_readonly("nbytes", &DeviceArray::nbytes)
        .def_property_readonly("itemsize",
                               [](const DeviceArray& a) { return cuda::itemsize(a.dtype); })
        .def_property_readonly("device", [](const DeviceArray& a) { return a.device; })
        .def_property_readonly("offset", [](const DeviceArray& a) { return a.offset; },
                               "Byte offset of element 0 from the start of the storage.")
        .def_property_readonly("data_ptr", [](const DeviceArray& a) {
            return reinterpret_cast<std::uintptr_t>(a.data());
        })
        .def_property_readonly("storage_nbytes", [](const DeviceArray& a) {
            return a.storage ? a.storage->requested : std::size_t(0);
        })
        .def_property_readonly(
            "storage_use_count",
            [](const DeviceArray& a) { return a.storage ? a.storage.use_count() : 0L; },
            "How many DeviceArrays (this one included) share this array's memory; 1 means no "
            "other view can see it (the autograd engine then adopts it as a gradient without "
            "a copy).")
        .def("is_contiguous", &DeviceArray::is_contiguous)
        .def("shares_storage",
             [](const DeviceArray& a, const DeviceArray& b) { return a.storage == b.storage; })
        .def("numpy", &to_numpy, "A host copy (synchronizes).")
        .def_static("from_numpy", &from_numpy, py::arg("array"), py::arg("device") = 0)
        .def_static(
            "empty",
            [](const std::vector<std::int64_t>& shape, const py::object& dtype, int device) {
                cuda::check_device_index(device, "DeviceArray.empty");
                return DeviceArray::empty(shape_arg(shape), dtype_arg(dtype, "DeviceArray.empty"),
                                          device);
            },
            py::arg("shape"), py::arg("dtype"), py::arg("device") = 0)
        .def(
            "as_strided",
            [](const DeviceArray& a, const std::vector<std::int64_t>& shape,
               const std::vector<std::int64_t>& strides, std::int64_t offset) {
                return a.as_strided(shape_arg(shape), shape_arg(strides), offset);
            },
            py::arg("shape"), py::arg("element_strides"), py::arg("element_offset"),
            "A view; strides and offset in elements, offset from the storage start.")
        .def_property_readonly("__cuda_array_interface__", &cuda_array_interface)
        .def("__repr__", [](const DeviceArray& a) { return "DeviceArray(" + a.describe() + ")"; });

    m.def("copy_", [](const DeviceArray& dst, const DeviceArray& src) {
        py::gil_scoped_release release;
        cuda::copy_(dst, src);
    }, py::arg("dst"), py::arg("src"), "dst[...] = src (broadcast, converted; src may be on another device).");
    m.def("contiguous", [](const DeviceArray& a) {
        py::gil_scoped_release release;
        return cuda::contiguous(a);
    });
    m.def("astype", [](const DeviceArray& a, const py::object& dtype) {
        const DType dt = dtype_arg(dtype, "astype");
        py::gil_scoped_release release;
        return cuda::astype(a, dt);
    });
    m.def("fill_", [](const DeviceArray& a, const py::object& value) {
        const cuda::Scalar v = scalar_arg(value, "fill_");
        py::gil_scoped_release release;
        cuda::fill_(a, v);
    });
    m.def("full", [](const std::vector<std::int64_t>& shape, const py::object& value,
                     const py::object& dtype, int device) {
        cuda::check_device_index(device, "full");
        const cuda::Scalar v = scalar_arg(value, "full");
        DeviceArray a = DeviceArray::empty(shape_arg(shape), dtype_arg(dtype, "full"), device);
        py::gil_scoped_release release;
        cuda::fill_(a, v);
        return a;
    }, py::arg("shape"), py::arg("value"), py::arg("dtype"), py::arg("device") = 0);
    m.def("arange", [](const py::object& start, const py::object& step, std::int64_t n,
                       const py::object& dtype, int device) {
        cuda::check_device_index(device, "arange");
        const cuda::Scalar s0 = scalar_arg(start, "arange"), ds = scalar_arg(step, "arange");
        const DType dt = dtype_arg(dtype, "arange");
        py::gil_scoped_release release;
        return cuda::arange(s0, ds, n, dt, device);
    }, py::arg("start"), py::arg("step"), py::arg("n"), py::arg("dtype"), py::arg("device") = 0);

    m.def("synchronize", [](int device) {
        if (device >= 0) cuda::check_device_index(device, "synchronize");
        py::gil_scoped_release release;
        cuda::synchronize(device);
    }, py::arg("device") = -1, "Waits for the device's queued work (-1: the current device).");
    m.def("current_device", &cuda::current_device);
    m.def("set_device", &cuda::set_device, py::arg("device"));

    m.def("memory_stats", [](int device) {
        cuda::check_device_index(device, "memory_stats");
        const cuda::MemoryStats s = cuda::memory_stats(device);
        py::dict d;
        d["allocated"] = s.allocated;
        d["max_allocated"] = s.max_allocated;
        d["reserved"] = s.reserved;
        d["max_reserved"] = s.max_reserved;
        d["cached_blocks"] = s.cached_blocks;
        return d;
    }, py::arg("device"));
    m.def("empty_cache", []() {
        py::gil_scoped_release release;
        cuda::empty_cache();
    });
    m.def("reset_peak_memory_stats", [](int device) {
        cuda::check_device_index(device, "reset_peak_memory_stats");
        cuda::reset_peak_memory_stats(device);
    }, py::arg("device"));
    m.def("round_size", &cuda::round_size, py::arg("nbytes"),
          "The allocator's size class for a request of nbytes.");
}

}  // namespace nnforge

#else  // !NNFORGE_WITH_CUDA

namespace nnforge {
void bind_cuda_array(py::module_&) {}
}  // namespace nnforge

#endif
