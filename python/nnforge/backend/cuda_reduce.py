"""CUDA backend, reductions: sum, mean, var, prod, amax, amin, argmax, argmin,
any, all over any set of axes.

The kernel (csrc/cuda/reduce.cu) reduces rows of a contiguous (rows, cols)
array. Any axes become that layout by a transpose that puts the kept axes
first and the reduced ones last, then a copy to contiguous when the transpose
is not already contiguous (it is whenever the reduced axes are the trailing
ones, the common case: softmax rows, layer-norm rows, losses).
Result dtypes follow numpy (sum of integers or bool: int64; mean and var of
integers: float64; arg*: int64; any/all: bool).
"""
from __future__ import annotations

import numpy as np

from .cuda_core import _cuda, _device_array, astype, full
from .cuda_shape import reshape, transpose

__all__ = ["sum", "mean", "var", "prod", "amax", "amin", "argmax", "argmin", "any", "all"]


def _axes(axis, ndim: int):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = tuple(sorted({int(d) % ndim if ndim else 0 for d in axes}))
    if ndim == 0:
        return ()
    return out


def _reduce(op: str, a, axis, keepdims: bool, ddof: int = 0):
    a = _device_array(a, op)
    axes = _axes(axis, a.ndim)
    kept = [d for d in range(a.ndim) if d not in axes]
    rows = 1
    for d in kept:
        rows *= a.shape[d]
    cols = 1
    for d in axes:
        cols *= a.shape[d]
    if cols == 0 and rows > 0:
        if op in ("amax", "amin", "argmax", "argmin"):
            raise ValueError(f"zero-size array to reduction operation {op} which has no identity")
    x = transpose(a, kept + list(axes))
    x = _cuda().contiguous(x)
    if op in ("mean", "var") and cols == 0:
        dt = a.dtype if a.dtype.kind in "fV" else np.dtype(np.float64)  # V: bfloat16
        out = full([rows], np.nan, dt, a.device)
    else:
        out = _cuda().reduce_rows(op, x, rows, cols, ddof)
    if keepdims:
        shape = [1 if d in axes else s for d, s in enumerate(a.shape)]
    else:
        shape = [a.shape[d] for d in kept]
    return reshape(out, shape)


def sum(a, axis=None, keepdims=False, dtype=None):
    if dtype is not None:
        a = astype(a, dtype)
    out = _reduce("sum", a, axis, keepdims)
    return out if dtype is None else astype(out, dtype)


def mean(a, axis=None, keepdims=False):
    return _reduce("mean", a, axis, keepdims)


def var(a, axis=None, ddof=1, keepdims=False):
    """sum (x - mean)^2 / max(N - ddof, 0): inf or nan when N <= ddof (Welford in the kernel)."""
    return _reduce("var", a, axis, keepdims, ddof=int(ddof))


def prod(a, axis=None, keepdims=False):
    return _reduce("prod", a, axis, keepdims)


def amax(a, axis=None, keepdims=False):
    return _reduce("amax", a, axis, keepdims)


def amin(a, axis=None, keepdims=False):
    return _reduce("amin", a, axis, keepdims)


def _arg(op, a, axis, keepdims):
    if axis is None:
        out = _reduce(op, reshape(a, (-1,)), 0, False)
        return reshape(out, [1] * a.ndim) if keepdims else out
    if isinstance(axis, (tuple, list)):
        raise TypeError(f"{op}: axis must be an int or None")
    return _reduce(op, a, axis, keepdims)


def argmax(a, axis=None, keepdims=False):
    return _arg("argmax", a, axis, keepdims)


def argmin(a, axis=None, keepdims=False):
    return _arg("argmin", a, axis, keepdims)


def any(a, axis=None, keepdims=False):
    return _reduce("any", a, axis, keepdims)


def all(a, axis=None, keepdims=False):
    return _reduce("all", a, axis, keepdims)

