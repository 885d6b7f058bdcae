"""Named tuples returned by ops that return several tensors (``max(x, dim)`` ...)."""
from typing import NamedTuple

from .tensor import Tensor


class MinMax(NamedTuple):
    values: Tensor
    indices: Tensor
