// CUDA indexing and scans, host-side view (bindings include this; no CUDA
// headers). The Python backend (backend/cuda_index.py, cuda_shape.py) turns
// numpy's indexing forms (integer arrays, boolean masks via nonzero, take,
// take_along_axis, gather, scatter_add, index_add, put_along_axis) into one
// primitive over views that all have the iteration shape S:
//
//   for every element e of S:
//       k   = index[e]                       (int64; k < 0 means k + size)
//       ptr = base.data + base_off(e) + k * stride      (elements)
//       gather: values[e] = *ptr    put: *ptr = values[e]    add: *ptr += values[e]
//
// `base` is a view of the indexed array with stride 0 over the dims the index
// supplies; several index arrays are first combined by the backend into one
// array of element offsets (then size = 0: no wrapping, stride = 1). Indices
// must be validated first: on the host when they came from the host, or with
// index_check (one device pass, one sync) when they live on the device; the
// kernels still skip (put/add) or zero-fill (gather) an out-of-range element
// rather than touch memory outside the array.
//
//   index_check         throws std::out_of_range ("index 7 is out of bounds for
//                       axis 0 with size 5", numpy's words) when some index is
//                       outside [-size, size)
//   index_add_segments  deterministic add for indices known on the host: the
//                       backend sorts them (stable), and for each distinct
//                       destination row r, column q:
//                           base[r * stride + q] += sum_{j in segment(r)} values[perm[j], q]
//                       in the sorted (= original) order, no atomics
//   flip                a contiguous copy of `a` reversed along `axes`
//   nonzero             (ndim, count) int64: the C-order coordinates of the
//                       nonzero elements (one sync, for the count)
//   scan_lines          inclusive cumsum / cumprod of a C-contiguous array seen
//                       as (outer, n, inner) along n; float32/float64/int64
#pragma once

#include <cstdint>
#include <vector>

#include "cuda/device_array.h"

namespace nnforge {
namespace cuda {

enum class IndexMode : int { Gather = 0, Put = 1, Add = 2 };

// base, index and values share one shape; values has base's dtype; index is
// int64. Add takes float32/float64/int64/int32 (float atomics: the order of
// repeated-index additions is not fixed; use index_add_segments for that).
void index_apply(IndexMode mode, const DeviceArray& base, const DeviceArray& index,
                 std::int64_t size, std::int64_t stride, const DeviceArray& values);

void index_check(const DeviceArray& index, std::int64_t size, std::int64_t axis);

// base: (Q,) view of the destination at row 0; values: (m, Q); perm: (m,)
// int64; starts: (U + 1,) int64 segment bounds into perm; rows: (U,) int64
// distinct destination rows (already wrapped into [0, size)).
void index_add_segments(const DeviceArray& base, const DeviceArray& values,
                        const DeviceArray& perm, const DeviceArray& starts,
                        const DeviceArray& rows, std::int64_t stride);

DeviceArray flip(const DeviceArray& a, const std::vector<int>& axes);

DeviceArray nonzero(const DeviceArray& a);

DeviceArray scan_lines(const DeviceArray& x, std::int64_t outer, std::int64_t n,
                       std::int64_t inner, bool prod);

}  // namespace cuda
}  // namespace nnforge
