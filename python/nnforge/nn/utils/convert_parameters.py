"""All parameters as one flat vector and back, as ``torch.nn.utils``."""
from __future__ import annotations

from typing import Iterable

from ...autograd.grad_mode import no_grad
from ...ops import shape
from ...tensor import Tensor

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def _tensors(parameters, op: str) -> list:
    if isinstance(parameters, Tensor):
        raise TypeError(f"{op}: expected an iterable of Tensors (e.g. model.parameters()), "
                        "got a single Tensor")
    params = list(parameters)
    for p in params:
        if not isinstance(p, Tensor):
            raise TypeError(f"{op}: expected Tensors, got an element of type {type(p).__name__}")
    return params


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """The parameters flattened and concatenated into one 1-D tensor (differentiable)."""
    params = _tensors(parameters, "parameters_to_vector")
    if not params:
        raise ValueError("parameters_to_vector: no parameters were given")
    return shape.cat([shape.reshape(p, (-1,)) for p in params])


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copies consecutive slices of the 1-D ``vec`` into the parameters, in order
    (the inverse of ``parameters_to_vector``); not recorded in the graph."""
    op = "vector_to_parameters"
    if not isinstance(vec, Tensor):
        raise TypeError(f"{op}: expected 'vec' to be a Tensor, got {type(vec).__name__}")
    if vec.ndim != 1:
        raise ValueError(f"{op}: vec must be 1-D, got shape {tuple(vec.shape)}")
    params = _tensors(parameters, op)
    needed = sum(p.numel() for p in params)
    if vec.numel() != needed:
        raise ValueError(f"{op}: vec has {vec.numel()} elements but the parameters have "
                         f"{needed}")
    offset = 0
    with no_grad():
        for p in params:
            n = p.numel()
            p.copy_(shape.reshape(vec[offset:offset + n], tuple(p.shape)))
            offset += n
