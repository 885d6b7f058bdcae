"""CPU recurrent layers over nnforge._C.cpu.rnn_forward / rnn_backward (csrc/cpu/rnn.cpp).

One call runs one direction of one layer over all T steps (arrays in, arrays
out, never Tensors). ``reverse=True`` runs the layer backwards in time: each
row's first ``lengths[b]`` steps are reversed (padding stays where it is), the
layer runs forward over that, and the outputs are reversed back, so the
reverse direction of a bidirectional layer sees each sequence from its own
last step, as PyTorch's packed sequences do.
"""
from __future__ import annotations

import numpy as np

__all__ = ["rnn_layer_forward", "rnn_layer_backward", "rnn_time_reverse"]


def _kernels():
    from .._C import cpu  # on first use: numpy-only code never needs it
    return cpu


def _c(a):
    return None if a is None else np.ascontiguousarray(a)


def rnn_time_reverse(a: np.ndarray, lengths) -> np.ndarray:
    """a (T, B, ...) with each row's first lengths[b] steps in reverse order (all T
    steps when lengths is None); steps from lengths[b] on stay in place. Its own inverse."""
    if lengths is None:
        return np.ascontiguousarray(a[::-1])
    steps, batch = a.shape[0], a.shape[1]
    t = np.arange(steps)[:, None]
    lengths = np.asarray(lengths)[None, :]
    src = np.where(t < lengths, lengths - 1 - t, t)  # (T, B)
    return a[src, np.arange(batch)[None, :]]


def rnn_layer_forward(mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh, peephole, lengths,
                      coupled=False, reverse=False, save=True):
    """One layer, one direction. Returns (y, h_n, c_n, saved): y (T, B, H), h_n
    (and c_n for LSTM, else None) (B, H), and ``saved``, what rnn_layer_backward needs
    (None when ``save`` is False: inference, nothing kept for backward)."""
    args = [_c(a) for a in (x, h0, c0, w_ih, w_hh, b_ih, b_hh, peephole)]
    if lengths is not None:
        lengths = np.ascontiguousarray(lengths, dtype=np.int64)
    if reverse:
        args[0] = rnn_time_reverse(args[0], lengths)
    y, h_n, c_n, gates, cells, gh_n = _kernels().rnn_forward(mode, *args, lengths, coupled,
                                                             save)
    saved = (mode, args, lengths, coupled, reverse, y, gates, cells, gh_n) if save else None
    if reverse:
        y = rnn_time_reverse(y, lengths)
    return y, h_n, c_n, saved


def rnn_layer_backward(saved, dy, dh_n, dc_n, need_dx=True, need_dw=True):
    """Gradients (dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dpeephole) for upstream
    gradients dy (T, B, H), dh_n and dc_n (B, H; LSTM only, else None). ``need_dx`` /
    ``need_dw`` False skip dx / the parameter gradients (None then)."""
    mode, args, lengths, coupled, reverse, y, gates, cells, gh_n = saved
    dy = np.ascontiguousarray(dy, dtype=y.dtype)
    if reverse:
        dy = rnn_time_reverse(dy, lengths)
    cast = lambda a: None if a is None else np.ascontiguousarray(a, dtype=y.dtype)  # noqa: E731
    grads = _kernels().rnn_backward(mode, *args, lengths, coupled, y, gates, cells, gh_n, dy,
                                    cast(dh_n), cast(dc_n), need_dx, need_dw)
    if reverse and grads[0] is not None:
        grads = (rnn_time_reverse(grads[0], lengths),) + tuple(grads[1:])
    return grads
