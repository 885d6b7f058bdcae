// The optimizer update loops, included by optim.cpp (portable baseline) and
// optim_avx2.cpp (compiled with -mavx2 -mfma). Internal to those two files;
// the public interface is optim.h.
//
// Each kernel is one template over the element type T (float, double) and
// kFma, whether a multiply-add rounds once. PyTorch's vectorized CPU kernels
// round once on CPUs with FMA (its add with alpha, addcmul and lerp are fused
// multiply-adds there), so the FMA build of a kernel reproduces torch.optim's
// float32 results bit for bit, and the baseline build to a rounding per
// multiply-add. Written in our notation, with madd(a, b, c) = a b + c:
//   add(x, y, alpha)       = madd(alpha, y, x)
//   addcmul(x, y, z, c)    = madd(c y, z, x)
//   addcdiv(x, y, z, c)    = x + (c y) / z
//   lerp(a, b, w)          = madd(w, b - a, a)               when |w| < 0.5
//                          = madd(-(b - a), 1 - w, b)        otherwise
// and every other scalar operation is PyTorch's too, in the same order, with
// the Python scalars rounded to T where PyTorch rounds them.
//
// Threads: an update is elementwise, so [0, n) is split into one contiguous
// chunk per thread (OpenMP, from kOptimParallelMin elements up). Every element
// is computed the same way whatever the split (vector and scalar iterations
// round alike): results do not depend on the thread count.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "cpu/optim.h"

#if defined(NNFORGE_OPENMP)
#include <omp.h>
#endif

