// CUDA batch normalization, host-side view (bindings include this; no CUDA
// headers). Kernels in batchnorm.cu. x, y, gy, gx are C-contiguous (N, C, S)
// float32/float64 DeviceArrays (S: the spatial dims flattened, 1 for (N, C));
// weight, bias, mean, var, invstd are contiguous (C,) arrays of x's dtype
// (weight and bias may be absent: w = 1, b = 0). The Python backend
// (backend/cuda_batchnorm.py) reshapes and computes float16/bfloat16 in float32.
// Semantics are the CPU twin's (cpu/batchnorm.h); per channel c over its
// M = N S values:
//
//   train     mean_c, var_c = the values' mean and biased variance (Welford
//             per thread, Chan's pairwise merge across threads and blocks in a
//             fixed order: deterministic, no E[x^2] - E[x]^2),
//             invstd_c = 1 / sqrt(var_c + eps)   (in double),
//             y = (x - mean_c) k_c + b_c,  k_c = w_c invstd_c
//   eval      y = (x - mean_c) k_c + b_c,  k_c = w_c / sqrt(var_c + eps)
//   backward  gb_c = sum gy, gw_c = invstd_c sum gy (x - mean_c) (fixed-order sums),
//             training:   gx = k1 gy - k2 - k3 (x - mean_c) with k1 = w_c invstd_c,
//                         k2 = k1 gb_c / M, k3 = k1 invstd_c gw_c / M
//             evaluation: gx = k1 gy
//   running   running = (1 - momentum) running + momentum factor stat, in place,
//             factor = M / (M - 1) for the variance (PyTorch's unbiased rule),
//             the running buffer of any float dtype and stride.
// Accumulation is in T (float32 for float32: per-thread runs are short, the
// merges pairwise). Argument errors throw std::invalid_argument naming the op
// and the shapes.
#pragma once

#include "cuda/device_array.h"

namespace nnforge {
namespace cuda {

struct BatchNormTrain {
    DeviceArray y, mean, invstd, var;  // (N, C, S), (C,), (C,), (C,) (var biased)
};
BatchNormTrain batch_norm_forward_train(const DeviceArray& x, const DeviceArray* weight,
                                        const DeviceArray* bias, double eps);

DeviceArray batch_norm_forward_eval(const DeviceArray& x, const DeviceArray* weight,
                                    const DeviceArray* bias, const DeviceArray& mean,
                                    const DeviceArray& var, double eps);

struct BatchNormBackward {
    bool has_gx = false, has_gw = false, has_gb = false;
    DeviceArray gx, gw, gb;  // (N, C, S), (C,), (C,) where asked for
};
BatchNormBackward batch_norm_backward(const DeviceArray& gy, const DeviceArray& x,
                                      const DeviceArray* weight, const DeviceArray& mean,
                                      const DeviceArray& invstd, bool training, bool need_gx,
                                      bool need_gw, bool need_gb);

// In place: running[c] = (1 - momentum) running[c] + momentum factor stat[c];
// running: a 1-D float array of any float dtype and stride, stat: contiguous
// float32/float64 of the same length. Rounds like the CPU twin's numpy code.
void batch_norm_update_running_(const DeviceArray& running, const DeviceArray& stat,
                                double momentum, double factor);

}  // namespace cuda
}  // namespace nnforge
