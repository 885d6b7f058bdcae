// Moving and filling DeviceArrays (host-side view; implemented in copy.cu).
#pragma once

#include <cstdint>

#include "cuda/device_array.h"

namespace nnforge {
namespace cuda {

// A fill value that keeps int64 exact (doubles hold integers only to 2^53).
struct Scalar {
    double f = 0.0;
    std::int64_t i = 0;
    bool is_int = false;
    static Scalar of(double v) { return Scalar{v, static_cast<std::int64_t>(v), false}; }
    static Scalar of_int(std::int64_t v) { return Scalar{static_cast<double>(v), v, true}; }
};

// Host -> device: `host` holds numel(shape) contiguous elements of `dtype`.
// Returns once `host` may be reused; the device copy may still be in flight
// (ordered before any later kernel on the device's stream).
DeviceArray from_host(const void* host, const Shape& shape, DType dtype, int device);

// Device -> host: writes the array's elements, C order, into `host`
// (nbytes() bytes). Synchronizes: the host needs the values.
void to_host(const DeviceArray& src, void* host);

// dst[...] = src: src broadcast to dst's shape and converted to dst's dtype;
// either may be strided; src may live on another device or overlap dst.
void copy_(const DeviceArray& dst, const DeviceArray& src);

// A C-contiguous array with src's values (src itself when already contiguous).
DeviceArray contiguous(const DeviceArray& src);

// A new contiguous array of `dtype` with src's values.
DeviceArray astype(const DeviceArray& src, DType dtype);

void fill_(const DeviceArray& dst, Scalar value);

// out[i] = start + i * step, i in [0, n), computed in double (int64 exactly
// when start and step are integers), converted to dtype.
DeviceArray arange(Scalar start, Scalar step, std::int64_t n, DType dtype, int device);

}  // namespace cuda
}  // namespace nnforge
