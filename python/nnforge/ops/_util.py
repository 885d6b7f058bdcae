"""Helpers shared by the op modules: argument checks, dims, promotion."""
from __future__ import annotations

from .. import dtypes as _dt
from ..tensor import Tensor, _wrap_dim

wrap_dim = _wrap_dim


def check_tensor(x, op: str, arg: str = "input") -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: argument '{arg}' must be a Tensor, got {type(x).__name__}")
    return x


def wrap_dims(dim, ndim: int, op: str):
    """None -> None; int or sequence -> sorted tuple of non-negative dims.

    A 0-d tensor accepts dim 0 and -1, as in PyTorch, but has no axis to name:
    its dims come back as ()."""
    if dim is None:
        return None
    if isinstance(dim, (list, tuple)):
        out = tuple(sorted({_wrap_dim(int(d), ndim, op) for d in dim}))
        if len(out) != len(dim):
            raise ValueError(f"{op}: dim {tuple(dim)} names a dimension twice")
        return out if ndim else ()
    d = _wrap_dim(int(dim), ndim, op)
    return (d,) if ndim else ()


def make(data, device) -> Tensor:
    """A result outside the graph (comparisons, argmax, ...)."""
    return Tensor._make(data, device, False)


def float_input(x: Tensor) -> Tensor:
    """Integer and bool tensors enter float math (exp, sqrt, ...) as the default float."""
    if x.data.dtype.kind in _dt.FLOAT_KINDS:
        return x
    from .convert import to_dtype
    return to_dtype(x, _dt.get_default_dtype())


def cast_to(x, dt: _dt.dtype):
    """A Tensor cast to ``dt`` (differentiably); Python scalars pass through."""
    if isinstance(x, Tensor):
        if x.data.dtype != dt.np:
            from .convert import to_dtype
            return to_dtype(x, dt)
        return x
    return x


def shape_str(x) -> str:
    return str(tuple(x.shape)) if isinstance(x, Tensor) else f"scalar {x!r}"


def same_device(op: str, *xs):
    device = None
    for x in xs:
        if isinstance(x, Tensor):
            if device is None:
                device = x.device
            elif x.device != device:
                raise ValueError(f"{op}: expected all tensors on one device, got {device} and {x.device}")
    return device
