"""Dropout: zeroes elements at random while training, the identity in eval mode."""
from __future__ import annotations

from ..tensor import Tensor
from . import functional as F
from .module import Module

__all__ = ["Dropout"]


class Dropout(Module):
    """Zeroes each element with probability ``p`` while ``training`` and scales the
    rest by 1 / (1 - p); in ``eval()`` mode it returns its input unchanged.

    >>> import nnforge as nf
    >>> drop = nf.nn.Dropout(0.5).eval()
    >>> drop(nf.ones(3))
    tensor([1., 1., 1.])
    """

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout(input, self.p, self.training, self.inplace)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"
