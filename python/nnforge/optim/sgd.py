"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay.

With weight decay wd, momentum mu, dampening tau and learning rate lr, each
step does (PyTorch's formulation, Sutskever et al. 2013 for Nesterov):

    g  = grad + wd * p
    b  = g                         on the first step
    b  = mu * b + (1 - tau) * g    afterwards
    g  = g + mu * b  (nesterov)    or   g = b   (plain momentum)
    p  = p - lr * g
"""
from __future__ import annotations

from .optimizer import Optimizer, required


class SGD(Optimizer):
    """``SGD(params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False,
    *, maximize=False)``.

    >>> import nnforge as nf
    >>> w = nf.nn.Parameter(nf.ones(2))
    >>> opt = nf.optim.SGD([w], lr=0.1)
    >>> (w * w).sum().backward(); opt.step()
    >>> w.tolist()
    [0.800000011920929, 0.800000011920929]
    """

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, *, maximize=False):
        if lr is not required and lr < 0.0:
            raise ValueError(f"SGD: invalid learning rate {lr}")
        if momentum < 0.0:
            raise ValueError(f"SGD: invalid momentum value {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"SGD: invalid weight_decay value {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize))

    def _update(self, p, group, state):
        buf = state.get("momentum_buffer")
        first = group["momentum"] != 0 and buf is None
        if first:
            buf = state["momentum_buffer"] = p.new_zeros(tuple(p.shape))
        p.device.backend.sgd_update_(
            p.data, p.grad.data, None if buf is None else buf.data, lr=group["lr"],
            momentum=group["momentum"], dampening=group["dampening"],
            weight_decay=group["weight_decay"], nesterov=group["nesterov"],
            maximize=group["maximize"], first_step=first)
