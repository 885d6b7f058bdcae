"""LayerNorm and RMSNorm: PyTorch's arguments, parameters (weight, bias) and
repr, so a PyTorch state_dict loads as it is. The math is
``nn.functional.layer_norm`` / ``nn.functional.rms_norm``."""
from __future__ import annotations

from ..ops import creation
from ..tensor import Tensor
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter

__all__ = ["LayerNorm", "RMSNorm"]


def _as_shape(cls: str, normalized_shape) -> tuple:
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else normalized_shape
    try:
        shape = tuple(int(d) for d in shape)
    except TypeError:
        raise TypeError(f"{cls}: normalized_shape must be an int or a sequence of ints, got "
                        f"{type(normalized_shape).__name__}") from None
    if any(d < 0 for d in shape):
        raise ValueError(f"{cls}: normalized_shape must not have negative dims, got {shape}")
    return shape


class LayerNorm(Module):
    """Normalizes each sample over its last ``len(normalized_shape)`` dims, then applies
    the elementwise affine map ``weight * x + bias`` (ones and zeros at first).

    >>> import nnforge as nf
    >>> ln = nf.nn.LayerNorm(4)
    >>> ln
    LayerNorm((4,), eps=1e-05, elementwise_affine=True, bias=True)
    >>> tuple(ln(nf.randn(2, 3, 4)).shape)
    (2, 3, 4)
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, device=None, dtype=None):
        super().__init__()
        self.normalized_shape = _as_shape("LayerNorm", normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        kw = dict(dtype=dtype, device=device)
        if elementwise_affine:
            self.weight = Parameter(creation.empty(*self.normalized_shape, **kw))
            if bias:
                self.bias = Parameter(creation.empty(*self.normalized_shape, **kw))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.elementwise_affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def forward(self, input: Tensor) -> Tensor:
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


class RMSNorm(Module):
    """Scales each sample by the reciprocal root mean square of its last
    ``len(normalized_shape)`` dims, then by ``weight`` (ones at first); ``eps=None``
    is the input dtype's machine epsilon.

    >>> import nnforge as nf
    >>> nf.nn.RMSNorm([2, 3])
    RMSNorm((2, 3), eps=None, elementwise_affine=True)
    """

    def __init__(self, normalized_shape, eps: float | None = None,
                 elementwise_affine: bool = True, device=None, dtype=None):
        super().__init__()
        self.normalized_shape = _as_shape("RMSNorm", normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(creation.empty(*self.normalized_shape, dtype=dtype,
                                                   device=device))
        else:
            self.register_parameter("weight", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.elementwise_affine:
            init.ones_(self.weight)

    def forward(self, input: Tensor) -> Tensor:
        return F.rms_norm(input, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")
