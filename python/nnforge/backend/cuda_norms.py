"""CUDA layer norm and softmax / log-softmax over nnforge._C.cuda
(csrc/cuda/layernorm.cu, csrc/cuda/softmax.cu): the CPU backend's
``layer_norm_forward``, ``layer_norm_backward``, ``softmax``, ``log_softmax``,
``softmax_kernel``, ``softmax_backward`` and ``log_softmax_backward`` with the
same arguments and results (see cpu_layernorm.py).

The kernels see C-contiguous (R, N) rows: layer norm flattens its last ``k``
dims into N; softmax moves its axis last (a copy when it is not already last
and contiguous) and moves the result back. float32 and float64 run in the
kernels; float16 and bfloat16 compute in float32 and round back; mean and rstd
are (R,) arrays in that working dtype.
"""
from __future__ import annotations

from .cuda_core import _cuda, _device_array, ascontiguous, zeros_like
from .cuda_shape import broadcast_to, moveaxis, reshape

__all__ = ["layer_norm_forward", "layer_norm_backward", "softmax", "log_softmax",
           "softmax_kernel", "softmax_backward", "log_softmax_backward"]

_KERNEL_DTYPES = ("float32", "float64")
_FLOATS = ("float32", "float64", "float16", "bfloat16")


def _prod(dims) -> int:
    n = 1
    for d in dims:
        n *= int(d)
    return n


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


def _rows(x, k, work):
    """x as a contiguous (R, N) array of ``work``: the last ``k`` dims flattened into N."""
    n = _prod(x.shape[x.ndim - k:])
    return reshape(_as(x, work), (_prod(x.shape[:x.ndim - k]), n))


def _flat(a, work, op):
    return None if a is None else reshape(_as(_device_array(a, op), work), (-1,))


# ---------------------------------------------------------------- layer norm
def layer_norm_forward(x, k, weight, bias, eps):
    """(y, mean, rstd) of layer norm over the last ``k`` dims of x; mean and rstd are
    (R,) arrays in the working dtype, R the product of the leading dims."""
    op = "layer_norm_forward"
    x = _device_array(x, op)
    work = _work_name(x, op)
    y, mean, rstd = _cuda().layer_norm_forward(_rows(x, k, work), _flat(weight, work, op),
                                               _flat(bias, work, op), float(eps))
    return _back(reshape(y, tuple(x.shape)), x.dtype_name), mean, rstd


def layer_norm_backward(g, x, k, weight, mean, rstd, needs):
    """(gx, gw, gb), each None where ``needs`` (three bools) says it is not wanted;
    gw and gb have the normalized shape."""
    op = "layer_norm_backward"
    x = _device_array(x, op)
    g = _device_array(g, op)
    work = _work_name(x, op)
    if tuple(g.shape) != tuple(x.shape):
        g = broadcast_to(g, tuple(x.shape))
    gx, gw, gb = _cuda().layer_norm_backward(
        _rows(g, k, work), _rows(x, k, work), _as(mean, work), _as(rstd, work),
        _flat(weight, work, op), bool(needs[0]), bool(needs[1]), bool(needs[2]))
    pshape = tuple(x.shape[x.ndim - k:])
    if gx is not None:
        gx = _back(reshape(gx, tuple(x.shape)), x.dtype_name)
    if gw is not None:
        wname = x.dtype_name if weight is None else weight.dtype_name
        gw = _back(reshape(gw, pshape), wname)
    if gb is not None:
        gb = _back(reshape(gb, pshape), x.dtype_name)
    return gx, gw, gb


# ---------------------------------------------------------------- softmax
def _last(a, axis):
    """(rows, axis) where rows is ``a`` with ``axis`` moved last, as contiguous (R, N)."""
    axis = int(axis)
    if not -a.ndim <= axis < a.ndim:
        raise ValueError(f"softmax: axis {axis} is out of range for an array of shape "
                         f"{tuple(a.shape)}")
    return axis % a.ndim


def _to_rows(a, axis, work):
    moved = a if axis == a.ndim - 1 else moveaxis(a, axis, -1)
    return moved.shape, reshape(_as(moved, work), (_prod(moved.shape[:-1]), moved.shape[-1]))


def _from_rows(y, moved_shape, axis, ndim):
    y = reshape(y, tuple(moved_shape))
    return y if axis == ndim - 1 else ascontiguous(moveaxis(y, -1, axis))


def softmax_kernel(a, axis, log=False):
    """softmax (log=True: log-softmax) of a float array over ``axis``."""
    op = "log_softmax" if log else "softmax"
    a = _device_array(a, op)
    work = _work_name(a, op)
    if a.ndim == 0:
        return _back(reshape(softmax_kernel(reshape(a, (1,)), 0, log), ()), a.dtype_name)
    axis = _last(a, axis)
    moved_shape, rows = _to_rows(a, axis, work)
    y = _cuda().softmax_forward(rows, bool(log))
    return _back(_from_rows(y, moved_shape, axis, a.ndim), a.dtype_name)


def softmax(a, axis):
    """e^(x - m) / sum e^(x - m), m the max; a row of all -inf or holding +inf
    gives nan, as in PyTorch."""
    return softmax_kernel(a, axis)


def log_softmax(a, axis):
    """(x - m) - log sum e^(x - m), m the max (nan rows as in ``softmax``)."""
    return softmax_kernel(a, axis, log=True)


def _softmax_grad(g, y, axis, log):
    op = "log_softmax_backward" if log else "softmax_backward"
    y = _device_array(y, op)
    g = _device_array(g, op)
    work = _work_name(y, op)
    if y.ndim == 0:  # one element: the gradient is 0
        return zeros_like(y)
    if tuple(g.shape) != tuple(y.shape):
        g = broadcast_to(g, tuple(y.shape))
    axis = _last(y, axis)
    moved_shape, yr = _to_rows(y, axis, work)
    _, gr = _to_rows(g, axis, work)
    gx = _cuda().softmax_backward(gr, yr, bool(log))
    return _back(_from_rows(gx, moved_shape, axis, y.ndim), y.dtype_name)


def softmax_backward(g, y, axis):
    """y (g - sum(g y)) over ``axis``: the softmax-Jacobian product, from the output y."""
    return _softmax_grad(g, y, axis, False)


def log_softmax_backward(g, y, axis):
    """g - e^y sum(g) over ``axis``: log-softmax's vector-Jacobian product, from its output y."""
    return _softmax_grad(g, y, axis, True)
