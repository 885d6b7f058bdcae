"""Backends: one module per device type, each with the same function names.

A backend function takes and returns backend arrays (numpy arrays on the CPU),
never Tensors. Ops in ``nnforge.ops`` are written once against this interface.
"""
from __future__ import annotations

import importlib

_loaded: dict = {}


def _check_cuda_usable() -> None:
    """RuntimeError unless this build has the CUDA kernels and a GPU is visible."""
    from .. import _C
    if not _C.cuda.is_built():
        raise RuntimeError("device 'cuda': this nnforge was built without CUDA (install it on a "
                           "machine with nvcc on PATH; NNFORGE_CUDA=AUTO or ON)")
    if _C.cuda.device_count() == 0:
        raise RuntimeError("device 'cuda': no CUDA device visible (no NVIDIA driver or GPU, or "
                           "CUDA_VISIBLE_DEVICES hides them)")


def get_backend(device_type: str):
    try:
        return _loaded[device_type]
    except KeyError:
        pass
    if device_type == "cpu":
        mod = importlib.import_module(".cpu", __name__)
    elif device_type == "cuda":
        _check_cuda_usable()
        mod = importlib.import_module(".cuda", __name__)
    else:
        raise ValueError(f"unknown device type {device_type!r}")
    _loaded[device_type] = mod
    return mod
