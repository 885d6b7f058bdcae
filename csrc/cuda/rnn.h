// CUDA recurrent layers, host-side view (bindings include this; no CUDA
// headers): Elman RNN (tanh, relu), LSTM (plain, peephole, coupled input and
// forget gate) and GRU, one direction of one layer per call, forward and
// backward through time. The GPU twin of csrc/cpu/rnn.h: same layouts, same
// equations, same `saved` arrays.
//
// Layout (C-contiguous float32 or float64 DeviceArrays; T steps, B rows,
// I input and H hidden features; G gate blocks of H):
//   x (T, B, I); h0, c0, h_n, c_n (B, H); y (T, B, H)
//   w_ih (G H, I), w_hh (G H, H), b_ih, b_hh (G H) in PyTorch's gate order:
//     RNN G = 1; LSTM G = 4 (i, f, g, o); coupled LSTM G = 3 (f, g, o; i = 1 - f);
//     GRU G = 3 (r, z, n)
//   peephole (LSTM only): (3 H) = (p_i, p_f, p_o); coupled: (2 H) = (p_f, p_o)
//   lengths: int64 (B,) on the device, or absent (every row runs T steps):
//     row b runs step t when t < lengths[b]; later steps keep its state and
//     give y = 0 (packed-sequence semantics: h_n/c_n are each row's own last
//     state). Values are not range-checked here (that would need a host sync;
//     backend/cuda_rnn.py checks them on the host): any value is memory-safe.
//
// Equations (a = x W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh per gate block):
//   RNN   h_t = tanh(a) | relu(a)
//   LSTM  i = s(a_i + p_i c_{t-1}), f = s(a_f + p_f c_{t-1}), g = tanh(a_g),
//         c_t = f c_{t-1} + i g, o = s(a_o + p_o c_t), h_t = o tanh(c_t)
//         (coupled: i = 1 - f; p only with a peephole)
//   GRU   gi = x W_ih^T + b_ih, gh = h_{t-1} W_hh^T + b_hh (blocks r, z, n):
//         r = s(gi_r + gh_r), z = s(gi_z + gh_z), n = tanh(gi_n + r gh_n),
//         h_t = (1 - z) n + z h_{t-1}
//
// Saved for backward (written by the forward, read by the backward):
//   gates (T, B, G H): the activated gates (RNN: h_t itself)
//   cells (T, B, H):   c_t (LSTM only; a row that does not run keeps c)
//   gh_n (T, B, H):    W_hn h_{t-1} + b_hn (GRU only)
//
// How it runs (rnn.cu, kernels in rnn_kernels.cuh), all on the device's
// default stream, no host synchronization:
//   forward   A = X W_ih^T + b_ih: ONE GEMM over the T B rows (gemm.h);
//             per step: A_t += h_{t-1} W_hh^T + b_hh (GRU: gh = ..., its own
//             buffer) by one GEMM, then one fused gate kernel (nonlinearities,
//             cell update, length masking, y_t, saved activations). A product
//             split along K (small B) leaves S partial products that the
//             consuming step kernel sums in fixed order: two launches a step.
//   backward  per step t = T-1 .. 0: one fused kernel gives dG_t (the
//             gradient of the pre-activations; GRU: dG_i and dG_h) and the
//             direct part of dh_{t-1}; then dh_{t-1} += dG_h,t W_hh by one GEMM.
//             After the loop: dX = dG W_ih, dW_ih = dG^T X, dW_hh = dG_h^T H_prev
//             (H_prev = (h0, y_0 .. y_{T-2}): two GEMMs), db by a deterministic
//             column-sum kernel, dpeephole by a column-dot kernel.
#pragma once

#include <string>

#include "cuda/device_array.h"

namespace nnforge {
namespace cuda {

enum class RnnCell { rnn_tanh, rnn_relu, lstm, gru };

// One layer's inputs (pointers: absent when null). Shapes are checked by the
// functions below (std::invalid_argument naming the op, the argument and the shapes).
struct RnnLayer {
    RnnCell mode = RnnCell::lstm;
    bool coupled = false;
    const DeviceArray* x = nullptr;
    const DeviceArray* h0 = nullptr;
    const DeviceArray* c0 = nullptr;  // LSTM only (required there)
    const DeviceArray* w_ih = nullptr;
    const DeviceArray* w_hh = nullptr;
    const DeviceArray* b_ih = nullptr;
    const DeviceArray* b_hh = nullptr;
    const DeviceArray* peephole = nullptr;  // LSTM only
    const DeviceArray* lengths = nullptr;   // int64 (B,)
};

RnnCell parse_rnn_mode(const std::string& mode, const char* op);  // "rnn_tanh" ... "gru"

struct RnnForwardResult {
    DeviceArray y, h_n;
    bool has_c_n = false, saved = false;
    DeviceArray c_n;                 // LSTM
    DeviceArray gates, cells, gh_n;  // when `saved`: gates always, cells LSTM, gh_n GRU
};

// save=false (inference): the gates etc. are scratch, freed on return.
RnnForwardResult rnn_forward(const RnnLayer& layer, bool save);

struct RnnBackwardResult {
    bool has_dx = false, has_dc0 = false, has_dw = false, has_db_ih = false, has_db_hh = false,
         has_dpeephole = false;
    DeviceArray dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dpeephole;
};

// The saved arrays are the forward's (y, gates, cells, gh_n); dc_n LSTM only.
// need_dx / need_dw false: dx / the parameter gradients are not computed.
RnnBackwardResult rnn_backward(const RnnLayer& layer, const DeviceArray& y,
                               const DeviceArray& gates, const DeviceArray* cells,
                               const DeviceArray* gh_n, const DeviceArray& dy,
                               const DeviceArray& dh_n, const DeviceArray* dc_n, bool need_dx,
                               bool need_dw);

// a (T, B, ...) C-contiguous with each row's first lengths[b] steps reversed
// (all T when lengths is null; lengths clamped to [0, T]); later steps stay.
DeviceArray rnn_time_reverse(const DeviceArray& a, const DeviceArray* lengths);

}  // namespace cuda
}  // namespace nnforge
