"""CPU pooling over nnforge._C.cpu (csrc/cpu/pool.cpp): array-level wrappers.

Every function takes (N, C, H, W) numpy arrays (the ops fold 1-D and
unbatched inputs into that form) and returns arrays of the input's dtype;
float16 and bfloat16 compute in float32. Pairs (kernel, stride, ...) are (h, w) tuples of
ints, already checked by the ops (the kernels check them again).
"""
from __future__ import annotations

import numpy as np

from ..dtypes import BFLOAT16_NP as _BF16

# float16 and bfloat16: computed in float32 and rounded back.
_REDUCED = tuple(d for d in (np.dtype(np.float16), _BF16) if d is not None)

__all__ = ["max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
           "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward", "adaptive_max_pool2d"]


def _kernels():
    from .._C import cpu  # imported on first use: numpy-only code never needs it
    return cpu


def _work(a: np.ndarray) -> np.ndarray:
    """``a`` as the C-contiguous float32/float64 array the kernels take."""
    dtype = np.float32 if a.dtype in _REDUCED else a.dtype
    return np.ascontiguousarray(a, dtype=dtype)


def _back(out: np.ndarray, like: np.ndarray) -> np.ndarray:
    return out if out.dtype == like.dtype else out.astype(like.dtype)


def max_pool2d(x, kernel, stride, padding, dilation, ceil_mode, return_indices):
    """(y, indices or None): window maxima and their flat positions h * W + w in each plane."""
    y, idx = _kernels().max_pool2d_forward(_work(x), kernel, stride, padding, dilation,
                                           bool(ceil_mode), bool(return_indices))
    return _back(y, x), idx


def max_pool2d_backward(g, indices, input_hw):
    """dL/dx: g scattered (summed) into the input positions ``indices`` point to."""
    gx = _kernels().max_pool2d_backward(_work(g), np.ascontiguousarray(indices, np.int64),
                                        tuple(input_hw))
    return _back(gx, g)


def avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
    y = _kernels().avg_pool2d_forward(_work(x), kernel, stride, padding, bool(ceil_mode),
                                      bool(count_include_pad), int(divisor_override or 0))
    return _back(y, x)


def avg_pool2d_backward(g, input_hw, kernel, stride, padding, ceil_mode, count_include_pad,
                        divisor_override):
    gx = _kernels().avg_pool2d_backward(_work(g), tuple(input_hw), kernel, stride, padding,
                                        bool(ceil_mode), bool(count_include_pad),
                                        int(divisor_override or 0))
    return _back(gx, g)


def adaptive_avg_pool2d(x, output_hw):
    return _back(_kernels().adaptive_avg_pool2d_forward(_work(x), tuple(output_hw)), x)


def adaptive_avg_pool2d_backward(g, input_hw):
    return _back(_kernels().adaptive_avg_pool2d_backward(_work(g), tuple(input_hw)), g)


def adaptive_max_pool2d(x, output_hw, return_indices):
    """(y, indices or None) as ``max_pool2d``; its backward is ``max_pool2d_backward``."""
    y, idx = _kernels().adaptive_max_pool2d_forward(_work(x), tuple(output_hw),
                                                    bool(return_indices))
    return _back(y, x), idx
