"""Pooling: max, average and adaptive pooling in 1-D and 2-D, as in torch.nn.functional.

Every pooling op is one ``Function`` over the backend's (N, C, H, W) kernels:
1-D inputs (N, C, L) run as (N, C, 1, L), unbatched inputs gain a batch of
one, and the kernels only ever see N * C independent planes. Output sizes
follow PyTorch:

    out = floor((in + 2 pad - dilation (k - 1) - 1 + (ceil_mode ? stride - 1 : 0)) / stride) + 1

and in ceil mode the last window must start inside the input or its left
padding (else out - 1). Padding may be at most half the kernel size.

Derivatives: max pooling routes each output's gradient to the input position
that won its window (the saved indices; ties go to the first in row-major
window order, NaN propagates, as PyTorch); average pooling spreads g / divisor
over its window; adaptive average pooling spreads g / window size.
"""
from __future__ import annotations

from ..autograd.function import Function
from ..tensor import Tensor
from ._util import check_tensor

__all__ = ["max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d", "adaptive_avg_pool1d",
           "adaptive_avg_pool2d", "adaptive_max_pool1d", "adaptive_max_pool2d"]


# ---------------------------------------------------------------- argument checks
def _tuple(value, n: int, op: str, arg: str) -> tuple:
    """An int or a sequence of 1 or n ints as an n-tuple (PyTorch accepts (k,) for (k, k))."""
    if isinstance(value, (list, tuple)):
        if len(value) == 1:
            value = tuple(value) * n
        if len(value) != n or not all(isinstance(v, int) and not isinstance(v, bool)
                                      for v in value):
            raise ValueError(f"{op}: {arg} must be an int or a tuple of {n} ints, got {value!r}")
        return tuple(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{op}: {arg} must be an int or a tuple of {n} ints, got {value!r}")
    return (value,) * n


def _out_size(size, k, s, p, d, ceil_mode):
    num = size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
    out = num // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def _check_input(input, op: str, dims: int) -> Tensor:
    check_tensor(input, op)
    if input.ndim not in (dims + 1, dims + 2):
        names = "(C, L) or (N, C, L)" if dims == 1 else "(C, H, W) or (N, C, H, W)"
        raise ValueError(f"{op}: expected a {dims + 1}-D or {dims + 2}-D input {names}, got "
                         f"shape {tuple(input.shape)}")
    if any(s == 0 for s in input.shape[-dims - 1:]):
        raise ValueError(f"{op}: expected non-empty channel and spatial dims (the batch may "
                         f"be empty), got shape {tuple(input.shape)}")
    if not input.dtype.is_floating_point:
        raise TypeError(f"{op}: expected a floating-point input, got {input.dtype}")
    return input


def _window_args(input, op, dims, kernel_size, stride, padding, dilation, ceil_mode):
    """kernel, stride, padding, dilation as (h, w) pairs (h = 1 for 1-D), checked."""
    k = _tuple(kernel_size, dims, op, "kernel_size")
    s = k if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0) \
        else _tuple(stride, dims, op, "stride")
    p = _tuple(padding, dims, op, "padding")
    d = _tuple(dilation, dims, op, "dilation")
    for name, v, low in (("kernel_size", k, 1), ("stride", s, 1), ("padding", p, 0),
                         ("dilation", d, 1)):
        if any(x < low for x in v):
            raise ValueError(f"{op}: {name} must be {'positive' if low else 'non-negative'}, "
                             f"got {v}")
    if any(pp > kk // 2 for pp, kk in zip(p, k)):
        raise ValueError(f"{op}: padding {p} should be at most half of kernel_size {k}")
    spatial = tuple(input.shape[-dims:])
    out = tuple(_out_size(n, kk, ss, pp, dd, ceil_mode)
                for n, kk, ss, pp, dd in zip(spatial, k, s, p, d))
    if any(o < 1 for o in out):
        raise ValueError(f"{op}: input of shape {tuple(input.shape)} is too small for "
                         f"kernel_size {k}, stride {s}, padding {p}, dilation {d}: the output "
                         f"size would be {out}")
    for n, kk, ss, pp, dd in zip(spatial, k, s, p, d):
        if dd > 1 and _empty_window(n, kk, ss, pp, dd):
            raise ValueError(f"{op}: with input of shape {tuple(input.shape)}, kernel_size {k}, "
                             f"padding {p} and dilation {d} a window has every tap in the "
                             "padding")
    if dims == 1:
        return (1,) + k, (1,) + s, (0,) + p, (1,) + d
    return k, s, p, d


def _empty_window(n, k, s, p, d) -> bool:
    """Whether a window starting in the left padding has all its dilated taps outside
    [0, n) (only possible with dilation > 1; later windows start inside the input)."""
    for i in range(-(-p // s)):
        start = i * s - p
        first = -(-(-start) // d)  # first tap index at or after 0
        if first >= k or start + first * d >= n:
            return True
    return False


def _planes(shape, dims: int) -> tuple:
    """(1, P, H, W): the input folded into P = N * C planes (H = 1 for 1-D)."""
    lead = shape[:-dims]
    planes = 1
    for n in lead:
        planes *= n
    hw = (1,) + tuple(shape[-1:]) if dims == 1 else tuple(shape[-2:])
    return (1, planes) + hw


def _grad4(be, g, x4_shape, dims: int):
    """The output gradient ``g`` folded into planes like the input: (1, P, OH, OW)."""
    return be.reshape(g, tuple(x4_shape[:2]) + ((1,) if dims == 1 else tuple(g.shape[-2:-1]))
                      + tuple(g.shape[-1:]))


def _unfold(shape, dims: int, out4) -> tuple:
    """The output's shape: the input's leading dims and the pooled spatial dims."""
    return tuple(shape[:-dims]) + tuple(out4.shape[-dims:])


# ---------------------------------------------------------------- Functions
class MaxPool(Function):
    # y = max over each window;  dL/dx[argmax] += dL/dy   (argmax: the saved indices)
    @staticmethod
    def forward(ctx, x, dims, kernel, stride, padding, dilation, ceil_mode, return_indices):
        be = ctx.backend
        x4 = be.reshape(x, _planes(x.shape, dims))
        keep = return_indices or ctx.needs_input_grad[0]
        y4, idx4 = be.max_pool2d(x4, kernel, stride, padding, dilation, ceil_mode, keep)
        return _max_outputs(ctx, be, x, x4, dims, y4, idx4, return_indices)

    @staticmethod
    def backward(ctx, g, *unused):
        idx, = ctx.saved_tensors
        return (_scatter_max(ctx.backend, g, idx, ctx.shapes),) + (None,) * 7


def _max_outputs(ctx, be, x, x4, dims, y4, idx4, return_indices):
    """A max pooling's y, or (y, indices) with the indices non-differentiable; saves
    the indices and shapes its backward (_scatter_max) needs."""
    ctx.shapes = (x.shape, x4.shape, dims)
    y = be.reshape(y4, _unfold(x.shape, dims, y4))
    if not return_indices:
        ctx.save_for_backward(idx4)
        return y
    idx = be.reshape(idx4, y.shape)
    ctx.save_for_backward(idx)
    ctx.mark_non_differentiable(idx)
    return y, idx


def _scatter_max(be, g, idx, shapes):
    x_shape, x4_shape, dims = shapes
    g4 = _grad4(be, g, x4_shape, dims)
    gx4 = be.max_pool2d_backward(g4, be.reshape(idx, g4.shape), x4_shape[2:])
    return be.reshape(gx4, x_shape)


class AvgPool(Function):
    # y = sum over the window / divisor;  dL/dx = sum over windows holding x of dL/dy / divisor
    @staticmethod
    def forward(ctx, x, dims, kernel, stride, padding, ceil_mode, count_include_pad, divisor):
        be = ctx.backend
        x4 = be.reshape(x, _planes(x.shape, dims))
        ctx.args = (kernel, stride, padding, ceil_mode, count_include_pad, divisor)
        ctx.shapes = (x.shape, x4.shape, dims)
        y4 = be.avg_pool2d(x4, *ctx.args)
        return be.reshape(y4, _unfold(x.shape, dims, y4))

    @staticmethod
    def backward(ctx, g):
        be = ctx.backend
        x_shape, x4_shape, dims = ctx.shapes
        g4 = _grad4(be, g, x4_shape, dims)
        gx4 = be.avg_pool2d_backward(g4, x4_shape[2:], *ctx.args)
        return (be.reshape(gx4, x_shape),) + (None,) * 7


class AdaptiveAvgPool(Function):
    # window i: [floor(i In / Out), ceil((i + 1) In / Out));  y = window mean;
    # dL/dx = sum over windows holding x of dL/dy / window size
    @staticmethod
    def forward(ctx, x, dims, output_hw):
        be = ctx.backend
        x4 = be.reshape(x, _planes(x.shape, dims))
        ctx.shapes = (x.shape, x4.shape, dims)
        y4 = be.adaptive_avg_pool2d(x4, output_hw)
        return be.reshape(y4, _unfold(x.shape, dims, y4))

    @staticmethod
    def backward(ctx, g):
        be = ctx.backend
        x_shape, x4_shape, dims = ctx.shapes
        g4 = _grad4(be, g, x4_shape, dims)
        gx4 = be.adaptive_avg_pool2d_backward(g4, x4_shape[2:])
        return be.reshape(gx4, x_shape), None, None


class AdaptiveMaxPool(Function):
    # y = max over the adaptive window;  dL/dx[argmax] += dL/dy
    @staticmethod
    def forward(ctx, x, dims, output_hw, return_indices):
        be = ctx.backend
        x4 = be.reshape(x, _planes(x.shape, dims))
        keep = return_indices or ctx.needs_input_grad[0]
        y4, idx4 = be.adaptive_max_pool2d(x4, output_hw, keep)
        return _max_outputs(ctx, be, x, x4, dims, y4, idx4, return_indices)

    @staticmethod
    def backward(ctx, g, *unused):
        idx, = ctx.saved_tensors
        return _scatter_max(ctx.backend, g, idx, ctx.shapes), None, None, None


# ---------------------------------------------------------------- public functions
def _max_pool(input, dims, op, kernel_size, stride, padding, dilation, ceil_mode,
              return_indices):
    _check_input(input, op, dims)
    k, s, p, d = _window_args(input, op, dims, kernel_size, stride, padding, dilation,
                              ceil_mode)
    return MaxPool.apply(input, dims, k, s, p, d, bool(ceil_mode), bool(return_indices))


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Max pooling over the last dim of (N, C, L) or (C, L); with ``return_indices``,
    (output, indices) where indices are positions along L."""
    return _max_pool(input, 1, "max_pool1d", kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Max pooling over the last two dims of (N, C, H, W) or (C, H, W); with
    ``return_indices``, (output, indices), indices flat positions h * W + w in each plane.

    >>> import nnforge as nf
    >>> x = nf.arange(16.0).reshape(1, 1, 4, 4)
    >>> nf.nn.functional.max_pool2d(x, 2).tolist()
    [[[[5.0, 7.0], [13.0, 15.0]]]]
    """
    return _max_pool(input, 2, "max_pool2d", kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


def _avg_pool(input, dims, op, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override):
    _check_input(input, op, dims)
    k, s, p, _ = _window_args(input, op, dims, kernel_size, stride, padding, 1, ceil_mode)
    if divisor_override is not None:
        if isinstance(divisor_override, bool) or not isinstance(divisor_override, int):
            raise TypeError(f"{op}: divisor_override must be an int or None, got "
                            f"{divisor_override!r}")
        if divisor_override == 0:
            raise ValueError(f"{op}: divisor must be not zero")
        if divisor_override < 0:
            raise ValueError(f"{op}: divisor_override must be positive, got {divisor_override}")
    return AvgPool.apply(input, dims, k, s, p, bool(ceil_mode), bool(count_include_pad),
                         divisor_override or 0)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    """Average pooling over the last dim of (N, C, L) or (C, L)."""
    return _avg_pool(input, 1, "avg_pool1d", kernel_size, stride, padding, ceil_mode,
                     count_include_pad, None)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """Average pooling over the last two dims of (N, C, H, W) or (C, H, W). The divisor is
    ``divisor_override`` when given, else the window size (padding counted with
    ``count_include_pad``, windows clipped at the padded edge in ceil mode, as PyTorch)."""
    return _avg_pool(input, 2, "avg_pool2d", kernel_size, stride, padding, ceil_mode,
                     count_include_pad, divisor_override)


def _output_size(input, output_size, dims, op) -> tuple:
    """output_size (an int or a tuple whose None entries keep the input's size) as (h, w)."""
    if isinstance(output_size, (list, tuple)):
        if len(output_size) != dims:
            raise ValueError(f"{op}: output_size must be an int or a tuple of {dims}, got "
                             f"{output_size!r}")
        sizes = tuple(input.shape[-dims + i] if v is None else v
                      for i, v in enumerate(output_size))
    else:
        sizes = (output_size,) * dims
    for v in sizes:
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"{op}: output_size must hold non-negative ints, got "
                             f"{output_size!r}")
    return (1,) + sizes if dims == 1 else sizes


def adaptive_avg_pool1d(input, output_size):
    """Average pooling of (N, C, L) or (C, L) to length ``output_size``."""
    _check_input(input, "adaptive_avg_pool1d", 1)
    out = _output_size(input, output_size, 1, "adaptive_avg_pool1d")
    return AdaptiveAvgPool.apply(input, 1, out)


def adaptive_avg_pool2d(input, output_size):
    """Average pooling of (N, C, H, W) or (C, H, W) to ``output_size`` (an int, or (h, w)
    with None keeping that dim); ``output_size=1`` is global average pooling."""
    _check_input(input, "adaptive_avg_pool2d", 2)
    out = _output_size(input, output_size, 2, "adaptive_avg_pool2d")
    return AdaptiveAvgPool.apply(input, 2, out)


def _adaptive_max(input, output_size, return_indices, dims, op):
    _check_input(input, op, dims)
    out = _output_size(input, output_size, dims, op)
    return AdaptiveMaxPool.apply(input, dims, out, bool(return_indices))


def adaptive_max_pool1d(input, output_size, return_indices=False):
    """Max pooling of (N, C, L) or (C, L) to length ``output_size``."""
    return _adaptive_max(input, output_size, return_indices, 1, "adaptive_max_pool1d")


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Max pooling of (N, C, H, W) or (C, H, W) to ``output_size``; with
    ``return_indices``, (output, flat indices h * W + w)."""
    return _adaptive_max(input, output_size, return_indices, 2, "adaptive_max_pool2d")
