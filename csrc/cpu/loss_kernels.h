// The fused cross-entropy loops (see loss.h), included by loss.cpp (portable
// build) and by loss_avx2.cpp / loss_avx512.cpp (built with those ISA flags).
// Everything here has internal linkage (an unnamed namespace), so each of
// those files gets its own copy compiled for its own ISA, and no function
// built for AVX2 or AVX-512 can be picked by the linker for the portable path.
// For the same reason the code below calls no out-of-line std:: templates
// (no std::vector, std::fill, std::min): plain loops and fixed-size buffers.
//
// For one position (a sample, or one of its d1 d2 ... positions) with logits
// z_c, target y, weights w_c (1 without) and smoothing e:
//   m   = max_c z_c,   lse = m + log sum_c exp(z_c - m)       (stable: exp of <= 0)
//   logp_c = z_c - lse
//   loss = (1 - e) w_y (lse - z_y) + (e / C) (W lse - sum_c w_c z_c),  W = sum_c w_c
//        = -sum_c q_c logp_c  with the weighted, smoothed target q (PyTorch's formula)
//   dloss/dz_c = p_c ((1 - e) w_y + e W / C) - (1 - e) w_y [c = y] - e w_c / C,
//   p = softmax(z) = exp(z - lse): softmax minus the target distribution.
// Ignored positions (y == ignore_index) have loss 0 and gradient 0.
//
// Work split: positions are cut into tiles (one row of C logits when D = 1,
// else up to kTile consecutive positions of one sample, whose C x kTile block
// stays in cache); tiles are shared among OpenMP threads from
// kLossParallelMin elements up. Inside a tile the loops over classes (D = 1)
// or positions (D > 1) are the vectorized ones; float uses exp_vec
// (vec_math.h, within 2 ulp of std::exp), double uses std::exp.
// NaN in a row of logits makes its loss and gradient NaN; a row of -inf gives
// NaN too (as log_softmax does); -inf among finite logits is a probability of 0.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "cpu/loss.h"
#include "cpu/parallel_runs.h"
#include "cpu/vec_math.h"

#if defined(_OPENMP)
#define NNFORGE_LOSS_PRAGMA(x) _Pragma(#x)
#else
#define NNFORGE_LOSS_PRAGMA(x)
#endif

