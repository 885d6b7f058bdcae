"""CUDA fused cross entropy and logsumexp over nnforge._C.cuda
(csrc/cuda/cross_entropy.cu): the CPU backend's ``cross_entropy_forward``,
``cross_entropy_backward`` and ``logsumexp`` with the same arguments and
results (see backend/cpu.py).

Logits (N, C, d1, ...) are viewed as a contiguous (N, C, D) array, targets as
(N, D) int64; per-position results come back in the targets' shape. float32
and float64 run in the kernels; float16 and bfloat16 compute in float32 and
round back. A target outside [0, C) that is not ``ignore_index`` raises
IndexError as on the CPU: the forward kernel records it in a device-side flag
that is read back once per call (so ``cross_entropy_forward`` synchronizes).
"""
from __future__ import annotations

from .cuda_core import _cuda, _device_array, ascontiguous
from .cuda_shape import broadcast_to, reshape, transpose

__all__ = ["cross_entropy_forward", "cross_entropy_backward", "logsumexp"]

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


def _class_layout(z, target, op):
    """(z as (N, C, D) contiguous in the working dtype, target as (N, D) int64, work)."""
    z = _device_array(z, op)
    target = _device_array(target, op)
    if z.ndim < 2:
        raise ValueError(f"{op}: logits must have shape (N, C, d1, ...), got {tuple(z.shape)}")
    n, c = int(z.shape[0]), int(z.shape[1])
    d = _prod(z.shape[2:])
    if tuple(target.shape) != (n,) + tuple(z.shape[2:]):
        raise ValueError(f"{op}: target of shape {tuple(target.shape)} does not match logits of "
                         f"shape {tuple(z.shape)} (expected {(n,) + tuple(z.shape[2:])})")
    work = _work_name(z, op)
    z3 = reshape(_as(z, work), (n, c, d))
    t2 = reshape(_as(target, "int64"), (n, d))
    return z3, t2, work


def _weight(weight, work, op):
    return None if weight is None else _as(_device_array(weight, op), work)


def cross_entropy_forward(z, target, weight, ignore_index, smoothing):
    """Per position: (loss, logsumexp over classes, weight of the target), each of the
    targets' shape; loss = -sum_c q_c log softmax(z)_c with the weighted, smoothed
    target q, 0 at ignore_index. Raises IndexError for a target outside [0, C)."""
    op = "cross_entropy_forward"
    z3, t2, work = _class_layout(z, target, op)
    loss, lse, wy, bad, value = _cuda().cross_entropy_forward(
        z3, t2, _weight(weight, work, op), int(ignore_index), float(smoothing))
    if bad >= 0:
        c = int(z.shape[1])
        raise IndexError(f"target {int(value)} is out of bounds for {c} classes "
                         f"(valid: 0 to {c - 1}, or ignore_index={ignore_index})")
    shape = tuple(target.shape)
    return tuple(_back(reshape(a, shape), z.dtype_name) for a in (loss, lse, wy))


def cross_entropy_backward(z, target, weight, lse, wy, g, ignore_index, smoothing):
    """dL/dz of ``cross_entropy_forward`` for the upstream gradient ``g`` per position
    (broadcast to the targets' shape): softmax(z) minus the target distribution, scaled."""
    op = "cross_entropy_backward"
    z3, t2, work = _class_layout(z, target, op)
    shape = tuple(target.shape)
    pos = tuple(t2.shape)

    def as_pos(a):
        a = _device_array(a, op)
        if tuple(a.shape) != shape:  # e.g. a 0-d upstream gradient for 'sum' and 'mean'
            a = broadcast_to(a, shape)
        return reshape(_as(a, work), pos)

    gz = _cuda().cross_entropy_backward(z3, t2, _weight(weight, work, op), as_pos(lse),
                                        as_pos(wy), as_pos(g), int(ignore_index),
                                        float(smoothing))
    return _back(reshape(gz, tuple(z.shape)), z.dtype_name)


def logsumexp(a, axis, keepdims=False):
    """log sum exp(x) = m + log sum exp(x - m), m the max (0 where m is +-inf,
    so that a row of -inf gives -inf and a row holding +inf gives +inf) over
    ``axis`` (an int, a tuple, or None for all axes)."""
    op = "logsumexp"
    a = _device_array(a, op)
    if a.dtype_name in _FLOATS:
        work = _work_name(a, op)
        out_name = a.dtype_name
    elif a.dtype_name == "bool":
        raise TypeError(f"{op}: not defined for bool arrays")
    else:  # integers: numpy computes exp in float64
        work = out_name = "float64"
    nd = a.ndim
    if axis is None:
        axes = tuple(range(nd))
    elif isinstance(axis, (tuple, list)):
        axes = tuple(sorted({int(x) % nd if nd else 0 for x in axis})) if nd else ()
    else:
        axes = (int(axis) % nd,) if nd else ()
    for ax in (axis if isinstance(axis, (tuple, list)) else ([] if axis is None else [axis])):
        if nd and not -nd <= int(ax) < nd:
            raise ValueError(f"{op}: axis {ax} is out of range for an array of shape "
                             f"{tuple(a.shape)}")
    kept = tuple(i for i in range(nd) if i not in axes)
    moved = a if kept + axes == tuple(range(nd)) else transpose(a, kept + axes)
    rows = _prod(a.shape[i] for i in kept)
    cols = _prod(a.shape[i] for i in axes)
    out = _cuda().logsumexp_rows(reshape(_as(moved, work), (rows, cols)))
    if keepdims:
        shape = tuple(1 if i in axes else int(a.shape[i]) for i in range(nd))
    else:
        shape = tuple(int(a.shape[i]) for i in kept)
    return _back(reshape(out, shape), out_name)
