"""Tensor creation: tensor, from_numpy, zeros/ones/full/empty, arange, linspace,
eye, random tensors (rand, randn, randint, normal, uniform, randperm) and *_like.

Sizes are given as ``zeros(2, 3)`` or ``zeros((2, 3))``. Random numbers come
from ``generator`` (default: the global one seeded by ``nf.manual_seed``).
"""
from __future__ import annotations

import math

import numpy as np

from .. import dtypes as _dt
from ..device import as_device
from ..random import _rng, uniform_array
from ..tensor import Tensor


def _size(size, op):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    out = []
    for s in size:
        if isinstance(s, Tensor):
            s = s.item()
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
            raise TypeError(f"{op}: size must be a sequence of ints, got {size!r}")
        if s < 0:
            raise ValueError(f"{op}: negative dimension {s} in size {tuple(size)}")
        out.append(int(s))
    return tuple(out)


def _finish(array: np.ndarray, device, requires_grad: bool, op: str) -> Tensor:
    if requires_grad and array.dtype.kind not in _dt.FLOAT_KINDS:
        raise RuntimeError(f"{op}: only floating point tensors can require gradients, "
                           f"got dtype {array.dtype}")
    return Tensor._from_host(array, as_device(device), requires_grad)


def _float_dtype(dtype, op):
    return _dt.get_default_dtype() if dtype is None else _dt.as_dtype(dtype, op)


def _sample_dtype(dtype, op):
    """The dtype of a continuous random sample: a floating one."""
    dt = _float_dtype(dtype, op)
    if not dt.is_floating_point:
        raise TypeError(f"{op}: samples need a floating point dtype, got {dt.name}")
    return dt


