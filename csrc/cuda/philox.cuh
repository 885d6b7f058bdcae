// Philox4x32-10, the counter-based generator of Salmon, Moraes, Dror and Shaw,
// "Parallel random numbers: as easy as 1, 2, 3" (SC 2011), written from the
// paper's definition; plus the conversions of its 32-bit outputs to uniform
// and normal floats. Host and device (the host copy serves the known-answer
// test binding).
//
// One Philox call maps a 128-bit counter c = (c0, c1, c2, c3) and a 64-bit key
// k = (k0, k1) to four 32-bit words, by 10 rounds of
//   (hi0, lo0) = M0 * c0 (64-bit product),  (hi1, lo1) = M1 * c2
//   c = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
// with the key bumped by the Weyl constants (k0 += W0, k1 += W1) between rounds.
// M0 = 0xD2511F53, M1 = 0xCD9E8D57, W0 = 0x9E3779B9 (golden ratio), W1 = 0xBB67AE85
// (sqrt(3) - 1). It passes BigCrush; distinct counters give independent blocks.
//
// nnforge's stream layout: key = the 64-bit seed; counter = (block index b as
// 64 bits, the generator's 64-bit offset). Block b holds 32-bit draws 4b .. 4b+3.
// A call that uses D draws advances the offset by D rounded up to 4, so calls
// never share a counter.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define NNF_HD __host__ __device__ __forceinline__
#else
#define NNF_HD inline
#endif

namespace nnforge {
namespace cuda {
namespace philox {

constexpr std::uint32_t kM0 = 0xD2511F53u;
constexpr std::uint32_t kM1 = 0xCD9E8D57u;
constexpr std::uint32_t kW0 = 0x9E3779B9u;
constexpr std::uint32_t kW1 = 0xBB67AE85u;

struct Words {
    std::uint32_t v[4];
};

NNF_HD void mulhilo(std::uint32_t a, std::uint32_t b, std::uint32_t& hi, std::uint32_t& lo) {
#if defined(__CUDA_ARCH__)
    hi = __umulhi(a, b);
    lo = a * b;
#else
    const std::uint64_t p = static_cast<std::uint64_t>(a) * b;
    hi = static_cast<std::uint32_t>(p >> 32);
    lo = static_cast<std::uint32_t>(p);
#endif
}

NNF_HD Words philox4x32_10(Words c, std::uint32_t k0, std::uint32_t k1) {
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
    for (int round = 0; round < 10; ++round) {
        std::uint32_t hi0, lo0, hi1, lo1;
        mulhilo(kM0, c.v[0], hi0, lo0);
        mulhilo(kM1, c.v[2], hi1, lo1);
        c = Words{{hi1 ^ c.v[1] ^ k0, lo1, hi0 ^ c.v[3] ^ k1, lo0}};
        k0 += kW0;  // the bump after the last round is unused
        k1 += kW1;
    }
    return c;
}

// The four draws of block b of the stream (seed, offset).
NNF_HD Words block(std::uint64_t seed, std::uint64_t offset, std::uint64_t b) {
    const Words c{{static_cast<std::uint32_t>(b), static_cast<std::uint32_t>(b >> 32),
                   static_cast<std::uint32_t>(offset), static_cast<std::uint32_t>(offset >> 32)}};
    return philox4x32_10(c, static_cast<std::uint32_t>(seed),
                         static_cast<std::uint32_t>(seed >> 32));
}

// Uniform on [0, 1) with `bits` significand bits (24 float, 11 half, 8 bfloat16):
// the top bits of x times 2^-bits, exact in float and in the target type, so
// the result is < 1 after any rounding.
template <int Bits>
NNF_HD float uniform_bits(std::uint32_t x) {
    return static_cast<float>(x >> (32 - Bits)) * (1.0f / static_cast<float>(1u << Bits));
}

// Uniform on [0, 1) in double from two draws: 53 random bits, exact.
NNF_HD double uniform53(std::uint32_t a, std::uint32_t b) {
    const std::uint64_t m = (static_cast<std::uint64_t>(a >> 5) << 26) | (b >> 6);
    return static_cast<double>(m) * (1.0 / 9007199254740992.0);  // 2^-53
}

// Uniform on (0, 1]: for the logarithm of Box-Muller (never log 0).
NNF_HD float uniform_open0(std::uint32_t x) {
    return static_cast<float>((x >> 8) + 1u) * (1.0f / 16777216.0f);
}
NNF_HD double uniform53_open0(std::uint32_t a, std::uint32_t b) {
    const std::uint64_t m = (static_cast<std::uint64_t>(a >> 5) << 26) | (b >> 6);
    return static_cast<double>(m + 1) * (1.0 / 9007199254740992.0);
}

// A draw as an exact double in [0, 1): x 2^-32 (the Bernoulli comparison).
NNF_HD double unit32(std::uint32_t x) { return static_cast<double>(x) * (1.0 / 4294967296.0); }

}  // namespace philox
}  // namespace cuda
}  // namespace nnforge

#undef NNF_HD
