"""CPU batch normalization over nnforge._C.cpu (csrc/cpu/batchnorm.cpp).

Inputs are (N, C, *) arrays, seen by the kernels as (N, C, S); per-channel
arrays are (C,). Results come back in the input's dtype; float16 (and bfloat16) computes in
float32. The running statistics are updated in place here (``batch_norm_update_stats_``).
"""
from __future__ import annotations

import numpy as np

from ..dtypes import BFLOAT16_NP as _BF16

# float16 and bfloat16: computed in float32 and rounded back.
_REDUCED = tuple(d for d in (np.dtype(np.float16), _BF16) if d is not None)

__all__ = ["batch_norm_train", "batch_norm_eval", "batch_norm_invstd", "batch_norm_backward",
           "batch_norm_update_stats_"]


def _kernels():
    from .._C import cpu  # imported on first use: numpy-only code never needs it
    return cpu


def _work_dtype(x):
    return np.float32 if x.dtype in _REDUCED else x.dtype


def _nsc(x) -> np.ndarray:
    """x as a C-contiguous (N, C, S) array of the working dtype."""
    s = 1
    for d in x.shape[2:]:
        s *= d
    return np.ascontiguousarray(x, dtype=_work_dtype(x)).reshape(x.shape[0], x.shape[1], s)


def _channel(a, x):
    return None if a is None else np.ascontiguousarray(a, dtype=_work_dtype(x))


def batch_norm_train(x, weight, bias, eps):
    """(y, mean, invstd, var): normalized with the batch's per-channel mean and biased var."""
    y, mean, invstd, var = _kernels().batch_norm_forward_train(
        _nsc(x), _channel(weight, x), _channel(bias, x), float(eps))
    return y.reshape(x.shape).astype(x.dtype, copy=False), mean, invstd, var


def batch_norm_eval(x, weight, bias, mean, var, eps):
    """y normalized with the given per-channel statistics."""
    y = _kernels().batch_norm_forward_eval(_nsc(x), _channel(weight, x), _channel(bias, x),
                                           _channel(mean, x), _channel(var, x), float(eps))
    return y.reshape(x.shape).astype(x.dtype, copy=False)


def batch_norm_invstd(var, eps):
    """1 / sqrt(var + eps), in var's dtype."""
    return (1.0 / np.sqrt(var.astype(np.float64) + eps)).astype(var.dtype)


def batch_norm_backward(g, x, weight, mean, invstd, training, needs):
    """(gx, gw, gb), each None where ``needs`` (three bools) says it is not wanted."""
    gx, gw, gb = _kernels().batch_norm_backward(
        _nsc(g), _nsc(x), _channel(weight, x), _channel(mean, x), _channel(invstd, x),
        bool(training), bool(needs[0]), bool(needs[1]), bool(needs[2]))
    if gx is not None:
        gx = gx.reshape(x.shape).astype(x.dtype, copy=False)
    if gw is not None and weight is not None:
        gw = gw.astype(weight.dtype, copy=False)
    if gb is not None:
        gb = gb.astype(x.dtype, copy=False)
    return gx, gw, gb


def batch_norm_update_stats_(running_mean, running_var, mean, var, momentum, count):
    """In place: running = (1 - momentum) running + momentum batch, with the batch's
    unbiased variance var * count / (count - 1) (PyTorch's rule)."""
    m = float(momentum)
    unbiased = var.astype(np.float64) * (count / (count - 1))
    if running_mean is not None:
        running_mean *= 1.0 - m
        running_mean += (m * mean.astype(np.float64)).astype(running_mean.dtype)
    if running_var is not None:
        running_var *= 1.0 - m
        running_var += (m * unbiased).astype(running_var.dtype)
