"""CUDA backend, matrix products: ``matmul`` and ``linear``, the CPU backend's
names and semantics, on nnforge's own GEMM kernels (csrc/cuda/gemm*.cu).

float32 and float64 run on the SIMT kernel (exact fp32/fp64 FMAs, as the
CPU's GEMM; TF32 only when asked for through ``_C.cuda.gemm(..., allow_tf32=True)``);
bfloat16 and float16 on the tensor-core kernel (fp32 accumulation), or the
SIMT kernel where an operand's layout does not suit 16-byte copies.
Transposed and sliced operands are read in place; batch dims broadcast as
numpy.matmul's.
"""
from __future__ import annotations

from .cuda_core import _cuda, _device_array
from .cuda_shape import broadcast_to, reshape, swap_last

__all__ = ["matmul", "linear"]

_GEMM = ("float64", "float32", "bfloat16", "float16")


def _common_dtype(op: str, *xs) -> str:
    """The dtype the product is computed in: numpy's promotion among float32/float64/
    float16, PyTorch's for bfloat16 (with float16: float32; with float32/64: that)."""
    names = [x.dtype_name for x in xs]
    floats = [n for n in names if n in _GEMM]
    if not floats:
        raise TypeError(f"{op}: the CUDA GEMM takes float32, float64, bfloat16 or float16 "
                        f"operands, got {', '.join(names)}")
    if len(set(floats)) == 1:
        return floats[0]
    for wide in ("float64", "float32"):
        if wide in floats:
            return wide
    return "float32"  # bfloat16 with float16


def _as(x, dtype_name: str):
    return x if x.dtype_name == dtype_name else _cuda().astype(x, dtype_name)


def matmul(a, b):
    """numpy.matmul for CUDA arrays (1-D operands, broadcast batch dims; a 0-d
    array for two vectors)."""
    a, b = _device_array(a, "matmul"), _device_array(b, "matmul")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: operands must have at least 1 dim, got shapes {a.shape} "
                         f"and {b.shape}")
    dt = _common_dtype("matmul", a, b)
    a, b = _as(a, dt), _as(b, dt)
    vec_a, vec_b = a.ndim == 1, b.ndim == 1
    if vec_a:
        a = reshape(a, (1, a.shape[0]))
    if vec_b:
        b = reshape(b, (b.shape[0], 1))
    out = _cuda().gemm(a, b)
    if vec_a and vec_b:
        return reshape(out, out.shape[:-2])
    if vec_a:
        return reshape(out, out.shape[:-2] + out.shape[-1:])
    if vec_b:
        return reshape(out, out.shape[:-1])
    return out


def linear(x, w, b=None, activation=None):
    """act(x @ w.T + b) for x (..., in), w (out, in), b (out,), () or None;
    activation None, 'relu', 'gelu' or 'gelu_tanh'. The bias and activation are
    applied by the GEMM as it writes each tile (no extra pass)."""
    x, w = _device_array(x, "linear"), _device_array(w, "linear")
    if w.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D (out, in), got shape {w.shape}")
    operands = (x, w) if b is None else (x, w, _device_array(b, "linear"))
    dt = _common_dtype("linear", *operands)
    x, w = _as(x, dt), _as(w, dt)
    if b is not None:
        b = _as(b, dt)
        if b.ndim == 0:
            b = broadcast_to(b, (w.shape[0],))
        elif b.ndim != 1 or b.shape[0] != w.shape[0]:
            raise ValueError(f"linear: bias must have shape ({w.shape[0]},), got {b.shape}")
    vec = x.ndim == 1
    if vec:
        x = reshape(x, (1, x.shape[0]))
    out = _cuda().gemm(x, swap_last(w), bias=b, activation=activation or "none")
    return reshape(out, out.shape[1:]) if vec else out
