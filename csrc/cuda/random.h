// CUDA random numbers from Philox4x32-10 (philox.cuh), host-side view
// (bindings include this; no CUDA headers).
//
// Every function is pure: it reads the stream (seed, offset) and returns the
// number of 32-bit draws it used, a multiple of 4; the caller (nf.cuda's
// generator state) advances its offset by that much, so no two calls share a
// Philox counter. Element i of an output of n elements uses
//   float32 / float16 / bfloat16 / Bernoulli of any dtype: draw i  (block i / 4, word i % 4)
//   float64 uniform / normal: draws 2i, 2i+1                       (block i / 2)
// so the draws used are n (or 2n) rounded up to 4.
//
//   uniform   [0, 1): the top 24 (float), 11 (half), 8 (bfloat16) bits of a draw
//             times 2^-bits, or 53 bits of two draws (double): exact, never 1
//   normal    Box-Muller: r = sqrt(-2 log u1), u1 in (0, 1]; (r cos 2 pi u2, r sin 2 pi u2)
//             for elements (2k, 2k+1), from draws (2k, 2k+1) (float: float32 math)
//             or from the two 53-bit uniforms of one block (double)
//   bernoulli out[i] = value if x_i 2^-32 < p_i else 0, p_i = probs[i] or the scalar p;
//             with value = 1 / (1 - p_drop) and p = 1 - p_drop this is the scaled
//             dropout mask keep / (1 - p_drop), written in one pass
// Outputs are new C-contiguous arrays of `shape` and `dtype` (float32, float64,
// float16, bfloat16) on `device`.
#pragma once

#include <array>
#include <cstdint>

#include "cuda/device_array.h"

namespace nnforge {
namespace cuda {

struct RandomResult {
    DeviceArray out;
    std::uint64_t draws = 0;  // 32-bit draws used: the offset advance
};

RandomResult philox_uniform(const Shape& shape, DType dtype, int device, std::uint64_t seed,
                            std::uint64_t offset);
RandomResult philox_normal(const Shape& shape, DType dtype, int device, std::uint64_t seed,
                           std::uint64_t offset);
// probs: null, or a C-contiguous array of `shape` and `dtype` on `device`.
RandomResult philox_bernoulli(const Shape& shape, DType dtype, int device,
                              const DeviceArray* probs, double p, double value,
                              std::uint64_t seed, std::uint64_t offset);
// The raw stream: n draws as int64 values in [0, 2^32) (tests).
RandomResult philox_words(std::int64_t n, int device, std::uint64_t seed, std::uint64_t offset);
// One Philox4x32-10 block for an arbitrary counter and key, computed by a
// one-thread kernel (the known-answer test of the device code).
std::array<std::uint32_t, 4> philox_block_on_device(int device,
                                                    std::array<std::uint32_t, 4> counter,
                                                    std::array<std::uint32_t, 2> key);

}  // namespace cuda
}  // namespace nnforge
