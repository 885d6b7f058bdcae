"""Convolution layers: Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d with
PyTorch's constructor arguments, parameter names and layouts (weight
(out, in / groups, *kernel), transposed (in, out / groups, *kernel)), its
initialisation (kaiming_uniform_ with a = sqrt(5); bias U(-1/sqrt(fan_in),
1/sqrt(fan_in))) and its repr. A padding_mode other than 'zeros' pads with
F.pad in that mode first, then convolves with no padding, as PyTorch does.
"""
from __future__ import annotations

import math

from ..ops import creation
from ..tensor import Tensor
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter

__all__ = ["Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _ntuple(value, n, name, cls):
    items = tuple(value) if isinstance(value, (list, tuple)) else (value,) * n
    if len(items) != n or not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
        raise ValueError(f"{cls}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    return items


class _ConvNd(Module):
    _dims = 2
    _transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation,
                 groups, bias, padding_mode, output_padding, device, dtype):
        super().__init__()
        cls, n = type(self).__name__, self._dims
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{cls}: {name} must be a positive int, got {v!r}")
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
            raise ValueError(f"{cls}: groups must be a positive integer, got {groups!r}")
        if in_channels % groups:
            raise ValueError(f"{cls}: in_channels ({in_channels}) must be divisible by "
                             f"groups ({groups})")
        if out_channels % groups:
            raise ValueError(f"{cls}: out_channels ({out_channels}) must be divisible by "
                             f"groups ({groups})")
        kernel_size = _ntuple(kernel_size, n, "kernel_size", cls)
        stride = _ntuple(stride, n, "stride", cls)
        dilation = _ntuple(dilation, n, "dilation", cls)
        if any(v < 1 for v in kernel_size + stride + dilation):
            raise ValueError(f"{cls}: kernel_size, stride and dilation must be positive, got "
                             f"{kernel_size}, {stride}, {dilation}")
        if isinstance(padding, str):
            if self._transposed or padding not in ("same", "valid"):
                allowed = "an int or a tuple" if self._transposed else "'same' or 'valid'"
                raise ValueError(f"{cls}: invalid padding string {padding!r}, should be "
                                 f"{allowed}")
            if padding == "same" and any(s != 1 for s in stride):
                raise ValueError(f"{cls}: padding='same' is not supported for strided "
                                 f"convolutions (stride={stride})")
        else:
            padding = _ntuple(padding, n, "padding", cls)
            if any(v < 0 for v in padding):
                raise ValueError(f"{cls}: padding must be non-negative, got {padding}")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{cls}: padding_mode must be one of {_PADDING_MODES}, got "
                             f"{padding_mode!r}")
        if self._transposed and padding_mode != "zeros":
            raise ValueError(f'{cls}: only "zeros" padding mode is supported, got '
                             f"{padding_mode!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.transposed = self._transposed
        self.output_padding = _ntuple(output_padding, n, "output_padding", cls)
        self.groups = groups
        self.padding_mode = padding_mode
        # F.pad's widths for a non-zero padding_mode: last dim first, (begin, end) each.
        if isinstance(padding, str):
            self._reversed_padding_repeated_twice = [0, 0] * n
            if padding == "same":
                for d, k, i in zip(dilation, kernel_size, range(n - 1, -1, -1)):
                    total = d * (k - 1)
                    self._reversed_padding_repeated_twice[2 * i] = total // 2
                    self._reversed_padding_repeated_twice[2 * i + 1] = total - total // 2
        else:
            self._reversed_padding_repeated_twice = [p for p in reversed(padding) for _ in (0, 1)]
        if self._transposed:
            shape = (in_channels, out_channels // groups) + kernel_size
        else:
            shape = (out_channels, in_channels // groups) + kernel_size
        self.weight = Parameter(creation.empty(*shape, dtype=dtype, device=device))
        if bias:
            self.bias = Parameter(creation.empty(out_channels, dtype=dtype, device=device))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            if fan_in != 0:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        n = self._dims
        if self.padding != (0,) * n:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * n:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * n:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class _Conv(_ConvNd):
    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, 0, device, dtype)

    def forward(self, input: Tensor) -> Tensor:
        conv = F.conv2d if self._dims == 2 else F.conv1d
        if self.padding_mode != "zeros":
            padded = F.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return conv(padded, self.weight, self.bias, self.stride, 0, self.dilation,
                        self.groups)
        return conv(input, self.weight, self.bias, self.stride, self.padding, self.dilation,
                    self.groups)


class Conv2d(_Conv):
    """2-D convolution over (N, C_in, H, W) or (C_in, H, W) inputs.

    >>> import nnforge as nf
    >>> conv = nf.nn.Conv2d(3, 32, 3, padding=1)
    >>> conv
    Conv2d(3, 32, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
    >>> tuple(conv(nf.randn(8, 3, 28, 28)).shape)
    (8, 32, 28, 28)
    """

    _dims = 2


class Conv1d(_Conv):
    """1-D convolution over (N, C_in, L) or (C_in, L) inputs.

    >>> import nnforge as nf
    >>> tuple(nf.nn.Conv1d(4, 8, 5, padding="same")(nf.randn(2, 4, 30)).shape)
    (2, 8, 30)
    """

    _dims = 1


class _ConvTranspose(_ConvNd):
    _transposed = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, groups: int = 1, bias: bool = True, dilation=1,
                 padding_mode: str = "zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, output_padding, device, dtype)

    def _output_padding(self, input: Tensor, output_size) -> tuple:
        """output_padding, or the one that gives ``output_size`` (PyTorch's rule)."""
        n = self._dims
        if output_size is None:
            return self.output_padding
        output_size = tuple(int(s) for s in output_size)
        if len(output_size) == input.ndim:
            output_size = output_size[-n:]
        if len(output_size) != n:
            raise ValueError(f"{type(self).__name__}: output_size must have {n} or "
                             f"{input.ndim} elements, got {output_size}")
        spatial = tuple(input.shape)[-n:]
        lo = tuple((i - 1) * s - 2 * p + d * (k - 1) + 1 for i, s, p, d, k in
                   zip(spatial, self.stride, self.padding, self.dilation, self.kernel_size))
        hi = tuple(m + s - 1 for m, s in zip(lo, self.stride))
        if any(not a <= o <= b for o, a, b in zip(output_size, lo, hi)):
            raise ValueError(f"{type(self).__name__}: requested an output size of "
                             f"{output_size}, but valid sizes range from {lo} to {hi} (for an "
                             f"input of {spatial})")
        return tuple(o - a for o, a in zip(output_size, lo))

    def forward(self, input: Tensor, output_size=None) -> Tensor:
        conv = F.conv_transpose2d if self._dims == 2 else F.conv_transpose1d
        return conv(input, self.weight, self.bias, self.stride, self.padding,
                    self._output_padding(input, output_size), self.groups, self.dilation)


class ConvTranspose2d(_ConvTranspose):
    """2-D transposed convolution (conv2d's gradient w.r.t. its input), for decoders.

    >>> import nnforge as nf
    >>> up = nf.nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1)
    >>> tuple(up(nf.randn(4, 16, 7, 7)).shape)
    (4, 8, 14, 14)
    """

    _dims = 2


class ConvTranspose1d(_ConvTranspose):
    """1-D transposed convolution over (N, C_in, L) or (C_in, L) inputs.

    >>> import nnforge as nf
    >>> tuple(nf.nn.ConvTranspose1d(4, 2, 4, stride=2)(nf.randn(3, 4, 10)).shape)
    (3, 2, 22)
    """

    _dims = 1