namespace nnforge {
namespace optim_detail {

// Calls body(begin, end) on chunks covering [0, n): one chunk on the calling
// thread below kOptimParallelMin elements, else one per OpenMP thread (chunk
// sizes a multiple of 64 elements, so threads never share a cache line).
template <typename Body>
void parallel_chunks(int64_t n, const Body& body) {
#if defined(NNFORGE_OPENMP)
    if (n >= kOptimParallelMin && omp_get_max_threads() > 1) {
#pragma omp parallel
        {
            const int64_t threads = omp_get_num_threads();
            const int64_t t = omp_get_thread_num();
            const int64_t per = ((n + threads - 1) / threads + 63) / 64 * 64;
            const int64_t begin = std::min(n, t * per);
            const int64_t end = std::min(n, begin + per);
            if (begin < end) body(begin, end);
        }
        return;
    }
#endif
    body(int64_t{0}, n);
}

// Calls f(std::true_type{}) or f(std::false_type{}): a run-time option becomes
// a compile-time one, so that each combination of options gets its own
// branch-free loop, which the compiler vectorizes.
template <typename F>
void with_flag(bool flag, const F& f) {
    if (flag) {
        f(std::true_type{});
    } else {
        f(std::false_type{});
    }
}

// a b + c, rounded once (kFma) or twice.
template <bool kFma, typename T>
inline T madd(T a, T b, T c) {
    if constexpr (kFma) {
        return std::fma(a, b, c);
    } else {
        return a * b + c;
    }
}

// PyTorch's lerp a + w (b - a), written from the b end for large weights so
// that w = 1 gives exactly b. Which form is a template flag: w is the same
// for every element.
template <bool kFma, bool kSmallWeight, typename T>
inline T lerp(T a, T b, T w) {
    if constexpr (kSmallWeight) {
        return madd<kFma>(w, b - a, a);
    } else {
        return madd<kFma>(-(b - a), T(1) - w, b);
    }
}

// torch.maximum: NaN in either argument gives NaN.
template <typename T>
inline T maximum(T a, T b) {
    const T m = a < b ? b : a;  // a when a is NaN
    return b != b ? b : m;
}

// ---------------------------------------------------------------------------
// SGD with momentum (PyTorch's formulation; Sutskever et al. 2013 for Nesterov)
//   g   = -grad if maximize else grad
//   g   = g + wd p                                 (wd != 0)
//   buf = g                                        (first step)
//   buf = mu buf + (1 - tau) g                     (later steps)
//   g   = g + mu buf  (nesterov)   or   g = buf    (mu != 0)
//   p   = p + (-lr) g
// Layout: p, g, buf contiguous, n elements each; buf unused when mu == 0.
// ---------------------------------------------------------------------------
template <bool kFma, typename T>
void sgd_kernel(T* p, const T* g, T* buf, int64_t n, const SgdOptions& o) {
    const T sign = o.maximize ? T(-1) : T(1);  // sign * g == -g exactly
    const T wd = T(o.weight_decay);
    const T mu = T(o.momentum);
    const T one_minus_tau = T(1.0 - o.dampening);
    const T neg_lr = T(-o.lr);
    const bool use_momentum = o.momentum != 0.0;
    with_flag(o.weight_decay != 0.0, [&](auto use_wd) {
    with_flag(use_momentum && o.first_step, [&](auto first) {
    with_flag(use_momentum && o.nesterov, [&](auto nesterov) {
    with_flag(use_momentum, [&](auto momentum) {
        parallel_chunks(n, [=](int64_t begin, int64_t end) {
            for (int64_t i = begin; i < end; ++i) {
                T gi = sign * g[i];
                if constexpr (use_wd) gi = madd<kFma>(wd, p[i], gi);
                if constexpr (momentum) {
                    T b;
                    if constexpr (first) {
                        b = gi;
                    } else {
                        b = madd<kFma>(one_minus_tau, gi, buf[i] * mu);
                    }
                    buf[i] = b;
                    if constexpr (nesterov) {
                        gi = madd<kFma>(mu, b, gi);
                    } else {
                        gi = b;
                    }
                }
                p[i] = madd<kFma>(neg_lr, gi, p[i]);
            }
        });
    });
    });
    });
    });
}

// ---------------------------------------------------------------------------
// Adam / AdamW (Kingma & Ba 2015; Loshchilov & Hutter 2019 for AdamW), step t >= 1
//   g     = -grad if maximize else grad
//   p     = p (1 - lr wd)                           (AdamW, wd != 0)
//   g     = g + wd p                                (Adam,  wd != 0)
//   m     = lerp(m, g, 1 - beta1)
//   v     = beta2 v + ((1 - beta2) g) g
//   vmax  = max(vmax, v)                            (amsgrad; v below means vmax)
//   denom = sqrt(v) / sqrt(1 - beta2^t) + eps
//   p     = p + (-(lr / (1 - beta1^t)) m) / denom
// The bias corrections are computed once in double from t, as PyTorch does in
// Python. Layout: p, g, m = exp_avg, v = exp_avg_sq, vmax = max_exp_avg_sq
// contiguous, n elements each; vmax unused unless amsgrad.
// ---------------------------------------------------------------------------
template <bool kFma, typename T>
void adam_kernel(T* p, const T* g, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq, int64_t n,
                 const AdamOptions& o) {
    const double t = double(o.step);
    const double bias_correction1 = 1.0 - std::pow(o.beta1, t);
    const double bias_correction2 = 1.0 - std::pow(o.beta2, t);
    const T neg_step_size = T(-(o.lr / bias_correction1));
    const T bias_correction2_sqrt = T(std::sqrt(bias_correction2));
    const T sign = o.maximize ? T(-1) : T(1);
    const T w1 = T(1.0 - o.beta1);
    const T beta2 = T(o.beta2);
    const T one_minus_beta2 = T(1.0 - o.beta2);
    const T eps = T(o.eps);
    const T wd = T(o.weight_decay);
    const T decay = T(1.0 - o.lr * o.weight_decay);
    const bool use_wd = o.weight_decay != 0.0;
    with_flag(use_wd && !o.decoupled_weight_decay, [&](auto l2) {
    with_flag(use_wd && o.decoupled_weight_decay, [&](auto decoupled) {
    with_flag(o.amsgrad, [&](auto amsgrad) {
    with_flag(std::abs(w1) < T(0.5), [&](auto w1_small) {
        parallel_chunks(n, [=](int64_t begin, int64_t end) {
            for (int64_t i = begin; i < end; ++i) {
                T gi = sign * g[i];
                T pi = p[i];
                if constexpr (decoupled) pi = pi * decay;
                if constexpr (l2) gi = madd<kFma>(wd, pi, gi);
                const T m = lerp<kFma, w1_small>(exp_avg[i], gi, w1);
                T v = madd<kFma>(one_minus_beta2 * gi, gi, exp_avg_sq[i] * beta2);
                exp_avg[i] = m;
                exp_avg_sq[i] = v;
                if constexpr (amsgrad) {
                    v = maximum(max_exp_avg_sq[i], v);
                    max_exp_avg_sq[i] = v;
                }
                const T denom = std::sqrt(v) / bias_correction2_sqrt + eps;
                p[i] = pi + neg_step_size * m / denom;
            }
        });
    });
    });
    });
    });
}

// ---------------------------------------------------------------------------
// RMSprop (Hinton's lecture 6e; centered: Graves 2013)
//   g    = -grad if maximize else grad
//   g    = g + wd p                                  (wd != 0)
//   s    = alpha s + ((1 - alpha) g) g
//   ga   = lerp(ga, g, 1 - alpha)                    (centered)
//   avg  = sqrt(s - ga ga)  (centered)   or   sqrt(s)
//   avg  = avg + eps
//   buf  = mu buf + g / avg;   p = p + (-lr) buf     (mu > 0)
//   p    = p + ((-lr) g) / avg                       (mu == 0)
// Layout: p, g, s = square_avg, ga = grad_avg, buf = momentum_buffer
// contiguous, n elements each; ga unused unless centered, buf unless mu > 0.
// ---------------------------------------------------------------------------
template <bool kFma, typename T>
void rmsprop_kernel(T* p, const T* g, T* square_avg, T* grad_avg, T* momentum_buffer, int64_t n,
                    const RmspropOptions& o) {
    const T sign = o.maximize ? T(-1) : T(1);
    const T alpha = T(o.alpha);
    const T one_minus_alpha = T(1.0 - o.alpha);
    const T eps = T(o.eps);
    const T wd = T(o.weight_decay);
    const T mu = T(o.momentum);
    const T neg_lr = T(-o.lr);
    with_flag(o.weight_decay != 0.0, [&](auto use_wd) {
    with_flag(o.centered, [&](auto centered) {
    with_flag(o.momentum > 0.0, [&](auto momentum) {
    with_flag(std::abs(one_minus_alpha) < T(0.5), [&](auto lerp_small) {
        parallel_chunks(n, [=](int64_t begin, int64_t end) {
            for (int64_t i = begin; i < end; ++i) {
                T gi = sign * g[i];
                if constexpr (use_wd) gi = madd<kFma>(wd, p[i], gi);
                const T s = madd<kFma>(one_minus_alpha * gi, gi, square_avg[i] * alpha);
                square_avg[i] = s;
                T avg;
                if constexpr (centered) {
                    const T ga = lerp<kFma, lerp_small>(grad_avg[i], gi, one_minus_alpha);
                    grad_avg[i] = ga;
                    avg = std::sqrt(madd<kFma>(-ga, ga, s));
                } else {
                    avg = std::sqrt(s);
                }
                avg = avg + eps;
                if constexpr (momentum) {
                    const T b = momentum_buffer[i] * mu + gi / avg;
                    momentum_buffer[i] = b;
                    p[i] = madd<kFma>(neg_lr, b, p[i]);
                } else {
                    p[i] = p[i] + neg_lr * gi / avg;
                }
            }
        });
    });
    });
    });
    });
}

// ---------------------------------------------------------------------------
// Adagrad (Duchi et al. 2011), step t >= 1
//   g    = -grad if maximize else grad
//   g    = g + wd p                                  (wd != 0)
//   clr  = lr / (1 + (t - 1) lr_decay)               (double, once)
//   sum  = sum + g g
//   p    = p + ((-clr) g) / (sqrt(sum) + eps)
// Layout: p, g, sum contiguous, n elements each. The accumulator starts at
// initial_accumulator_value; that is the caller's (the state's) business.
// ---------------------------------------------------------------------------
template <bool kFma, typename T>
void adagrad_kernel(T* p, const T* g, T* sum, int64_t n, const AdagradOptions& o) {
    const double clr = o.lr / (1.0 + double(o.step - 1) * o.lr_decay);
    const T sign = o.maximize ? T(-1) : T(1);
    const T neg_clr = T(-clr);
    const T eps = T(o.eps);
    const T wd = T(o.weight_decay);
    with_flag(o.weight_decay != 0.0, [&](auto use_wd) {
        parallel_chunks(n, [=](int64_t begin, int64_t end) {
            for (int64_t i = begin; i < end; ++i) {
                T gi = sign * g[i];
                if constexpr (use_wd) gi = madd<kFma>(wd, p[i], gi);
                const T s = madd<kFma>(gi, gi, sum[i]);
                sum[i] = s;
                const T std_ = std::sqrt(s) + eps;
                p[i] = p[i] + neg_clr * gi / std_;
            }
        });
    });
}

// ---------------------------------------------------------------------------
// Adadelta (Zeiler 2012)
//   g     = -grad if maximize else grad
//   g     = g + wd p                                 (wd != 0)
//   s     = rho s + ((1 - rho) g) g
//   delta = sqrt(a + eps) / sqrt(s + eps) * g
//   a     = rho a + ((1 - rho) delta) delta
//   p     = p + (-lr) delta
// Layout: p, g, s = square_avg, a = acc_delta contiguous, n elements each.
// ---------------------------------------------------------------------------
template <bool kFma, typename T>
void adadelta_kernel(T* p, const T* g, T* square_avg, T* acc_delta, int64_t n,
                     const AdadeltaOptions& o) {
    const T sign = o.maximize ? T(-1) : T(1);
    const T rho = T(o.rho);
    const T one_minus_rho = T(1.0 - o.rho);
    const T eps = T(o.eps);
    const T wd = T(o.weight_decay);
    const T neg_lr = T(-o.lr);
    with_flag(o.weight_decay != 0.0, [&](auto use_wd) {
        parallel_chunks(n, [=](int64_t begin, int64_t end) {
            for (int64_t i = begin; i < end; ++i) {
                T gi = sign * g[i];
                if constexpr (use_wd) gi = madd<kFma>(wd, p[i], gi);
                const T s = madd<kFma>(one_minus_rho * gi, gi, square_avg[i] * rho);
                square_avg[i] = s;
                const T std_ = std::sqrt(s + eps);
                const T delta = std::sqrt(acc_delta[i] + eps) / std_ * gi;
                acc_delta[i] = madd<kFma>(one_minus_rho * delta, delta, acc_delta[i] * rho);
                p[i] = madd<kFma>(neg_lr, delta, p[i]);
            }
        });
    });
}

// The kFma = true builds, compiled in optim_avx2.cpp (x86-64 with AVX2 + FMA).
template <typename T>
void sgd_update_avx2(T* p, const T* g, T* buf, int64_t n, const SgdOptions& o);
template <typename T>
void adam_update_avx2(T* p, const T* g, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq, int64_t n,
                      const AdamOptions& o);
template <typename T>
void rmsprop_update_avx2(T* p, const T* g, T* square_avg, T* grad_avg, T* momentum_buffer,
                         int64_t n, const RmspropOptions& o);
template <typename T>
void adagrad_update_avx2(T* p, const T* g, T* sum, int64_t n, const AdagradOptions& o);
template <typename T>
void adadelta_update_avx2(T* p, const T* g, T* square_avg, T* acc_delta, int64_t n,
                          const AdadeltaOptions& o);

}  // namespace optim_detail
}  // namespace nnforge
