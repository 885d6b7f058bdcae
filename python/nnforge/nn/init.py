"""Weight initialisation, with PyTorch's names, fan computations and gains.

Every function fills its tensor in place under ``no_grad`` and returns it. The
random ones take ``generator=`` (an ``nf.Generator``; default: the global one
seeded by ``nf.manual_seed``). Samples are drawn on the host — this is
one-off parameter setup — and written with ``copy_``.

Fans, for a weight of shape (out, in, *kernel): fan_in = in * prod(kernel),
fan_out = out * prod(kernel).
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from ..autograd.grad_mode import no_grad
from ..ops import creation
from ..random import Generator, default_generator
from ..tensor import Tensor

__all__ = ["calculate_gain", "uniform_", "normal_", "trunc_normal_", "constant_", "ones_",
           "zeros_", "eye_", "dirac_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_",
           "kaiming_normal_", "orthogonal_"]

_LINEAR_LIKE = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                "conv_transpose3d", "sigmoid")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity (PyTorch's table):

    linear, conv*, sigmoid: 1; tanh: 5/3; relu: sqrt(2);
    leaky_relu: sqrt(2 / (1 + slope^2)) with slope ``param`` (default 0.01);
    selu: 3/4 (self-normalising nets use it with kaiming_normal_ and mode 'fan_in').
    """
    if nonlinearity in _LINEAR_LIKE:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = param
        else:
            raise ValueError(f"calculate_gain: negative_slope {param!r} is not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    if tensor.ndim < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 "
                         f"dimensions (got shape {tuple(tensor.shape)})")
    receptive_field = 1
    for s in tuple(tensor.shape)[2:]:
        receptive_field *= s
    fan_in = tensor.shape[1] * receptive_field
    fan_out = tensor.shape[0] * receptive_field
    return fan_in, fan_out


def _calculate_correct_fan(tensor: Tensor, mode: str) -> int:
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"init: mode {mode!r} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _check(tensor, fn: str) -> None:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{fn}: expected an nnforge Tensor, got {type(tensor).__name__}")


def _rng(generator: Generator | None) -> np.random.Generator:
    if generator is None:
        return default_generator.numpy
    if not isinstance(generator, Generator):
        raise TypeError(f"init: generator must be an nnforge.Generator, got "
                        f"{type(generator).__name__}")
    return generator.numpy


def _write(tensor: Tensor, values: np.ndarray) -> Tensor:
    with no_grad():
        tensor.copy_(creation.from_numpy(np.ascontiguousarray(values)))
    return tensor


# ---------------------------------------------------------------- plain fills
def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0,
             generator: Generator | None = None) -> Tensor:
    """Fills with samples from U(a, b)."""
    _check(tensor, "uniform_")
    with no_grad():
        return tensor.uniform_(a, b, generator=generator)


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0,
            generator: Generator | None = None) -> Tensor:
    """Fills with samples from N(mean, std^2)."""
    _check(tensor, "normal_")
    with no_grad():
        return tensor.normal_(mean, std, generator=generator)


def constant_(tensor: Tensor, val: float) -> Tensor:
    _check(tensor, "constant_")
    with no_grad():
        return tensor.fill_(val)


def ones_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 1.0)


def zeros_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 0.0)


def eye_(tensor: Tensor) -> Tensor:
    """Fills a 2-D tensor with the identity (ones on the main diagonal)."""
    _check(tensor, "eye_")
    if tensor.ndim != 2:
        raise ValueError(f"eye_: only tensors with 2 dimensions are supported, got shape "
                         f"{tuple(tensor.shape)}")
    with no_grad():
        return tensor.copy_(creation.eye(*tensor.shape, dtype=tensor.dtype))


