"""Adadelta (Zeiler, 2012).

With gradient g, each step does (PyTorch's formulation, with a learning rate
lr scaling the update; the fused kernel is ``backend.adadelta_update_``):

    g     = g + wd * p                            (weight decay)
    s     = rho * s + (1 - rho) * g^2
    delta = sqrt(a + eps) / sqrt(s + eps) * g
    a     = rho * a + (1 - rho) * delta^2
    p     = p - lr * delta
"""
from __future__ import annotations

from ..ops.creation import zeros_like
from .optimizer import Optimizer, increment_step, new_step_counter


class Adadelta(Optimizer):
    """``Adadelta(params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, *, maximize=False)``.

    State per parameter: ``step``, ``square_avg`` and ``acc_delta``.

    >>> import nnforge as nf
    >>> w = nf.nn.Parameter(nf.ones(2))
    >>> opt = nf.optim.Adadelta([w], lr=1.0)
    >>> (w * w).sum().backward(); opt.step()
    >>> [round(x, 4) for x in w.tolist()]
    [0.9968, 0.9968]
    """

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, *, maximize=False):
        if not 0.0 <= lr:
            raise ValueError(f"Adadelta: invalid learning rate {lr}")
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Adadelta: invalid rho value {rho} (expected 0 <= rho <= 1)")
        if not 0.0 <= eps:
            raise ValueError(f"Adadelta: invalid epsilon value {eps}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Adadelta: invalid weight_decay value {weight_decay}")
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay,
                                      maximize=maximize))

    def _update(self, p, group, state):
        if not state:
            state["step"] = new_step_counter()
            state["square_avg"] = zeros_like(p)
            state["acc_delta"] = zeros_like(p)
        increment_step(state)
        p.device.backend.adadelta_update_(
            p.data, p.grad.data, state["square_avg"].data, state["acc_delta"].data,
            lr=group["lr"], rho=group["rho"], eps=group["eps"],
            weight_decay=group["weight_decay"], maximize=group["maximize"])
