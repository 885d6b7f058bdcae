"""Activation functions: each is one ``Function``, its forward beside its derivative.

Every formula is written so that no intermediate overflows for large |x|
(1e4 and beyond, float32 and float64): exponentials are taken of non-positive
arguments only (exp(min(x, 0)), exp(-|x|)), softplus is evaluated as
max(z, 0) + log1p(exp(-|z|)), and erf/tanh saturate. At the kinks the
derivative takes the value PyTorch's kernels give (named at each op), so that
gradients agree with PyTorch's exactly there too.

ReLU, sigmoid and tanh live in ``pointwise``; softmax and log_softmax in
``reduction``. The wrappers at the bottom check their arguments and apply
the Functions; ``nn.functional`` exposes them under PyTorch's names.
"""
from __future__ import annotations

from ..autograd.function import Function
from ..tensor import Tensor
from ._util import check_tensor

# SELU's constants (Klambauer et al. 2017), as in PyTorch.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _softplus(be, z):
    """log(1 + e^z) = max(z, 0) + log1p(e^-|z|): e^-|z| <= 1 never overflows."""
    return be.add(be.maximum(z, 0), be.log1p(be.exp(be.negative(be.absolute(z)))))


# ---------------------------------------------------------------- piecewise linear
class LeakyRelu(Function):
    # y = x (x > 0), s x (x <= 0);  dy/dx = 1 (x > 0), s (x <= 0: PyTorch's value at 0)
    @staticmethod
    def forward(ctx, x, slope):
        be = ctx.backend
        ctx.save_for_backward(x)
        ctx.slope = slope
        return be.where(be.greater(x, 0), x, be.multiply(x, slope))

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        be = ctx.backend
        return be.where(be.greater(x, 0), g, be.multiply(g, ctx.slope)), None


class RandomizedRelu(Function):
    # RReLU in training (Xu et al. 2015): y = x (x > 0), r x (x <= 0) with a slope
    # r ~ U(lower, upper) drawn per element (``noise``);  dy/dx = 1 or r.
    @staticmethod
    def forward(ctx, x, noise):
        be = ctx.backend
        slope = be.where(be.greater(x, 0), 1, noise)
        ctx.save_for_backward(slope)
        return be.multiply(x, slope)

    @staticmethod
    def backward(ctx, g):
        slope, = ctx.saved_tensors
        return ctx.backend.multiply(g, slope), None


class Prelu(Function):
    # y = x (x > 0), w x (x <= 0), w broadcast over the channel dim;
    # dy/dx = 1 or w;  dy/dw = 0 or x (PyTorch's prelu kernel: the w side at x = 0).
    @staticmethod
    def forward(ctx, x, w):
        be = ctx.backend
        ctx.save_for_backward(x, w)
        return be.where(be.greater(x, 0), x, be.multiply(x, w))

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        be = ctx.backend
        pos = be.greater(x, 0)
        gx = be.where(pos, g, be.multiply(g, w)) if ctx.needs_input_grad[0] else None
        gw = be.where(pos, 0, be.multiply(g, x)) if ctx.needs_input_grad[1] else None
        return gx, gw


class Hardtanh(Function):
    # y = clamp(x, lo, hi);  dy/dx = 1 for lo < x < hi, else 0 (0 at both ends, as PyTorch)
    @staticmethod
    def forward(ctx, x, lo, hi):
        ctx.save_for_backward(x)
        ctx.bounds = (lo, hi)
        return ctx.backend.clip(x, lo, hi)

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        be = ctx.backend
        lo, hi = ctx.bounds
        outside = be.logical_or(be.less_equal(x, lo), be.greater_equal(x, hi))
        return be.where(outside, 0, g), None, None


class Threshold(Function):
    # y = x (x > t), v (x <= t);  dy/dx = 1 (x > t), 0 (x <= t)
    @staticmethod
    def forward(ctx, x, threshold, value):
        be = ctx.backend
        ctx.save_for_backward(x)
        ctx.threshold = threshold
        return be.where(be.greater(x, threshold), x, value)

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        be = ctx.backend
        return be.where(be.greater(x, ctx.threshold), g, 0), None, None


