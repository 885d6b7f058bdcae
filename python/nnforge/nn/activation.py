"""Activation modules, by their PyTorch class names.

Each is a thin Module over a function of ``functional``; constructor
arguments are stored as attributes and shown by ``extra_repr``, as in PyTorch.
Add new activations here, one class per function, grouped as below.
"""
from __future__ import annotations

from ..tensor import Tensor
from . import functional as F
from .module import Module

__all__ = ["ReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax"]


# ---------------------------------------------------------------- pointwise
class ReLU(Module):
    """max(x, 0), elementwise.

    >>> import nnforge as nf
    >>> nf.nn.ReLU()(nf.tensor([-1.0, 2.0]))
    tensor([0., 2.])
    """

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.relu(input, inplace=self.inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class Sigmoid(Module):
    """1 / (1 + exp(-x)), elementwise."""

    def forward(self, input: Tensor) -> Tensor:
        return F.sigmoid(input)


class Tanh(Module):
    """tanh(x), elementwise."""

    def forward(self, input: Tensor) -> Tensor:
        return F.tanh(input)


# ---------------------------------------------------------------- along a dim
class _DimActivation(Module):
    _fn = None

    def __init__(self, dim: int | None = None):
        super().__init__()
        if dim is None:
            name = type(self).__name__
            raise TypeError(f"{name}: dim is required (PyTorch's implicit choice of dim is "
                            f"deprecated; nnforge asks for it), e.g. nn.{name}(dim=-1)")
        self.dim = dim

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmax(_DimActivation):
    """exp(x_i) / sum_j exp(x_j) along ``dim`` (which must be given)."""

    def forward(self, input: Tensor) -> Tensor:
        return F.softmax(input, self.dim)


class LogSoftmax(_DimActivation):
    """log(softmax(x)) along ``dim`` (which must be given), computed stably."""

    def forward(self, input: Tensor) -> Tensor:
        return F.log_softmax(input, self.dim)
