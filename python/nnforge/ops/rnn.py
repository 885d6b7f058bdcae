"""Recurrent layers and cells as differentiable ops over the fused kernels
(csrc/cpu/rnn.cpp): one ``Function`` call runs one direction of one layer over
all T steps, forward and backward through time in C++.

Per step t (PyTorch's formulations and gate orders; W_ih (G H, I), W_hh (G H, H)):

    Elman:  h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)            act = tanh | relu
    LSTM:   (i, f, g, o) = (sigma, sigma, tanh, sigma)(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
            c_t = f c_{t-1} + i g,  h_t = o tanh(c_t)
            peephole (Gers & Schmidhuber 2000): i, f add p_i c_{t-1}, p_f c_{t-1};
            o adds p_o c_t (p = (p_i, p_f, p_o), each (H,))
            coupled: gate blocks (f, g, o), i = 1 - f (peephole (p_f, p_o))
    GRU:    r = sigma(W_ir x + b_ir + W_hr h + b_hr), z = sigma(W_iz x + b_iz + W_hz h + b_hz)
            n = tanh(W_in x + b_in + r (W_hn h + b_hn)),  h_t = (1 - z) n + z h_{t-1}

The backward is backpropagation through time: the gate gradients per step
(rnn_kernels.h writes out each derivative), dh_{t-1} through W_hh, and the
weight gradients as GEMMs over all steps (dW_ih = dG^T X, dW_hh = dG^T H_prev).
With ``lengths``, row b runs steps t < lengths[b] only; later steps keep its
state and output zeros, so h_n/c_n are its own last state (packed-sequence
semantics).
"""
from __future__ import annotations

import numpy as np

from ..autograd.function import Function
from ..tensor import Tensor
from ._util import check_tensor

__all__ = ["rnn_layer", "rnn_tanh_cell", "rnn_relu_cell", "lstm_cell", "gru_cell"]

MODES = ("rnn_tanh", "rnn_relu", "lstm", "gru")


class RecurrentLayer(Function):
    """One direction of one layer: (x, h0, c0, weights) -> (y, h_n[, c_n])."""

    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, b_ih, b_hh, peephole, mode, coupled, lengths,
                reverse):
        save = any(ctx.needs_input_grad)
        y, h_n, c_n, saved = ctx.backend.rnn_layer_forward(
            mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh, peephole, lengths, coupled, reverse, save)
        if save:
            ctx.saved = saved
            # Registered so that an in-place edit of an input (or of y) before
            # backward is caught.
            ctx.save_for_backward(*[a for a in (x, h0, c0, w_ih, w_hh, b_ih, b_hh, peephole)
                                    if a is not None], *(() if reverse else (y,)))
        return (y, h_n) if c_n is None else (y, h_n, c_n)

    def _release(self) -> None:
        super()._release()
        self.saved = None  # the gates and cells: free them with the graph

    @staticmethod
    def backward(ctx, dy, dh_n, dc_n=None):
        ctx.saved_tensors  # noqa: B018 (raises if freed or modified in place)
        need = ctx.needs_input_grad
        dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dp = ctx.backend.rnn_layer_backward(
            ctx.saved, dy, dh_n, dc_n, need_dx=need[0], need_dw=any(need[3:8]))
        return dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dp, None, None, None, None


def _gate_blocks(mode: str, coupled: bool) -> int:
    return {"rnn_tanh": 1, "rnn_relu": 1, "gru": 3}.get(mode, 3 if coupled else 4)


def _shape(x) -> tuple:
    return tuple(x.shape)


def _check_lengths(lengths, steps: int, batch: int, op: str):
    """lengths as a host int64 numpy array (batch,) with values in [0, T] (or None):
    sequence metadata, handed to every backend's rnn_layer_forward on the host."""
    if lengths is None:
        return None
    if isinstance(lengths, Tensor):  # host metadata, as PyTorch keeps lengths on the CPU
        lengths = lengths.cpu().numpy()
    arr = np.asarray(lengths)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{op}: lengths must hold integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64).reshape(-1)
    if arr.shape != (batch,):
        raise ValueError(f"{op}: lengths must have one entry per batch row ({batch}), got "
                         f"{arr.size}")
    if arr.size and (arr.min() < 0 or arr.max() > steps):
        raise ValueError(f"{op}: lengths must be in [0, {steps}] (the sequence length), got "
                         f"{arr.tolist()}")
    return arr