namespace nnforge {
namespace {

constexpr int64_t kTile = 256;  // positions per tile when D > 1


template <typename T>
T weight_sum(const T* w, int64_t c) {
    if (w == nullptr) return T(c);
    double total = 0.0;
    for (int64_t k = 0; k < c; ++k) total += w[k];
    return T(total);
}

template <typename T>
struct Smoothing {
    T keep;    // 1 - e
    T spread;  // e / C
    T big_w;   // W = sum_c w_c
    Smoothing(double e, const T* w, int64_t c)
        : keep(T(1.0 - e)), spread(c > 0 ? T(e / double(c)) : T(0)), big_w(weight_sum(w, c)) {}
};

template <typename T>
void forward_kernel(const T* z, const int64_t* y, const T* w, CrossEntropyShape s,
                    int64_t ignore_index, double smoothing, T* loss, T* lse, T* wy) {
    const int64_t n = s.n, c = s.c, d = s.d;
    const Smoothing<T> sm(smoothing, w, c);
    const bool smooth = smoothing > 0.0;
    const T neg_inf = -std::numeric_limits<T>::infinity();

    // The loss of one position from its lse, its logit at the target and sum_c w_c z_c.
    auto finish = [&](int64_t pos, T l, const T* z_at, int64_t stride, T wz) {
        const int64_t t = y[pos];
        const bool valid = t != ignore_index;
        const T w_y = !valid ? T(0) : (w ? w[t] : T(1));
        lse[pos] = l;
        wy[pos] = w_y;
        T out = T(0);
        if (valid) {
            out = sm.keep * w_y * (l - z_at[t * stride]);
            if (smooth) out += sm.spread * (sm.big_w * l - wz);
        }
        loss[pos] = out;
    };

    if (d == 1) {
        parallel_runs(n, n * c, kLossParallelMin, [&](int64_t begin, int64_t end) {
            for (int64_t row = begin; row < end; ++row) {
                const T* zr = z + row * c;
                T m = neg_inf;
                NNFORGE_LOSS_PRAGMA(omp simd reduction(max : m))
                for (int64_t k = 0; k < c; ++k) m = zr[k] > m ? zr[k] : m;
                T sum = 0;
                NNFORGE_LOSS_PRAGMA(omp simd reduction(+ : sum))
                for (int64_t k = 0; k < c; ++k) sum += exp_vec(zr[k] - m);
                T wz = 0;
                if (smooth && w) {
                    NNFORGE_LOSS_PRAGMA(omp simd reduction(+ : wz))
                    for (int64_t k = 0; k < c; ++k) wz += w[k] * zr[k];
                } else if (smooth) {
                    NNFORGE_LOSS_PRAGMA(omp simd reduction(+ : wz))
                    for (int64_t k = 0; k < c; ++k) wz += zr[k];
                }
                finish(row, m + std::log(sum), zr, 1, wz);
            }
        });
        return;
    }
    const int64_t tiles_per_sample = (d + kTile - 1) / kTile;
    const int64_t tiles = n * tiles_per_sample;
    parallel_runs(tiles, n * c * d, kLossParallelMin, [&](int64_t begin, int64_t end) {
        T m[kTile], sum[kTile], wz[kTile];
        for (int64_t tile = begin; tile < end; ++tile) {
            const int64_t sample = tile / tiles_per_sample;
            const int64_t j0 = (tile % tiles_per_sample) * kTile;
            const int64_t len = d - j0 < kTile ? d - j0 : kTile;
            const T* zs = z + sample * c * d + j0;  // zs[k * d + j]: class k, position j0 + j
            for (int64_t j = 0; j < len; ++j) {
                m[j] = neg_inf;
                sum[j] = T(0);
                wz[j] = T(0);
            }
            for (int64_t k = 0; k < c; ++k) {
                const T* zk = zs + k * d;
                NNFORGE_LOSS_PRAGMA(omp simd)
                for (int64_t j = 0; j < len; ++j) m[j] = zk[j] > m[j] ? zk[j] : m[j];
            }
            for (int64_t k = 0; k < c; ++k) {
                const T* zk = zs + k * d;
                NNFORGE_LOSS_PRAGMA(omp simd)
                for (int64_t j = 0; j < len; ++j) sum[j] += exp_vec(zk[j] - m[j]);
            }
            if (smooth) {
                for (int64_t k = 0; k < c; ++k) {
                    const T* zk = zs + k * d;
                    const T wk = w ? w[k] : T(1);
                    NNFORGE_LOSS_PRAGMA(omp simd)
                    for (int64_t j = 0; j < len; ++j) wz[j] += wk * zk[j];
                }
            }
            for (int64_t j = 0; j < len; ++j) {
                finish(sample * d + j0 + j, m[j] + std::log(sum[j]), zs + j, d, wz[j]);
            }
        }
    });
}

template <typename T>
void backward_kernel(const T* z, const int64_t* y, const T* w, const T* lse, const T* wy,
                     const T* g, CrossEntropyShape s, int64_t ignore_index, double smoothing,
                     T* gz) {
    const int64_t n = s.n, c = s.c, d = s.d;
    const Smoothing<T> sm(smoothing, w, c);

    if (d == 1) {
        parallel_runs(n, n * c, kLossParallelMin, [&](int64_t begin, int64_t end) {
            for (int64_t row = begin; row < end; ++row) {
                const T* zr = z + row * c;
                T* gr = gz + row * c;
                const bool valid = y[row] != ignore_index;
                const T gv = valid ? g[row] : T(0);
                const T a = gv * (sm.keep * wy[row] + sm.spread * sm.big_w);  // multiplies p_c
                const T v = gv * sm.spread;                                   // multiplies w_c
                const T l = lse[row];
                if (w) {
                    NNFORGE_LOSS_PRAGMA(omp simd)
                    for (int64_t k = 0; k < c; ++k) gr[k] = exp_vec(zr[k] - l) * a - w[k] * v;
                } else {
                    NNFORGE_LOSS_PRAGMA(omp simd)
                    for (int64_t k = 0; k < c; ++k) gr[k] = exp_vec(zr[k] - l) * a - v;
                }
                if (valid) gr[y[row]] -= gv * sm.keep * wy[row];
            }
        });
        return;
    }
    const int64_t tiles_per_sample = (d + kTile - 1) / kTile;
    const int64_t tiles = n * tiles_per_sample;
    parallel_runs(tiles, n * c * d, kLossParallelMin, [&](int64_t begin, int64_t end) {
        T a[kTile], v[kTile];
        for (int64_t tile = begin; tile < end; ++tile) {
            const int64_t sample = tile / tiles_per_sample;
            const int64_t j0 = (tile % tiles_per_sample) * kTile;
            const int64_t len = d - j0 < kTile ? d - j0 : kTile;
            const int64_t pos0 = sample * d + j0;
            for (int64_t j = 0; j < len; ++j) {
                const int64_t pos = pos0 + j;
                const T gv = y[pos] != ignore_index ? g[pos] : T(0);
                a[j] = gv * (sm.keep * wy[pos] + sm.spread * sm.big_w);
                v[j] = gv * sm.spread;
            }
            const T* ls = lse + pos0;
            const T* zs = z + sample * c * d + j0;
            T* gs = gz + sample * c * d + j0;
            for (int64_t k = 0; k < c; ++k) {
                const T* zk = zs + k * d;
                T* gk = gs + k * d;
                const T wk = w ? w[k] : T(1);
                NNFORGE_LOSS_PRAGMA(omp simd)
                for (int64_t j = 0; j < len; ++j) gk[j] = exp_vec(zk[j] - ls[j]) * a[j] - wk * v[j];
            }
            for (int64_t j = 0; j < len; ++j) {
                const int64_t pos = pos0 + j;
                if (y[pos] != ignore_index) gs[y[pos] * d + j] -= g[pos] * sm.keep * wy[pos];
            }
        }
    });
}

}  // namespace
}  // namespace nnforge
