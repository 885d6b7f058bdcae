"""CUDA recurrent layers over nnforge._C.cuda.rnn_forward / rnn_backward
(csrc/cuda/rnn.cu): the CPU backend's ``rnn_layer_forward``,
``rnn_layer_backward`` and ``rnn_time_reverse`` (cpu_rnn.py) with the same
arguments and results, on DeviceArrays.

One call runs one direction of one layer over all T steps: the input
projection of every step as one GEMM, then per step one recurrent GEMM and one
fused gate kernel; the backward walks the steps in reverse and ends with GEMMs
over all steps for dx, dW_ih and dW_hh. ``reverse=True`` reverses each row's
first ``lengths[b]`` steps on the device (rnn_time_reverse), runs forward and
reverses the output back, as the CPU backend does. float32 and float64 run in
the kernels; float16 and bfloat16 compute in float32 (every input is cast,
the results are cast back to the inputs' dtypes). ``lengths`` may be a host
array (checked here, then copied to the device once) or an int64 DeviceArray.
``saved`` holds device arrays (the forward's inputs, y and the gate
activations), opaque to callers.
"""
from __future__ import annotations

import numpy as np

from .cuda_core import _cuda, _is_dev, ascontiguous, from_host, zeros

__all__ = ["rnn_layer_forward", "rnn_layer_backward", "rnn_time_reverse"]

_KERNEL_DTYPES = ("float32", "float64")
_FLOATS = ("float32", "float64", "float16", "bfloat16")


def _work_name(x, op: str) -> str:
    if not _is_dev(x):
        raise TypeError(f"{op}: expected a CUDA DeviceArray for x, got {type(x).__name__}")
    if x.dtype_name not in _FLOATS:
        raise TypeError(f"{op}: x has dtype {x.dtype_name}; expected float32 or float64 "
                        f"(float16 / bfloat16 compute in float32), x of shape {tuple(x.shape)}")
    return x.dtype_name if x.dtype_name in _KERNEL_DTYPES else "float32"


def _as(a, work: str):
    """``a`` as a C-contiguous DeviceArray of dtype ``work`` (None stays None)."""
    if a is None:
        return None
    if a.dtype_name != work:
        return _cuda().astype(a, work)
    return a if a.is_contiguous() else ascontiguous(a)


def _back(a, name: str):
    return a if a is None or a.dtype_name == name else _cuda().astype(a, name)


def _check_same_dtype(op: str, x, named) -> None:
    for name, a in named:
        if a is None:
            continue
        if not _is_dev(a):
            raise TypeError(f"{op}: {name} must be a CUDA DeviceArray, got {type(a).__name__}")
        if a.dtype_name != x.dtype_name:
            raise ValueError(f"{op}: {name} has dtype {a.dtype_name}, expected {x.dtype_name} "
                             f"(x's), {name} of shape {tuple(a.shape)}")


def _lengths(lengths, steps: int, batch: int, op: str, device: int):
    """lengths as a contiguous int64 DeviceArray (batch,) with values in [0, T], or None.
    A host array is checked here (as the CPU binding does) and copied to ``device`` (the
    data's, not the current one); a DeviceArray is taken as it is (the kernels are
    memory-safe for any value)."""
    if lengths is None:
        return None
    if _is_dev(lengths):
        if tuple(lengths.shape) != (batch,):
            raise ValueError(f"{op}: lengths has shape {tuple(lengths.shape)}, expected "
                             f"({batch},)")
        return _as(lengths, "int64")
    arr = np.asarray(lengths)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{op}: lengths must hold integers, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.int64)
    if arr.shape != (batch,):
        raise ValueError(f"{op}: lengths has shape {arr.shape}, expected ({batch},)")
    bad = np.nonzero((arr < 0) | (arr > steps))[0]
    if bad.size:
        b = int(bad[0])
        raise ValueError(f"{op}: lengths[{b}] = {int(arr[b])} is outside [0, T] for x with "
                         f"T = {steps}")
    return from_host(arr, device)


