"""Devices: ``nf.device("cpu")``, ``nf.device("cuda:0")``.

A device names where a tensor's storage lives; its ``backend`` is the module in
``nnforge.backend`` whose functions compute on that storage.
"""
from __future__ import annotations


class device:
    """Where a tensor lives: ``device("cpu")`` or ``device("cuda", 0)``."""

    __slots__ = ("type", "index", "_backend")
    _known = ("cpu", "cuda")

    def __init__(self, type_or_spec, index: int | None = None):
        if isinstance(type_or_spec, device):
            type_or_spec, index = type_or_spec.type, type_or_spec.index
        spec = str(type_or_spec)
        if ":" in spec:
            spec, _, idx = spec.partition(":")
            if not idx.isdigit():
                raise ValueError(f"device: invalid device string {type_or_spec!r}")
            index = int(idx)
        if spec not in self._known:
            raise ValueError(f"device: expected one of {', '.join(self._known)} "
                             f"(optionally with ':index'), got {type_or_spec!r}")
        if spec == "cpu" and index not in (None, 0):
            raise ValueError(f"device: cpu has no index {index}")
        self.type = spec
        self.index = index if spec != "cpu" else None
        self._backend = None

    @property
    def backend(self):
        if self._backend is None:
            from .backend import get_backend
            self._backend = get_backend(self.type)
        return self._backend

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            try:
                other = device(other)
            except ValueError:
                return False
        if not isinstance(other, device):
            return NotImplemented
        return self.type == other.type and (self.index or 0) == (other.index or 0)

    def __reduce__(self):
        return (device, (str(self),))

    def __copy__(self) -> "device":
        return self  # immutable

    def __deepcopy__(self, memo) -> "device":
        return self

    def __hash__(self) -> int:
        return hash((self.type, self.index or 0))

    def __repr__(self) -> str:
        idx = "" if self.index is None else f", index={self.index}"
        return f"device(type='{self.type}'{idx})"

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"


CPU = device("cpu")


def as_device(d) -> device:
    if d is None:
        return CPU
    if isinstance(d, device):
        return d
    return device(d)
