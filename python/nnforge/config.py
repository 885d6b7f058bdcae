"""Build and run-time configuration: what nnforge was built with and what it found.

Example:
    >>> import nnforge as nf
    >>> nf.show_config()            # doctest: +SKIP
    >>> nf.set_num_threads(2)
    >>> nf.get_num_threads()        # 1 in a build without OpenMP
    2
"""

from __future__ import annotations

import operator
import platform
import sys
from typing import List, Optional, TextIO

import numpy as np

from . import _C

__all__ = ["show_config", "get_num_threads", "set_num_threads"]


def get_num_threads() -> int:
    """Number of threads the CPU kernels use (OMP_NUM_THREADS sets the start value)."""
    return _C.get_num_threads()


def set_num_threads(n: int) -> None:
    """Set the number of threads the CPU kernels use; ``n`` is an integer >= 1.

    Builds without OpenMP accept any valid ``n`` and stay single-threaded.
    """
    if isinstance(n, bool):
        raise TypeError(f"set_num_threads: n must be an int, got bool ({n!r})")
    try:
        count = operator.index(n)
    except TypeError:
        raise TypeError(
            f"set_num_threads: n must be an int, got {type(n).__name__} ({n!r})"
        ) from None
    if count < 1:
        raise ValueError(f"set_num_threads: n must be >= 1, got {count}")
    if count > 2**31 - 1:
        raise ValueError(f"set_num_threads: n must be < 2**31, got {count}")
    _C.set_num_threads(count)


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def _kernel_isa_line() -> str:
    try:
        isa = _C.selected_isa()
    except (ValueError, RuntimeError) as err:
        return f"error: {err}"
    how = "forced by NNFORGE_ISA" if _C.isa_forced() else "detected"
    return f"{isa} ({how})"


def _cuda_available_line() -> str:
    count = _C.cuda.device_count()
    if count == 0:
        return "no (0 devices)"
    names = []
    for i in range(count):
        try:
            names.append(f"{i}: {_C.cuda.device_name(i)}")
        except (IndexError, RuntimeError) as err:
            names.append(f"{i}: <{err}>")
    plural = "device" if count == 1 else "devices"
    return f"yes ({count} {plural}: " + ", ".join(names) + ")"


def _config_lines() -> List[str]:
    info = _C.build_info()
    features = [name for name, present in _C.cpu_features().items() if present]
    rows = [
        ("Python", f"{platform.python_version()} ({platform.python_implementation()})"),
        ("numpy", np.__version__),
        ("compiler", info["compiler"]),
        ("C++ standard", info["cxx_standard"]),
        ("OpenMP", _yes_no(info["openmp"])),
        ("CPU features", " ".join(features) if features else "(none detected)"),
        ("kernel ISA", _kernel_isa_line()),
        ("threads", str(get_num_threads())),
        ("CUDA built", _yes_no(info["cuda_built"])),
        ("CUDA available", _cuda_available_line()),
    ]
    width = max(len(label) for label, _ in rows) + 1
    return [f"nnforge {_C.__version__}"] + [
        f"  {label + ':':<{width}} {value}" for label, value in rows
    ]


def show_config(file: Optional[TextIO] = None) -> None:
    """Print the build configuration and what was detected on this machine.

    Shows the nnforge, Python and numpy versions, the compiler and C++
    standard, OpenMP, the CPU features found, the kernel ISA in use (and
    whether NNFORGE_ISA forced it), the thread count, and CUDA: built or not,
    and the devices visible. ``file`` defaults to ``sys.stdout``.
    """
    out = sys.stdout if file is None else file
    for line in _config_lines():
        print(line, file=out)
