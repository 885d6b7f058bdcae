"""Reductions over dims (with keepdim), cumulative sums and the softmax family.

Backward of a reduction broadcasts the gradient back over the reduced dims:
the engine never sees reduced shapes, so each op restores them with
``_expand_back`` (re-inserting the dims that keepdim=False dropped).
"""
from __future__ import annotations

import builtins

from .. import dtypes as _dt
from ..autograd.function import Function
from ..tensor import Tensor
from ._util import check_tensor, make, wrap_dim, wrap_dims


def _expand_back(be, g, dims, keepdim, shape):
    """Gradient of a reduced result -> broadcastable to the input ``shape``."""
    if dims is None:
        return be.broadcast_to(be.reshape(g, (1,) * len(shape)), shape)
    if not keepdim:
        g = be.expand_dims(g, dims)
    return be.broadcast_to(g, shape)


class Sum(Function):
    @staticmethod
    def forward(ctx, x, dims, keepdim):
        ctx.meta = (dims, keepdim, x.shape)
        return ctx.backend.sum(x, axis=dims, keepdims=keepdim)

    @staticmethod
    def backward(ctx, g):
        return _expand_back(ctx.backend, g, *ctx.meta), None, None


class Mean(Function):
    @staticmethod
    def forward(ctx, x, dims, keepdim):
        ctx.meta = (dims, keepdim, x.shape)
        n = x.size if dims is None else _count(x.shape, dims)
        ctx.n = n
        return ctx.backend.mean(x, axis=dims, keepdims=keepdim)

    @staticmethod
    def backward(ctx, g):
        be = ctx.backend
        return be.divide(_expand_back(be, g, *ctx.meta), ctx.n), None, None


class Var(Function):
    # var = sum (x - mean)^2 / (N - correction) ;  d var / dx = 2 (x - mean) / (N - correction)
    @staticmethod
    def forward(ctx, x, dims, correction, keepdim):
        ctx.meta = (dims, keepdim, x.shape)
        ctx.denom = _denominator(x.shape, dims, correction)
        ctx.save_for_backward(x)
        return ctx.backend.var(x, axis=dims, ddof=correction, keepdims=keepdim)

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        return _var_backward(ctx, x, g), None, None, None


class Std(Function):
    # std = sqrt(var) ;  d std / dx = (d var / dx) / (2 std), taken as 0 where std = 0
    # (a constant input), as PyTorch does, rather than 0 * inf = nan.
    @staticmethod
    def forward(ctx, x, dims, correction, keepdim):
        be = ctx.backend
        ctx.meta = (dims, keepdim, x.shape)
        ctx.denom = _denominator(x.shape, dims, correction)
        y = be.sqrt(be.var(x, axis=dims, ddof=correction, keepdims=keepdim))
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        be = ctx.backend
        g = be.where(be.equal(y, 0), 0, be.divide(g, be.multiply(y, 2)))
        return _var_backward(ctx, x, g), None, None, None


def _denominator(shape, dims, correction):
    n = _count(shape, range(len(shape)) if dims is None else dims)
    return n - correction if n > correction else 0  # 0: the result is inf or nan


def _var_backward(ctx, x, g):
    be = ctx.backend
    dims = ctx.meta[0]
    centered = be.subtract(x, be.mean(x, axis=dims, keepdims=True)) if x.size else x
    scale = be.divide(be.multiply(centered, 2), ctx.denom)
    return be.multiply(_expand_back(be, g, *ctx.meta), scale)


class Prod(Function):
    # d prod / dx_i = prod_{j != i} x_j; computed by exclusive products so zeros work.
    @staticmethod
    def forward(ctx, x, dim, keepdim):
        ctx.save_for_backward(x)
        ctx.meta = (dim, keepdim)
        return ctx.backend.prod(x, axis=dim, keepdims=keepdim)

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        be = ctx.backend
        dim, keepdim = ctx.meta
        if dim is None:
            flat = be.reshape(x, (-1,))
            others = _exclusive_prod(be, flat, 0)
            gx = be.multiply(be.reshape(others, x.shape), be.reshape(g, (1,) * x.ndim))
        else:
            others = _exclusive_prod(be, x, dim)
            gg = g if keepdim else be.expand_dims(g, dim)
            gx = be.multiply(others, gg)
        return gx, None, None


