"""``nf.cuda``: the GPU, as ``torch.cuda`` presents it.

>>> import nnforge as nf
>>> isinstance(nf.cuda.is_available(), bool)
True

Without a CUDA build or a visible GPU, ``is_available()`` is False,
``device_count()`` is 0, the memory statistics are 0 and the calls that need
a device raise RuntimeError.
"""
from __future__ import annotations

import threading

import numpy as np

from . import _C

__all__ = ["is_built", "is_available", "device_count", "current_device", "set_device",
           "get_device_name", "synchronize", "manual_seed", "manual_seed_all", "seed", "seed_all",
           "initial_seed", "get_rng_state", "set_rng_state",
           "memory_allocated", "max_memory_allocated", "memory_reserved", "max_memory_reserved",
           "memory_stats", "empty_cache", "reset_peak_memory_stats"]

# The CUDA generator: a Philox4x32-10 stream (csrc/cuda/philox.cuh) at position
# (seed, offset). Every sampling kernel reads it and the offset advances by the
# 32-bit draws the kernel used (rounded up to 4), so no two calls share a Philox
# counter. One stream serves every device (the counters, not the device, keep
# calls apart).
_U64 = (1 << 64) - 1
_seed = 0
_offset = 0
_lock = threading.Lock()


def is_built() -> bool:
    """True when this nnforge was compiled with CUDA support."""
    return bool(_C.cuda.is_built())


def device_count() -> int:
    """Number of visible CUDA devices (0 without a driver or without a CUDA build)."""
    return int(_C.cuda.device_count()) if is_built() else 0


def is_available() -> bool:
    """True when tensors can be placed on a GPU: CUDA built and a device visible."""
    return device_count() > 0


def _require(op: str) -> None:
    from .backend import _check_cuda_usable
    try:
        _check_cuda_usable()
    except RuntimeError as e:
        raise RuntimeError(f"cuda.{op}: {e}") from None


def _index(device, op: str) -> int:
    """An int device index from None (current), an int, 'cuda:1' or nf.device."""
    _require(op)
    if device is None:
        return int(_C.cuda.current_device())
    if isinstance(device, int):
        return device
    from .device import as_device
    d = as_device(device)
    if d.type != "cuda":
        raise ValueError(f"cuda.{op}: expected a CUDA device, got {d}")
    return d.index or 0


def current_device() -> int:
    _require("current_device")
    return int(_C.cuda.current_device())


def set_device(device) -> None:
    index = _index(device, "set_device")
    _C.cuda.set_device(index)


def get_device_name(device=None) -> str:
    if not is_built():
        return _C.cuda.device_name(0 if device is None else int(device))  # raises clearly
    index = _index(device, "get_device_name")
    return _C.cuda.device_name(index)


def synchronize(device=None) -> None:
    """Waits until every kernel queued on the device has finished."""
    index = _index(device, "synchronize")
    _C.cuda.synchronize(index)


def manual_seed(seed: int) -> None:
    """Seeds the GPU random stream (dropout, rand, randn, bernoulli on a CUDA device) and
    rewinds it to its start; harmless without a GPU, as in PyTorch."""
    global _seed, _offset
    with _lock:
        _seed = int(seed) & _U64
        _offset = 0


manual_seed_all = manual_seed


def seed() -> int:
    """Seeds the GPU random stream from fresh entropy; returns the new seed."""
    new = int(np.random.SeedSequence().entropy) % (1 << 63)
    manual_seed(new)
    return new


seed_all = seed


def initial_seed() -> int:
    return _seed


def get_rng_state(device=None):
    """The GPU generator's state as a uint8 tensor of 16 bytes: the seed and the
    stream offset, little-endian uint64 each (``device`` is accepted for PyTorch's
    signature; one stream serves all devices)."""
    from .ops.creation import from_numpy
    with _lock:
        raw = np.array([_seed, _offset], dtype="<u8")
    return from_numpy(raw.view(np.uint8).copy())


def set_rng_state(new_state, device=None) -> None:
    """Restores a state from ``get_rng_state`` (a tensor, numpy array or bytes of 16 bytes)."""
    global _seed, _offset
    from .tensor import Tensor
    if isinstance(new_state, Tensor):
        raw = new_state.numpy(force=True)
    elif isinstance(new_state, (bytes, bytearray)):
        raw = np.frombuffer(bytes(new_state), np.uint8)
    else:
        raw = np.asarray(new_state)
    if raw.dtype != np.uint8 or raw.shape != (16,):
        raise ValueError("cuda.set_rng_state: expected 16 uint8 values (from get_rng_state), "
                         f"got dtype {raw.dtype} and shape {raw.shape}")
    seed_, offset = (int(v) for v in np.ascontiguousarray(raw).view("<u8"))
    with _lock:
        _seed, _offset = seed_, offset


def _philox(sampler, *args, **kwargs):
    """Runs a backend Philox sampler (backend/cuda_random.py) at the stream's current
    position and advances the offset by the draws it reports; returns its array."""
    global _offset
    with _lock:
        out, draws = sampler(*args, seed=_seed, offset=_offset, **kwargs)
        _offset = (_offset + int(draws)) & _U64
    return out


def _stats(device) -> dict:
    if not is_available():
        return {"allocated": 0, "max_allocated": 0, "reserved": 0, "max_reserved": 0,
                "cached_blocks": 0}
    index = _index(device, "memory_stats")
    return dict(_C.cuda.memory_stats(index))


def memory_stats(device=None) -> dict:
    """The caching allocator's counters for a device (bytes; 0 without a GPU)."""
    return _stats(device)


def memory_allocated(device=None) -> int:
    """Bytes held by live tensors (rounded to the allocator's size classes)."""
    return _stats(device)["allocated"]


def max_memory_allocated(device=None) -> int:
    """Peak of memory_allocated since the start or reset_peak_memory_stats()."""
    return _stats(device)["max_allocated"]


def memory_reserved(device=None) -> int:
    """Bytes obtained from the driver: live tensors plus the allocator's cache."""
    return _stats(device)["reserved"]


def max_memory_reserved(device=None) -> int:
    return _stats(device)["max_reserved"]


def empty_cache() -> None:
    """Returns the cached, unused blocks to the driver (live tensors are untouched)."""
    if is_available():
        _C.cuda.empty_cache()


def reset_peak_memory_stats(device=None) -> None:
    if is_available():
        index = _index(device, "reset_peak_memory_stats")
        _C.cuda.reset_peak_memory_stats(index)
