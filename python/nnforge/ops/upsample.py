"""Nearest-neighbour resizing: ``interpolate`` (``nn.functional``) and ``nn.Upsample``.

Each output position along a spatial dim copies one input position,

    src(dst) = min(floor(dst * scale), in - 1)                  mode 'nearest'
    src(dst) = min(floor((dst + 0.5) * scale), in - 1)          mode 'nearest-exact'

with scale = in / out, or 1 / scale_factor when a scale factor is given (and
not recomputed), computed in float32 as PyTorch's kernels do, so the same
pixels are picked. The gradient sums the output gradient back onto the input
position each output copied (several outputs per input when enlarging).
"""
from __future__ import annotations

import math

import numpy as np

from ..autograd.function import Function
from ..tensor import Tensor
from ._util import check_tensor

__all__ = ["interpolate"]

_MODES = ("nearest", "nearest-exact")


def _source_index(n_in: int, n_out: int, scale: float | None, exact: bool) -> np.ndarray:
    """The input position each of the n_out outputs copies (int64, non-decreasing)."""
    if n_in == n_out and scale is None:
        return np.arange(n_out, dtype=np.int64)
    s = np.float32(n_in / n_out if scale is None else 1.0 / scale)
    dst = np.arange(n_out, dtype=np.float32)
    if exact:
        dst = dst + np.float32(0.5)
    return np.minimum(np.floor(dst * s).astype(np.int64), n_in - 1)


class NearestResize(Function):
    # y[..., i, j] = x[..., src_h(i), src_w(j)];  dx[..., p, q] = sum of dy over the
    # outputs that copied (p, q).
    @staticmethod
    def forward(ctx, x, indices):
        # ``indices``: host int64 arrays (geometry, like a shape), uploaded here.
        be = ctx.backend
        ctx.in_sizes = x.shape[x.ndim - len(indices):]
        ctx.indices = indices
        ctx.dev_indices = tuple(be.asarray(idx) for idx in indices)
        y = x
        for k, idx in enumerate(ctx.dev_indices):
            y = be.take(y, idx, x.ndim - len(indices) + k)
        return y

    @staticmethod
    def backward(ctx, g):
        be = ctx.backend
        first = g.ndim - len(ctx.indices)
        for k in reversed(range(len(ctx.indices))):
            g = _sum_back(be, g, ctx.indices[k], ctx.dev_indices[k], ctx.in_sizes[k], first + k)
        return g, None


def _sum_back(be, g, idx, dev_idx, n_in, axis):
    """Sums g along ``axis`` over the outputs that copied each input position
    (``idx`` on the host, ``dev_idx`` the same as a backend array)."""
    n_out = len(idx)
    if n_out % n_in == 0 and np.array_equal(idx, np.arange(n_out) // (n_out // n_in)):
        # Enlarging by a whole factor k: outputs k*p .. k*p+k-1 copied input p.
        shape = g.shape[:axis] + (n_in, n_out // n_in) + g.shape[axis + 1:]
        return be.sum(be.reshape(g, shape), axis=axis + 1)
    moved = be.moveaxis(g, axis, 0)
    out = be.zeros((n_in,) + moved.shape[1:], g.dtype)
    be.index_add(out, dev_idx, moved)
    return be.ascontiguous(be.moveaxis(out, 0, axis))


def _per_dim(value, n: int, name: str, cast):
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"interpolate: {name} {tuple(value)} must have {n} elements, one per "
                             f"spatial dimension of the input")
        return tuple(cast(v) for v in value)
    return (cast(value),) * n


def interpolate(input, size=None, scale_factor=None, mode: str = "nearest",
                align_corners=None, recompute_scale_factor=None, antialias: bool = False) -> Tensor:
    """Resizes the spatial dims of an (N, C, L), (N, C, H, W) or (N, C, D, H, W) input
    to ``size`` or by ``scale_factor`` (exactly one of them), as
    ``torch.nn.functional.interpolate``. Modes: 'nearest' and 'nearest-exact'
    (the linear modes are not implemented yet).

    >>> import nnforge as nf
    >>> x = nf.arange(4.0).reshape(1, 1, 2, 2)
    >>> nf.nn.functional.interpolate(x, scale_factor=2)[0, 0]
    tensor([[0., 0., 1., 1.],
            [0., 0., 1., 1.],
            [2., 2., 3., 3.],
            [2., 2., 3., 3.]])
    """
    check_tensor(input, "interpolate")
    if mode not in _MODES:
        raise NotImplementedError(f"interpolate: mode {mode!r} is not implemented; nnforge "
                                  f"has {', '.join(repr(m) for m in _MODES)}")
    if align_corners is not None:
        raise ValueError("interpolate: align_corners option can only be set with the "
                         "interpolating modes: linear | bilinear | bicubic | trilinear")
    if antialias:
        raise ValueError("interpolate: antialias is only for the linear and cubic modes")
    if input.ndim not in (3, 4, 5):
        raise ValueError(f"interpolate: expected a 3-D, 4-D or 5-D input (N, C, spatial...), "
                         f"got shape {tuple(input.shape)}")
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor")
    n = input.ndim - 2
    in_sizes = tuple(input.shape[2:])
    if size is not None:
        out_sizes = _per_dim(size, n, "size", int)
        scales = (None,) * n
    else:
        factors = _per_dim(scale_factor, n, "scale_factor", float)
        if any(not f > 0 or not math.isfinite(f) for f in factors):
            raise ValueError(f"interpolate: scale_factor must be positive and finite, got "
                             f"{scale_factor}")
        out_sizes = tuple(int(math.floor(i * f)) for i, f in zip(in_sizes, factors))
        scales = (None,) * n if recompute_scale_factor else factors
    if any(o <= 0 for o in out_sizes):
        raise ValueError(f"interpolate: input of shape {tuple(input.shape)} resized to "
                         f"{out_sizes}: every output size must be positive")
    if any(i == 0 for i in in_sizes):
        raise ValueError(f"interpolate: cannot resize an empty input of shape "
                         f"{tuple(input.shape)}")
    exact = mode == "nearest-exact"
    indices = tuple(_source_index(i, o, s, exact) for i, o, s in zip(in_sizes, out_sizes, scales))
    return NearestResize.apply(input, indices)
