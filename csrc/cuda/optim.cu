// Fused optimizer updates (SGD, Adam/AdamW, RMSprop, Adagrad, Adadelta): the
// formulas are in optim.h and, with their derivations and PyTorch's rounding,
// in csrc/cpu/optim_kernels.h; each step functor below is the CPU kernel's
// loop body, term for term, with madd = fma exactly where the CPU fuses.
//
// Rounding: nvcc contracts a * b + c into an fma by default, which would give
// results the CPU (and PyTorch) never produce, so every product and sum here
// goes through an _rn intrinsic (never contracted); divisions and square roots
// are the correctly rounded _rn ones too (independent of -use_fast_math).
// float16 / bfloat16 arrays are loaded into float32 (Compute<T>), updated in
// float32 and rounded back on store; the hyperparameters are rounded to the
// compute type, as the CPU backend's float32 staging does.
//
// Work split: elementwise; one thread per element in a grid-stride loop
// (grid_for: a few blocks per multiprocessor), each element read and written
// once, coalesced. The update is memory bound: SGD with momentum moves 5
// values per element (p, g, buf in; p, buf out), Adam 7 (amsgrad 9). The
// options are run-time flags, uniform over the grid (no divergence).
#include <cmath>
#include <initializer_list>
#include <stdexcept>
#include <string>

#include "cuda/check.cuh"
#include "cuda/context.cuh"
#include "cuda/dispatch.cuh"
#include "cuda/optim.h"

