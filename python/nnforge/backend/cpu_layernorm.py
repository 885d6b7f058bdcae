"""CPU layer norm and softmax / log-softmax over nnforge._C.cpu (csrc/cpu/layernorm.cpp,
csrc/cpu/softmax.cpp): fused row kernels, forward and backward.

Layer norm normalizes the last ``k`` dims of x: the kernels see x as (R, N),
N the product of those dims; weight and bias have the normalized shape; mean
and rstd come back as (R,) arrays. Softmax runs over any axis of a
C-contiguous array (the kernel walks it as (outer, N, inner)). float32 and
float64 run in the kernels; float16 and bfloat16 compute in float32 and round back.
"""
from __future__ import annotations

import numpy as np

from ..dtypes import BFLOAT16_NP as _BF16

# float16 and bfloat16: computed in float32 and rounded back.
_REDUCED = tuple(d for d in (np.dtype(np.float16), _BF16) if d is not None)

__all__ = ["layer_norm_forward", "layer_norm_backward", "softmax_kernel",
           "softmax_backward", "log_softmax_backward"]


def _kernels():
    from .._C import cpu  # imported on first use: numpy-only code never needs it
    return cpu


def _work(a, dtype):
    """``a`` as a C-contiguous array of ``dtype`` (itself when it already is one)."""
    return np.ascontiguousarray(a, dtype=dtype)


def _work_dtype(x):
    return np.float32 if x.dtype in _REDUCED else x.dtype


def _rows(x, k):
    """x as (R, N): the last ``k`` dims flattened into N, the others into R."""
    n = 1
    for d in x.shape[x.ndim - k:]:
        n *= d
    r = 1
    for d in x.shape[:x.ndim - k]:
        r *= d
    return _work(x, _work_dtype(x)).reshape(r, n)


def _flat(a, x):
    return None if a is None else _work(a, _work_dtype(x)).reshape(-1)


def layer_norm_forward(x, k, weight, bias, eps):
    """(y, mean, rstd) of layer norm over the last ``k`` dims of x; mean and rstd are
    (R,) arrays in the working dtype, R the product of the leading dims."""
    y, mean, rstd = _kernels().layer_norm_forward(_rows(x, k), _flat(weight, x), _flat(bias, x),
                                                  float(eps))
    return y.reshape(x.shape).astype(x.dtype, copy=False), mean, rstd


def layer_norm_backward(g, x, k, weight, mean, rstd, needs):
    """(gx, gw, gb), each None where ``needs`` (three bools) says it is not wanted;
    gw and gb have the normalized shape."""
    g = np.broadcast_to(g, x.shape)
    gx, gw, gb = _kernels().layer_norm_backward(
        _rows(g, k), _rows(x, k), mean, rstd, _flat(weight, x),
        bool(needs[0]), bool(needs[1]), bool(needs[2]))
    pshape = x.shape[x.ndim - k:]
    if gx is not None:
        gx = gx.reshape(x.shape).astype(x.dtype, copy=False)
    if gw is not None:
        gw = gw.reshape(pshape).astype(x.dtype if weight is None else weight.dtype, copy=False)
    if gb is not None:
        gb = gb.reshape(pshape).astype(x.dtype, copy=False)
    return gx, gw, gb


def softmax_kernel(a, axis, log=False):
    """softmax (log=True: log-softmax) of a float array over ``axis`` (ndim >= 1)."""
    y = _kernels().softmax_forward(_work(a, _work_dtype(a)), int(axis), bool(log))
    return y.astype(a.dtype, copy=False)


def _softmax_grad(g, y, axis, log):
    g = np.broadcast_to(g, y.shape)
    work = _work_dtype(y)
    if y.ndim == 0:  # one element: the gradient is 0
        return np.zeros_like(y)
    gx = _kernels().softmax_backward(_work(g, work), _work(y, work), int(axis), bool(log))
    return gx.astype(y.dtype, copy=False)


def softmax_backward(g, y, axis):
    """y (g - sum(g y)) over ``axis``: the softmax-Jacobian product, from the output y."""
    return _softmax_grad(g, y, axis, False)


def log_softmax_backward(g, y, axis):
    """g - e^y sum(g) over ``axis``: log-softmax's vector-Jacobian product, from its output y."""
    return _softmax_grad(g, y, axis, True)
