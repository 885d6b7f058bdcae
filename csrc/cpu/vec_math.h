// Branch-free float math for vectorized CPU loops: exp and the normal tail (erfc). Included by
// the *_kernels.h headers, which are compiled once per ISA (portable, AVX2,
// AVX-512); everything here has internal linkage (an unnamed namespace) so
// each build keeps its own copy. Comparisons become vector selects when the
// file is compiled with -fno-trapping-math (see CMakeLists.txt).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace nnforge {
namespace {

// e^x = 2^k e^r: k = round(x / ln 2), r = x - k ln 2 with |r| <= ln 2 / 2, ln 2
// split so that k * kLn2Hi is exact. 2^k is built in the exponent bits
// (k >= -126 after the callers' clamps).
struct ExpReduced {
    float k;
    float r;
};

inline ExpReduced exp_reduce(float x) {
    const float kLog2e = 1.44269504088896341f;
    const float kLn2Hi = 0.693145751953125f;
    const float kLn2Lo = 1.42860682030941723e-6f;
    const float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
    const float k = (x * kLog2e + kRound) - kRound;
    return {k, (x - k * kLn2Hi) - k * kLn2Lo};
}

inline float exp2_int(float k) {
    const int32_t bits = (static_cast<int32_t>(k) + 127) * (1 << 23);
    float scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return scale;
}

// e^x for float, x <= 88: e^r by its Taylor series to degree 7 (truncation
// error < 1e-8 relative, below float's 6e-8 epsilon). Within 2 ulp of std::exp.
// Results below float's normal range are flushed to 0; NaN stays NaN.
inline float exp_vec(float x) {
    float xc = x < -87.0f ? -87.0f : x;
    xc = xc > 88.0f ? 88.0f : xc;
    const ExpReduced e = exp_reduce(xc);
    const float r = e.r;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const float y = p * exp2_int(e.k);
    return x < -87.0f ? 0.0f : y;
}

inline double exp_vec(double x) { return std::exp(x); }

// e^x for float x <= 0 (no upper clamp), one multiply-add shorter than exp_vec:
// e^r by a degree-6 polynomial fitted for equal relative error on |r| <= ln 2 / 2
// (3e-9; about 1 ulp evaluated in float). Below -87 it is 0; NaN stays NaN.
inline float exp_nonpositive(float x) {
    const float xc = x < -87.0f ? -87.0f : x;
    const ExpReduced e = exp_reduce(xc);
    const float r = e.r;
    float p = 1.3814590638503432e-3f;
    p = p * r + 8.368708193302155e-3f;
    p = p * r + 4.166838899254799e-2f;
    p = p * r + 1.666652113199234e-1f;
    p = p * r + 4.999999403953552e-1f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const float y = p * exp2_int(e.k);
    return x < -87.0f ? 0.0f : y;
}

// The standard normal's lower tail Phi(-|x|) = erfc(|x| / sqrt 2) / 2, with
// e^(-x^2 / 2) (GELU's backward needs both), for float x:
//   Phi(-|x|) = e^(-x^2 / 2) Q(t),  t = 1 / (1 + c |x|)  in (0, 1],
// Q a degree-8 polynomial fitted (weighted least squares, reweighted towards
// equal ripple; c chosen with it) to erfc(|x| / sqrt 2) e^(x^2 / 2) / 2 on
// |x| in [0, 13.5]; beyond, e^(-x^2 / 2) is below float's range anyway. Relative
// error of the fit 3e-8; evaluated in float, about 3e-7 near 0 (t's rounding),
// growing like x^2 * 3e-8 (the rounding of x^2 / 2) into the far tail.
struct NormalTail {
    float tail;   // Phi(-|x|)
    float gauss;  // e^(-x^2 / 2)
};

inline NormalTail normal_tail(float x) {
    const float t = 1.0f / (1.0f + 0.295f * std::fabs(x));
    float q = 3.971745818853378e-2f;
    q = q * t - 1.8474483489990234e-1f;
    q = q * t + 2.7357861399650574e-1f;
    q = q * t - 1.1977773904800415e-1f;
    q = q * t + 1.6801145672798157e-1f;
    q = q * t + 8.406999707221985e-2f;
    q = q * t + 1.2185806035995483e-1f;
    q = q * t + 1.172688901424408e-1f;
    q = q * t + 1.811287620512303e-5f;
    const float gauss = exp_nonpositive(-0.5f * x * x);
    return {gauss * q, gauss};
}

}  // namespace
}  // namespace nnforge
