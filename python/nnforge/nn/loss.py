"""Loss modules, by their PyTorch class names, over the functions of ``functional``.

Class weights (and BCEWithLogitsLoss's ``pos_weight``) are registered as
buffers (so they follow ``.to()`` and appear in ``state_dict``), as in PyTorch.
"""
from __future__ import annotations

from ..tensor import Tensor
from . import functional as F
from .module import Module

__all__ = ["MSELoss", "L1Loss", "HuberLoss", "SmoothL1Loss", "BCELoss", "BCEWithLogitsLoss",
           "KLDivLoss", "NLLLoss", "CrossEntropyLoss"]


class _Loss(Module):
    _reductions = F._REDUCTIONS

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean"):
        super().__init__()
        self.reduction = F._reduction(type(self).__name__, size_average, reduce, reduction,
                                      self._reductions)


class _WeightedLoss(_Loss):
    def __init__(self, weight: Tensor | None = None, size_average=None, reduce=None,
                 reduction: str = "mean"):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)


# ---------------------------------------------------------------- regression
class MSELoss(_Loss):
    """Mean squared error: mean((input - target)^2) (or 'sum' / 'none').

    ``half=True`` (our extra, keyword-only) gives E = 1/2 * sum ||o - t||^2 with
    reduction='sum' (the textbook form, whose gradient is o - t); the reduction
    still applies, so 'mean' gives half the mean squared error.

    >>> import nnforge as nf
    >>> o, t = nf.tensor([1.0, 3.0]), nf.tensor([0.0, 1.0])
    >>> nf.nn.MSELoss()(o, t).item(), nf.nn.MSELoss(reduction="sum", half=True)(o, t).item()
    (2.5, 2.5)
    """

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean", *,
                 half: bool = False):
        super().__init__(size_average, reduce, reduction)
        self.half = half

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.mse_loss(input, target, reduction=self.reduction, half=self.half)

    def extra_repr(self) -> str:
        return "half=True" if self.half else ""


class L1Loss(_Loss):
    """Mean absolute error: mean(|input - target|) (or 'sum' / 'none')."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.l1_loss(input, target, reduction=self.reduction)


class HuberLoss(_Loss):
    """d^2 / 2 for |d| < delta, delta * (|d| - delta / 2) beyond, d = input - target."""

    def __init__(self, reduction: str = "mean", delta: float = 1.0):
        super().__init__(reduction=reduction)
        if not delta > 0:
            raise ValueError(f"HuberLoss: delta must be positive, got {delta}")
        self.delta = delta

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class SmoothL1Loss(_Loss):
    """d^2 / (2 beta) for |d| < beta, |d| - beta / 2 beyond, d = input - target
    (HuberLoss divided by beta; beta = 0 gives L1Loss)."""

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean",
                 beta: float = 1.0):
        super().__init__(size_average, reduce, reduction)
        if beta < 0:
            raise ValueError(f"SmoothL1Loss: beta must be non-negative, got {beta}")
        self.beta = beta

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


# ---------------------------------------------------------------- binary
class BCELoss(_WeightedLoss):
    """Binary cross entropy of probabilities in [0, 1] (logs clamped at -100);
    ``weight`` broadcasts to the input's shape. Prefer BCEWithLogitsLoss on logits."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy(input, target, weight=self.weight,
                                      reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Sigmoid and binary cross entropy in one stable op, on logits; ``pos_weight``
    (one entry per class, the last dim) weights the positive examples.

    >>> import nnforge as nf
    >>> loss = nf.nn.BCEWithLogitsLoss()(nf.tensor([1e4, -1e4]), nf.tensor([1.0, 0.0]))
    >>> loss.item()
    0.0
    """

    def __init__(self, weight: Tensor | None = None, size_average=None, reduce=None,
                 reduction: str = "mean", pos_weight: Tensor | None = None):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(input, target, weight=self.weight,
                                                  reduction=self.reduction,
                                                  pos_weight=self.pos_weight)


# ---------------------------------------------------------------- distributions
class KLDivLoss(_Loss):
    """KL divergence: input holds log-probabilities, target probabilities (or
    log-probabilities with ``log_target=True``). Use reduction='batchmean' for the
    KL divergence per sample; 'mean' averages over every element (and warns)."""

    _reductions = ("none", "batchmean", "sum", "mean")

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean",
                 log_target: bool = False):
        super().__init__(size_average, reduce, reduction)
        self.log_target = log_target

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.kl_div(input, target, reduction=self.reduction, log_target=self.log_target)


# ---------------------------------------------------------------- classes
class NLLLoss(_WeightedLoss):
    """Negative log-likelihood of class indices given log-probabilities (N, C, ...)."""

    def __init__(self, weight: Tensor | None = None, size_average=None, ignore_index: int = -100,
                 reduce=None, reduction: str = "mean"):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index,
                          reduction=self.reduction)


class CrossEntropyLoss(_WeightedLoss):
    """Cross entropy of logits (N, C, ...) against class indices or class
    probabilities, with ``ignore_index`` and ``label_smoothing``: log-softmax and
    NLL fused in one op whose gradient is softmax(logits) - target distribution.

    >>> import nnforge as nf
    >>> loss = nf.nn.CrossEntropyLoss()(nf.zeros(2, 4), nf.tensor([0, 3]))
    >>> round(loss.item(), 4)  # log(4)
    1.3863
    """

    def __init__(self, weight: Tensor | None = None, size_average=None, ignore_index: int = -100,
                 reduce=None, reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__(weight, size_average, reduce, reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"CrossEntropyLoss: label_smoothing must be between 0.0 and 1.0, "
                             f"got {label_smoothing}")
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(input, target, weight=self.weight,
                               ignore_index=self.ignore_index, reduction=self.reduction,
                               label_smoothing=self.label_smoothing)
