"""Weight penalties to add to a loss: ``l1_penalty`` and ``l2_penalty``.

Each returns a differentiable 0-d tensor, so ``(loss + penalty).backward()``
adds its gradient to every parameter's. Pass a Module (all its parameters)
or an iterable of tensors (e.g. only the weights, leaving biases out).

>>> import nnforge as nf
>>> fc = nf.nn.Linear(4, 2)
>>> penalty = nf.nn.utils.l2_penalty(fc.weight, 1e-4)
>>> penalty.requires_grad
True
"""
from __future__ import annotations

from ...ops import creation, pointwise, reduction
from ...tensor import Tensor
from .clip_grad import _as_list

__all__ = ["l1_penalty", "l2_penalty"]


def _parameters(parameters, op: str) -> list:
    from ..module import Module  # local: nn.module imports nothing from here
    if isinstance(parameters, Module):
        return list(parameters.parameters())
    return _as_list(parameters, op, "a Module, a Tensor or an iterable of Tensors")


def _penalty(parameters, weight: float, op: str, term) -> Tensor:
    params = _parameters(parameters, op)
    if not params:
        return creation.tensor(0.0)
    total = None
    for p in params:
        s = reduction.sum(term(p))
        total = s if total is None else pointwise.add(total, s)
    return pointwise.mul(total, float(weight))


def l1_penalty(parameters, weight: float = 1.0) -> Tensor:
    """weight * sum_p sum_i |p_i| (lasso); its gradient is weight * sign(p)."""
    return _penalty(parameters, weight, "l1_penalty", pointwise.abs)


def l2_penalty(parameters, weight: float = 1.0) -> Tensor:
    """weight * sum_p sum_i p_i^2 (ridge; no factor 1/2): its gradient is
    2 * weight * p, so ``l2_penalty(model, wd / 2)`` matches SGD's weight_decay=wd."""
    return _penalty(parameters, weight, "l2_penalty", lambda p: pointwise.mul(p, p))