def rnn_time_reverse(a, lengths):
    """a (T, B, ...) with each row's first lengths[b] steps in reverse order (all T
    steps when lengths is None); steps from lengths[b] on stay in place. Its own inverse."""
    op = "rnn_time_reverse"
    if not _is_dev(a):
        raise TypeError(f"{op}: expected a CUDA DeviceArray, got {type(a).__name__}")
    if a.ndim < 2:
        raise ValueError(f"{op}: a must have shape (T, B, ...), got {tuple(a.shape)}")
    lens = _lengths(lengths, int(a.shape[0]), int(a.shape[1]), op, a.device)
    return _cuda().rnn_time_reverse(a if a.is_contiguous() else ascontiguous(a), lens)


def rnn_layer_forward(mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh, peephole, lengths,
                      coupled=False, reverse=False, save=True):
    """One layer, one direction. Returns (y, h_n, c_n, saved): y (T, B, H), h_n
    (and c_n for LSTM, else None) (B, H), and ``saved``, what rnn_layer_backward needs
    (None when ``save`` is False: inference, nothing kept for backward)."""
    op = "rnn_forward"
    work = _work_name(x, op)
    named = (("h0", h0), ("c0", c0), ("w_ih", w_ih), ("w_hh", w_hh), ("b_ih", b_ih),
             ("b_hh", b_hh), ("peephole", peephole))
    _check_same_dtype(op, x, named)
    if x.ndim != 3:
        raise ValueError(f"{op}: x must have shape (T, B, I), got {tuple(x.shape)}")
    lens = _lengths(lengths, int(x.shape[0]), int(x.shape[1]), op, x.device)
    args = [_as(a, work) for a in (x, h0, c0, w_ih, w_hh, b_ih, b_hh, peephole)]
    if reverse:
        args[0] = _cuda().rnn_time_reverse(args[0], lens)
    y, h_n, c_n, gates, cells, gh_n = _cuda().rnn_forward(mode, *args, lens, bool(coupled),
                                                          bool(save))
    dtypes = (x.dtype_name, w_ih.dtype_name, h0.dtype_name,
              None if c0 is None else c0.dtype_name)
    saved = (mode, args, lens, bool(coupled), bool(reverse), y, gates, cells, gh_n,
             dtypes) if save else None
    if reverse:
        y = _cuda().rnn_time_reverse(y, lens)
    return _back(y, x.dtype_name), _back(h_n, x.dtype_name), _back(c_n, x.dtype_name), saved


def rnn_layer_backward(saved, dy, dh_n, dc_n, need_dx=True, need_dw=True):
    """Gradients (dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dpeephole) for upstream
    gradients dy (T, B, H), dh_n and dc_n (B, H; LSTM only, else None). ``need_dx`` /
    ``need_dw`` False skip dx / the parameter gradients (None then)."""
    mode, args, lens, coupled, reverse, y, gates, cells, gh_n, dtypes = saved
    x_name, w_name, h_name, c_name = dtypes
    work = y.dtype_name
    steps, batch, hidden = (int(n) for n in y.shape)

    def grad(g, shape):
        # An absent upstream gradient is zero (the CPU backend would reject None).
        if g is None:
            return zeros(shape, work, y.device)
        return _as(g, work)

    dy = grad(dy, (steps, batch, hidden))
    if reverse:
        dy = _cuda().rnn_time_reverse(dy, lens)
    dh_n = grad(dh_n, (batch, hidden))
    dc_n = grad(dc_n, (batch, hidden)) if mode == "lstm" else None
    dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dp = _cuda().rnn_backward(
        mode, *args, lens, coupled, y, gates, cells, gh_n, dy, dh_n, dc_n, bool(need_dx),
        bool(need_dw))
    if reverse and dx is not None:
        dx = _cuda().rnn_time_reverse(dx, lens)
    return (_back(dx, x_name), _back(dh0, h_name), _back(dc0, c_name or h_name),
            _back(dw_ih, w_name), _back(dw_hh, w_name), _back(db_ih, w_name),
            _back(db_hh, w_name), _back(dp, w_name))
