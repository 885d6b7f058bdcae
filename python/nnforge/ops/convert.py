"""Casts, copies and moves: to_dtype, to_device, clone, contiguous."""
from __future__ import annotations

from .. import dtypes as _dt
from ..autograd.function import Function
from ..tensor import Tensor


class Cast(Function):
    @staticmethod
    def forward(ctx, x, np_dtype):
        out = ctx.backend.astype(x, np_dtype)
        if out is x:
            out = ctx.backend.copy(x)
        if out.dtype.kind not in _dt.FLOAT_KINDS:
            ctx.mark_non_differentiable(out)
        return out

    @staticmethod
    def backward(ctx, g):
        return g, None  # the engine casts back to the input's dtype


class Clone(Function):
    @staticmethod
    def forward(ctx, x):
        return ctx.backend.copy(x)

    @staticmethod
    def backward(ctx, g):
        return g


class Contiguous(Function):
    @staticmethod
    def forward(ctx, x):
        return ctx.backend.ascontiguous(x)

    @staticmethod
    def backward(ctx, g):
        return g


def to_dtype(x: Tensor, dtype) -> Tensor:
    if x.data.dtype == dtype.np:
        return x
    return Cast.apply(x, dtype.np)


class ToDevice(Function):
    """A copy to another device; its gradient is copied back to the source device.

    ``forward`` is the identity on the source device: ``to_device`` then moves the
    output's storage and relabels its device, so the autograd node (whose backend
    is the source's) stays on the source side and ``backward`` returns the
    gradient there."""

    @staticmethod
    def forward(ctx, x, src, dst):
        ctx.src, ctx.dst = src, dst
        return x

    @staticmethod
    def backward(ctx, g):
        if type(g) is not ctx.backend.array_type:  # arrives on the destination device
            g = _move(g, ctx.dst, ctx.src)
        return g, None, None


def _move(data, src, dst):
    """A backend array of device ``src`` copied to device ``dst``."""
    if src.type == "cpu":
        return dst.backend.from_host(data, device=dst.index)  # None: the current GPU
    if dst.type == "cpu":
        return src.backend.to_host(data)
    out = dst.backend.empty(data.shape, data.dtype, device=dst.index)  # cuda:i -> cuda:j
    dst.backend.copyto(out, data)
    return out


def to_device(x: Tensor, device) -> Tensor:
    """``x`` on ``device`` (``x`` itself when already there); differentiable."""
    if x.device == device:
        return x
    device.backend  # raises a clear error for a device this build lacks (or no GPU)
    data = _move(x.data, x.device, device)
    out = ToDevice.apply(x, x.device, device)
    out.data, out.device = data, device
    return out


def clone(x: Tensor) -> Tensor:
    """A copy with its own storage; gradients flow back to ``x``."""
    return Clone.apply(x)


def contiguous(x: Tensor) -> Tensor:
    if x.device.backend.is_contiguous(x.data):
        return x
    return Contiguous.apply(x)