class Hardswish(Function):
    # y = x relu6(x + 3) / 6 (Howard et al. 2019, MobileNetV3);
    # dy/dx = 0 (x <= -3), x/3 + 1/2 (-3 < x < 3), 1 (x >= 3)  (PyTorch's values at +-3)
    @staticmethod
    def forward(ctx, x):
        be = ctx.backend
        ctx.save_for_backward(x)
        return be.divide(be.multiply(x, be.clip(be.add(x, 3), 0, 6)), 6)

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        be = ctx.backend
        middle = be.multiply(g, be.add(be.divide(x, 3), 0.5))
        return be.where(be.less_equal(x, -3), 0, be.where(be.less(x, 3), middle, g))


class Hardsigmoid(Function):
    # y = relu6(x + 3) / 6;  dy/dx = 1/6 for -3 < x < 3, else 0
    @staticmethod
    def forward(ctx, x):
        be = ctx.backend
        ctx.save_for_backward(x)
        return be.divide(be.clip(be.add(x, 3), 0, 6), 6)

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        be = ctx.backend
        inside = be.logical_and(be.greater(x, -3), be.less(x, 3))
        return be.where(inside, be.divide(g, 6), 0)


class Softshrink(Function):
    # y = x - l (x > l), x + l (x < -l), 0 otherwise;  dy/dx = 0 for |x| <= l, else 1
    @staticmethod
    def forward(ctx, x, lambd):
        be = ctx.backend
        ctx.save_for_backward(x)
        ctx.lambd = lambd
        shrunk = be.where(be.greater(x, lambd), be.subtract(x, lambd), be.add(x, lambd))
        return be.where(_dead_zone(be, x, lambd), 0, shrunk)

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        be = ctx.backend
        return be.where(_dead_zone(be, x, ctx.lambd), 0, g), None


class Hardshrink(Function):
    # y = 0 for |x| <= l, else x;  dy/dx = 0 for |x| <= l, else 1
    @staticmethod
    def forward(ctx, x, lambd):
        be = ctx.backend
        ctx.save_for_backward(x)
        ctx.lambd = lambd
        return be.where(_dead_zone(be, x, lambd), 0, x)

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        be = ctx.backend
        return be.where(_dead_zone(be, x, ctx.lambd), 0, g), None


def _dead_zone(be, x, lambd):
    """-l <= x <= l (nan is outside: it passes through, as in PyTorch)."""
    return be.logical_and(be.greater_equal(x, -lambd), be.less_equal(x, lambd))


# ---------------------------------------------------------------- smooth
class Elu(Function):
    # PyTorch's elu(x; alpha, scale, input_scale), which also gives SELU and CELU:
    #   y     = scale x                                        (x > 0)
    #         = scale alpha (exp(input_scale x) - 1)           (x <= 0)
    #   dy/dx = scale                                          (x > 0)
    #         = scale alpha input_scale exp(input_scale x)     (x <= 0, PyTorch's side at 0)
    # exp is taken at min(x, 0) so the unused branch cannot overflow.
    @staticmethod
    def forward(ctx, x, alpha, scale, input_scale):
        be = ctx.backend
        ctx.save_for_backward(x)
        ctx.coefs = (alpha, scale, input_scale)
        neg = be.multiply(be.expm1(be.multiply(be.minimum(x, 0), input_scale)), alpha * scale)
        return be.where(be.greater(x, 0), be.multiply(x, scale), neg)

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        be = ctx.backend
        alpha, scale, input_scale = ctx.coefs
        slope = be.multiply(be.exp(be.multiply(be.minimum(x, 0), input_scale)),
                            alpha * scale * input_scale)
        d = be.where(be.greater(x, 0), scale, slope)
        return be.multiply(g, d), None, None, None


