"""``Parameter``: a Tensor that a ``Module`` registers as one of its weights.

A Parameter is an ordinary leaf tensor with one difference: assigning it as an
attribute of a Module (``self.weight = Parameter(...)``) adds it to the
module's ``parameters()``. ``Parameter(t)`` shares ``t``'s storage, as in
PyTorch.
"""
from __future__ import annotations

from ..ops import creation
from ..tensor import Tensor


class Parameter(Tensor):
    """A trainable tensor owned by a Module.

    >>> import nnforge as nf
    >>> w = nf.nn.Parameter(nf.zeros(2))
    >>> w.requires_grad, w.is_leaf
    (True, True)
    >>> w
    Parameter containing:
    tensor([0., 0.], requires_grad=True)
    """

    __slots__ = ()

    def __new__(cls, data: Tensor | None = None, requires_grad: bool = True) -> "Parameter":
        if data is None:
            data = creation.empty(0)
        if not isinstance(data, Tensor):
            raise TypeError(f"Parameter: data must be an nnforge Tensor, got {type(data).__name__}")
        p = cls._make(data.data, data.device, False)
        # Same storage, same version counter: an in-place edit of either is seen by both.
        p._version_box = data._version_box
        p.requires_grad_(requires_grad)
        return p

    def __init__(self, data: Tensor | None = None, requires_grad: bool = True):
        pass  # everything happens in __new__ (Tensor.__init__ refuses to run)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    __str__ = __repr__

    def __deepcopy__(self, memo: dict) -> "Parameter":
        if id(self) in memo:
            return memo[id(self)]
        result = Parameter(self.detach().clone(), self.requires_grad)
        if self.grad is not None:
            result.grad = self.grad.clone()
        memo[id(self)] = result
        return result