namespace nnforge {
namespace cuda {
namespace {

constexpr int kThreads = 256;

// Correctly rounded arithmetic that nvcc never fuses.
__device__ __forceinline__ float mul(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float add(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double add(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ float sub(float a, float b) { return __fsub_rn(a, b); }
__device__ __forceinline__ double sub(double a, double b) { return __dsub_rn(a, b); }
__device__ __forceinline__ float div(float a, float b) { return __fdiv_rn(a, b); }
__device__ __forceinline__ double div(double a, double b) { return __ddiv_rn(a, b); }
__device__ __forceinline__ float root(float a) { return __fsqrt_rn(a); }
__device__ __forceinline__ double root(double a) { return __dsqrt_rn(a); }
// a b + c rounded once (the CPU's madd<kFma = true>).
__device__ __forceinline__ float madd(float a, float b, float c) { return __fmaf_rn(a, b, c); }
__device__ __forceinline__ double madd(double a, double b, double c) { return __fma_rn(a, b, c); }

// PyTorch's lerp a + w (b - a), from the b end for large weights (w = 1 gives b).
template <typename C>
__device__ __forceinline__ C lerp(C a, C b, C w, bool small_weight) {
    const C diff = sub(b, a);
    return small_weight ? madd(w, diff, a) : madd(-diff, sub(C(1), w), b);
}

// torch.maximum: nan in either argument gives nan.
template <typename C>
__device__ __forceinline__ C maximum(C a, C b) {
    const C m = a < b ? b : a;  // a when a is nan
    return b != b ? b : m;
}

template <typename T>
__device__ __forceinline__ typename Compute<T>::type load(const T* a, long long i) {
    return convert<typename Compute<T>::type>(a[i]);
}

template <typename T, typename C>
__device__ __forceinline__ void store(T* a, long long i, C v) {
    a[i] = convert<T>(v);
}

template <typename Step>
__global__ void update_kernel(long long n, Step step) {
    for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
         i += static_cast<long long>(gridDim.x) * blockDim.x) {
        step(i);
    }
}

// ---------------------------------------------------------------- SGD
template <typename T>
struct SgdStep {
    using C = typename Compute<T>::type;
    T* p;
    const T* g;
    T* buf;
    C sign, wd, mu, one_minus_tau, neg_lr;
    bool use_wd, momentum, first, nesterov;

    __device__ void operator()(long long i) const {
        C gi = mul(sign, load(g, i));
        const C pi = load(p, i);
        if (use_wd) gi = madd(wd, pi, gi);
        if (momentum) {
            const C b = first ? gi : madd(one_minus_tau, gi, mul(load(buf, i), mu));
            store(buf, i, b);
            gi = nesterov ? madd(mu, b, gi) : b;
        }
        store(p, i, madd(neg_lr, gi, pi));
    }
};

// ---------------------------------------------------------------- Adam / AdamW
template <typename T>
struct AdamStep {
    using C = typename Compute<T>::type;
    T* p;
    const T* g;
    T *exp_avg, *exp_avg_sq, *max_exp_avg_sq;
    C sign, w1, beta2, one_minus_beta2, eps, wd, decay, neg_step_size, bias_correction2_sqrt;
    bool l2, decoupled, amsgrad, w1_small;

    __device__ void operator()(long long i) const {
        C gi = mul(sign, load(g, i));
        C pi = load(p, i);
        if (decoupled) pi = mul(pi, decay);
        if (l2) gi = madd(wd, pi, gi);
        const C m = lerp(load(exp_avg, i), gi, w1, w1_small);
        C v = madd(mul(one_minus_beta2, gi), gi, mul(load(exp_avg_sq, i), beta2));
        store(exp_avg, i, m);
        store(exp_avg_sq, i, v);
        if (amsgrad) {
            v = maximum(load(max_exp_avg_sq, i), v);
            store(max_exp_avg_sq, i, v);
        }
        const C denom = add(div(root(v), bias_correction2_sqrt), eps);
        store(p, i, add(pi, div(mul(neg_step_size, m), denom)));
    }
};

// ---------------------------------------------------------------- RMSprop
template <typename T>
struct RmspropStep {
    using C = typename Compute<T>::type;
    T* p;
    const T* g;
    T *square_avg, *grad_avg, *momentum_buffer;
    C sign, alpha, one_minus_alpha, eps, wd, mu, neg_lr;
    bool use_wd, centered, momentum, lerp_small;

    __device__ void operator()(long long i) const {
        C gi = mul(sign, load(g, i));
        const C pi = load(p, i);
        if (use_wd) gi = madd(wd, pi, gi);
        const C s = madd(mul(one_minus_alpha, gi), gi, mul(load(square_avg, i), alpha));
        store(square_avg, i, s);
        C avg;
        if (centered) {
            const C ga = lerp(load(grad_avg, i), gi, one_minus_alpha, lerp_small);
            store(grad_avg, i, ga);
            avg = root(madd(-ga, ga, s));
        } else {
            avg = root(s);
        }
        avg = add(avg, eps);
        if (momentum) {
            const C b = add(mul(load(momentum_buffer, i), mu), div(gi, avg));
            store(momentum_buffer, i, b);
            store(p, i, madd(neg_lr, b, pi));
        } else {
            store(p, i, add(pi, div(mul(neg_lr, gi), avg)));
        }
    }
};

// ---------------------------------------------------------------- Adagrad
template <typename T>
struct AdagradStep {
    using C = typename Compute<T>::type;
    T* p;
    const T* g;
    T* sum;
    C sign, neg_clr, eps, wd;
    bool use_wd;

    __device__ void operator()(long long i) const {
        C gi = mul(sign, load(g, i));
        const C pi = load(p, i);
        if (use_wd) gi = madd(wd, pi, gi);
        const C s = madd(gi, gi, load(sum, i));
        store(sum, i, s);
        const C std_ = add(root(s), eps);
        store(p, i, add(pi, div(mul(neg_clr, gi), std_)));
    }
};

// ---------------------------------------------------------------- Adadelta
template <typename T>
struct AdadeltaStep {
    using C = typename Compute<T>::type;
    T* p;
    const T* g;
    T *square_avg, *acc_delta;
    C sign, rho, one_minus_rho, eps, wd, neg_lr;
    bool use_wd;

    __device__ void operator()(long long i) const {
        C gi = mul(sign, load(g, i));
        const C pi = load(p, i);
        if (use_wd) gi = madd(wd, pi, gi);
        const C s = madd(mul(one_minus_rho, gi), gi, mul(load(square_avg, i), rho));
        store(square_avg, i, s);
        const C std_ = root(add(s, eps));
        const C a = load(acc_delta, i);
        const C delta = mul(div(root(add(a, eps)), std_), gi);
        store(acc_delta, i, madd(mul(one_minus_rho, delta), delta, mul(a, rho)));
        store(p, i, madd(neg_lr, delta, pi));
    }
};

// ---------------------------------------------------------------- host side
// p: a C-contiguous floating-point array; every other array: p's dtype, element
// count and device, C-contiguous.
void check_param(const char* op, const DeviceArray& p) {
    if (!is_floating(p.dtype)) {
        throw std::invalid_argument(std::string("cuda.") + op + ": param has dtype " +
                                    dtype_name(p.dtype) +
                                    "; optimizers update floating-point arrays");
    }
    if (!p.is_contiguous()) {
        throw std::invalid_argument(std::string("cuda.") + op +
                                    ": param must be C-contiguous, got " + p.describe());
    }
}

void check_like_param(const char* op, const char* arg, const DeviceArray& a,
                      const DeviceArray& p) {
    if (a.dtype != p.dtype || a.numel() != p.numel() || a.device != p.device ||
        !a.is_contiguous()) {
        throw std::invalid_argument(std::string("cuda.") + op + ": " + arg +
                                    " must be a C-contiguous array with the param's dtype, "
                                    "size and device (param " + p.describe() + "), got " +
                                    a.describe());
    }
}

// No two of the arrays may share memory: each element is read and written by
// one thread, so an alias would read a value another thread may have updated.
struct Named {
    const char* name;
    const DeviceArray* a;
};

void check_disjoint(const char* op, std::initializer_list<Named> arrays) {
    for (auto i = arrays.begin(); i != arrays.end(); ++i) {
        for (auto j = i + 1; j != arrays.end(); ++j) {
            if (!i->a || !j->a || i->a->storage != j->a->storage) continue;
            const auto* a0 = static_cast<const char*>(i->a->data());
            const auto* b0 = static_cast<const char*>(j->a->data());
            if (a0 < b0 + j->a->nbytes() && b0 < a0 + i->a->nbytes() && i->a->numel() &&
                j->a->numel()) {
                throw std::invalid_argument(std::string("cuda.") + op + ": " + i->name + " and " +
                                            j->name + " share memory");
            }
        }
    }
}

const DeviceArray& require(const char* op, const char* arg, const DeviceArray* a,
                           const char* when) {
    if (a == nullptr) {
        throw std::invalid_argument(std::string("cuda.") + op + ": " + arg + " is required " +
                                    when);
    }
    return *a;
}

template <typename T>
T* ptr(const DeviceArray& a) { return static_cast<T*>(a.data()); }
template <typename T>
T* ptr_or_null(const DeviceArray* a) { return a ? static_cast<T*>(a->data()) : nullptr; }

template <typename Step>
void launch(const char* op, const char* dtype, const DeviceArray& p, const Step& step) {
    const long long n = p.numel();
    if (n == 0) return;
    DeviceGuard guard(p.device);
    update_kernel<<<grid_for(n, kThreads, p.device), kThreads, 0, default_stream(p.device)>>>(
        n, step);
    check_launch(op, dtype);
}

}  // namespace

void sgd_update(const DeviceArray& p, const DeviceArray& g, const DeviceArray* buf,
                const SgdOptions& o) {
    const char* op = "sgd_update";
    check_param(op, p);
    check_like_param(op, "grad", g, p);
    const bool momentum = o.momentum != 0.0;
    if (momentum) check_like_param(op, "momentum_buffer", require(op, "momentum_buffer", buf,
                                                                  "when momentum != 0"), p);
    check_disjoint(op, {{"param", &p}, {"grad", &g}, {"momentum_buffer", momentum ? buf : nullptr}});
    dispatch_floating(p.dtype, op, [&](auto tag) {
        using T = decltype(tag);
        using C = typename Compute<T>::type;
        SgdStep<T> s;
        s.p = ptr<T>(p);
        s.g = ptr<const T>(g);
        s.buf = momentum ? ptr<T>(*buf) : nullptr;
        s.sign = o.maximize ? C(-1) : C(1);
        s.wd = C(o.weight_decay);
        s.mu = C(o.momentum);
        s.one_minus_tau = C(1.0 - o.dampening);
        s.neg_lr = C(-o.lr);
        s.use_wd = o.weight_decay != 0.0;
        s.momentum = momentum;
        s.first = momentum && o.first_step;
        s.nesterov = momentum && o.nesterov;
        launch(op, type_name<T>(), p, s);
    });
}

void adam_update(const DeviceArray& p, const DeviceArray& g, const DeviceArray& exp_avg,
                 const DeviceArray& exp_avg_sq, const DeviceArray* max_exp_avg_sq,
                 const AdamOptions& o) {
    const char* op = "adam_update";
    check_param(op, p);
    check_like_param(op, "grad", g, p);
    check_like_param(op, "exp_avg", exp_avg, p);
    check_like_param(op, "exp_avg_sq", exp_avg_sq, p);
    if (o.amsgrad) check_like_param(op, "max_exp_avg_sq", require(op, "max_exp_avg_sq",
                                                                  max_exp_avg_sq,
                                                                  "with amsgrad"), p);
    if (o.step < 1) {
        throw std::invalid_argument("cuda.adam_update: step counts from 1, got " +
                                    std::to_string(o.step));
    }
    check_disjoint(op, {{"param", &p}, {"grad", &g}, {"exp_avg", &exp_avg},
                        {"exp_avg_sq", &exp_avg_sq},
                        {"max_exp_avg_sq", o.amsgrad ? max_exp_avg_sq : nullptr}});
    // The bias corrections in double from t, as PyTorch computes them in Python.
    const double t = double(o.step);
    const double bias_correction1 = 1.0 - std::pow(o.beta1, t);
    const double bias_correction2 = 1.0 - std::pow(o.beta2, t);
    dispatch_floating(p.dtype, op, [&](auto tag) {
        using T = decltype(tag);
        using C = typename Compute<T>::type;
        AdamStep<T> s;
        s.p = ptr<T>(p);
        s.g = ptr<const T>(g);
        s.exp_avg = ptr<T>(exp_avg);
        s.exp_avg_sq = ptr<T>(exp_avg_sq);
        s.max_exp_avg_sq = o.amsgrad ? ptr<T>(*max_exp_avg_sq) : nullptr;
        s.sign = o.maximize ? C(-1) : C(1);
        s.w1 = C(1.0 - o.beta1);
        s.beta2 = C(o.beta2);
        s.one_minus_beta2 = C(1.0 - o.beta2);
        s.eps = C(o.eps);
        s.wd = C(o.weight_decay);
        s.decay = C(1.0 - o.lr * o.weight_decay);
        s.neg_step_size = C(-(o.lr / bias_correction1));
        s.bias_correction2_sqrt = C(std::sqrt(bias_correction2));
        const bool use_wd = o.weight_decay != 0.0;
        s.l2 = use_wd && !o.decoupled_weight_decay;
        s.decoupled = use_wd && o.decoupled_weight_decay;
        s.amsgrad = o.amsgrad;
        s.w1_small = std::abs(s.w1) < C(0.5);
        launch(op, type_name<T>(), p, s);
    });
}

void rmsprop_update(const DeviceArray& p, const DeviceArray& g, const DeviceArray& square_avg,
                    const DeviceArray* grad_avg, const DeviceArray* momentum_buffer,
                    const RmspropOptions& o) {
    const char* op = "rmsprop_update";
    check_param(op, p);
    check_like_param(op, "grad", g, p);
    check_like_param(op, "square_avg", square_avg, p);
    if (o.centered) check_like_param(op, "grad_avg", require(op, "grad_avg", grad_avg,
                                                             "when centered"), p);
    const bool momentum = o.momentum > 0.0;
    if (momentum) check_like_param(op, "momentum_buffer", require(op, "momentum_buffer",
                                                                  momentum_buffer,
                                                                  "when momentum > 0"), p);
    check_disjoint(op, {{"param", &p}, {"grad", &g}, {"square_avg", &square_avg},
                        {"grad_avg", o.centered ? grad_avg : nullptr},
                        {"momentum_buffer", momentum ? momentum_buffer : nullptr}});
    dispatch_floating(p.dtype, op, [&](auto tag) {
        using T = decltype(tag);
        using C = typename Compute<T>::type;
        RmspropStep<T> s;
        s.p = ptr<T>(p);
        s.g = ptr<const T>(g);
        s.square_avg = ptr<T>(square_avg);
        s.grad_avg = o.centered ? ptr<T>(*grad_avg) : nullptr;
        s.momentum_buffer = momentum ? ptr<T>(*momentum_buffer) : nullptr;
        s.sign = o.maximize ? C(-1) : C(1);
        s.alpha = C(o.alpha);
        s.one_minus_alpha = C(1.0 - o.alpha);
        s.eps = C(o.eps);
        s.wd = C(o.weight_decay);
        s.mu = C(o.momentum);
        s.neg_lr = C(-o.lr);
        s.use_wd = o.weight_decay != 0.0;
        s.centered = o.centered;
        s.momentum = momentum;
        s.lerp_small = std::abs(s.one_minus_alpha) < C(0.5);
        launch(op, type_name<T>(), p, s);
    });
}

void adagrad_update(const DeviceArray& p, const DeviceArray& g, const DeviceArray& state_sum,
                    const AdagradOptions& o) {
    const char* op = "adagrad_update";
    check_param(op, p);
    check_like_param(op, "grad", g, p);
    check_like_param(op, "state_sum", state_sum, p);
    check_disjoint(op, {{"param", &p}, {"grad", &g}, {"state_sum", &state_sum}});
    if (o.step < 1) {
        throw std::invalid_argument("cuda.adagrad_update: step counts from 1, got " +
                                    std::to_string(o.step));
    }
    const double clr = o.lr / (1.0 + double(o.step - 1) * o.lr_decay);
    dispatch_floating(p.dtype, op, [&](auto tag) {
        using T = decltype(tag);
        using C = typename Compute<T>::type;
        AdagradStep<T> s;
        s.p = ptr<T>(p);
        s.g = ptr<const T>(g);
        s.sum = ptr<T>(state_sum);
        s.sign = o.maximize ? C(-1) : C(1);
        s.neg_clr = C(-clr);
        s.eps = C(o.eps);
        s.wd = C(o.weight_decay);
        s.use_wd = o.weight_decay != 0.0;
        launch(op, type_name<T>(), p, s);
    });
}

void adadelta_update(const DeviceArray& p, const DeviceArray& g, const DeviceArray& square_avg,
                     const DeviceArray& acc_delta, const AdadeltaOptions& o) {
    const char* op = "adadelta_update";
    check_param(op, p);
    check_like_param(op, "grad", g, p);
    check_like_param(op, "square_avg", square_avg, p);
    check_like_param(op, "acc_delta", acc_delta, p);
    check_disjoint(op, {{"param", &p}, {"grad", &g}, {"square_avg", &square_avg},
                        {"acc_delta", &acc_delta}});
    dispatch_floating(p.dtype, op, [&](auto tag) {
        using T = decltype(tag);
        using C = typename Compute<T>::type;
        AdadeltaStep<T> s;
        s.p = ptr<T>(p);
        s.g = ptr<const T>(g);
        s.square_avg = ptr<T>(square_avg);
        s.acc_delta = ptr<T>(acc_delta);
        s.sign = o.maximize ? C(-1) : C(1);
        s.rho = C(o.rho);
        s.one_minus_rho = C(1.0 - o.rho);
        s.eps = C(o.eps);
        s.wd = C(o.weight_decay);
        s.neg_lr = C(-o.lr);
        s.use_wd = o.weight_decay != 0.0;
        launch(op, type_name<T>(), p, s);
    });
}

}  // namespace cuda
}  // namespace nnforge
