// The batch-norm loops (see batchnorm.h), included by batchnorm.cpp (portable
// build) and by batchnorm_avx2.cpp / batchnorm_avx512.cpp (built with those
// ISA flags). Everything in the unnamed namespace has internal linkage (one
// copy per ISA build), and no out-of-line std:: template is called here.
//
// Per channel c (M = N S values, the N runs x[n, c, 0:S]):
//   forward (training): pass 1 sum -> mean; pass 2 sum (x - mean)^2 -> var
//     (biased); pass 3 y = (x - mean) (w invstd) + b, invstd = 1 / sqrt(var + eps).
//   backward: pass 1 sums gb = sum gy and sum gy (x - mean); pass 2
//     gx = k1 gy - k2 - k3 (x - mean) with k1 = w invstd, k2 = k1 gb / M,
//     k3 = k1 invstd gw / M (gw = invstd sum gy (x - mean)): the closed form
//     w invstd / M (M gy - gb - xhat gw), xhat = (x - mean) invstd.
// Each run is summed in T by a vectorized reduction (omp simd) and the run
// sums are added in double, so float statistics keep ~double accuracy over
// large batches. Channels split across threads; a channel's data (N S values)
// is read by one thread, which keeps it in cache between the passes.
// For S = 1 ((N, C) inputs) the loops run row by row, vectorized across
// channels, with double accumulators per channel.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <new>

#include "cpu/batchnorm.h"

#if defined(NNFORGE_OPENMP)
#include <omp.h>
#endif

#if defined(_OPENMP)
#define NNFORGE_BN_PRAGMA(x) _Pragma(#x)
#else
#define NNFORGE_BN_PRAGMA(x)
#endif