def _exclusive_prod(be, x, axis):
    """prod of all elements but the i-th along ``axis``: prefix(i-1) * suffix(i+1)."""
    ones_shape = list(x.shape)
    ones_shape[axis] = 1
    one = be.ones(tuple(ones_shape), x.dtype)
    n = x.shape[axis]
    if n == 0:
        return x
    idx_head = [slice(None)] * x.ndim
    idx_head[axis] = slice(0, n - 1)
    idx_tail = [slice(None)] * x.ndim
    idx_tail[axis] = slice(1, n)
    prefix = be.concatenate([one, be.cumprod(be.getitem(x, tuple(idx_head)), axis)], axis=axis)
    rev = be.flip(x, axis)
    suffix = be.flip(be.concatenate([one, be.cumprod(be.getitem(rev, tuple(idx_head)), axis)], axis=axis), axis)
    return be.multiply(prefix, suffix)


class Amax(Function):
    # The gradient is shared evenly among the elements equal to the max (PyTorch's amax rule).
    @staticmethod
    def forward(ctx, x, dims, keepdim, use_max):
        be = ctx.backend
        out = (be.amax if use_max else be.amin)(x, axis=dims, keepdims=keepdim)
        ctx.save_for_backward(x, out)
        ctx.meta = (dims, keepdim, x.shape)
        return out

    @staticmethod
    def backward(ctx, g):
        x, out = ctx.saved_tensors
        be = ctx.backend
        dims, keepdim, shape = ctx.meta
        hit = be.equal(x, _expand_back(be, out, dims, keepdim, shape))
        count = be.sum(hit, axis=dims, keepdims=True)
        gx = be.divide(be.multiply(_expand_back(be, g, dims, keepdim, shape), hit), count)
        return gx, None, None, None


class MaxDim(Function):
    """max/min along one dim, returning (values, indices); the gradient goes to the index."""

    @staticmethod
    def forward(ctx, x, dim, keepdim, use_max):
        be = ctx.backend
        idx = (be.argmax if use_max else be.argmin)(x, axis=dim, keepdims=True)
        vals = be.take_along_axis(x, idx, dim)
        ctx.save_for_backward(idx)
        ctx.meta = (dim, keepdim, x.shape, x.dtype)
        if not keepdim:
            vals = be.squeeze(vals, axis=dim)
            idx = be.squeeze(idx, axis=dim)
        ctx.mark_non_differentiable(idx)
        return vals, idx

    @staticmethod
    def backward(ctx, g, _gidx):
        idx, = ctx.saved_tensors
        be = ctx.backend
        dim, keepdim, shape, dt = ctx.meta
        if not keepdim:
            g = be.expand_dims(g, dim)
        gx = be.zeros(shape, dt)
        be.scatter_add(gx, dim, idx, g)
        return gx, None, None, None


class Logsumexp(Function):
    # d/dx log sum exp x = softmax(x)
    @staticmethod
    def forward(ctx, x, dims, keepdim):
        be = ctx.backend
        out = be.logsumexp(x, dims, keepdims=keepdim)
        ctx.save_for_backward(x, out)
        ctx.meta = (dims, keepdim, x.shape)
        return out

    @staticmethod
    def backward(ctx, g):
        x, out = ctx.saved_tensors
        be = ctx.backend
        dims, keepdim, shape = ctx.meta
        p = be.exp(be.subtract(x, _expand_back(be, out, dims, keepdim, shape)))
        return be.multiply(_expand_back(be, g, dims, keepdim, shape), p), None, None


class Cumsum(Function):
    # The gradient of a running sum is the reversed running sum of the gradient.
    @staticmethod
    def forward(ctx, x, dim):
        ctx.dim = dim
        return ctx.backend.cumsum(x, dim)

    @staticmethod
    def backward(ctx, g):
        be = ctx.backend
        return be.flip(be.cumsum(be.flip(g, ctx.dim), ctx.dim), ctx.dim), None


