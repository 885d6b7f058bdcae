"""CUDA random numbers from Philox4x32-10 over nnforge._C.cuda
(csrc/cuda/philox.cu, philox.cuh): uniform, standard normal and Bernoulli
samples, and the scaled dropout mask, drawn on the device.

These functions are pure: each takes the stream position (``seed``,
``offset``) and returns ``(array, draws)``, ``draws`` being the number of
32-bit draws it used (a multiple of 4). The generator state and its advance
live in ``nf.cuda`` (``_philox``), which the Tensor-level callers
(``nf.rand``/``randn``/``bernoulli`` on device="cuda", dropout) go through, so
no two calls reuse a Philox counter. The CPU backend has no counterpart: CPU
random numbers come from numpy's PCG64 in ``nnforge.random``.

Layout (random.h): element i uses draw i (block i // 4, word i % 4), or draws
2i and 2i + 1 for float64 uniform/normal samples; the counter of block b is
(b, offset), the key the seed.
"""
from __future__ import annotations

import numpy as np

from .cuda_core import _cuda, _current_device, _device_array, ascontiguous

__all__ = ["philox_uniform", "philox_normal", "philox_bernoulli", "philox_dropout_mask",
           "philox_words"]

_FLOATS = ("float32", "float64", "float16", "bfloat16")
_U64 = (1 << 64) - 1


def _dtype_name(dtype, op: str) -> str:
    name = dtype if isinstance(dtype, str) else getattr(dtype, "name", None)
    if name is None or name not in _FLOATS:
        try:
            name = np.dtype(dtype).name
        except TypeError:
            name = str(dtype)
    if name not in _FLOATS:
        raise TypeError(f"{op}: samples need a floating point dtype, got {name}")
    return name


def _shape(shape) -> list:
    return [int(shape)] if isinstance(shape, (int, np.integer)) else [int(s) for s in shape]


def _dev(device):
    return _current_device() if device is None else int(device)


def philox_uniform(shape, dtype, seed, offset, device=None):
    """(samples uniform on [0, 1) of ``dtype``, draws used)."""
    return _cuda().philox_uniform(_shape(shape), _dtype_name(dtype, "philox_uniform"),
                                  _dev(device), int(seed) & _U64, int(offset) & _U64)


def philox_normal(shape, dtype, seed, offset, device=None):
    """(standard normal samples of ``dtype`` (Box-Muller), draws used)."""
    return _cuda().philox_normal(_shape(shape), _dtype_name(dtype, "philox_normal"),
                                 _dev(device), int(seed) & _U64, int(offset) & _U64)


def philox_bernoulli(shape, dtype, seed, offset, p=None, probs=None, value=1.0, device=None):
    """(``value`` where a uniform draw is below ``probs[i]`` (or the scalar ``p``), else 0;
    draws used). ``probs`` is a device array of ``shape`` (converted to ``dtype``)."""
    op = "philox_bernoulli"
    name = _dtype_name(dtype, op)
    if (p is None) == (probs is None):
        raise ValueError(f"{op}: give exactly one of p and probs")
    if probs is not None:
        probs = _device_array(probs, op)
        if tuple(probs.shape) != tuple(_shape(shape)):
            raise ValueError(f"{op}: probs of shape {tuple(probs.shape)} do not match the "
                             f"shape {tuple(_shape(shape))}")
        if probs.dtype_name != name:
            probs = _cuda().astype(probs, name)
        elif not probs.is_contiguous():
            probs = ascontiguous(probs)
        device = probs.device
    return _cuda().philox_bernoulli(_shape(shape), name, _dev(device), probs,
                                    0.0 if p is None else float(p), float(value),
                                    int(seed) & _U64, int(offset) & _U64)


def philox_dropout_mask(shape, dtype, p_drop, seed, offset, device=None):
    """(the scaled dropout mask keep / (1 - p_drop), keep ~ Bernoulli(1 - p_drop); draws used),
    one pass; all zeros for p_drop == 1."""
    p_drop = float(p_drop)
    if not 0.0 <= p_drop <= 1.0:
        raise ValueError(f"dropout: probability has to be between 0 and 1, but got {p_drop}")
    value = 0.0 if p_drop == 1.0 else 1.0 / (1.0 - p_drop)
    return philox_bernoulli(shape, dtype, seed, offset, p=1.0 - p_drop, value=value,
                            device=device)


def philox_words(n, seed, offset, device=None):
    """(the first ``n`` raw 32-bit draws of the stream as int64, draws used)."""
    return _cuda().philox_words(int(n), _dev(device), int(seed) & _U64, int(offset) & _U64)
