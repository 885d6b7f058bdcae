// Fused optimizer updates on the CPU: one pass over the elements per step,
// updating the parameter and its state buffers in place (csrc/cpu/optim.cpp).
//
// Every kernel works on contiguous 1-D views of n elements: the parameter p,
// its gradient g (read only) and the state buffers, all of the same dtype
// (float or double), none overlapping another. Hyperparameters arrive as
// double and are rounded to T exactly where PyTorch rounds its Python scalars,
// so float32 trajectories follow torch.optim's to rounding error.
#pragma once

#include <cstdint>

namespace nnforge {

struct SgdOptions {
    double lr = 1e-3;
    double momentum = 0.0;
    double dampening = 0.0;
    double weight_decay = 0.0;
    bool nesterov = false;
    bool maximize = false;
    bool first_step = false;  // the momentum buffer is set to the gradient
};

struct AdamOptions {
    double lr = 1e-3;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    double weight_decay = 0.0;
    int64_t step = 1;  // the step being taken, counted from 1 (bias correction)
    bool amsgrad = false;
    bool maximize = false;
    bool decoupled_weight_decay = false;  // AdamW
};

struct RmspropOptions {
    double lr = 1e-2;
    double alpha = 0.99;
    double eps = 1e-8;
    double weight_decay = 0.0;
    double momentum = 0.0;
    bool centered = false;
    bool maximize = false;
};

struct AdagradOptions {
    double lr = 1e-2;
    double lr_decay = 0.0;
    double weight_decay = 0.0;
    double eps = 1e-10;
    int64_t step = 1;  // the step being taken, counted from 1 (learning-rate decay)
    bool maximize = false;
};

struct AdadeltaOptions {
    double lr = 1.0;
    double rho = 0.9;
    double eps = 1e-6;
    double weight_decay = 0.0;
    bool maximize = false;
};

// Elements below which a kernel runs on the calling thread only.
constexpr int64_t kOptimParallelMin = 32768;

// buf may be null when momentum == 0.
template <typename T>
void sgd_update(T* p, const T* g, T* buf, int64_t n, const SgdOptions& o);

// max_exp_avg_sq may be null unless amsgrad.
template <typename T>
void adam_update(T* p, const T* g, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq, int64_t n,
                 const AdamOptions& o);

// grad_avg may be null unless centered; momentum_buffer may be null unless momentum > 0.
template <typename T>
void rmsprop_update(T* p, const T* g, T* square_avg, T* grad_avg, T* momentum_buffer, int64_t n,
                    const RmspropOptions& o);

template <typename T>
void adagrad_update(T* p, const T* g, T* sum, int64_t n, const AdagradOptions& o);

template <typename T>
void adadelta_update(T* p, const T* g, T* square_avg, T* acc_delta, int64_t n,
                     const AdadeltaOptions& o);

}  // namespace nnforge
