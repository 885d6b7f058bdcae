"""CPU convolution: array-level wrappers over nnforge._C.cpu's conv2d kernels
(csrc/cpu/conv.cpp). Part of the CPU backend's interface (star-imported by
backend/cpu.py). Arrays are NCHW; conv1d callers pass H = 1.

Geometry arguments: ``stride`` and ``dilation`` are (h, w) pairs, ``padding``
is (top, bottom, left, right), so 'same' can pad one more on the bottom/right
as PyTorch does. float32/float64 run as they are; float16 and bfloat16 run in float32 and
come back in their dtype.
"""
from __future__ import annotations

import numpy as np

from ..dtypes import BFLOAT16_NP as _BF16

# float16 and bfloat16: computed in float32 and rounded back.
_REDUCED = tuple(d for d in (np.dtype(np.float16), _BF16) if d is not None)

__all__ = ["conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight"]

_kernels = None


def _k():
    global _kernels
    if _kernels is None:
        from .._C import cpu  # on first use: numpy-only code never needs it
        _kernels = cpu
    return _kernels


def _work(a, dtype):
    return None if a is None else np.ascontiguousarray(a, dtype=dtype)


def _dtypes(a):
    """(dtype the kernel runs in, dtype of the result)."""
    return (np.dtype(np.float32) if a.dtype in _REDUCED else a.dtype), a.dtype


def conv2d_forward(x, w, b, stride, padding, dilation, groups):
    """y = conv2d(x, w) + b (b may be None): (N, C_out, OH, OW)."""
    work, out = _dtypes(x)
    y = _k().conv2d_forward(_work(x, work), _work(w, work), _work(b, work), tuple(stride),
                            tuple(padding), tuple(dilation), int(groups))
    return y if out == work else y.astype(out)


def conv2d_backward_input(g, w, b, input_size, stride, padding, dilation, groups):
    """dL/dx of conv2d for dL/dy = g, x of spatial size ``input_size``; plus b per
    input channel when b is not None (this is conv_transpose2d's forward)."""
    work, out = _dtypes(g)
    dx = _k().conv2d_backward_input(_work(g, work), _work(w, work), _work(b, work),
                                    tuple(input_size), tuple(stride), tuple(padding),
                                    tuple(dilation), int(groups))
    return dx if out == work else dx.astype(out)


def conv2d_backward_weight(x, g, kernel_size, stride, padding, dilation, groups,
                           need_weight=True, need_bias=False):
    """(dL/dw or None, dL/db or None) of conv2d for dL/dy = g."""
    work, out = _dtypes(x)
    dw, db = _k().conv2d_backward_weight(_work(x, work), _work(g, work), tuple(kernel_size),
                                         tuple(stride), tuple(padding), tuple(dilation),
                                         int(groups), bool(need_weight), bool(need_bias))
    if out != work:
        dw = None if dw is None else dw.astype(out)
        db = None if db is None else db.astype(out)
    return dw, db
