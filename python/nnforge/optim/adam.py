"""Adam (Kingma & Ba, 2015) and AdamW (Loshchilov & Hutter, 2019).

With gradient g, learning rate lr, step t (from 1), each step does (PyTorch's
formulation; the fused kernel is ``backend.adam_update_``):

    g     = g + wd * p                     (Adam's L2 weight decay)
    p     = p * (1 - lr * wd)              (AdamW: decoupled weight decay)
    m     = beta1 * m + (1 - beta1) * g
    v     = beta2 * v + (1 - beta2) * g^2
    v_max = max(v_max, v)                  (amsgrad; used for v below)
    p     = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
"""
from __future__ import annotations

from ..ops.creation import zeros_like
from .optimizer import Optimizer, increment_step, new_step_counter


def _check_adam_args(name, lr, betas, eps, weight_decay):
    if not 0.0 <= lr:
        raise ValueError(f"{name}: invalid learning rate {lr}")
    if not 0.0 <= eps:
        raise ValueError(f"{name}: invalid epsilon value {eps}")
    if len(betas) != 2:
        raise ValueError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
    for i, beta in enumerate(betas):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"{name}: invalid beta parameter at index {i}: {beta} "
                             "(expected 0 <= beta < 1)")
    if not 0.0 <= weight_decay:
        raise ValueError(f"{name}: invalid weight_decay value {weight_decay}")


class Adam(Optimizer):
    """``Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
    amsgrad=False, *, maximize=False, decoupled_weight_decay=False)``.

    State per parameter: ``step``, ``exp_avg``, ``exp_avg_sq`` and, with
    amsgrad, ``max_exp_avg_sq``.

    >>> import nnforge as nf
    >>> w = nf.nn.Parameter(nf.ones(2))
    >>> opt = nf.optim.Adam([w], lr=0.1)
    >>> (w * w).sum().backward(); opt.step()
    >>> [round(x, 4) for x in w.tolist()]
    [0.9, 0.9]
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, *, maximize=False, decoupled_weight_decay=False):
        _check_adam_args(type(self).__name__, lr, betas, eps, weight_decay)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize,
                                      decoupled_weight_decay=decoupled_weight_decay))

    def _update(self, p, group, state):
        if not state:
            state["step"] = new_step_counter()
            state["exp_avg"] = zeros_like(p)
            state["exp_avg_sq"] = zeros_like(p)
        if group["amsgrad"] and "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = zeros_like(p)
        step = increment_step(state)
        beta1, beta2 = group["betas"]
        max_sq = state["max_exp_avg_sq"].data if group["amsgrad"] else None
        p.device.backend.adam_update_(
            p.data, p.grad.data, state["exp_avg"].data, state["exp_avg_sq"].data, max_sq,
            step=step, lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
            weight_decay=group["weight_decay"], amsgrad=group["amsgrad"],
            maximize=group["maximize"], decoupled_weight_decay=group["decoupled_weight_decay"])


class AdamW(Adam):
    """``AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
    amsgrad=False, *, maximize=False)``: Adam with decoupled weight decay,
    ``p = p * (1 - lr * weight_decay)`` before the Adam step.

    >>> import nnforge as nf
    >>> w = nf.nn.Parameter(nf.ones(2))
    >>> opt = nf.optim.AdamW([w], lr=0.1, weight_decay=0.5)
    >>> (w * w).sum().backward(); opt.step()
    >>> [round(x, 4) for x in w.tolist()]
    [0.85, 0.85]
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)
