// DeviceArray metadata (see device_array.h). Plain host code: no kernels here.
#include "cuda/device_array.h"

#include <stdexcept>

namespace nnforge {
namespace cuda {

std::size_t itemsize(DType dt) {
    switch (dt) {
        case DType::Float64:
        case DType::Int64: return 8;
        case DType::Float32:
        case DType::Int32: return 4;
        case DType::BFloat16:
        case DType::Float16: return 2;
        case DType::Bool:
        case DType::UInt8: return 1;
    }
    throw std::invalid_argument("cuda: unknown dtype");
}

const char* dtype_name(DType dt) {
    switch (dt) {
        case DType::Float32: return "float32";
        case DType::Float64: return "float64";
        case DType::Int64: return "int64";
        case DType::Int32: return "int32";
        case DType::Bool: return "bool";
        case DType::UInt8: return "uint8";
        case DType::BFloat16: return "bfloat16";
        case DType::Float16: return "float16";
    }
    return "?";
}

bool is_floating(DType dt) {
    return dt == DType::Float32 || dt == DType::Float64 || dt == DType::BFloat16 ||
           dt == DType::Float16;
}

std::string shape_str(const Shape& shape) {
    std::string s = "(";
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (i) s += ", ";
        s += std::to_string(shape[i]);
    }
    if (shape.size() == 1) s += ",";
    return s + ")";
}

Shape contiguous_strides(const Shape& shape) {
    Shape st(shape.size());
    std::int64_t s = 1;
    for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
        st[i] = s;
        s *= shape[i] > 1 ? shape[i] : 1;
    }
    return st;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
    const std::size_t n = a.size() > b.size() ? a.size() : b.size();
    Shape out(n);
    for (std::size_t i = 0; i < n; ++i) {
        const std::int64_t x = i < n - a.size() ? 1 : a[i - (n - a.size())];
        const std::int64_t y = i < n - b.size() ? 1 : b[i - (n - b.size())];
        if (x != y && x != 1 && y != 1) {
            throw std::invalid_argument(std::string(op) + ": shapes " + shape_str(a) + " and " +
                                        shape_str(b) + " are not broadcastable");
        }
        out[i] = x == 1 ? y : x;
    }
    return out;
}

Shape broadcast_strides(const DeviceArray& a, const Shape& out, const char* op) {
    const std::size_t n = out.size(), k = a.shape.size();
    if (k > n) {
        throw std::invalid_argument(std::string(op) + ": array of shape " + shape_str(a.shape) +
                                    " cannot be broadcast to " + shape_str(out));
    }
    Shape st(n, 0);
    for (std::size_t i = 0; i < k; ++i) {
        const std::size_t d = n - k + i;
        if (a.shape[i] == out[d]) {
            st[d] = out[d] == 1 ? 0 : a.strides[i];
        } else if (a.shape[i] != 1) {
            throw std::invalid_argument(std::string(op) + ": array of shape " +
                                        shape_str(a.shape) + " cannot be broadcast to " +
                                        shape_str(out));
        }
    }
    return st;
}

std::int64_t DeviceArray::numel() const {
    std::int64_t n = 1;
    for (std::int64_t s : shape) n *= s;
    return n;
}

bool DeviceArray::is_contiguous() const {
    std::int64_t expected = 1;
    for (int i = ndim() - 1; i >= 0; --i) {
        if (shape[i] == 0) return true;
        if (shape[i] != 1 && strides[i] != expected) return false;
        expected *= shape[i];
    }
    return true;
}

void* DeviceArray::data() const {
    if (!storage || storage->ptr == nullptr) return nullptr;
    return static_cast<char*>(storage->ptr) + offset;
}

DeviceArray DeviceArray::empty(const Shape& shape, DType dtype, int device) {
    std::int64_t n = 1;
    for (std::int64_t s : shape) {
        if (s < 0) {
            throw std::invalid_argument("cuda.empty: negative dimension in shape " +
                                        shape_str(shape));
        }
        if (s != 0 && n > (std::int64_t(1) << 60) / s) {
            throw std::invalid_argument("cuda.empty: shape " + shape_str(shape) +
                                        " has too many elements");
        }
        n *= s;
    }
    DeviceArray a;
    a.storage = allocate(static_cast<std::size_t>(n) * itemsize(dtype), device);
    a.shape = shape;
    a.strides = contiguous_strides(shape);
    a.dtype = dtype;
    a.device = device;
    return a;
}

DeviceArray DeviceArray::as_strided(const Shape& new_shape, const Shape& new_strides,
                                    std::int64_t element_offset) const {
    if (new_shape.size() != new_strides.size()) {
        throw std::invalid_argument("cuda.as_strided: shape " + shape_str(new_shape) +
                                    " and strides " + shape_str(new_strides) +
                                    " differ in length");
    }
    if (new_shape.size() > 64) throw std::invalid_argument("cuda.as_strided: too many dims");
    const std::int64_t item = static_cast<std::int64_t>(itemsize(dtype));
    const std::int64_t capacity =
        storage ? static_cast<std::int64_t>(storage->requested) / item : 0;
    std::int64_t last = element_offset, numel = 1;
    for (std::size_t i = 0; i < new_shape.size(); ++i) {
        if (new_shape[i] < 0 || new_strides[i] < 0) {
            throw std::invalid_argument("cuda.as_strided: negative size or stride in shape " +
                                        shape_str(new_shape) + ", strides " +
                                        shape_str(new_strides));
        }
        numel *= new_shape[i];
        if (new_shape[i] > 0) last += (new_shape[i] - 1) * new_strides[i];
    }
    if (numel > 0 && (element_offset < 0 || last >= capacity)) {
        throw std::out_of_range("cuda.as_strided: shape " + shape_str(new_shape) + ", strides " +
                                shape_str(new_strides) + " at offset " +
                                std::to_string(element_offset) + " reach element " +
                                std::to_string(last) + " of a storage of " +
                                std::to_string(capacity) + " elements");
    }
    DeviceArray v = *this;
    v.shape = new_shape;
    v.strides = new_strides;
    v.offset = element_offset * item;
    return v;
}

std::string DeviceArray::describe() const {
    return std::string(dtype_name(dtype)) + " " + shape_str(shape) + " on cuda:" +
           std::to_string(device);
}

}  // namespace cuda
}  // namespace nnforge
