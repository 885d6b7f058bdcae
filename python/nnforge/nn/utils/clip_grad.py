"""Gradient clipping, as ``torch.nn.utils``: by the total norm of all gradients
(``clip_grad_norm_``) or elementwise by value (``clip_grad_value_``).

Both change ``p.grad`` in place and never record a graph. ``foreach`` is
accepted for PyTorch compatibility and ignored (there is one implementation).
"""
from __future__ import annotations

import math
from typing import Iterable

from ...autograd.grad_mode import no_grad
from ...ops import creation, pointwise, reduction, shape
from ...tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_", "get_total_norm", "clip_grads_with_norm_"]


def _as_list(tensors, op: str, expected: str = "a Tensor or an iterable of Tensors") -> list:
    """``tensors`` (one Tensor or an iterable of them) as a list, read once;
    ``expected`` names the accepted inputs in the error."""
    if isinstance(tensors, Tensor):
        return [tensors]
    try:
        out = list(tensors)
    except TypeError:
        raise TypeError(f"{op}: expected {expected}, got {type(tensors).__name__}") from None
    for t in out:
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: expected Tensors, got an element of type {type(t).__name__}")
    return out


def _grads(parameters, op: str) -> list:
    return [p.grad for p in _as_list(parameters, op) if p.grad is not None]


def _norm_type(norm_type, op: str) -> float:
    p = float(norm_type)
    if math.isnan(p) or (p < 0 and p != -math.inf):
        raise ValueError(f"{op}: norm_type must be a non-negative number, inf or -inf, "
                         f"got {norm_type}")
    return p


def _vector_norm(t: Tensor, p: float) -> Tensor:
    """||t||_p over all elements (p = inf: max |t|, -inf: min |t|, 0: count of nonzeros)."""
    a = pointwise.abs(t)
    if p == math.inf:
        return reduction.amax(a) if t.numel() else creation.zeros((), dtype=t.dtype, device=t.device)
    if p == -math.inf:
        return reduction.amin(a) if t.numel() else creation.full((), math.inf, dtype=t.dtype, device=t.device)
    if p == 0:
        return reduction.sum(pointwise.ne(a, 0)).to(t.dtype)
    if p == 1:
        return reduction.sum(a)
    if p == 2:
        return pointwise.sqrt(reduction.sum(pointwise.mul(a, a)))
    return pointwise.pow(reduction.sum(pointwise.pow(a, p)), 1.0 / p)


def get_total_norm(tensors, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                   foreach=None) -> Tensor:
    """The p-norm of all ``tensors`` together, as if they were one vector: the norm
    of their norms. A 0-d tensor (0.0 when there are none)."""
    op = "get_total_norm"
    ts = _as_list(tensors, op)
    p = _norm_type(norm_type, op)
    if not ts:
        return creation.tensor(0.0)
    with no_grad():
        dtype = ts[0].dtype
        norms = shape.stack([_vector_norm(t.detach(), p).to(dtype) for t in ts])
        total = _vector_norm(norms, p) if p != 0 else reduction.sum(norms)
    if error_if_nonfinite and not math.isfinite(total.item()):
        raise RuntimeError(f"{op}: the total norm of order {p} of the gradients is "
                           f"non-finite ({total.item()}), so it cannot be clipped; pass "
                           "error_if_nonfinite=False to scale them by it anyway")
    return total


def clip_grads_with_norm_(parameters, max_norm: float, total_norm: Tensor,
                          foreach=None) -> None:
    """Scales every gradient by min(1, max_norm / (total_norm + 1e-6)) in place."""
    grads = _grads(parameters, "clip_grads_with_norm_")
    if not grads:
        return
    with no_grad():
        coef = pointwise.clamp(pointwise.div(float(max_norm), pointwise.add(total_norm, 1e-6)),
                               max=1.0)
        for g in grads:
            g.mul_(coef.to(g.dtype))


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float,
                    norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach=None) -> Tensor:
    """Rescales the gradients of ``parameters`` so that their total ``norm_type``-norm
    (all gradients seen as one vector; ``inf`` for the largest |g|) is at most
    ``max_norm``: each is multiplied by min(1, max_norm / (total + 1e-6)), as in
    PyTorch. Returns the total norm before clipping, as a 0-d tensor.

    A non-finite total norm raises RuntimeError when ``error_if_nonfinite``; else the
    gradients are scaled by it (and become nan), as in PyTorch.

    >>> import nnforge as nf
    >>> w = nf.nn.Parameter(nf.zeros(2))
    >>> w.grad = nf.tensor([3.0, 4.0])
    >>> nf.nn.utils.clip_grad_norm_([w], max_norm=1.0).item()
    5.0
    >>> [round(v, 4) for v in w.grad.tolist()]
    [0.6, 0.8]
    """
    parameters = _as_list(parameters, "clip_grad_norm_")  # a generator is read once
    total = get_total_norm(_grads(parameters, "clip_grad_norm_"), norm_type, error_if_nonfinite)
    clip_grads_with_norm_(parameters, max_norm, total)
    return total


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float,
                     foreach=None) -> None:
    """Clamps every gradient of ``parameters`` to [-clip_value, clip_value] in place."""
    clip_value = float(clip_value)
    if clip_value < 0:
        raise ValueError(f"clip_grad_value_: clip_value must be non-negative, got {clip_value}")
    with no_grad():
        for g in _grads(parameters, "clip_grad_value_"):
            g.clamp_(-clip_value, clip_value)
