// Branch-free float math for vectorized CPU loops: exp and erfc. Included by
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

// e^x for float, x <= 88: x = k ln2 + r with |r| <= ln2 / 2, e^r by its Taylor
// series to degree 7 (truncation error < 1e-8 relative, below float's 6e-8
// epsilon) and 2^k built in the exponent bits. Within 2 ulp of std::exp.
// Results below float's normal range are flushed to 0; NaN stays NaN.
inline float exp_vec(float x) {
    const float kLog2e = 1.44269504088896341f;
    const float kLn2Hi = 0.693145751953125f;  // ln 2 split so that k * kLn2Hi is exact
    const float kLn2Lo = 1.42860682030941723e-6f;
    const float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
    float xc = x < -87.0f ? -87.0f : x;
    xc = xc > 88.0f ? 88.0f : xc;
    const float k = (xc * kLog2e + kRound) - kRound;
    const float r = (xc - k * kLn2Hi) - k * kLn2Lo;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const int32_t bits = (static_cast<int32_t>(k) + 127) * (1 << 23);
    float scale;
    std::memcpy(&scale, &bits, sizeof scale);
    const float e = p * scale;
    return x < -87.0f ? 0.0f : e;
}

inline double exp_vec(double x) { return std::exp(x); }

// erfc(z) for float z >= 0, returned with e^(-z^2) (GELU's backward needs both):
//   erfc(z) = e^(-z^2) R(t),  t = 1 / (1 + z / 2)  in (0, 1],
// R a degree-10 polynomial in t fitted (weighted least squares, then reweighted
// towards equal ripple) to erfc(z) e^(z^2) on z in [0, 9.5]; beyond, e^(-z^2)
// is below float's range anyway. Relative error of the fit < 5e-9; evaluated
// in float, about 3e-7 near z = 0 (t's rounding) and growing like z^2 * 6e-8
// (the rounding of z^2) into the far tail.
struct ErfcResult {
    float erfc;
    float gauss;  // e^(-z^2)
};

inline ErfcResult erfc_vec(float z) {
    const float t = 1.0f / (1.0f + 0.5f * z);
    float r = 2.921561711e-02f;
    r = r * t - 2.182608098e-01f;
    r = r * t + 6.615121961e-01f;
    r = r * t - 9.963391423e-01f;
    r = r * t + 7.110888362e-01f;
    r = r * t - 2.681325674e-01f;
    r = r * t + 2.918612659e-01f;
    r = r * t + 2.216351628e-01f;
    r = r * t + 2.855946124e-01f;
    r = r * t + 2.818150520e-01f;
    r = r * t + 9.769917597e-06f;
    const float gauss = exp_vec(-z * z);
    return {gauss * r, gauss};
}

}  // namespace
}  // namespace nnforge
