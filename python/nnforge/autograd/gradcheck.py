"""``gradcheck``: analytical gradients against central finite differences.

For f: R^n -> R^m the engine gives rows of the Jacobian J (one backward per
output element, seeded with a one-hot vector); finite differences give its
columns, J[:, j] ~ (f(x + eps e_j) - f(x - eps e_j)) / (2 eps). The two must
agree within ``atol + rtol * |numerical|``. Run it in float64.
"""
from __future__ import annotations

import warnings

import numpy as np


class GradcheckError(RuntimeError):
    pass


def _as_tuple(x):
    return x if isinstance(x, (tuple, list)) else (x,)


def _flat_outputs(fn, inputs):
    from ..tensor import Tensor
    outs = [o for o in _as_tuple(fn(*inputs)) if isinstance(o, Tensor)]
    return [o for o in outs if o.dtype.is_floating_point]


def gradcheck(fn, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True) -> bool:
    """Checks the gradients of ``fn(*inputs)`` w.r.t. every input that requires grad.

    >>> import nnforge as nf
    >>> x = nf.randn(3, dtype=nf.float64, requires_grad=True)
    >>> nf.autograd.gradcheck(lambda t: (t * t).sum(), (x,))
    True
    """
    from ..tensor import Tensor
    from .grad_mode import no_grad
    from . import grad as autograd_grad

    inputs = _as_tuple(inputs)
    diff_inputs = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    if not diff_inputs:
        raise ValueError("gradcheck: no input requires grad")
    for i, t in enumerate(diff_inputs):
        if t.dtype.name != "float64":
            warnings.warn(f"gradcheck: input {i} is {t.dtype.name}, not float64; "
                          "the check may fail from rounding alone", stacklevel=2)

    outputs = _flat_outputs(fn, inputs)
    # Analytical Jacobian, one row per output element.
    analytical = [np.zeros((o.numel(), t.numel())) for o in outputs for t in diff_inputs]
    for k, out in enumerate(outputs):
        for j in range(out.numel()):
            seed = np.zeros(out.numel(), dtype=out.dtype.np)
            seed[j] = 1
            seed_t = Tensor._from_host(seed.reshape(out.shape), out.device)
            grads = autograd_grad([out], diff_inputs, [seed_t], retain_graph=True,
                                  allow_unused=True)
            for i, g in enumerate(grads):
                if g is not None:
                    analytical[k * len(diff_inputs) + i][j] = g.numpy(force=True).reshape(-1)

    # Numerical Jacobian, one column per input element.
    numerical = [np.zeros_like(a) for a in analytical]
    with no_grad():
        for i, t in enumerate(diff_inputs):
            be = t.device.backend
            if not be.is_contiguous(t.data):
                raise ValueError("gradcheck: inputs must be contiguous")
            flat = be.reshape(t.data, (-1,))  # a view: inputs are perturbed in place
            for j in range(t.numel()):
                orig = be.to_host(be.getitem(flat, j)).item()
                be.setitem(flat, j, orig + eps)
                plus = [o.numpy(force=True).reshape(-1).copy() for o in _flat_outputs(fn, inputs)]
                be.setitem(flat, j, orig - eps)
                minus = [o.numpy(force=True).reshape(-1).copy() for o in _flat_outputs(fn, inputs)]
                be.setitem(flat, j, orig)
                for k in range(len(outputs)):
                    numerical[k * len(diff_inputs) + i][:, j] = (plus[k] - minus[k]) / (2 * eps)

    for k in range(len(outputs)):
        for i in range(len(diff_inputs)):
            a = analytical[k * len(diff_inputs) + i]
            n = numerical[k * len(diff_inputs) + i]
            if not np.allclose(a, n, atol=atol, rtol=rtol, equal_nan=True):
                err = np.abs(a - n).max()
                msg = (f"gradcheck: Jacobian mismatch for output {k} w.r.t. input {i} "
                       f"(max abs error {err:.3g})\nanalytical:\n{a}\nnumerical:\n{n}")
                if raise_exception:
                    raise GradcheckError(msg)
                return False
    return True
