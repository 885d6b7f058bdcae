"""Backends: one module per device type, each with the same function names.

A backend function takes and returns backend arrays (numpy arrays on the CPU),
never Tensors. Ops in ``nnforge.ops`` are written once against this interface.
"""
from __future__ import annotations

import importlib

_loaded: dict = {}


def get_backend(device_type: str):
    try:
        return _loaded[device_type]
    except KeyError:
        pass
    if device_type == "cpu":
        mod = importlib.import_module(".cpu", __name__)
    elif device_type == "cuda":
        raise RuntimeError("device 'cuda': the CUDA backend is not part of this build of nnforge yet")
    else:
        raise ValueError(f"unknown device type {device_type!r}")
    _loaded[device_type] = mod
    return mod
