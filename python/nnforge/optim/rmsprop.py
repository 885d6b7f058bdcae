"""RMSprop (Hinton, Coursera lecture 6e; the centered form is Graves, 2013).

With gradient g, learning rate lr, each step does (PyTorch's formulation; the
fused kernel is ``backend.rmsprop_update_``):

    g   = g + wd * p                          (weight decay)
    s   = alpha * s + (1 - alpha) * g^2
    ga  = alpha * ga + (1 - alpha) * g        (centered)
    avg = sqrt(s - ga^2) + eps   (centered)   or   sqrt(s) + eps
    b   = mu * b + g / avg ;  p = p - lr * b  (momentum mu > 0)
    p   = p - lr * g / avg                    (no momentum)
"""
from __future__ import annotations

from ..ops.creation import zeros_like
from .optimizer import Optimizer, increment_step, new_step_counter


class RMSprop(Optimizer):
    """``RMSprop(params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
    centered=False, *, maximize=False)``.

    State per parameter: ``step``, ``square_avg``, ``momentum_buffer`` (momentum > 0)
    and ``grad_avg`` (centered).

    >>> import nnforge as nf
    >>> w = nf.nn.Parameter(nf.ones(2))
    >>> opt = nf.optim.RMSprop([w], lr=0.01)
    >>> (w * w).sum().backward(); opt.step()
    >>> [round(x, 4) for x in w.tolist()]
    [0.9, 0.9]
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False, *, maximize=False):
        if not 0.0 <= lr:
            raise ValueError(f"RMSprop: invalid learning rate {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"RMSprop: invalid epsilon value {eps}")
        if not 0.0 <= momentum:
            raise ValueError(f"RMSprop: invalid momentum value {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"RMSprop: invalid weight_decay value {weight_decay}")
        if not 0.0 <= alpha:
            raise ValueError(f"RMSprop: invalid alpha value {alpha}")
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize))

    def _update(self, p, group, state):
        use_momentum, centered = group["momentum"] > 0, group["centered"]
        if not state:
            state["step"] = new_step_counter()
            state["square_avg"] = zeros_like(p)
        if use_momentum and "momentum_buffer" not in state:
            state["momentum_buffer"] = zeros_like(p)
        if centered and "grad_avg" not in state:
            state["grad_avg"] = zeros_like(p)
        increment_step(state)
        p.device.backend.rmsprop_update_(
            p.data, p.grad.data, state["square_avg"].data,
            state["grad_avg"].data if centered else None,
            state["momentum_buffer"].data if use_momentum else None,
            lr=group["lr"], alpha=group["alpha"], eps=group["eps"],
            weight_decay=group["weight_decay"], momentum=group["momentum"],
            centered=centered, maximize=group["maximize"])
