"""Reverse-mode automatic differentiation: Function, backward, grad, gradcheck."""
from __future__ import annotations

from .engine import accumulate_leaf, queue_callback, run_backward
from .function import AccumulateGrad, Function, Node
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .gradcheck import GradcheckError, gradcheck


def _as_list(x):
    if x is None:
        return None
    return list(x) if isinstance(x, (tuple, list)) else [x]


def _roots(op, tensors, grad_tensors):
    from ..tensor import Tensor
    tensors = _as_list(tensors)
    if grad_tensors is None:
        grad_tensors = [None] * len(tensors)
    else:
        grad_tensors = _as_list(grad_tensors)
    if len(grad_tensors) != len(tensors):
        raise ValueError(f"{op}: got {len(tensors)} tensors but {len(grad_tensors)} gradients")
    roots, seeds = [], []
    device = None
    for i, (t, g) in enumerate(zip(tensors, grad_tensors)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: element {i} is {type(t).__name__}, not a Tensor")
        if not t.requires_grad:
            raise RuntimeError(f"{op}: element {i} of tensors does not require grad "
                               "and does not have a grad_fn")
        device = t.device
        be = t.device.backend
        if g is None:
            if t.numel() != 1:
                raise RuntimeError(f"{op}: grad can be implicitly created only for scalar "
                                   f"outputs, but element {i} has shape {tuple(t.shape)}; "
                                   "pass a gradient of that shape")
            seed = be.ones(t.data.shape, t.data.dtype)
        else:
            if not isinstance(g, Tensor):
                raise TypeError(f"{op}: gradient {i} must be a Tensor, got {type(g).__name__}")
            if tuple(g.shape) != tuple(t.shape):
                raise ValueError(f"{op}: gradient {i} has shape {tuple(g.shape)} but the "
                                 f"tensor has shape {tuple(t.shape)}")
            if g.device != t.device:
                raise RuntimeError(f"{op}: gradient {i} is on {g.device} but the tensor is on "
                                   f"{t.device}; move it with .to({str(t.device)!r})")
            seed = be.astype(g.data, t.data.dtype)
        roots.append(t._edge())
        seeds.append(seed)
    return roots, seeds, device


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False,
             inputs=None) -> None:
    """Accumulates d(tensors)/d(leaf) into every leaf's ``.grad``.

    ``grad_tensors`` weight non-scalar roots (the vector of the
    vector-Jacobian product). The graph is freed unless ``retain_graph``.
    With ``inputs`` (tensors that require grad), only their ``.grad`` is
    filled, and only the part of the graph that leads to them runs.
    """
    if create_graph:
        raise NotImplementedError("backward: create_graph=True (higher-order gradients) "
                                  "is not supported by nnforge")
    roots, seeds, device = _roots("backward", tensors, grad_tensors)
    if inputs is None:
        run_backward(roots, seeds, retain_graph=bool(retain_graph), device=device)
        return
    inputs = _checked_inputs("backward", inputs)
    results = run_backward(roots, seeds, retain_graph=bool(retain_graph),
                           capture=[t._edge() for t in inputs], device=device)
    for t, g in zip(inputs, results):
        if g is None:
            continue
        if t.grad_fn is None:
            accumulate_leaf(t._edge()[0], g)
        else:
            _accumulate_into(t, g)


def _checked_inputs(op, inputs):
    from ..tensor import Tensor
    inputs = _as_list(inputs)
    if not inputs:
        raise ValueError(f"{op}: inputs is empty")
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise RuntimeError(f"{op}: input {i} does not require grad")
    return inputs


def _accumulate_into(t, g) -> None:
    from ..tensor import Tensor
    be = t.device.backend
    if t.grad is None:
        t.grad = Tensor._make(be.copy(g), t.device, False)
    else:
        t.grad = Tensor._make(be.add(t.grad.data, g), t.device, False)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False):
    """Returns d(outputs)/d(inputs) without touching any ``.grad``.

    >>> import nnforge as nf
    >>> x = nf.tensor([2.0], requires_grad=True)
    >>> nf.autograd.grad((x ** 3).sum(), x)[0].tolist()
    [12.0]
    """
    from ..tensor import Tensor
    if create_graph:
        raise NotImplementedError("grad: create_graph=True (higher-order gradients) "
                                  "is not supported by nnforge")
    inputs = _checked_inputs("grad", inputs)
    roots, seeds, device = _roots("grad", outputs, grad_outputs)
    capture = [t._edge() for t in inputs]
    results = run_backward(roots, seeds, retain_graph=bool(retain_graph), capture=capture,
                           device=device)
    out = []
    for i, (t, g) in enumerate(zip(inputs, results)):
        if g is None:
            if not allow_unused:
                raise RuntimeError(f"grad: input {i} (shape {tuple(t.shape)}) was not used "
                                   "to compute the outputs; pass allow_unused=True")
            out.append(None)
        else:
            out.append(Tensor._make(g, t.device, False))
    return tuple(out)


__all__ = ["Function", "Node", "AccumulateGrad", "backward", "grad", "gradcheck",
           "GradcheckError", "queue_callback", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled"]
