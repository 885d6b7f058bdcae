// DeviceArray: an n-d array in GPU memory, the CUDA backend's array type.
//
//   element (i0, ..., ik) lives at
//       storage->ptr + offset + (i0*strides[0] + ... + ik*strides[k]) * itemsize
//
// Strides are in elements (they may be 0 for a broadcast dim; never negative),
// `offset` is in bytes. Views (transpose, slice, broadcast, reshape of a
// contiguous array) are new DeviceArray values sharing the same `storage`
// (a shared_ptr), so a view keeps its memory alive. Host-only header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cuda/allocator.h"

namespace nnforge {
namespace cuda {

// bfloat16/float16 are storage types: kernels compute in float32.
enum class DType : std::int8_t { Float32, Float64, Int64, Int32, Bool, UInt8, BFloat16, Float16 };

std::size_t itemsize(DType dt);
const char* dtype_name(DType dt);  // "float32", ..., "bfloat16"
bool is_floating(DType dt);

using Shape = std::vector<std::int64_t>;

struct DeviceArray {
    std::shared_ptr<Allocation> storage;
    Shape shape;
    Shape strides;            // in elements
    std::int64_t offset = 0;  // in bytes, from storage->ptr
    DType dtype = DType::Float32;
    int device = 0;

    int ndim() const { return static_cast<int>(shape.size()); }
    std::int64_t numel() const;
    std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * itemsize(dtype); }
    bool is_contiguous() const;  // C order (size-1 dims may have any stride)
    void* data() const;          // address of element (0, ..., 0)

    // A new contiguous array (uninitialized) from the caching allocator.
    static DeviceArray empty(const Shape& shape, DType dtype, int device);

    // A view with the given shape, strides and offset (elements, relative to
    // this array's storage start). Throws std::out_of_range when an element
    // would fall outside the storage.
    DeviceArray as_strided(const Shape& shape, const Shape& strides,
                           std::int64_t element_offset) const;

    std::string describe() const;  // "float32 (2, 3) on cuda:0"
};

Shape contiguous_strides(const Shape& shape);

// The broadcast shape of two shapes (numpy rules), or std::invalid_argument
// naming `op` and both shapes.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

// Strides of `a` seen through broadcasting to `out` (dims aligned at the right;
// size-1 or missing dims get stride 0); std::invalid_argument when `a` does not
// broadcast to `out`.
Shape broadcast_strides(const DeviceArray& a, const Shape& out, const char* op);
std::string shape_str(const Shape& shape);  // "(2, 3)"

}  // namespace cuda
}  // namespace nnforge