class Gelu(Function):
    # y = x Phi(x) (Hendrycks & Gimpel 2016); the C++ kernel holds both forms and
    # their derivatives: Phi(x) + x phi(x) (exact), or of the tanh approximation.
    @staticmethod
    def forward(ctx, x, approximate):
        ctx.save_for_backward(x)
        ctx.approximate = approximate
        return ctx.backend.gelu(x, approximate)

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        return ctx.backend.gelu_backward(g, x, ctx.approximate), None


class Silu(Function):
    # y = x s(x), s = sigmoid (Elfwing et al. 2018; "swish");  dy/dx = s (1 + x (1 - s))
    @staticmethod
    def forward(ctx, x):
        be = ctx.backend
        s = be.sigmoid(x)
        ctx.save_for_backward(x, s)
        return be.multiply(x, s)

    @staticmethod
    def backward(ctx, g):
        x, s = ctx.saved_tensors
        be = ctx.backend
        d = be.multiply(s, be.add(1, be.multiply(x, be.subtract(1, s))))
        return be.multiply(g, d)


class Softplus(Function):
    # y = log(1 + exp(b x)) / b, and x itself where b x > threshold (PyTorch's switch);
    # dy/dx = sigmoid(b x) (1 past the threshold)
    @staticmethod
    def forward(ctx, x, beta, threshold):
        be = ctx.backend
        z = be.multiply(x, beta)
        ctx.save_for_backward(x)
        ctx.params = (beta, threshold)
        return be.where(be.greater(z, threshold), x, be.divide(_softplus(be, z), beta))

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        be = ctx.backend
        beta, threshold = ctx.params
        z = be.multiply(x, beta)
        return be.where(be.greater(z, threshold), g, be.multiply(g, be.sigmoid(z))), None, None


class LogSigmoid(Function):
    # y = log s(x) = -softplus(-x);  dy/dx = 1 - s(x) = s(-x)
    @staticmethod
    def forward(ctx, x):
        be = ctx.backend
        ctx.save_for_backward(x)
        return be.negative(_softplus(be, be.negative(x)))

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        be = ctx.backend
        return be.multiply(g, be.sigmoid(be.negative(x)))


class Mish(Function):
    # y = x tanh(softplus(x)) (Misra 2019);
    # dy/dx = tanh(sp) + x s(x) (1 - tanh^2(sp)),  since d softplus / dx = s(x)
    @staticmethod
    def forward(ctx, x):
        be = ctx.backend
        t = be.tanh(_softplus(be, x))
        ctx.save_for_backward(x, t)
        return be.multiply(x, t)

    @staticmethod
    def backward(ctx, g):
        x, t = ctx.saved_tensors
        be = ctx.backend
        sech2 = be.subtract(1, be.multiply(t, t))
        d = be.add(t, be.multiply(be.multiply(x, be.sigmoid(x)), sech2))
        return be.multiply(g, d)


class Softsign(Function):
    # y = x / (1 + |x|);  dy/dx = 1 / (1 + |x|)^2
    @staticmethod
    def forward(ctx, x):
        be = ctx.backend
        denom = be.add(be.absolute(x), 1)
        ctx.save_for_backward(denom)
        return be.divide(x, denom)

    @staticmethod
    def backward(ctx, g):
        denom, = ctx.saved_tensors
        be = ctx.backend
        return be.divide(g, be.multiply(denom, denom))


class Tanhshrink(Function):
    # y = x - tanh x;  dy/dx = 1 - (1 - tanh^2 x) = tanh^2 x
    @staticmethod
    def forward(ctx, x):
        be = ctx.backend
        t = be.tanh(x)
        ctx.save_for_backward(t)
        return be.subtract(x, t)

    @staticmethod
    def backward(ctx, g):
        t, = ctx.saved_tensors
        be = ctx.backend
        return be.multiply(g, be.multiply(t, t))


