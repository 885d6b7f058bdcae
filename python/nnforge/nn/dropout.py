"""Dropout: zeroes elements at random while training, the identity in eval mode."""
from __future__ import annotations

from ..tensor import Tensor
from . import functional as F
from .module import Module

__all__ = ["Dropout", "Dropout1d", "Dropout2d"]


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


class _FeatureDropout(Dropout):
    """Dropout of whole channels; subclasses name the functional form."""

    _fn = None

    def forward(self, input: Tensor) -> Tensor:
        return type(self)._fn(input, self.p, self.training, self.inplace)


class Dropout1d(_FeatureDropout):
    """Zeroes whole channels of an (N, C, L) or (C, L) input with probability ``p``
    while training (scaling the kept ones by 1 / (1 - p)); the identity in eval mode."""

    _fn = staticmethod(F.dropout1d)


class Dropout2d(_FeatureDropout):
    """Zeroes whole feature maps of an (N, C, H, W) or (C, H, W) input with
    probability ``p`` while training (scaling the kept ones by 1 / (1 - p)), as
    Tompson et al. (2015) do for convolutional layers; the identity in eval mode.

    >>> import nnforge as nf
    >>> nf.nn.Dropout2d(0.2)
    Dropout2d(p=0.2, inplace=False)
    """

    _fn = staticmethod(F.dropout2d)
