// Activation kernels that numpy cannot express (csrc/cpu/activation.cpp):
// erf, and GELU forward and backward, exact (erf) or with the tanh approximation.
//
// Every kernel works on contiguous 1-D views of n elements of one dtype
// (float or double); outputs may alias inputs of the same length.
#pragma once

#include <cstdint>

namespace nnforge {

// Elements below which a kernel runs on the calling thread only.
constexpr int64_t kActivationParallelMin = 16384;

// y[i] = erf(x[i]).
template <typename T>
void erf_forward(const T* x, T* y, int64_t n);

// y[i] = gelu(x[i]); tanh_approx picks the tanh form.
template <typename T>
void gelu_forward(const T* x, T* y, int64_t n, bool tanh_approx);

// dx[i] = g[i] * gelu'(x[i]).
template <typename T>
void gelu_backward(const T* g, const T* x, T* dx, int64_t n, bool tanh_approx);

}  // namespace nnforge
