// Fused recurrent layers on the CPU (csrc/cpu/rnn.cpp): Elman RNN (tanh, relu),
// LSTM (plain, peephole, coupled input/forget) and GRU, one direction of one
// layer per call, forward and backward through time.
//
// Layout (all C-contiguous, T steps, B batch rows, I input and H hidden features):
//   x (T, B, I); h0, c0, h_n, c_n (B, H); y (T, B, H)
//   w_ih (G H, I), w_hh (G H, H), b_ih, b_hh (G H) in PyTorch's gate order:
//     RNN G = 1; LSTM G = 4 (i, f, g, o); coupled LSTM G = 3 (f, g, o; i = 1 - f);
//     GRU G = 3 (r, z, n)
//   peephole (LSTM only): (3 H) = (p_i, p_f, p_o), coupled: (2 H) = (p_f, p_o)
//   lengths (B) int64 in [0, T] or null (all T): step t of row b runs when
//     t < lengths[b]; later steps keep the state and give y = 0 (PyTorch's
//     packed-sequence semantics, so h_n/c_n are each row's own last state).
//
// Saved for backward (written by the forward, read by the backward):
//   gates (T, B, G H): the activated gates (RNN: h_t itself)
//   cells (T, B, H):   c_t (LSTM only)
//   gh_n (T, B, H):    W_hn h_{t-1} + b_hn (GRU only: the reset gate scales it)
//
// How it runs: the input projection of all steps is one GEMM, X W_ih^T + b
// over T B rows; each step is one GEMM of the state with W_hh (all gates at
// once) and one fused pointwise update split across batch rows. The backward
// walks the steps in reverse (pointwise gate gradients, then dh_{t-1} by one
// GEMM with W_hh) and ends with GEMMs over all steps for dW_ih, dW_hh and dx.
// Results do not depend on the thread count.
#pragma once

#include <cstdint>

namespace nnforge {

enum class RnnMode { rnn_tanh, rnn_relu, lstm, gru };

struct RnnSpec {
    RnnMode mode = RnnMode::lstm;
    bool peephole = false;  // LSTM only
    bool coupled = false;   // LSTM only
    int64_t steps = 0, batch = 0, input = 0, hidden = 0;

    // G: gate blocks of H rows in w_ih / w_hh.
    int64_t gate_blocks() const {
        switch (mode) {
            case RnnMode::lstm: return coupled ? 3 : 4;
            case RnnMode::gru: return 3;
            default: return 1;
        }
    }
    int64_t peephole_size() const { return peephole ? (coupled ? 2 : 3) * hidden : 0; }
};

template <typename T>
struct RnnParams {
    const T* w_ih = nullptr;
    const T* w_hh = nullptr;
    const T* b_ih = nullptr;      // or null
    const T* b_hh = nullptr;      // or null
    const T* peephole = nullptr;  // when spec.peephole
};

template <typename T>
struct RnnSaved {
    T* gates = nullptr;  // (T, B, G H)
    T* cells = nullptr;  // (T, B, H), LSTM
    T* gh_n = nullptr;   // (T, B, H), GRU
};

// Forward. c0 / c_n only for LSTM (else ignored). Null pointers in `saved`
// mean inference: those arrays then live in a per-thread scratch workspace.
// Throws std::bad_alloc when the workspace cannot be allocated.
template <typename T>
void rnn_layer_forward(const RnnSpec& s, const RnnParams<T>& p, const T* x, const T* h0,
                       const T* c0, const int64_t* lengths, T* y, T* h_n, T* c_n,
                       const RnnSaved<T>& saved);

template <typename T>
struct RnnGrads {
    T* dx = nullptr;        // (T, B, I)
    T* dh0 = nullptr;       // (B, H)
    T* dc0 = nullptr;       // (B, H), LSTM
    T* dw_ih = nullptr;     // (G H, I)
    T* dw_hh = nullptr;     // (G H, H)
    T* db_ih = nullptr;     // (G H) or null
    T* db_hh = nullptr;     // (G H) or null
    T* dpeephole = nullptr; // peephole_size() or null
};

// Backward through time for upstream gradients dy (T, B, H), dh_n and dc_n
// (B, H; dc_n LSTM only), given the forward's inputs, y and saved arrays.
// dx, dw_ih, dw_hh, db_*, dpeephole may be null (not wanted: not computed);
// dh0 (and dc0 for LSTM) are always written.
template <typename T>
void rnn_layer_backward(const RnnSpec& s, const RnnParams<T>& p, const T* x, const T* h0,
                        const T* c0, const int64_t* lengths, const T* y,
                        const RnnSaved<T>& saved, const T* dy, const T* dh_n, const T* dc_n,
                        const RnnGrads<T>& g);

}  // namespace nnforge
