"""``nf.cuda``: whether a GPU can be used. The CUDA backend itself comes with
the CUDA issue; until then tensors cannot move to "cuda"."""
from __future__ import annotations

from . import _C


def is_built() -> bool:
    """True when this nnforge was compiled with CUDA support."""
    return bool(_C.cuda.is_built())


def device_count() -> int:
    """Number of visible CUDA devices (0 without a driver or without a CUDA build)."""
    return int(_C.cuda.device_count()) if is_built() else 0


def is_available() -> bool:
    """True when tensors can be placed on a GPU: CUDA built, a device visible and
    the CUDA backend present in this version."""
    from .backend import get_backend
    if device_count() == 0:
        return False
    try:
        get_backend("cuda")
    except RuntimeError:
        return False
    return True


def get_device_name(device: int = 0) -> str:
    return _C.cuda.device_name(int(device))
