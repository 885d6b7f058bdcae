"""Convolutions: conv1d, conv2d, conv_transpose1d, conv_transpose2d with
torch.nn.functional's signatures and semantics (NCHW / NCL, weights in
PyTorch's layouts, unbatched inputs, padding ints/tuples/'same'/'valid').

Two differentiable ops, both over the backend's conv2d kernels (1-D runs as
2-D with H = 1):

    Conv2d           y = conv(x, w) + b
                     dx = conv^T(dy, w)        (the input-gradient kernel)
                     dw = sum_n dy_n (x) x_n,  db = sum_{n,h,w} dy
    ConvTranspose2d  y = conv^T(x, w) + b      (the same input-gradient kernel)
                     dx = conv(dy, w)          (the forward kernel)
                     dw = sum_n x_n (x) dy_n   (the weight kernel, roles swapped)
                     db = sum_{n,h,w} dy

Each gradient is computed only when its input needs it.
"""
from __future__ import annotations

from ..autograd.function import Function
from ..tensor import Tensor
from ._util import check_tensor, same_device

__all__ = ["conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d"]


class Conv2d(Function):
    @staticmethod
    def forward(ctx, x, w, b, stride, padding, dilation, groups):
        ctx.save_for_backward(x, w)
        ctx.geometry = (stride, padding, dilation, groups)
        return ctx.backend.conv2d_forward(x, w, b, stride, padding, dilation, groups)

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        be = ctx.backend
        stride, padding, dilation, groups = ctx.geometry
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        gx = gw = gb = None
        if need_x:
            gx = be.conv2d_backward_input(g, w, None, x.shape[2:], stride, padding, dilation,
                                          groups)
        if need_w or need_b:
            gw, gb = be.conv2d_backward_weight(x, g, w.shape[2:], stride, padding, dilation,
                                               groups, need_w, need_b)
        return gx, gw, gb, None, None, None, None


class ConvTranspose2d(Function):
    @staticmethod
    def forward(ctx, x, w, b, stride, padding, dilation, groups, out_size):
        ctx.save_for_backward(x, w)
        ctx.geometry = (stride, padding, dilation, groups)
        return ctx.backend.conv2d_backward_input(x, w, b, out_size, stride, padding, dilation,
                                                 groups)

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        be = ctx.backend
        stride, padding, dilation, groups = ctx.geometry
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = be.conv2d_forward(g, w, None, stride, padding, dilation, groups)
            h, wd = x.shape[2:]
            if gx.shape[2:] != (h, wd):  # output_padding >= stride (< dilation): extra rows
                gx = be.ascontiguous(be.getitem(gx, (slice(None), slice(None), slice(0, h),
                                                     slice(0, wd))))
        if ctx.needs_input_grad[1]:
            gw, _ = be.conv2d_backward_weight(g, x, w.shape[2:], stride, padding, dilation,
                                              groups, True, False)
        if ctx.needs_input_grad[2]:
            gb = be.sum(g, axis=(0, 2, 3))
        return gx, gw, gb, None, None, None, None, None


