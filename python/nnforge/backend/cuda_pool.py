"""CUDA pooling over nnforge._C.cuda (csrc/cuda/pool.cu): the CPU backend's
``max_pool2d``, ``max_pool2d_backward``, ``avg_pool2d``, ``avg_pool2d_backward``,
``adaptive_avg_pool2d``, ``adaptive_avg_pool2d_backward`` and
``adaptive_max_pool2d`` with the same arguments and results (see cpu_pool.py).

Every function takes (N, C, H, W) device arrays (the ops fold 1-D and unbatched
inputs into that form) and returns arrays of the input's dtype; float32 and
float64 run in the kernels, float16 and bfloat16 compute in float32 and round
back. Indices are int64 flat positions h * W + w within each plane.
"""
from __future__ import annotations

from .cuda_core import _cuda, _device_array, ascontiguous

__all__ = ["max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
           "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward", "adaptive_max_pool2d"]

_KERNEL_DTYPES = ("float32", "float64")
_FLOATS = ("float32", "float64", "float16", "bfloat16")


def _work(x, op: str):
    """``x`` as the C-contiguous float32/float64 device array the kernels take."""
    x = _device_array(x, op)
    if x.dtype_name not in _FLOATS:
        raise TypeError(f"{op}: expected a floating-point array, got {x.dtype_name} "
                        f"of shape {tuple(x.shape)}")
    if x.dtype_name not in _KERNEL_DTYPES:
        return _cuda().astype(x, "float32")
    return x if x.is_contiguous() else ascontiguous(x)


def _back(out, like):
    return out if out.dtype_name == like.dtype_name else _cuda().astype(out, like.dtype_name)


def _pair(p):
    return tuple(int(v) for v in p)


def _indices(idx, op: str):
    idx = _device_array(idx, op)
    if idx.dtype_name != "int64":
        idx = _cuda().astype(idx, "int64")
    return idx if idx.is_contiguous() else ascontiguous(idx)


def max_pool2d(x, kernel, stride, padding, dilation, ceil_mode, return_indices):
    """(y, indices or None): window maxima and their flat positions h * W + w in each plane."""
    op = "max_pool2d"
    y, idx = _cuda().max_pool2d_forward(_work(x, op), _pair(kernel), _pair(stride),
                                        _pair(padding), _pair(dilation), bool(ceil_mode),
                                        bool(return_indices))
    return _back(y, x), idx


def max_pool2d_backward(g, indices, input_hw):
    """dL/dx: g scattered (summed) into the input positions ``indices`` point to."""
    op = "max_pool2d_backward"
    gx = _cuda().max_pool2d_backward(_work(g, op), _indices(indices, op), _pair(input_hw))
    return _back(gx, g)


def avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
    y = _cuda().avg_pool2d_forward(_work(x, "avg_pool2d"), _pair(kernel), _pair(stride),
                                   _pair(padding), bool(ceil_mode), bool(count_include_pad),
                                   int(divisor_override or 0))
    return _back(y, x)


def avg_pool2d_backward(g, input_hw, kernel, stride, padding, ceil_mode, count_include_pad,
                        divisor_override):
    gx = _cuda().avg_pool2d_backward(_work(g, "avg_pool2d_backward"), _pair(input_hw),
                                     _pair(kernel), _pair(stride), _pair(padding),
                                     bool(ceil_mode), bool(count_include_pad),
                                     int(divisor_override or 0))
    return _back(gx, g)


def adaptive_avg_pool2d(x, output_hw):
    y = _cuda().adaptive_avg_pool2d_forward(_work(x, "adaptive_avg_pool2d"), _pair(output_hw))
    return _back(y, x)


def adaptive_avg_pool2d_backward(g, input_hw):
    gx = _cuda().adaptive_avg_pool2d_backward(_work(g, "adaptive_avg_pool2d_backward"),
                                              _pair(input_hw))
    return _back(gx, g)


def adaptive_max_pool2d(x, output_hw, return_indices):
    """(y, indices or None) as ``max_pool2d``; its backward is ``max_pool2d_backward``."""
    y, idx = _cuda().adaptive_max_pool2d_forward(_work(x, "adaptive_max_pool2d"),
                                                 _pair(output_hw), bool(return_indices))
    return _back(y, x), idx