class Softmax(Function):
    # Softmax-Jacobian product: dx = y * (g - sum(g * y))
    @staticmethod
    def forward(ctx, x, dim):
        y = ctx.backend.softmax(x, dim)
        ctx.save_for_backward(y)
        ctx.dim = dim
        return y

    @staticmethod
    def backward(ctx, g):
        y, = ctx.saved_tensors
        return ctx.backend.softmax_backward(g, y, ctx.dim), None


class LogSoftmax(Function):
    # dx = g - softmax(x) * sum(g)
    @staticmethod
    def forward(ctx, x, dim):
        y = ctx.backend.log_softmax(x, dim)
        ctx.save_for_backward(y)
        ctx.dim = dim
        return y

    @staticmethod
    def backward(ctx, g):
        y, = ctx.saved_tensors
        return ctx.backend.log_softmax_backward(g, y, ctx.dim), None


def _count(shape, dims) -> int:
    n = 1
    for d in dims:
        n *= shape[d]
    return n


def _float_reduction(x, op, dtype=None):
    check_tensor(x, op)
    if dtype is not None:
        x = x.to(dtype=_dt.as_dtype(dtype))
    if x.data.dtype.kind not in _dt.FLOAT_KINDS:
        raise TypeError(f"{op}: input dtype must be floating point, got {x.dtype.name}; "
                        "cast it with .float() first")
    return x


def sum(input, dim=None, keepdim=False, *, dtype=None) -> Tensor:
    check_tensor(input, "sum")
    if dtype is not None:
        input = input.to(dtype=_dt.as_dtype(dtype))
    elif input.data.dtype.kind in "bui" and input.data.dtype.itemsize < 8:
        input = input.to(dtype=_dt.int64)  # PyTorch sums integers and bools as int64
    dims = wrap_dims(dim, input.ndim, "sum")
    if dims == ():
        dims = None
    return Sum.apply(input, dims, keepdim)


def mean(input, dim=None, keepdim=False, *, dtype=None) -> Tensor:
    input = _float_reduction(input, "mean", dtype)
    dims = wrap_dims(dim, input.ndim, "mean")
    return Mean.apply(input, dims or None, keepdim)


def var(input, dim=None, *, correction=1, keepdim=False, unbiased=None) -> Tensor:
    input = _float_reduction(input, "var")
    if unbiased is not None:
        correction = 1 if unbiased else 0
    dims = wrap_dims(dim, input.ndim, "var")
    return Var.apply(input, dims or None, correction, keepdim)


def std(input, dim=None, *, correction=1, keepdim=False, unbiased=None) -> Tensor:
    input = _float_reduction(input, "std")
    if unbiased is not None:
        correction = 1 if unbiased else 0
    dims = wrap_dims(dim, input.ndim, "std")
    return Std.apply(input, dims or None, correction, keepdim)


def var_mean(input, dim=None, *, correction=1, keepdim=False):
    return (var(input, dim, correction=correction, keepdim=keepdim),
            mean(input, dim, keepdim=keepdim))


def prod(input, dim=None, keepdim=False, *, dtype=None) -> Tensor:
    check_tensor(input, "prod")
    if dtype is not None:
        input = input.to(dtype=_dt.as_dtype(dtype))
    d = None if dim is None else wrap_dim(int(dim), input.ndim, "prod")
    if input.ndim == 0:
        d = None
    return Prod.apply(input, d, keepdim)


def _minmax(input, dim, keepdim, use_max, op):
    check_tensor(input, op)
    if input.numel() == 0 and (dim is None or input.shape[wrap_dim(dim, input.ndim, op)] == 0):
        raise IndexError(f"{op}: cannot reduce an empty tensor of shape {tuple(input.shape)} "
                         "over a dimension of size 0")
    if dim is None:
        return Amax.apply(input, None, False, use_max)
    d = wrap_dim(int(dim), input.ndim, op)
    from ..return_types import MinMax
    if input.ndim == 0:
        return MinMax(Amax.apply(input, None, keepdim, use_max),
                      make(input.device.backend.zeros((), "int64"), input.device))
    return MinMax(*MaxDim.apply(input, d, keepdim, use_max))


def max(input, dim=None, keepdim=False):
    """``max(x)`` -> the largest element; ``max(x, dim)`` -> (values, indices);
    ``max(x, other_tensor)`` -> elementwise maximum."""
    if isinstance(dim, Tensor):
        from .pointwise import maximum
        return maximum(input, dim)
    return _minmax(input, dim, keepdim, True, "max")