# ---------------------------------------------------------------- argument checks
def _tuple(value, n, name, op, minimum):
    """An int or a sequence of n ints as an n-tuple, each >= minimum."""
    if isinstance(value, (list, tuple)):
        items = tuple(value)
    else:
        items = (value,) * n
    if len(items) != n or not all(isinstance(v, int) and not isinstance(v, bool)
                                  for v in items):
        raise ValueError(f"{op}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    if any(v < minimum for v in items):
        what = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{op}: {name} must be {what}, got {value!r}")
    return items


def _shape(x) -> tuple:
    return tuple(x.shape)


def _check_dtypes(op, input, weight, bias):
    for arg, t in (("input", input), ("weight", weight), ("bias", bias)):
        if t is not None and not t.dtype.is_floating_point:
            raise TypeError(f"{op}: {arg} must be a floating-point tensor, got {t.dtype}")
    for arg, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.dtype != input.dtype:
            raise TypeError(f"{op}: input ({input.dtype}) and {arg} ({t.dtype}) must have the "
                            f"same dtype")


def _prepare(op, dims, input, weight, bias):
    """Checks the tensors; returns (input with a batch dim, whether it was unbatched)."""
    check_tensor(input, op)
    check_tensor(weight, op, "weight")
    if bias is not None:
        check_tensor(bias, op, "bias")
    same_device(op, input, weight, bias)
    layout = "(N, C, H, W)" if dims == 2 else "(N, C, L)"
    if input.ndim not in (dims + 1, dims + 2):
        raise ValueError(f"{op}: expected {dims + 1}-D (unbatched) or {dims + 2}-D (batched) "
                         f"input {layout}, got input of shape {_shape(input)}")
    if weight.ndim != dims + 2:
        raise ValueError(f"{op}: weight must be {dims + 2}-D, got shape {_shape(weight)}")
    _check_dtypes(op, input, weight, bias)
    unbatched = input.ndim == dims + 1
    return (input.unsqueeze(0) if unbatched else input), unbatched


def _check_groups(op, groups):
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")


def _check_bias(op, bias, channels):
    if bias is not None and _shape(bias) != (channels,):
        raise ValueError(f"{op}: bias of shape {_shape(bias)} does not match {channels} output "
                         f"channels (expected ({channels},))")


def _as_2d(t: Tensor, dims: int) -> Tensor:
    """A 1-D convolution's (N, C, L) tensor as (N, C, 1, L)."""
    return t if dims == 2 else t.unsqueeze(2)


def _padding(op, padding, kernel, dilation, stride, dims):
    """Per spatial dim (begin, end) padding for an int, a tuple, 'same' or 'valid'."""
    if isinstance(padding, str):
        if padding == "valid":
            return [(0, 0)] * dims
        if padding != "same":
            raise ValueError(f"{op}: padding must be an int, a tuple, 'same' or 'valid', got "
                             f"{padding!r}")
        if any(s != 1 for s in stride):
            raise ValueError(f"{op}: padding='same' is not supported for strided convolutions "
                             f"(stride={stride})")
        # PyTorch's split: the extra pad of an odd total goes to the end.
        totals = [d * (k - 1) for d, k in zip(dilation, kernel)]
        return [(t // 2, t - t // 2) for t in totals]
    p = _tuple(padding, dims, "padding", op, 0)
    return [(v, v) for v in p]


# ---------------------------------------------------------------- convolution
def _conv(op, dims, input, weight, bias, stride, padding, dilation, groups) -> Tensor:
    x, unbatched = _prepare(op, dims, input, weight, bias)
    _check_groups(op, groups)
    stride = _tuple(stride, dims, "stride", op, 1)
    dilation = _tuple(dilation, dims, "dilation", op, 1)
    kernel = _shape(weight)[2:]
    pads = _padding(op, padding, kernel, dilation, stride, dims)
    c_in, c_out = x.shape[1], weight.shape[0]
    if weight.shape[1] * groups != c_in:
        raise ValueError(f"{op}: weight of shape {_shape(weight)} needs input with "
                         f"{weight.shape[1] * groups} channels (groups={groups}), got input of "
                         f"shape {_shape(input)}")
    if c_out % groups:
        raise ValueError(f"{op}: weight of shape {_shape(weight)} has {c_out} output channels, "
                         f"not divisible by groups={groups}")
    _check_bias(op, bias, c_out)
    spatial = _shape(x)[2:]
    padded = tuple(s + lo + hi for s, (lo, hi) in zip(spatial, pads))
    span = tuple(d * (k - 1) + 1 for d, k in zip(dilation, kernel))
    if any(p < k for p, k in zip(padded, span)):
        raise ValueError(f"{op}: kernel size {kernel} (dilated: {span}) is larger than the "
                         f"padded input size {padded} of input of shape {_shape(input)}")
    if dims == 1:
        stride, dilation, pads = (1,) + stride, (1,) + dilation, [(0, 0)] + pads
    pad4 = (pads[0][0], pads[0][1], pads[1][0], pads[1][1])
    y = Conv2d.apply(_as_2d(x, dims), _as_2d(weight, dims), bias, tuple(stride), pad4,
                     tuple(dilation), groups)
    if dims == 1:
        y = y.squeeze(2)
    return y.squeeze(0) if unbatched else y


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """2-D convolution (cross-correlation, as in PyTorch) of ``input`` (N, C_in, H, W)
    or (C_in, H, W) with ``weight`` (C_out, C_in / groups, kH, kW), plus ``bias``
    (C_out,). ``padding``: int, (pH, pW), 'valid' or 'same' (stride 1; an odd
    total pad puts the extra row/column at the bottom/right, as PyTorch does).

    >>> import nnforge as nf
    >>> y = nf.nn.functional.conv2d(nf.randn(2, 3, 8, 8), nf.randn(4, 3, 3, 3), padding=1)
    >>> tuple(y.shape)
    (2, 4, 8, 8)
    """
    return _conv("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """1-D convolution of ``input`` (N, C_in, L) or (C_in, L) with ``weight``
    (C_out, C_in / groups, k); see ``conv2d``.

    >>> import nnforge as nf
    >>> tuple(nf.nn.functional.conv1d(nf.randn(2, 3, 10), nf.randn(4, 3, 3)).shape)
    (2, 4, 8)
    """
    return _conv("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


# ---------------------------------------------------------------- transposed convolution
def _conv_transpose(op, dims, input, weight, bias, stride, padding, output_padding, groups,
                    dilation) -> Tensor:
    x, unbatched = _prepare(op, dims, input, weight, bias)
    _check_groups(op, groups)
    stride = _tuple(stride, dims, "stride", op, 1)
    dilation = _tuple(dilation, dims, "dilation", op, 1)
    if isinstance(padding, str):
        raise ValueError(f"{op}: padding must be an int or a tuple of ints, got {padding!r}")
    padding = _tuple(padding, dims, "padding", op, 0)
    output_padding = _tuple(output_padding, dims, "output_padding", op, 0)
    kernel = _shape(weight)[2:]
    c_in = x.shape[1]
    if weight.shape[0] != c_in:
        raise ValueError(f"{op}: weight of shape {_shape(weight)} needs input with "
                         f"{weight.shape[0]} channels, got input of shape {_shape(input)}")
    if c_in % groups:
        raise ValueError(f"{op}: input channels ({c_in}) are not divisible by groups={groups}")
    c_out = weight.shape[1] * groups
    _check_bias(op, bias, c_out)
    for op_, s, d in zip(output_padding, stride, dilation):
        if op_ >= s and op_ >= d:
            raise ValueError(f"{op}: output_padding {output_padding} must be smaller than "
                             f"either stride {stride} or dilation {dilation}")
    out = tuple((n - 1) * s - 2 * p + d * (k - 1) + op_ + 1 for n, s, p, d, k, op_ in
                zip(_shape(x)[2:], stride, padding, dilation, kernel, output_padding))
    if any(o < 1 for o in out):
        raise ValueError(f"{op}: the output size {out} of input of shape {_shape(input)} with "
                         f"kernel size {kernel}, stride {stride}, padding {padding} and "
                         f"dilation {dilation} is not positive")
    if dims == 1:
        stride, dilation, padding, out = (1,) + stride, (1,) + dilation, (0,) + padding, (1,) + out
    pad4 = (padding[0], padding[0], padding[1], padding[1])
    y = ConvTranspose2d.apply(_as_2d(x, dims), _as_2d(weight, dims), bias, tuple(stride), pad4,
                              tuple(dilation), groups, out)
    if dims == 1:
        y = y.squeeze(2)
    return y.squeeze(0) if unbatched else y


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1) -> Tensor:
    """2-D transposed convolution (the gradient of conv2d w.r.t. its input) of
    ``input`` (N, C_in, H, W) or (C_in, H, W) with ``weight`` (C_in, C_out / groups,
    kH, kW): output size (H - 1) stride - 2 padding + dilation (kH - 1) +
    output_padding + 1.

    >>> import nnforge as nf
    >>> y = nf.nn.functional.conv_transpose2d(nf.randn(2, 4, 5, 5), nf.randn(4, 3, 3, 3), stride=2)
    >>> tuple(y.shape)
    (2, 3, 11, 11)
    """
    return _conv_transpose("conv_transpose2d", 2, input, weight, bias, stride, padding,
                           output_padding, groups, dilation)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1) -> Tensor:
    """1-D transposed convolution of ``input`` (N, C_in, L) or (C_in, L) with
    ``weight`` (C_in, C_out / groups, k); see ``conv_transpose2d``."""
    return _conv_transpose("conv_transpose1d", 1, input, weight, bias, stride, padding,
                           output_padding, groups, dilation)

