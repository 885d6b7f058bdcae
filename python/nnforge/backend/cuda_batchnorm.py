"""CUDA batch normalization over nnforge._C.cuda (csrc/cuda/batchnorm.cu): the CPU
backend's ``batch_norm_train``, ``batch_norm_eval``, ``batch_norm_invstd``,
``batch_norm_backward`` and ``batch_norm_update_stats_`` with the same arguments
and results (see cpu_batchnorm.py).

Inputs are (N, C, *) device arrays, seen by the kernels as C-contiguous
(N, C, S); per-channel arrays are (C,). float32 and float64 run in the kernels;
float16 and bfloat16 compute in float32 (mean, invstd, var come back in that
working dtype, as on the CPU) and results round back to the input's dtype. The
running statistics are updated in place by a kernel (any float dtype, any stride).
"""
from __future__ import annotations

from .cuda_core import _cuda, _device_array, add, ascontiguous, reciprocal, sqrt
from .cuda_shape import broadcast_to, reshape

__all__ = ["batch_norm_train", "batch_norm_eval", "batch_norm_invstd", "batch_norm_backward",
           "batch_norm_update_stats_"]

_KERNEL_DTYPES = ("float32", "float64")
_FLOATS = ("float32", "float64", "float16", "bfloat16")


def _work_name(x, op: str) -> str:
    if x.dtype_name not in _FLOATS:
        raise TypeError(f"{op}: expected a floating-point array, got {x.dtype_name} "
                        f"of shape {tuple(x.shape)}")
    return x.dtype_name if x.dtype_name in _KERNEL_DTYPES else "float32"


def _as(x, name: str):
    """``x`` as a C-contiguous array of dtype ``name`` (itself when it already is one)."""
    if x.dtype_name != name:
        return _cuda().astype(x, name)
    return x if x.is_contiguous() else ascontiguous(x)


def _back(x, name: str):
    return x if x.dtype_name == name else _cuda().astype(x, name)


def _nsc(x, work, op):
    """x as a C-contiguous (N, C, S) array of the working dtype."""
    if x.ndim < 2:
        raise ValueError(f"{op}: expected an array of shape (N, C, *), got shape "
                         f"{tuple(x.shape)}")
    s = 1
    for d in x.shape[2:]:
        s *= int(d)
    return reshape(_as(x, work), (int(x.shape[0]), int(x.shape[1]), s))


def _channel(a, work, op):
    return None if a is None else _as(_device_array(a, op), work)


def batch_norm_train(x, weight, bias, eps):
    """(y, mean, invstd, var): normalized with the batch's per-channel mean and biased var."""
    op = "batch_norm_train"
    x = _device_array(x, op)
    work = _work_name(x, op)
    y, mean, invstd, var = _cuda().batch_norm_forward_train(
        _nsc(x, work, op), _channel(weight, work, op), _channel(bias, work, op), float(eps))
    return _back(reshape(y, tuple(x.shape)), x.dtype_name), mean, invstd, var


def batch_norm_eval(x, weight, bias, mean, var, eps):
    """y normalized with the given per-channel statistics."""
    op = "batch_norm_eval"
    x = _device_array(x, op)
    work = _work_name(x, op)
    if mean is None or var is None:
        raise ValueError(f"{op}: mean and var must not be None")
    y = _cuda().batch_norm_forward_eval(
        _nsc(x, work, op), _channel(weight, work, op), _channel(bias, work, op),
        _channel(mean, work, op), _channel(var, work, op), float(eps))
    return _back(reshape(y, tuple(x.shape)), x.dtype_name)


def batch_norm_invstd(var, eps):
    """1 / sqrt(var + eps), in var's dtype (computed in float64, as the CPU twin)."""
    var = _device_array(var, "batch_norm_invstd")
    out = reciprocal(sqrt(add(_as(var, "float64"), float(eps))))
    return _back(out, var.dtype_name)


def batch_norm_backward(g, x, weight, mean, invstd, training, needs):
    """(gx, gw, gb), each None where ``needs`` (three bools) says it is not wanted."""
    op = "batch_norm_backward"
    x = _device_array(x, op)
    g = _device_array(g, op)
    work = _work_name(x, op)
    if tuple(g.shape) != tuple(x.shape):
        g = broadcast_to(g, tuple(x.shape))
    gx, gw, gb = _cuda().batch_norm_backward(
        _nsc(g, work, op), _nsc(x, work, op), _channel(weight, work, op),
        _channel(mean, work, op), _channel(invstd, work, op), bool(training),
        bool(needs[0]), bool(needs[1]), bool(needs[2]))
    if gx is not None:
        gx = _back(reshape(gx, tuple(x.shape)), x.dtype_name)
    if gw is not None and weight is not None:
        gw = _back(gw, weight.dtype_name)
    if gb is not None:
        gb = _back(gb, x.dtype_name)
    return gx, gw, gb


def _stat(a, op):
    a = _device_array(a, op)
    return _as(a, a.dtype_name if a.dtype_name in _KERNEL_DTYPES else "float32")


def batch_norm_update_stats_(running_mean, running_var, mean, var, momentum, count):
    """In place: running = (1 - momentum) running + momentum batch, with the batch's
    unbiased variance var * count / (count - 1) (PyTorch's rule)."""
    op = "batch_norm_update_stats_"
    m = float(momentum)
    factor = count / (count - 1)
    if running_mean is not None:
        _cuda().batch_norm_update_running_(_device_array(running_mean, op), _stat(mean, op),
                                           m, 1.0)
    if running_var is not None:
        _cuda().batch_norm_update_running_(_device_array(running_var, op), _stat(var, op),
                                           m, float(factor))
