// The fused pointwise part of one recurrent time step (see rnn.h), forward and
// backward side by side. Included by rnn.cpp (portable build), rnn_avx2.cpp
// and rnn_avx512.cpp: each compiles its own copy for its own vector width
// (everything here has internal linkage). The loops over the H features of a
// row are plain and branch-free so the compiler vectorizes them; rows (batch
// samples) are split across threads, each row is written by one thread, so
// results do not depend on the thread count.
//
// Notation per row: a_* the gate pre-activations (x W_ih^T + b_ih + h W_hh^T +
// b_hh, plus peephole terms), sigma the logistic function, dh the total
// gradient reaching h_t (from y_t and from step t + 1), dc the one reaching c_t.
#pragma once

#include <cmath>
#include <cstdint>

#include "cpu/rnn.h"
#include "cpu/vec_math.h"

#if defined(NNFORGE_OPENMP)
#include <omp.h>
#endif

// The row loops are vectorized as written: the pointers of one row never
// overlap (each is a different array or a different gate block).
#if defined(_OPENMP)
#define NNFORGE_RNN_SIMD _Pragma("omp simd")
#else
#define NNFORGE_RNN_SIMD
#endif

namespace nnforge {
namespace rnn_detail {

// (Defined identically in every file that includes this header: one type.)
// One time step over all rows. Forward fields: gates (B, G H) holds the
// pre-activations on entry (GRU: x W_ih^T + b_ih only; gh = h W_hh^T + b_hh)
// and the activations on exit; h, c the state (B, H), updated in place for
// running rows; y, cell, ghn the step's slices of y, cells, gh_n.
// Backward fields: act the saved activations, dh_carry the gradient from step
// t + 1 (B, H), dy this step's output gradient, dc (B, H) dc_t on entry and
// dc_{t-1} on exit; dgi / dgh (B, G H) get the pre-activation gradients for
// W_ih and W_hh (the same array except for GRU); dh_next gets the part of
// dh_{t-1} that does not go through W_hh (0, GRU's z dh, or dh for a row
// that does not run).
template <typename T>
struct RnnStep {
    RnnSpec s;
    int64_t t = 0;
    const int64_t* lengths = nullptr;
    const T* peep = nullptr;
    // forward
    T* gates = nullptr;
    const T* gh = nullptr;
    T* h = nullptr;
    T* c = nullptr;
    T* y = nullptr;
    T* cell = nullptr;
    T* ghn = nullptr;
    // backward
    const T* act = nullptr;
    const T* h_prev = nullptr;
    const T* c_prev = nullptr;
    const T* c_cur = nullptr;
    const T* ghn_saved = nullptr;
    const T* dy = nullptr;
    const T* dh_carry = nullptr;
    T* dc = nullptr;
    T* dgi = nullptr;
    T* dgh = nullptr;
    T* dh_next = nullptr;
};
}  // namespace rnn_detail

namespace {
using rnn_detail::RnnStep;

inline float sigmoid_v(float x) { return 1.0f / (1.0f + exp_vec(-x)); }
inline double sigmoid_v(double x) { return 1.0 / (1.0 + std::exp(-x)); }
// tanh x = 2 sigma(2x) - 1 (absolute error ~1e-7 in float; double uses std::tanh).
inline float tanh_v(float x) { return 2.0f / (1.0f + exp_vec(-2.0f * x)) - 1.0f; }
inline double tanh_v(double x) { return std::tanh(x); }


// body(b) for every row b, split across threads when the step is large enough
// to pay for waking them.
template <typename Body>
void for_rows(int64_t rows, int64_t work, const Body& body) {
#if defined(NNFORGE_OPENMP)
    if (rows > 1 && work >= 8192 && omp_get_max_threads() > 1) {
#pragma omp parallel for schedule(static)
        for (int64_t b = 0; b < rows; ++b) body(b);
        return;
    }
#endif
    for (int64_t b = 0; b < rows; ++b) body(b);
}

// ---- Elman RNN: h_t = act(a), a = x W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh;
// saved gate = h_t; da = dh (1 - h_t^2) for tanh, dh [h_t > 0] for relu.
template <typename T, bool kRelu>
void rnn_forward_row(T* a, T* h, T* y, int64_t H) {
    NNFORGE_RNN_SIMD
    for (int64_t j = 0; j < H; ++j) {
        const T v = kRelu ? (a[j] > T(0) ? a[j] : T(0)) : tanh_v(a[j]);
        a[j] = v;
        h[j] = v;
        y[j] = v;
    }
}

template <typename T, bool kRelu>
void rnn_backward_row(const T* act, const T* dy, const T* carry, T* da, T* dh_next, int64_t H) {
    NNFORGE_RNN_SIMD
    for (int64_t j = 0; j < H; ++j) {
        const T dh = carry[j] + dy[j];
        const T v = act[j];
        da[j] = kRelu ? (v > T(0) ? dh : T(0)) : dh * (T(1) - v * v);
        dh_next[j] = T(0);
    }
}

// ---- LSTM (Hochreiter & Schmidhuber 1997, with forget gate, PyTorch's form):
//   i = sigma(a_i + p_i c_{t-1}), f = sigma(a_f + p_f c_{t-1}), g = tanh(a_g),
//   c_t = f c_{t-1} + i g,  o = sigma(a_o + p_o c_t),  h_t = o tanh(c_t)
// with the peephole terms p (Gers & Schmidhuber 2000) only when kPeep, and
// i = 1 - f when kCoupled (then the gate blocks are f, g, o).
template <typename T, bool kPeep, bool kCoupled>
void lstm_forward_row(T* gates, const T* peep, T* h, T* c, T* y, T* cell, int64_t H) {
    T* gi = kCoupled ? nullptr : gates;
    T* gf = gates + (kCoupled ? 0 : H);
    T* gg = gates + (kCoupled ? 1 : 2) * H;
    T* go = gates + (kCoupled ? 2 : 3) * H;
    const T* pi = kCoupled ? nullptr : peep;
    const T* pf = kPeep ? peep + (kCoupled ? 0 : H) : nullptr;
    const T* po = kPeep ? peep + (kCoupled ? 1 : 2) * H : nullptr;
    NNFORGE_RNN_SIMD
    for (int64_t j = 0; j < H; ++j) {
        const T cp = c[j];
        T af = gf[j], ao = go[j];
        if constexpr (kPeep) af += pf[j] * cp;
        const T f = sigmoid_v(af);
        T i;
        if constexpr (kCoupled) {
            i = T(1) - f;
        } else {
            T ai = gi[j];
            if constexpr (kPeep) ai += pi[j] * cp;
            i = sigmoid_v(ai);
            gi[j] = i;
        }
        const T g = tanh_v(gg[j]);
        const T cn = f * cp + i * g;
        if constexpr (kPeep) ao += po[j] * cn;
        const T o = sigmoid_v(ao);
        const T hn = o * tanh_v(cn);
        gf[j] = f;
        gg[j] = g;
        go[j] = o;
        c[j] = cn;
        cell[j] = cn;
        h[j] = hn;
        y[j] = hn;
    }
}

// Backward of the step above:
//   da_o = dh tanh(c_t) o (1 - o)
//   dc   = dc_t + dh o (1 - tanh^2 c_t) + p_o da_o
//   da_g = dc i (1 - g^2),  da_i = dc g i (1 - i),  da_f = dc c_{t-1} f (1 - f)
//   coupled (i = 1 - f): da_f = dc (c_{t-1} - g) f (1 - f)
//   dc_{t-1} = dc f + p_i da_i + p_f da_f
template <typename T, bool kPeep, bool kCoupled>
void lstm_backward_row(const T* act, const T* peep, const T* c_prev, const T* c_cur, const T* dy,
                       const T* carry, T* dc, T* dg, T* dh_next, int64_t H) {
    const T* gi = kCoupled ? nullptr : act;
    const T* gf = act + (kCoupled ? 0 : H);
    const T* gg = act + (kCoupled ? 1 : 2) * H;
    const T* go = act + (kCoupled ? 2 : 3) * H;
    T* di = kCoupled ? nullptr : dg;
    T* df = dg + (kCoupled ? 0 : H);
    T* dgg = dg + (kCoupled ? 1 : 2) * H;
    T* dgo = dg + (kCoupled ? 2 : 3) * H;
    const T* pi = kCoupled ? nullptr : peep;
    const T* pf = kPeep ? peep + (kCoupled ? 0 : H) : nullptr;
    const T* po = kPeep ? peep + (kCoupled ? 1 : 2) * H : nullptr;
    NNFORGE_RNN_SIMD
    for (int64_t j = 0; j < H; ++j) {
        const T dh = carry[j] + dy[j];
        const T f = gf[j], g = gg[j], o = go[j];
        const T tc = tanh_v(c_cur[j]);
        const T dao = dh * tc * o * (T(1) - o);
        T dct = dc[j] + dh * o * (T(1) - tc * tc);
        if constexpr (kPeep) dct += po[j] * dao;
        const T cp = c_prev[j];
        T i, daf, dcp;
        if constexpr (kCoupled) {
            i = T(1) - f;
            daf = dct * (cp - g) * f * (T(1) - f);
            dcp = dct * f;
        } else {
            i = gi[j];
            const T dai = dct * g * i * (T(1) - i);
            daf = dct * cp * f * (T(1) - f);
            dcp = dct * f;
            if constexpr (kPeep) dcp += pi[j] * dai;
            di[j] = dai;
        }
        if constexpr (kPeep) dcp += pf[j] * daf;
        df[j] = daf;
        dgg[j] = dct * i * (T(1) - g * g);
        dgo[j] = dao;
        dc[j] = dcp;
        dh_next[j] = T(0);
    }
}

// ---- GRU (Cho et al. 2014, PyTorch's reset-after form), gi = x W_ih^T + b_ih,
// gh = h_{t-1} W_hh^T + b_hh, blocks r, z, n:
//   r = sigma(gi_r + gh_r), z = sigma(gi_z + gh_z), n = tanh(gi_n + r gh_n)
//   h_t = (1 - z) n + z h_{t-1}
template <typename T>
void gru_forward_row(T* gates, const T* gh, T* h, T* y, T* ghn, int64_t H) {
    NNFORGE_RNN_SIMD
    for (int64_t j = 0; j < H; ++j) {
        const T r = sigmoid_v(gates[j] + gh[j]);
        const T z = sigmoid_v(gates[H + j] + gh[H + j]);
        const T hn_lin = gh[2 * H + j];
        const T n = tanh_v(gates[2 * H + j] + r * hn_lin);
        const T hv = (T(1) - z) * n + z * h[j];
        gates[j] = r;
        gates[H + j] = z;
        gates[2 * H + j] = n;
        ghn[j] = hn_lin;
        h[j] = hv;
        y[j] = hv;
    }
}

// Backward:  da_n = dh (1 - z) (1 - n^2),  da_z = dh (h_{t-1} - n) z (1 - z),
//   da_r = da_n gh_n r (1 - r);  dgi = (da_r, da_z, da_n), dgh = (da_r, da_z, r da_n),
//   dh_{t-1} = z dh + dgh W_hh (the GEMM adds the second term).
template <typename T>
void gru_backward_row(const T* act, const T* ghn, const T* h_prev, const T* dy, const T* carry,
                      T* dgi, T* dgh, T* dh_next, int64_t H) {
    NNFORGE_RNN_SIMD
    for (int64_t j = 0; j < H; ++j) {
        const T dh = carry[j] + dy[j];
        const T r = act[j], z = act[H + j], n = act[2 * H + j];
        const T dan = dh * (T(1) - z) * (T(1) - n * n);
        const T daz = dh * (h_prev[j] - n) * z * (T(1) - z);
        const T dar = dan * ghn[j] * r * (T(1) - r);
        dgi[j] = dar;
        dgi[H + j] = daz;
        dgi[2 * H + j] = dan;
        dgh[j] = dar;
        dgh[H + j] = daz;
        dgh[2 * H + j] = r * dan;
        dh_next[j] = z * dh;
    }
}

template <typename T, bool kPeep, bool kCoupled>
void lstm_step_forward(const RnnStep<T>& st) {
    const int64_t H = st.s.hidden, GH = st.s.gate_blocks() * H;
    for_rows(st.s.batch, st.s.batch * GH, [&](int64_t b) {
        T* c = st.c + b * H;
        if (st.lengths && st.t >= st.lengths[b]) {
            for (int64_t j = 0; j < H; ++j) st.y[b * H + j] = T(0);
            for (int64_t j = 0; j < H; ++j) st.cell[b * H + j] = c[j];
            return;
        }
        lstm_forward_row<T, kPeep, kCoupled>(st.gates + b * GH, st.peep, st.h + b * H, c,
                                             st.y + b * H, st.cell + b * H, H);
    });
}

template <typename T, bool kPeep, bool kCoupled>
void lstm_step_backward(const RnnStep<T>& st) {
    const int64_t H = st.s.hidden, GH = st.s.gate_blocks() * H;
    for_rows(st.s.batch, st.s.batch * GH, [&](int64_t b) {
        if (st.lengths && st.t >= st.lengths[b]) return;  // handled by pass_through
        lstm_backward_row<T, kPeep, kCoupled>(st.act + b * GH, st.peep, st.c_prev + b * H,
                                              st.c_cur + b * H, st.dy + b * H,
                                              st.dh_carry + b * H, st.dc + b * H,
                                              st.dgi + b * GH, st.dh_next + b * H, H);
    });
}

// Rows that do not run at step t (t >= length): no gate gradient, and the
// state's gradient passes through unchanged (dc is left as it is).
template <typename T>
void pass_through_rows(const RnnStep<T>& st) {
    if (!st.lengths) return;
    const int64_t H = st.s.hidden, GH = st.s.gate_blocks() * H;
    for (int64_t b = 0; b < st.s.batch; ++b) {
        if (st.t < st.lengths[b]) continue;
        for (int64_t j = 0; j < GH; ++j) st.dgi[b * GH + j] = T(0);
        if (st.dgh != st.dgi)
            for (int64_t j = 0; j < GH; ++j) st.dgh[b * GH + j] = T(0);
        for (int64_t j = 0; j < H; ++j) st.dh_next[b * H + j] = st.dh_carry[b * H + j];
    }
}

template <typename T>
void step_forward_kernel(const RnnStep<T>& st) {
    const int64_t H = st.s.hidden, GH = st.s.gate_blocks() * H;
    switch (st.s.mode) {
        case RnnMode::lstm:
            if (st.s.peephole) {
                if (st.s.coupled) return lstm_step_forward<T, true, true>(st);
                return lstm_step_forward<T, true, false>(st);
            }
            if (st.s.coupled) return lstm_step_forward<T, false, true>(st);
            return lstm_step_forward<T, false, false>(st);
        case RnnMode::gru:
            for_rows(st.s.batch, st.s.batch * GH, [&](int64_t b) {
                if (st.lengths && st.t >= st.lengths[b]) {
                    for (int64_t j = 0; j < H; ++j) st.y[b * H + j] = T(0);
                    return;
                }
                gru_forward_row<T>(st.gates + b * GH, st.gh + b * GH, st.h + b * H,
                                   st.y + b * H, st.ghn + b * H, H);
            });
            return;
        default: {
            const bool relu = st.s.mode == RnnMode::rnn_relu;
            for_rows(st.s.batch, st.s.batch * GH, [&](int64_t b) {
                if (st.lengths && st.t >= st.lengths[b]) {
                    for (int64_t j = 0; j < H; ++j) st.y[b * H + j] = T(0);
                    return;
                }
                if (relu) {
                    rnn_forward_row<T, true>(st.gates + b * GH, st.h + b * H, st.y + b * H, H);
                } else {
                    rnn_forward_row<T, false>(st.gates + b * GH, st.h + b * H, st.y + b * H, H);
                }
            });
        }
    }
}

template <typename T>
void step_backward_kernel(const RnnStep<T>& st) {
    const int64_t H = st.s.hidden, GH = st.s.gate_blocks() * H;
    pass_through_rows(st);
    switch (st.s.mode) {
        case RnnMode::lstm:
            if (st.s.peephole) {
                if (st.s.coupled) return lstm_step_backward<T, true, true>(st);
                return lstm_step_backward<T, true, false>(st);
            }
            if (st.s.coupled) return lstm_step_backward<T, false, true>(st);
            return lstm_step_backward<T, false, false>(st);
        case RnnMode::gru:
            for_rows(st.s.batch, st.s.batch * GH, [&](int64_t b) {
                if (st.lengths && st.t >= st.lengths[b]) return;
                gru_backward_row<T>(st.act + b * GH, st.ghn_saved + b * H, st.h_prev + b * H,
                                    st.dy + b * H, st.dh_carry + b * H, st.dgi + b * GH,
                                    st.dgh + b * GH, st.dh_next + b * H, H);
            });
            return;
        default: {
            const bool relu = st.s.mode == RnnMode::rnn_relu;
            for_rows(st.s.batch, st.s.batch * GH, [&](int64_t b) {
                if (st.lengths && st.t >= st.lengths[b]) return;
                if (relu) {
                    rnn_backward_row<T, true>(st.act + b * GH, st.dy + b * H,
                                              st.dh_carry + b * H, st.dgi + b * GH,
                                              st.dh_next + b * H, H);
                } else {
                    rnn_backward_row<T, false>(st.act + b * GH, st.dy + b * H,
                                               st.dh_carry + b * H, st.dgi + b * GH,
                                               st.dh_next + b * H, H);
                }
            });
        }
    }
}

}  // namespace
}  // namespace nnforge
