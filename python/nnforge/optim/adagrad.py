"""Adagrad (Duchi, Hazan & Singer, 2011).

With gradient g, learning rate lr, step t (from 1), each step does (PyTorch's
formulation; the fused kernel is ``backend.adagrad_update_``):

    g   = g + wd * p                          (weight decay)
    clr = lr / (1 + (t - 1) * lr_decay)
    sum = sum + g^2                           (sum starts at initial_accumulator_value)
    p   = p - clr * g / (sqrt(sum) + eps)
"""
from __future__ import annotations

from ..ops.creation import full_like
from .optimizer import Optimizer, increment_step, new_step_counter


class Adagrad(Optimizer):
    """``Adagrad(params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
    eps=1e-10, *, maximize=False)``.

    State per parameter (created with the optimizer, as in PyTorch): ``step`` and ``sum``.

    >>> import nnforge as nf
    >>> w = nf.nn.Parameter(nf.ones(2))
    >>> opt = nf.optim.Adagrad([w], lr=0.1)
    >>> (w * w).sum().backward(); opt.step()
    >>> [round(x, 4) for x in w.tolist()]
    [0.9, 0.9]
    """

    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                 initial_accumulator_value=0.0, eps=1e-10, *, maximize=False):
        if not 0.0 <= lr:
            raise ValueError(f"Adagrad: invalid learning rate {lr}")
        if not 0.0 <= lr_decay:
            raise ValueError(f"Adagrad: invalid lr_decay value {lr_decay}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Adagrad: invalid weight_decay value {weight_decay}")
        if not 0.0 <= initial_accumulator_value:
            raise ValueError(f"Adagrad: invalid initial_accumulator_value value "
                             f"{initial_accumulator_value}")
        if not 0.0 <= eps:
            raise ValueError(f"Adagrad: invalid epsilon value {eps}")
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, eps=eps,
                                      weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      maximize=maximize))
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, group)

    def _init_state(self, p, group) -> dict:
        state = self.state[p]
        if not state:
            state["step"] = new_step_counter()
            state["sum"] = full_like(p, group["initial_accumulator_value"])
        return state

    def _update(self, p, group, state):
        state = self._init_state(p, group)  # groups added later start here
        step = increment_step(state)
        p.device.backend.adagrad_update_(
            p.data, p.grad.data, state["sum"].data, step=step, lr=group["lr"],
            lr_decay=group["lr_decay"], weight_decay=group["weight_decay"],
            eps=group["eps"], maximize=group["maximize"])
