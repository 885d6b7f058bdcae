// CUDA fused optimizer updates, host-side view (bindings include this; no CUDA
// headers). One kernel launch per parameter and step updates the parameter and
// its state buffers in place, with the CPU kernels' formulas and rounding
// (csrc/cpu/optim_kernels.h, which follows torch.optim):
//
//   SGD      g = ±grad (+ wd p);  buf = g (first step) | mu buf + (1 - tau) g;
//            g = g + mu buf (nesterov) | buf;  p = p - lr g
//   Adam(W)  p = p (1 - lr wd) (AdamW) | g = g + wd p (Adam);  m = lerp(m, g, 1 - b1);
//            v = b2 v + ((1 - b2) g) g;  vmax = max(vmax, v) (amsgrad);
//            p = p + (-(lr / (1 - b1^t)) m) / (sqrt(v) / sqrt(1 - b2^t) + eps)
//   RMSprop  s = a s + ((1 - a) g) g;  ga = lerp(ga, g, 1 - a) (centered);
//            avg = sqrt(s - ga ga | s) + eps;  buf = mu buf + g / avg, p = p - lr buf
//            (mu > 0) | p = p + ((-lr) g) / avg
//   Adagrad  sum = sum + g g;  p = p + ((-lr / (1 + (t - 1) lr_decay)) g) / (sqrt(sum) + eps)
//   Adadelta s = r s + ((1 - r) g) g;  d = sqrt(a + eps) / sqrt(s + eps) g;
//            a = r a + ((1 - r) d) d;  p = p - lr d
//
// Multiply-adds are fused (one rounding) exactly where the CPU kernels fuse
// them (PyTorch's add-with-alpha, addcmul and lerp; see optim_kernels.h); every
// other product and sum is rounded on its own (no contraction). Every array is
// a C-contiguous DeviceArray of the parameter's dtype and element count, on
// its device, none overlapping another: float32, float64, or float16 /
// bfloat16, which are loaded into float32, updated in float32 and rounded back
// (parameter and state alike, as the CPU backend's staging does). Absent
// buffers (nullptr) are allowed exactly where the CPU kernels allow them.
// Argument errors throw std::invalid_argument naming the op and the arrays.
#pragma once

#include "cpu/optim.h"  // SgdOptions, AdamOptions, ... (plain structs, shared with the CPU)
#include "cuda/device_array.h"

namespace nnforge {
namespace cuda {

void sgd_update(const DeviceArray& p, const DeviceArray& g, const DeviceArray* buf,
                const SgdOptions& o);
void adam_update(const DeviceArray& p, const DeviceArray& g, const DeviceArray& exp_avg,
                 const DeviceArray& exp_avg_sq, const DeviceArray* max_exp_avg_sq,
                 const AdamOptions& o);
void rmsprop_update(const DeviceArray& p, const DeviceArray& g, const DeviceArray& square_avg,
                    const DeviceArray* grad_avg, const DeviceArray* momentum_buffer,
                    const RmspropOptions& o);
void adagrad_update(const DeviceArray& p, const DeviceArray& g, const DeviceArray& state_sum,
                    const AdagradOptions& o);
void adadelta_update(const DeviceArray& p, const DeviceArray& g, const DeviceArray& square_avg,
                     const DeviceArray& acc_delta, const AdadeltaOptions& o);

}  // namespace cuda
}  // namespace nnforge