# ---------------------------------------------------------------- wrappers
def _float(x, op: str) -> Tensor:
    check_tensor(x, op)
    if not x.is_floating_point():
        raise TypeError(f"{op}: input must be floating point, got {x.dtype.name}")
    return x


def leaky_relu(x, negative_slope: float = 0.01) -> Tensor:
    return LeakyRelu.apply(_float(x, "leaky_relu"), float(negative_slope))


def rrelu_with_noise(x, noise: Tensor) -> Tensor:
    """RReLU with the given per-element slopes ``noise`` (x's shape and dtype)."""
    return RandomizedRelu.apply(_float(x, "rrelu"), noise)


def prelu(x, weight) -> Tensor:
    """PReLU with ``weight`` of one element or one per channel (dim 1 of x)."""
    op = "prelu"
    _float(x, op)
    check_tensor(weight, op, "weight")
    if x.ndim == 0:
        raise ValueError(f"{op}: input must have at least 1 dimension, got shape ()")
    n = weight.numel()
    channels = x.shape[1] if x.ndim >= 2 else 1
    if weight.ndim > 1 or (n != 1 and n != channels):
        raise ValueError(f"{op}: weight of shape {tuple(weight.shape)} must have 1 element or "
                         f"one per channel ({channels}) for input of shape {tuple(x.shape)}")
    if x.ndim >= 2:  # (1, C, 1, ...): broadcast over the channel dim
        weight = weight.reshape((1, n) + (1,) * (x.ndim - 2))
    if weight.dtype != x.dtype:
        weight = weight.to(x.dtype)
    return Prelu.apply(x, weight)


def hardtanh(x, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) must not be greater than "
                         f"max_val ({max_val})")
    return Hardtanh.apply(_float(x, "hardtanh"), float(min_val), float(max_val))


def threshold(x, threshold: float, value: float) -> Tensor:
    return Threshold.apply(_float(x, "threshold"), float(threshold), float(value))


def hardswish(x) -> Tensor:
    return Hardswish.apply(_float(x, "hardswish"))


def hardsigmoid(x) -> Tensor:
    return Hardsigmoid.apply(_float(x, "hardsigmoid"))


def _check_lambd(lambd, op):
    if lambd < 0:
        raise ValueError(f"{op}: lambd must be non-negative, got {lambd}")
    return float(lambd)


def softshrink(x, lambd: float = 0.5) -> Tensor:
    return Softshrink.apply(_float(x, "softshrink"), _check_lambd(lambd, "softshrink"))


def hardshrink(x, lambd: float = 0.5) -> Tensor:
    return Hardshrink.apply(_float(x, "hardshrink"), _check_lambd(lambd, "hardshrink"))


def elu(x, alpha: float = 1.0) -> Tensor:
    return Elu.apply(_float(x, "elu"), float(alpha), 1.0, 1.0)


def selu(x) -> Tensor:
    return Elu.apply(_float(x, "selu"), SELU_ALPHA, SELU_SCALE, 1.0)


def celu(x, alpha: float = 1.0) -> Tensor:
    if alpha == 0:
        raise ValueError("celu: alpha must not be 0 (it divides the input)")
    return Elu.apply(_float(x, "celu"), float(alpha), 1.0, 1.0 / alpha)


def gelu(x, approximate: str = "none") -> Tensor:
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return Gelu.apply(_float(x, "gelu"), approximate)


def silu(x) -> Tensor:
    return Silu.apply(_float(x, "silu"))


def softplus(x, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    if beta == 0:
        raise ValueError("softplus: beta must not be 0 (it divides the result)")
    return Softplus.apply(_float(x, "softplus"), float(beta), float(threshold))


def logsigmoid(x) -> Tensor:
    return LogSigmoid.apply(_float(x, "logsigmoid"))


def mish(x) -> Tensor:
    return Mish.apply(_float(x, "mish"))


def softsign(x) -> Tensor:
    return Softsign.apply(_float(x, "softsign"))


def tanhshrink(x) -> Tensor:
    return Tanhshrink.apply(_float(x, "tanhshrink"))
