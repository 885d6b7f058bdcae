"""CUDA convolution over nnforge._C.cuda (csrc/cuda/conv_fwd.cu, conv_bwd.cu:
implicit GEMMs, no cuDNN): the CPU backend's ``conv2d_forward``,
``conv2d_backward_input`` and ``conv2d_backward_weight`` with the same
arguments and results (see cpu_conv.py). Arrays are NCHW; conv1d callers pass
H = 1; ``stride`` and ``dilation`` are (h, w) pairs, ``padding`` is (top,
bottom, left, right).

The kernels see C-contiguous arrays of one dtype: other layouts are copied
first. Every floating dtype goes to the kernels as it is: float32 and float64
run the SIMT implicit GEMMs (fp32/fp64 FMAs, no TF32), bfloat16 and float16 the
tensor-core ones (conv_tc.cu: mma.sync, fp32 accumulation, one rounding of each
result; on sm_80+, not depthwise/thin groups, which the C++ side runs in float32
and rounds back: the same result as computing in float32, as the CPU does).
"""
from __future__ import annotations

from .cuda_core import _cuda, _device_array, ascontiguous

__all__ = ["conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight"]

_FLOATS = ("float32", "float64", "float16", "bfloat16")


def _work_name(a, op: str) -> str:
    if a.dtype_name not in _FLOATS:
        raise TypeError(f"{op}: expected a floating-point array, got {a.dtype_name} "
                        f"of shape {tuple(a.shape)}")
    return a.dtype_name


def _as(a, name: str, op: str):
    """``a`` as a C-contiguous device array of dtype ``name`` (None stays None)."""
    if a is None:
        return None
    a = _device_array(a, op)
    if a.dtype_name != name:
        return _cuda().astype(a, name)
    return a if a.is_contiguous() else ascontiguous(a)


def _back(a, name: str):
    return a if a is None or a.dtype_name == name else _cuda().astype(a, name)


def _ints(values):
    return tuple(int(v) for v in values)


def conv2d_forward(x, w, b, stride, padding, dilation, groups):
    """y = conv2d(x, w) + b (b may be None): (N, C_out, OH, OW)."""
    op = "conv2d_forward"
    x = _device_array(x, op)
    work = _work_name(x, op)
    y = _cuda().conv2d_forward(_as(x, work, op), _as(w, work, op), _as(b, work, op),
                               _ints(stride), _ints(padding), _ints(dilation), int(groups))
    return _back(y, x.dtype_name)


def conv2d_backward_input(g, w, b, input_size, stride, padding, dilation, groups):
    """dL/dx of conv2d for dL/dy = g, x of spatial size ``input_size``; plus b per
    input channel when b is not None (this is conv_transpose2d's forward)."""
    op = "conv2d_backward_input"
    g = _device_array(g, op)
    work = _work_name(g, op)
    dx = _cuda().conv2d_backward_input(_as(g, work, op), _as(w, work, op), _as(b, work, op),
                                       _ints(input_size), _ints(stride), _ints(padding),
                                       _ints(dilation), int(groups))
    return _back(dx, g.dtype_name)


def conv2d_backward_weight(x, g, kernel_size, stride, padding, dilation, groups,
                           need_weight=True, need_bias=False):
    """(dL/dw or None, dL/db or None) of conv2d for dL/dy = g."""
    op = "conv2d_backward_weight"
    x = _device_array(x, op)
    work = _work_name(x, op)
    dw, db = _cuda().conv2d_backward_weight(_as(x, work, op), _as(g, work, op),
                                            _ints(kernel_size), _ints(stride), _ints(padding),
                                            _ints(dilation), int(groups), bool(need_weight),
                                            bool(need_bias))
    return _back(dw, x.dtype_name), _back(db, x.dtype_name)