def tensor(data, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (nested lists, scalars, numpy arrays).

    Python floats give the default dtype (float32), ints int64, bools bool.

    >>> import nnforge as nf
    >>> nf.tensor([[1, 2], [3, 4]]).dtype
    nnforge.int64
    """
    arr = _to_numpy(data, dtype, "tensor")
    return _finish(np.array(arr, copy=True), device, requires_grad, "tensor")


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """Like ``tensor``, but shares memory with a numpy array or Tensor where it can."""
    if isinstance(data, Tensor):
        out = data
        if dtype is not None:
            out = out.to(dtype=dtype)
        if device is not None:
            out = out.to(device)
        return out
    arr = _to_numpy(data, dtype, "as_tensor")
    return _finish(arr, device, False, "as_tensor")


def _to_numpy(data, dtype, op) -> np.ndarray:
    """``data`` as a numpy array. Arrays, numpy scalars and tensors keep their
    dtype; Python floats give the default float dtype and Python ints int64,
    unless a sequence also holds a typed float (numpy scalar or tensor), whose
    dtype then wins, as in PyTorch."""
    if isinstance(data, Tensor):
        arr = data.device.backend.to_host(data.data)
    elif isinstance(data, (np.ndarray, np.generic)):
        arr = np.asarray(data)
        if not arr.dtype.isnative:  # e.g. big-endian data read from a file
            arr = arr.astype(arr.dtype.newbyteorder("="))
    else:
        try:
            arr = np.asarray(_unwrap(data))
        except ValueError as e:  # numpy refuses ragged nesting
            raise ValueError(f"{op}: ragged nested sequence: every row must have the same "
                             f"length ({e})") from None
        if arr.dtype.kind == "O" and _has_big_int(data):
            raise OverflowError(f"{op}: a Python int does not fit in int64")
        if dtype is None:
            if arr.dtype.kind == "f" and not _has_typed_float(data):
                arr = arr.astype(_dt.get_default_dtype().np)
            elif arr.dtype.kind in "iu":
                arr = arr.astype(np.int64)
    if arr.dtype.kind in "OUSV" and arr.dtype != _dt.BFLOAT16_NP:
        raise TypeError(f"{op}: cannot make a tensor from data of type {arr.dtype} "
                        f"(got {type(data).__name__}); expected numbers, bools or nested "
                        "sequences of them")
    if dtype is not None:
        arr = arr.astype(_dt.as_dtype(dtype, op).np, copy=False)
    else:
        _dt.from_numpy_dtype(arr.dtype)  # raises for unsupported dtypes
    return arr


def _has_typed_float(data) -> bool:
    if isinstance(data, (list, tuple)):
        return any(_has_typed_float(d) for d in data)
    if isinstance(data, (np.ndarray, np.generic, Tensor)):
        dt = np.dtype(data.dtype.np if isinstance(data, Tensor) else data.dtype)
        return dt.kind in _dt.FLOAT_KINDS
    return False


def _has_big_int(data) -> bool:
    if isinstance(data, (list, tuple)):
        return any(_has_big_int(d) for d in data)
    return isinstance(data, int) and not -2 ** 63 <= data < 2 ** 63


def _unwrap(data):
    if isinstance(data, Tensor):
        return data.device.backend.to_host(data.data)
    if isinstance(data, (list, tuple)):
        return [_unwrap(d) for d in data]
    return data


def from_numpy(array: np.ndarray) -> Tensor:
    """A CPU tensor sharing memory with ``array`` (changes show in both)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    if not array.dtype.isnative:
        raise TypeError(f"from_numpy: the array's byte order ({array.dtype.str}) is not this "
                        "machine's, so its memory cannot be shared; use nnforge.tensor(array), "
                        "which copies and converts")
    _dt.from_numpy_dtype(array.dtype)
    return Tensor._from_host(array)


def _filled(op, size, fill, dtype, device, requires_grad):
    shape = _size(size, op)
    dt = _float_dtype(dtype, op)
    device = as_device(device)
    be = device.backend
    if fill is None:
        data = be.empty(shape, dt.np)
    elif fill == 0:
        data = be.zeros(shape, dt.np)
    elif fill == 1:
        data = be.ones(shape, dt.np)
    else:
        data = be.full(shape, fill, dt.np)
    if requires_grad and not dt.is_floating_point:
        raise RuntimeError(f"{op}: only floating point tensors can require gradients, got {dt.name}")
    return Tensor._make(data, device, requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _filled("zeros", size, 0, dtype, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _filled("ones", size, 1, dtype, device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _filled("empty", size, None, dtype, device, requires_grad)


def full(size, fill_value, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    if dtype is None:
        dtype = _dt.result_type(fill_value)
    return _filled("full", (tuple(size),) if not isinstance(size, int) else (size,),
                   fill_value, dtype, device, requires_grad)


def arange(start, end=None, step=1, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Values from ``start`` up to (not including) ``end`` by ``step``, as
    ``torch.arange``: the length is ceil((end - start) / step), and for an
    integer dtype the three arguments are first truncated to integers."""
    if end is None:
        start, end = 0, start
    start, end, step = (a.item() if isinstance(a, Tensor) else a for a in (start, end, step))
    for name, a in (("start", start), ("end", end), ("step", step)):
        if not math.isfinite(a):
            raise ValueError(f"arange: {name} must be finite, got {a}")
    if dtype is None:
        dtype = _dt.result_type(start, end, step)
    dt = _dt.as_dtype(dtype, "arange")
    if not dt.is_floating_point:
        start, end, step = int(start), int(end), int(step)
    if step == 0:
        raise ValueError("arange: step must be nonzero" + (
            f" (it truncates to 0 for dtype {dt.name})" if not dt.is_floating_point else ""))
    if (end - start) * step < 0:
        raise ValueError(f"arange: upper bound and step are inconsistent: start={start}, "
                         f"end={end}, step={step}")
    n = max(0, math.ceil((end - start) / step))
    arr = (start + step * np.arange(n, dtype=np.float64)).astype(dt.np) if dt.is_floating_point \
        else np.arange(start, end, step, dtype=dt.np)
    return _finish(arr, device, requires_grad, "arange")


def linspace(start, end, steps, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    if steps < 0:
        raise ValueError(f"linspace: number of steps must be non-negative, got {steps}")
    dt = _float_dtype(dtype, "linspace")
    return _finish(np.linspace(start, end, steps).astype(dt.np), device, requires_grad, "linspace")


def eye(n, m=None, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    if n < 0 or (m is not None and m < 0):
        raise ValueError(f"eye: n and m must be non-negative, got n={n}, m={m}")
    dt = _float_dtype(dtype, "eye")
    return _finish(np.eye(n, m, dtype=dt.np), device, requires_grad, "eye")


# ---------------------------------------------------------------- random
def _cuda_draw(device, generator):
    """The CUDA device to draw on, or None: samples for a CUDA device without an explicit
    ``generator`` come from nf.cuda's Philox stream, drawn there (no host transfer);
    with a ``generator`` they are drawn on the host from it and copied."""
    if device is None or generator is not None:
        return None
    d = as_device(device)
    return d if d.type == "cuda" else None


def _philox_tensor(d, sampler: str, shape, dtype_name: str, requires_grad: bool, **kwargs):
    from .. import cuda as _nf_cuda
    kwargs.setdefault("device", d.index)
    arr = _nf_cuda._philox(getattr(d.backend, sampler), shape, dtype_name, **kwargs)
    return Tensor._make(arr, d, requires_grad)


def rand(*size, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Uniform on [0, 1)."""
    dt = _sample_dtype(dtype, "rand")
    shape = _size(size, "rand")
    d = _cuda_draw(device, generator)
    if d is not None:
        return _philox_tensor(d, "philox_uniform", shape, dt.name, requires_grad)
    arr = uniform_array(_rng(generator), 0.0, 1.0, shape, dt.np)
    return _finish(arr, device, requires_grad, "rand")


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Standard normal."""
    dt = _sample_dtype(dtype, "randn")
    shape = _size(size, "randn")
    d = _cuda_draw(device, generator)
    if d is not None:
        return _philox_tensor(d, "philox_normal", shape, dt.name, requires_grad)
    arr = _rng(generator).standard_normal(shape).astype(dt.np)
    return _finish(arr, device, requires_grad, "randn")


def randint(low=0, high=None, size=None, *, generator=None, dtype=None, device=None) -> Tensor:
    """Integers uniform on [low, high); ``randint(high, size)`` also works."""
    if size is None:
        if high is None or not isinstance(high, (tuple, list)):
            raise TypeError("randint: expected randint(high, size) or randint(low, high, size)")
        low, high, size = 0, low, high
    if high is None:
        raise TypeError("randint: missing 'high'")
    if low >= high:
        raise ValueError(f"randint: low ({low}) must be smaller than high ({high})")
    dt = _dt.int64 if dtype is None else _dt.as_dtype(dtype, "randint")
    arr = _rng(generator).integers(low, high, size=_size((size,), "randint")).astype(dt.np)
    return _finish(arr, device, False, "randint")


def randperm(n, *, generator=None, dtype=None, device=None) -> Tensor:
    dt = _dt.int64 if dtype is None else _dt.as_dtype(dtype, "randperm")
    return _finish(_rng(generator).permutation(int(n)).astype(dt.np), device, False, "randperm")


def normal(mean=0.0, std=1.0, size=None, *, generator=None, dtype=None, device=None,
           requires_grad=False) -> Tensor:
    """Samples N(mean, std^2); mean and std may be tensors (broadcast) or floats."""
    m = mean.numpy(force=True) if isinstance(mean, Tensor) else mean
    s = std.numpy(force=True) if isinstance(std, Tensor) else std
    if np.any(np.asarray(s) < 0):
        raise ValueError("normal: std must be non-negative")
    if size is None:
        size = np.broadcast_shapes(np.shape(m), np.shape(s))
    size = _size((size,), "normal") if not isinstance(size, int) else (size,)
    dt = _sample_dtype(dtype if dtype is not None else
                      (mean.dtype if isinstance(mean, Tensor) else None), "normal")
    arr = _rng(generator).normal(m, s, size=size).astype(dt.np)
    return _finish(arr, device, requires_grad, "normal")


def uniform(low=0.0, high=1.0, size=(), *, generator=None, dtype=None, device=None,
            requires_grad=False) -> Tensor:
    """Samples uniformly from [low, high)."""
    if high < low:
        raise ValueError(f"uniform: high ({high}) must be >= low ({low})")
    dt = _sample_dtype(dtype, "uniform")
    size = _size((size,), "uniform") if not isinstance(size, int) else (size,)
    arr = uniform_array(_rng(generator), low, high, size, dt.np)
    return _finish(arr, device, requires_grad, "uniform")


def bernoulli(input, p=None, *, generator=None) -> Tensor:
    """0/1 samples with probabilities ``input`` (or a fixed ``p``), input's dtype."""
    d = _cuda_draw(input.device, generator)
    if d is not None and input.is_floating_point():
        kwargs = dict(probs=input.data) if p is None else dict(p=float(p))
        kwargs["device"] = input.data.device
        return _philox_tensor(d, "philox_bernoulli", tuple(input.shape),
                              input.data.dtype_name, False, **kwargs)
    probs = input.numpy(force=True) if p is None else np.full(tuple(input.shape), p)
    arr = (_rng(generator).random(probs.shape) < probs).astype(input.data.dtype)
    return _finish(arr, input.device, False, "bernoulli")


def multinomial(input, num_samples, replacement=False, *, generator=None) -> Tensor:
    """Draws category indices from each row of (unnormalised) probabilities."""
    probs = input.numpy(force=True).astype(np.float64)
    if probs.ndim not in (1, 2):
        raise ValueError(f"multinomial: input must be 1-D or 2-D, got shape {probs.shape}")
    rows = probs.reshape(-1, probs.shape[-1])
    if (rows < 0).any() or not np.isfinite(rows).all() or (rows.sum(1) <= 0).any():
        raise ValueError("multinomial: probabilities must be finite, non-negative, with a "
                         "positive sum in each row")
    if not replacement and num_samples > rows.shape[1]:
        raise ValueError(f"multinomial: cannot draw {num_samples} samples without replacement "
                         f"from {rows.shape[1]} categories")
    rng = _rng(generator)
    out = np.stack([rng.choice(rows.shape[1], size=num_samples, replace=replacement,
                               p=r / r.sum()) for r in rows]).astype(np.int64)
    return _finish(out.reshape(probs.shape[:-1] + (num_samples,)), input.device, False, "multinomial")


# ---------------------------------------------------------------- *_like
def _like_kwargs(input, dtype, device):
    return dict(dtype=input.dtype if dtype is None else dtype,
                device=input.device if device is None else device)


def zeros_like(input, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    return zeros(tuple(input.shape), requires_grad=requires_grad, **_like_kwargs(input, dtype, device))


def ones_like(input, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    return ones(tuple(input.shape), requires_grad=requires_grad, **_like_kwargs(input, dtype, device))


def empty_like(input, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    return empty(tuple(input.shape), requires_grad=requires_grad, **_like_kwargs(input, dtype, device))


def full_like(input, fill_value, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    return full(tuple(input.shape), fill_value, requires_grad=requires_grad,
                **_like_kwargs(input, dtype, device))


def rand_like(input, *, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    return rand(tuple(input.shape), generator=generator, requires_grad=requires_grad,
                **_like_kwargs(input, dtype, device))


def randn_like(input, *, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    return randn(tuple(input.shape), generator=generator, requires_grad=requires_grad,
                 **_like_kwargs(input, dtype, device))


def randint_like(input, low=0, high=None, *, generator=None, dtype=None, device=None) -> Tensor:
    if high is None:
        low, high = 0, low
    return randint(low, high, tuple(input.shape), generator=generator,
                   **_like_kwargs(input, dtype, device))
