"""Casts, copies and moves: to_dtype, to_device, clone, contiguous."""
from __future__ import annotations

from ..autograd.function import Function
from ..tensor import Tensor


class Cast(Function):
    @staticmethod
    def forward(ctx, x, np_dtype):
        out = ctx.backend.astype(x, np_dtype)
        if out is x:
            out = ctx.backend.copy(x)
        if out.dtype.kind != "f":
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


def to_device(x: Tensor, device) -> Tensor:
    if x.device == device:
        return x
    device.backend  # raises a clear error for a device this build lacks
    raise RuntimeError(f"to: moving tensors to {device} is not supported by this build of nnforge")


def clone(x: Tensor) -> Tensor:
    """A copy with its own storage; gradients flow back to ``x``."""
    return Clone.apply(x)


def contiguous(x: Tensor) -> Tensor:
    if x.device.backend.is_contiguous(x.data):
        return x
    return Contiguous.apply(x)