def min(input, dim=None, keepdim=False):
    if isinstance(dim, Tensor):
        from .pointwise import minimum
        return minimum(input, dim)
    return _minmax(input, dim, keepdim, False, "min")


def _check_reducible(input, dims, op):
    """Max-like reductions have no identity: refuse to reduce over a dim of size 0."""
    shape = tuple(input.shape)
    if builtins.any(shape[d] == 0 for d in (range(len(shape)) if dims is None else dims)):
        raise IndexError(f"{op}: cannot reduce over a dimension of size 0 (input shape {shape}, "
                         f"dim {'all' if dims is None else dims}); the operation has no identity")


def amax(input, dim=(), keepdim=False) -> Tensor:
    check_tensor(input, "amax")
    dims = wrap_dims(dim, input.ndim, "amax") or None
    _check_reducible(input, dims, "amax")
    return Amax.apply(input, dims, keepdim, True)


def amin(input, dim=(), keepdim=False) -> Tensor:
    check_tensor(input, "amin")
    dims = wrap_dims(dim, input.ndim, "amin") or None
    _check_reducible(input, dims, "amin")
    return Amax.apply(input, dims, keepdim, False)


def _arg(input, dim, keepdim, fname, op):
    check_tensor(input, op)
    be = input.device.backend
    _check_reducible(input, None if dim is None or input.ndim == 0 else
                     (wrap_dim(int(dim), input.ndim, op),), op)
    if dim is None:
        out = getattr(be, fname)(be.reshape(input.data, (-1,)), axis=0)
        if keepdim:
            out = be.reshape(out, (1,) * input.ndim)
        return make(out, input.device)
    d = wrap_dim(int(dim), input.ndim, op)
    if input.ndim == 0:
        return make(be.zeros((), "int64"), input.device)
    return make(getattr(be, fname)(input.data, axis=d, keepdims=keepdim), input.device)


def argmax(input, dim=None, keepdim=False) -> Tensor:
    return _arg(input, dim, keepdim, "argmax", "argmax")


def argmin(input, dim=None, keepdim=False) -> Tensor:
    return _arg(input, dim, keepdim, "argmin", "argmin")


def logsumexp(input, dim, keepdim=False) -> Tensor:
    input = _float_reduction(input, "logsumexp")
    dims = wrap_dims(dim, input.ndim, "logsumexp")
    return Logsumexp.apply(input, dims, keepdim)


def cumsum(input, dim, *, dtype=None) -> Tensor:
    check_tensor(input, "cumsum")
    if dtype is not None:
        input = input.to(dtype=_dt.as_dtype(dtype))
    elif input.data.dtype.kind in "bui" and input.data.dtype.itemsize < 8:
        input = input.to(dtype=_dt.int64)
    d = wrap_dim(int(dim), input.ndim, "cumsum")
    if input.ndim == 0:
        return input.clone()
    return Cumsum.apply(input, d)


def softmax(input, dim, dtype=None) -> Tensor:
    input = _float_reduction(input, "softmax", dtype)
    d = wrap_dim(int(dim), input.ndim, "softmax")
    if input.ndim == 0:  # as a 1-element vector, so the result stays in the graph
        return Softmax.apply(input.reshape(1), 0).reshape(())
    return Softmax.apply(input, d)


def log_softmax(input, dim, dtype=None) -> Tensor:
    input = _float_reduction(input, "log_softmax", dtype)
    d = wrap_dim(int(dim), input.ndim, "log_softmax")
    if input.ndim == 0:
        return LogSoftmax.apply(input.reshape(1), 0).reshape(())
    return LogSoftmax.apply(input, d)


def all(input, dim=None, keepdim=False) -> Tensor:
    check_tensor(input, "all")
    be = input.device.backend
    dims = wrap_dims(dim, input.ndim, "all")
    return make(be.all(input.data, axis=dims, keepdims=keepdim), input.device)


def any(input, dim=None, keepdim=False) -> Tensor:
    check_tensor(input, "any")
    be = input.device.backend
    dims = wrap_dims(dim, input.ndim, "any")
    return make(be.any(input.data, axis=dims, keepdims=keepdim), input.device)