def dirac_(tensor: Tensor, groups: int = 1) -> Tensor:
    """Fills a 3-, 4- or 5-D conv weight so the convolution is the identity map
    (per group: output channel i copies input channel i at the kernel centre)."""
    _check(tensor, "dirac_")
    if tensor.ndim not in (3, 4, 5):
        raise ValueError(f"dirac_: only tensors with 3, 4, or 5 dimensions are supported, got "
                         f"shape {tuple(tensor.shape)}")
    shape = tuple(tensor.shape)
    if shape[0] % groups != 0:
        raise ValueError(f"dirac_: dim 0 ({shape[0]}) must be divisible by groups ({groups})")
    out_per_group = shape[0] // groups
    min_dim = min(out_per_group, shape[1])
    values = np.zeros(shape, dtype=tensor.dtype.np)
    centre = tuple(s // 2 for s in shape[2:])
    for g in range(groups):
        for d in range(min_dim):
            values[(g * out_per_group + d, d) + centre] = 1
    return _write(tensor, values)


# ---------------------------------------------------------------- scaled by fans
def xavier_uniform_(tensor: Tensor, gain: float = 1.0,
                    generator: Generator | None = None) -> Tensor:
    """Glorot & Bengio (2010): U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out))."""
    _check(tensor, "xavier_uniform_")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    a = math.sqrt(3.0) * std  # a uniform on [-a, a] has std a / sqrt(3)
    return uniform_(tensor, -a, a, generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0,
                   generator: Generator | None = None) -> Tensor:
    """Glorot & Bengio (2010): N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    _check(tensor, "xavier_normal_")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator)


def _kaiming_std(tensor: Tensor, a: float, mode: str, nonlinearity: str) -> float:
    fan = _calculate_correct_fan(tensor, mode)
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(tensor: Tensor, a: float = 0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu",
                     generator: Generator | None = None) -> Tensor:
    """He et al. (2015): U(-bound, bound), bound = gain * sqrt(3 / fan), with the gain of
    ``nonlinearity`` (``a`` is the leaky-ReLU slope) and fan from ``mode``."""
    _check(tensor, "kaiming_uniform_")
    if 0 in tuple(tensor.shape):
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor: Tensor, a: float = 0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu",
                    generator: Generator | None = None) -> Tensor:
    """He et al. (2015): N(0, std^2), std = gain / sqrt(fan)."""
    _check(tensor, "kaiming_normal_")
    if 0 in tuple(tensor.shape):
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    return normal_(tensor, 0.0, _kaiming_std(tensor, a, mode, nonlinearity), generator)


# ---------------------------------------------------------------- structured
def orthogonal_(tensor: Tensor, gain: float = 1, generator: Generator | None = None) -> Tensor:
    """Saxe et al. (2013): a (semi-)orthogonal matrix from the QR decomposition of a
    Gaussian one, the signs of R's diagonal folded into Q so that Q is uniformly
    (Haar) distributed. Dims after the first are flattened: rows = shape[0]."""
    _check(tensor, "orthogonal_")
    if tensor.ndim < 2:
        raise ValueError(f"orthogonal_: only tensors with 2 or more dimensions are supported, "
                         f"got shape {tuple(tensor.shape)}")
    if tensor.numel() == 0:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    flat = _rng(generator).standard_normal((rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    d = np.sign(np.diag(r))
    d[d == 0] = 1
    q = q * d  # scales column j of Q by sign(R_jj)
    if rows < cols:
        q = q.T
    return _write(tensor, (gain * q).reshape(tuple(tensor.shape)))


def trunc_normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0,
                  b: float = 2.0, generator: Generator | None = None) -> Tensor:
    """Fills with N(mean, std^2) truncated to [a, b] (``a``, ``b`` in absolute units,
    as in PyTorch), by exact rejection sampling."""
    _check(tensor, "trunc_normal_")
    if not std > 0:
        raise ValueError(f"trunc_normal_: std must be positive, got {std}")
    if not a < b:
        raise ValueError(f"trunc_normal_: need a < b, got a={a}, b={b}")
    lo, hi = (a - mean) / std, (b - mean) / std
    z = _truncated_standard_normal(_rng(generator), tensor.numel(), lo, hi)
    return _write(tensor, (mean + std * z).reshape(tuple(tensor.shape)))


def _phi_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _truncated_standard_normal(rng: np.random.Generator, n: int, lo: float, hi: float):
    """n samples of N(0, 1) conditioned on [lo, hi].

    When the interval holds a fair share of the mass, draw normals and keep those
    inside. Otherwise the interval lies in one tail (mirror it to the right) and
    Robert (1995)'s proposal is used: an exponential shifted to ``lo`` with rate
    lam = (lo + sqrt(lo^2 + 4)) / 2, accepted with probability exp(-(z - lam)^2 / 2);
    or, for an interval much narrower than 1/lo, a uniform proposal accepted with
    probability exp((peak^2 - z^2) / 2), peak the point of [lo, hi] nearest 0.
    """
    mass = _phi_cdf(hi) - _phi_cdf(lo)
    out = np.empty(n)
    filled = 0
    if mass > 0.05:
        while filled < n:
            draw = rng.standard_normal(max(64, int(1.2 * (n - filled) / mass)))
            keep = draw[(draw >= lo) & (draw <= hi)][: n - filled]
            out[filled:filled + keep.size] = keep
            filled += keep.size
        return out
    flip = hi <= 0  # the mass sits in the left tail: sample -z on [-hi, -lo]
    if flip:
        lo, hi = -hi, -lo
    # Now lo < 0 < hi only for a narrow interval around 0 (it holds little mass);
    # otherwise 0 <= lo and the interval lies in the right tail.
    peak = min(max(0.0, lo), hi)  # where the density is largest on [lo, hi]
    lam = (max(lo, 0.0) + math.sqrt(max(lo, 0.0) ** 2 + 4.0)) / 2.0
    use_uniform = lo < 0 or (hi - lo) < 1.0 / lam
    while filled < n:
        m = max(64, 2 * (n - filled))
        if use_uniform:
            z = rng.uniform(lo, hi, m)
            accept = rng.random(m) < np.exp((peak * peak - z * z) / 2.0)
        else:
            z = lo + rng.exponential(1.0 / lam, m)
            accept = (rng.random(m) < np.exp(-((z - lam) ** 2) / 2.0)) & (z <= hi)
        keep = z[accept][: n - filled]
        out[filled:filled + keep.size] = keep
        filled += keep.size
    return -out if flip else out