namespace nnforge {
namespace batchnorm_detail {

// The kernels of one ISA build (batchnorm.cpp picks a set once).
template <typename T>
struct BatchNormKernels {
    void (*forward_train)(const T*, const T*, const T*, BatchNormShape, double, T*, T*, T*, T*);
    void (*forward_eval)(const T*, const T*, const T*, const T*, const T*, BatchNormShape,
                         double, T*);
    void (*backward)(const T*, const T*, const T*, const T*, const T*, BatchNormShape, bool, T*,
                     T*, T*);
};

// Defined in batchnorm_avx2.cpp / batchnorm_avx512.cpp (x86-64 only).
void get_batchnorm_kernels_avx2(BatchNormKernels<float>* k);
void get_batchnorm_kernels_avx2(BatchNormKernels<double>* k);
void get_batchnorm_kernels_avx512(BatchNormKernels<float>* k);
void get_batchnorm_kernels_avx512(BatchNormKernels<double>* k);

}  // namespace batchnorm_detail

namespace {

// body(c) for every channel, channels split statically among threads when large.
template <typename Body>
void for_channels(BatchNormShape s, const Body& body) {
#if defined(NNFORGE_OPENMP)
    const int64_t threads = omp_get_max_threads();
    if (s.n * s.c * s.s >= kBatchNormParallelMin && s.c > 1 && threads > 1) {
#pragma omp parallel for schedule(static)
        for (int64_t c = 0; c < s.c; ++c) body(c);
        return;
    }
#endif
    for (int64_t c = 0; c < s.c; ++c) body(c);
}

template <typename T>
double run_sum(const T* r, int64_t len) {
    T acc = T(0);
    NNFORGE_BN_PRAGMA(omp simd reduction(+ : acc))
    for (int64_t i = 0; i < len; ++i) acc += r[i];
    return double(acc);
}

template <typename T>
double run_sq_dev(const T* r, int64_t len, T m) {
    T acc = T(0);
    NNFORGE_BN_PRAGMA(omp simd reduction(+ : acc))
    for (int64_t i = 0; i < len; ++i) {
        const T d = r[i] - m;
        acc += d * d;
    }
    return double(acc);
}

// y = (x - m) k + b over one run.
template <typename T>
void run_affine(const T* x, T* y, int64_t len, T m, T k, T b) {
    NNFORGE_BN_PRAGMA(omp simd)
    for (int64_t i = 0; i < len; ++i) y[i] = (x[i] - m) * k + b;
}

// Per-channel double scratch for the S = 1 path (malloc: see the header comment).
struct Doubles {
    double* p;
    explicit Doubles(int64_t n) {
        const size_t count = static_cast<size_t>(n > 0 ? n : 1);
        p = static_cast<double*>(std::malloc(sizeof(double) * count));
        if (p == nullptr) throw std::bad_alloc();
    }
    ~Doubles() { std::free(p); }
    Doubles(const Doubles&) = delete;
    Doubles& operator=(const Doubles&) = delete;
};

template <typename T>
void forward_train_kernel(const T* x, const T* w, const T* b, BatchNormShape s, double eps, T* y,
                          T* mean, T* invstd, T* var) {
    const int64_t n = s.n, C = s.c, S = s.s;
    const double M = double(n * S);
    if (S == 1) {
        Doubles sum(C), sq(C);
        for (int64_t c = 0; c < C; ++c) sum.p[c] = sq.p[c] = 0.0;
        for (int64_t r = 0; r < n; ++r) {
            const T* xr = x + r * C;
            for (int64_t c = 0; c < C; ++c) sum.p[c] += double(xr[c]);
        }
        for (int64_t c = 0; c < C; ++c) sum.p[c] /= M;  // the mean, in double
        for (int64_t r = 0; r < n; ++r) {
            const T* xr = x + r * C;
            for (int64_t c = 0; c < C; ++c) {
                const double d = double(xr[c]) - sum.p[c];
                sq.p[c] += d * d;
            }
        }
        for (int64_t c = 0; c < C; ++c) {
            const double v = sq.p[c] / M, is = 1.0 / std::sqrt(v + eps);
            mean[c] = T(sum.p[c]);
            var[c] = T(v);
            invstd[c] = T(is);
            sq.p[c] = (w ? double(w[c]) : 1.0) * is;  // now the scale
        }
        for (int64_t r = 0; r < n; ++r) {
            const T* xr = x + r * C;
            T* yr = y + r * C;
            for (int64_t c = 0; c < C; ++c) {
                yr[c] = (xr[c] - mean[c]) * T(sq.p[c]) + (b ? b[c] : T(0));
            }
        }
        return;
    }
    for_channels(s, [&](int64_t c) {
        double total = 0.0;
        for (int64_t r = 0; r < n; ++r) total += run_sum(x + (r * C + c) * S, S);
        const T m = T(total / M);
        double sq = 0.0;
        for (int64_t r = 0; r < n; ++r) sq += run_sq_dev(x + (r * C + c) * S, S, m);
        const double v = sq / M, is = 1.0 / std::sqrt(v + eps);
        mean[c] = m;
        var[c] = T(v);
        invstd[c] = T(is);
        const T k = T((w ? double(w[c]) : 1.0) * is), bc = b ? b[c] : T(0);
        for (int64_t r = 0; r < n; ++r) {
            const int64_t off = (r * C + c) * S;
            run_affine(x + off, y + off, S, m, k, bc);
        }
    });
}

template <typename T>
void forward_eval_kernel(const T* x, const T* w, const T* b, const T* mean, const T* var,
                         BatchNormShape s, double eps, T* y) {
    const int64_t n = s.n, C = s.c, S = s.s;
    auto scale = [&](int64_t c) {
        return T((w ? double(w[c]) : 1.0) / std::sqrt(double(var[c]) + eps));
    };
    if (S == 1) {
        Doubles k(C);
        for (int64_t c = 0; c < C; ++c) k.p[c] = double(scale(c));
        for (int64_t r = 0; r < n; ++r) {
            const T* xr = x + r * C;
            T* yr = y + r * C;
            for (int64_t c = 0; c < C; ++c) {
                yr[c] = (xr[c] - mean[c]) * T(k.p[c]) + (b ? b[c] : T(0));
            }
        }
        return;
    }
    for_channels(s, [&](int64_t c) {
        const T k = scale(c), bc = b ? b[c] : T(0);
        for (int64_t r = 0; r < n; ++r) {
            const int64_t off = (r * C + c) * S;
            run_affine(x + off, y + off, S, mean[c], k, bc);
        }
    });
}

// Sums over one run: a += gy, bsum += gy (x - m).
template <typename T>
void run_grad_sums(const T* gy, const T* x, int64_t len, T m, double* a, double* bsum) {
    T sa = T(0), sb = T(0);
    NNFORGE_BN_PRAGMA(omp simd reduction(+ : sa, sb))
    for (int64_t i = 0; i < len; ++i) {
        sa += gy[i];
        sb += gy[i] * (x[i] - m);
    }
    *a += double(sa);
    *bsum += double(sb);
}

// gx = k1 gy - k2 - k3 (x - m) over one run.
template <typename T>
void run_grad_input(const T* gy, const T* x, T* gx, int64_t len, T m, T k1, T k2, T k3) {
    NNFORGE_BN_PRAGMA(omp simd)
    for (int64_t i = 0; i < len; ++i) gx[i] = k1 * gy[i] - k2 - k3 * (x[i] - m);
}

template <typename T>
void backward_kernel(const T* gy, const T* x, const T* w, const T* mean, const T* invstd,
                     BatchNormShape s, bool training, T* gx, T* gw, T* gb) {
    const int64_t n = s.n, C = s.c, S = s.s;
    const double M = double(n * S);
    // The three constants of gx for channel c, from its two sums.
    auto constants = [&](int64_t c, double sdy, double sdyx, T* k1, T* k2, T* k3) {
        const double is = double(invstd[c]);
        const double a = (w ? double(w[c]) : 1.0) * is;
        *k1 = T(a);
        *k2 = training ? T(a * sdy / M) : T(0);
        *k3 = training ? T(a * is * is * sdyx / M) : T(0);
    };
    if (S == 1) {
        Doubles sdy(C), sdyx(C);
        for (int64_t c = 0; c < C; ++c) sdy.p[c] = sdyx.p[c] = 0.0;
        for (int64_t r = 0; r < n; ++r) {
            const T* g = gy + r * C;
            const T* xr = x + r * C;
            for (int64_t c = 0; c < C; ++c) {
                sdy.p[c] += double(g[c]);
                sdyx.p[c] += double(g[c]) * (double(xr[c]) - double(mean[c]));
            }
        }
        for (int64_t c = 0; c < C; ++c) {
            if (gb) gb[c] = T(sdy.p[c]);
            if (gw) gw[c] = T(sdyx.p[c] * double(invstd[c]));
        }
        if (!gx) return;
        for (int64_t r = 0; r < n; ++r) {
            const T* g = gy + r * C;
            const T* xr = x + r * C;
            T* o = gx + r * C;
            for (int64_t c = 0; c < C; ++c) {
                T k1, k2, k3;
                constants(c, sdy.p[c], sdyx.p[c], &k1, &k2, &k3);
                o[c] = k1 * g[c] - k2 - k3 * (xr[c] - mean[c]);
            }
        }
        return;
    }
    for_channels(s, [&](int64_t c) {
        double sdy = 0.0, sdyx = 0.0;
        const T m = mean[c];
        for (int64_t r = 0; r < n; ++r) {
            const int64_t off = (r * C + c) * S;
            run_grad_sums(gy + off, x + off, S, m, &sdy, &sdyx);
        }
        if (gb) gb[c] = T(sdy);
        if (gw) gw[c] = T(sdyx * double(invstd[c]));
        if (!gx) return;
        T k1, k2, k3;
        constants(c, sdy, sdyx, &k1, &k2, &k3);
        for (int64_t r = 0; r < n; ++r) {
            const int64_t off = (r * C + c) * S;
            run_grad_input(gy + off, x + off, gx + off, S, m, k1, k2, k3);
        }
    });
}

template <typename T>
batchnorm_detail::BatchNormKernels<T> make_batchnorm_kernels() {
    batchnorm_detail::BatchNormKernels<T> k;
    k.forward_train = &forward_train_kernel<T>;
    k.forward_eval = &forward_eval_kernel<T>;
    k.backward = &backward_kernel<T>;
    return k;
}

}  // namespace
}  // namespace nnforge