def rnn_layer(input: Tensor, hx: Tensor, weight_ih: Tensor, weight_hh: Tensor,
              bias_ih: Tensor | None = None, bias_hh: Tensor | None = None, *, mode: str,
              cx: Tensor | None = None, peephole: Tensor | None = None, coupled: bool = False,
              lengths=None, reverse: bool = False):
    """One direction of one recurrent layer over ``input`` (T, B, I) from state ``hx``
    (B, H) (and ``cx`` for LSTM). ``mode`` is 'rnn_tanh', 'rnn_relu', 'lstm' or 'gru'.
    Returns (output (T, B, H), h_n (B, H)), plus c_n for LSTM.

    >>> import nnforge as nf
    >>> x, h = nf.randn(5, 2, 3), nf.zeros(2, 4)
    >>> from nnforge.ops.rnn import rnn_layer
    >>> y, h_n = rnn_layer(x, h, nf.randn(12, 3), nf.randn(12, 4), mode="gru")
    >>> tuple(y.shape), tuple(h_n.shape)
    ((5, 2, 4), (2, 4))
    """
    op = f"rnn_layer({mode})" if mode in MODES else "rnn_layer"
    if mode not in MODES:
        raise ValueError(f"rnn_layer: mode must be one of {MODES}, got {mode!r}")
    check_tensor(input, op)
    check_tensor(hx, op, "hx")
    check_tensor(weight_ih, op, "weight_ih")
    check_tensor(weight_hh, op, "weight_hh")
    if input.ndim != 3:
        raise ValueError(f"{op}: input must be 3-D (T, B, I), got shape {_shape(input)}")
    if weight_hh.ndim != 2:
        raise ValueError(f"{op}: weight_hh must be 2-D (G*H, H), got shape {_shape(weight_hh)}")
    steps, batch, feat = input.shape
    hidden = weight_hh.shape[1]
    gh = _gate_blocks(mode, coupled) * hidden
    expect = {"weight_ih": (weight_ih, (gh, feat)), "weight_hh": (weight_hh, (gh, hidden)),
              "hx": (hx, (batch, hidden)), "bias_ih": (bias_ih, (gh,)),
              "bias_hh": (bias_hh, (gh,))}
    if mode == "lstm":
        if cx is None:
            raise ValueError(f"{op}: cx (the cell state) is required")
        expect["cx"] = (cx, (batch, hidden))
        if peephole is not None:
            expect["peephole"] = (peephole, ((2 if coupled else 3) * hidden,))
    elif cx is not None or peephole is not None or coupled:
        raise ValueError(f"{op}: cx, peephole and coupled are for mode 'lstm' only")
    for name, (t, shape) in expect.items():
        if t is None:
            continue
        check_tensor(t, op, name)
        if _shape(t) != shape:
            raise ValueError(f"{op}: {name} must have shape {shape} for input of shape "
                             f"{_shape(input)} and hidden size {hidden}, got {_shape(t)}")
        if t.dtype != input.dtype:
            raise TypeError(f"{op}: {name} has dtype {t.dtype.name}, input has "
                            f"{input.dtype.name}")
    if input.data.dtype.kind != "f" or input.dtype.name not in ("float32", "float64"):
        raise TypeError(f"{op}: input must be float32 or float64, got {input.dtype.name}")
    lengths = _check_lengths(lengths, steps, batch, op)
    return RecurrentLayer.apply(input, hx, cx, weight_ih, weight_hh, bias_ih, bias_hh, peephole,
                                mode, bool(coupled), lengths, bool(reverse))


# ---- cells: one step of the same fused kernels (T = 1)
def _cell(mode, input, hx, cx, w_ih, w_hh, b_ih, b_hh, **kw):
    out = rnn_layer(input.unsqueeze(0), hx, w_ih, w_hh, b_ih, b_hh, mode=mode, cx=cx, **kw)
    return out[1] if mode != "lstm" else (out[1], out[2])


def rnn_tanh_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None) -> Tensor:
    """h' = tanh(W_ih x + b_ih + W_hh h + b_hh) for input (B, I), hx (B, H)."""
    return _cell("rnn_tanh", input, hx, None, w_ih, w_hh, b_ih, b_hh)


def rnn_relu_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None) -> Tensor:
    """h' = relu(W_ih x + b_ih + W_hh h + b_hh) for input (B, I), hx (B, H)."""
    return _cell("rnn_relu", input, hx, None, w_ih, w_hh, b_ih, b_hh)


def lstm_cell(input, hx, cx, w_ih, w_hh, b_ih=None, b_hh=None, *, peephole=None,
              coupled=False):
    """One LSTM step: (h', c') for input (B, I), hx and cx (B, H)."""
    return _cell("lstm", input, hx, cx, w_ih, w_hh, b_ih, b_hh, peephole=peephole,
                 coupled=coupled)


def gru_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None) -> Tensor:
    """One GRU step: h' for input (B, I), hx (B, H)."""
    return _cell("gru", input, hx, None, w_ih, w_hh, b_ih, b_hh)
