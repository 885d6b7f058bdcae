"""``nnforge.nn.functional`` (import as ``F``): the stateless form of the layers.

Signatures, defaults and semantics follow ``torch.nn.functional``. Activations
and losses are single differentiable ops (``nnforge.ops.activation`` and
``nnforge.ops.loss``: each a ``Function`` with its derivative beside it); this
module checks the arguments, names the op in every error, and handles
``inplace=`` and the reductions. The rest is composed from ``nnforge.ops``.

Losses take ``reduction`` = 'mean' | 'sum' | 'none'; the deprecated
``size_average``/``reduce`` arguments are accepted and mapped as PyTorch maps them.
Unlike PyTorch (which warns and broadcasts), pointwise losses require input and
target of the same shape: a broadcast there is almost always a bug, e.g.
(N, 1) against (N,).
"""
from __future__ import annotations

import warnings

from .. import dtypes as _dt
from ..ops import activation as _act
from ..ops import embedding as _embedding
from ..ops import creation, indexing, linalg, pointwise, shape
from ..ops import loss as _loss
from ..ops import reduction as _red
from ..ops._util import cast_to
from ..tensor import Tensor
# Convolution, pooling and normalization: each ops file lists its functions in __all__.
from ..ops import conv as _conv, normalization as _norm, pool as _pool, upsample as _upsample
from ..ops import attention as _attention
from ..ops.attention import scaled_dot_product_attention  # noqa: F401
from ..ops.conv import *  # noqa: F401,F403
from ..ops.normalization import *  # noqa: F401,F403
from ..ops.pool import *  # noqa: F401,F403

__all__ = [
    "linear", "pad", "one_hot", "embedding", "dropout", "dropout1d", "dropout2d", "interpolate",
    # activations
    "relu", "relu6", "leaky_relu", "prelu", "rrelu", "elu", "selu", "celu", "gelu", "silu",
    "mish", "softplus", "hardswish", "hardsigmoid", "hardtanh", "threshold", "sigmoid",
    "logsigmoid", "tanh", "softsign", "tanhshrink", "softshrink", "hardshrink",
    "softmax", "log_softmax", "softmin",
    # losses and metrics
    "mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss", "binary_cross_entropy",
    "binary_cross_entropy_with_logits", "kl_div", "nll_loss", "cross_entropy",
    "zero_one_loss", "accuracy",
]
__all__ += _conv.__all__ + _pool.__all__ + _norm.__all__ + _attention.__all__

# ---------------------------------------------------------------- re-exported ops
linear = linalg.linear
pad = shape.pad
one_hot = indexing.one_hot
embedding = _embedding.embedding


def _check_tensor(x, op: str, arg: str = "input") -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: argument '{arg}' must be a Tensor, got {type(x).__name__}")


def _shape(x) -> tuple:
    return tuple(x.shape)


# ---------------------------------------------------------------- activations
def _apply(input: Tensor, inplace: bool, op: str, fn) -> Tensor:
    """``fn(input)``, or written into ``input`` (with the graph updated) when ``inplace``."""
    _check_tensor(input, op)
    if inplace:
        return input._inplace(f"{op}_", fn)
    return fn(input)


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0)."""
    _check_tensor(input, "relu")
    return input.relu_() if inplace else pointwise.relu(input)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """min(max(x, 0), 6) (hardtanh on [0, 6])."""
    return _apply(input, inplace, "relu6", lambda x: _act.hardtanh(x, 0.0, 6.0))


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x for x > 0, negative_slope * x otherwise."""
    return _apply(input, inplace, "leaky_relu", lambda x: _act.leaky_relu(x, negative_slope))


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """x for x > 0, weight * x otherwise; ``weight`` has 1 element or one per channel
    (dim 1 of input)."""
    return _act.prelu(input, weight)


def rrelu(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False,
          inplace: bool = False, *, generator=None) -> Tensor:
    """Randomized leaky ReLU: while ``training`` each element with x <= 0 gets its own
    slope drawn from U(lower, upper); otherwise the slope is (lower + upper) / 2.
    ``generator`` (our extra) defaults to the global one."""
    op = "rrelu"
    _check_tensor(input, op)
    if lower > upper:
        raise ValueError(f"{op}: lower bound ({lower}) must not be greater than the upper "
                         f"bound ({upper})")
    if not training:
        return _apply(input, inplace, op, lambda x: _act.leaky_relu(x, (lower + upper) / 2))
    if not input.is_floating_point():
        raise TypeError(f"{op}: input must be floating point, got {input.dtype.name}")
    noise = creation.uniform(lower, upper, _shape(input), generator=generator,
                             dtype=input.dtype, device=input.device)
    return _apply(input, inplace, op, lambda x: _act.rrelu_with_noise(x, noise))


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""
    return _apply(input, inplace, "elu", lambda x: _act.elu(x, alpha))


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """scale * elu(x, alpha) with SELU's fixed alpha ~ 1.6733 and scale ~ 1.0507."""
    return _apply(input, inplace, "selu", _act.selu)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x for x > 0, alpha * (exp(x / alpha) - 1) otherwise."""
    return _apply(input, inplace, "celu", lambda x: _act.celu(x, alpha))


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x), Phi the standard normal CDF; ``approximate='tanh'`` uses
    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    return _act.gelu(input, approximate)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x * sigmoid(x) (also called swish)."""
    return _apply(input, inplace, "silu", _act.silu)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * tanh(softplus(x))."""
    return _apply(input, inplace, "mish", _act.mish)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, and x itself where beta * x > threshold."""
    return _act.softplus(input, beta, threshold)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * relu6(x + 3) / 6."""
    return _apply(input, inplace, "hardswish", _act.hardswish)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """relu6(x + 3) / 6."""
    return _apply(input, inplace, "hardsigmoid", _act.hardsigmoid)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0,
             inplace: bool = False) -> Tensor:
    """x clamped to [min_val, max_val]."""
    return _apply(input, inplace, "hardtanh", lambda x: _act.hardtanh(x, min_val, max_val))


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """x where x > threshold, ``value`` elsewhere."""
    return _apply(input, inplace, "threshold", lambda x: _act.threshold(x, threshold, value))


def sigmoid(input: Tensor) -> Tensor:
    """1 / (1 + exp(-x))."""
    return pointwise.sigmoid(input)


def logsigmoid(input: Tensor) -> Tensor:
    """log(sigmoid(x)) = -softplus(-x), computed stably."""
    return _act.logsigmoid(input)


def tanh(input: Tensor) -> Tensor:
    return pointwise.tanh(input)


def softsign(input: Tensor) -> Tensor:
    """x / (1 + |x|)."""
    return _act.softsign(input)


def tanhshrink(input: Tensor) -> Tensor:
    """x - tanh(x)."""
    return _act.tanhshrink(input)


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """x - lambd for x > lambd, x + lambd for x < -lambd, 0 in between."""
    return _act.softshrink(input, lambd)


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """x for |x| > lambd, 0 otherwise."""
    return _act.hardshrink(input, lambd)


def _require_dim(dim, op: str) -> int:
    if dim is None:
        raise TypeError(f"{op}: dim is required (PyTorch's implicit choice of dim is "
                        f"deprecated; nnforge asks for it), e.g. {op}(x, dim=-1)")
    return dim


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """exp(x_i) / sum_j exp(x_j) along ``dim`` (which must be given)."""
    return _red.softmax(input, _require_dim(dim, "softmax"), dtype)


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
                dtype=None) -> Tensor:
    """x_i - log sum_j exp(x_j) along ``dim`` (which must be given)."""
    return _red.log_softmax(input, _require_dim(dim, "log_softmax"), dtype)


def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """softmax(-x) along ``dim`` (which must be given)."""
    dim = _require_dim(dim, "softmin")
    _check_tensor(input, "softmin")
    if dtype is not None:
        input = input.to(dtype=_dt.as_dtype(dtype))
    return _red.softmax(pointwise.neg(input), dim)


# ---------------------------------------------------------------- dropout
def _scaled_keep_mask(like: Tensor, p: float, generator) -> Tensor:
    """keep / (1 - p), keep ~ Bernoulli(1 - p), of like's shape, dtype and device. On a
    CUDA device without an explicit ``generator``, one Philox kernel draws and scales the
    mask there (backend philox_dropout_mask, nf.cuda's stream)."""
    if like.device.type == "cuda" and generator is None:
        from .. import cuda as _nf_cuda
        arr = _nf_cuda._philox(like.device.backend.philox_dropout_mask, tuple(like.shape),
                               like.data.dtype_name, p, device=like.data.device)
        return Tensor._make(arr, like.device, False)
    keep = creation.bernoulli(like, 1.0 - p, generator=generator)
    return pointwise.mul(keep, 1.0 / (1.0 - p))


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False,
            *, generator=None) -> Tensor:
    """Zeroes each element with probability ``p`` and scales the rest by 1 / (1 - p)
    (inverted dropout: the expected value is unchanged); the identity when not
    ``training``. ``generator`` (our extra) defaults to the global one."""
    _check_tensor(input, "dropout")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if not input.is_floating_point():
        raise TypeError(f"dropout: input must be floating point, got {input.dtype.name}")
    if p == 1.0:
        scaled_mask = creation.zeros_like(input)
    else:
        scaled_mask = _scaled_keep_mask(input, p, generator)
    return input.mul_(scaled_mask) if inplace else pointwise.mul(input, scaled_mask)


def _feature_dropout(input: Tensor, p: float, training: bool, inplace: bool, op: str,
                     batched_ndim: int, generator) -> Tensor:
    """Channel-wise dropout (Tompson et al. 2015): each channel of each sample is kept
    whole or zeroed as one, with probability 1 - p / p, and kept ones are scaled by
    1 / (1 - p). Neighbouring pixels of a feature map are strongly correlated, so
    dropping single pixels barely regularizes a convolutional layer."""
    _check_tensor(input, op)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: probability has to be between 0 and 1, but got {p}")
    if input.ndim not in (batched_ndim - 1, batched_ndim):
        layout = "(N, C, L) or (C, L)" if batched_ndim == 3 else "(N, C, H, W) or (C, H, W)"
        raise ValueError(f"{op}: expected a {batched_ndim - 1}-D or {batched_ndim}-D input "
                         f"{layout}, got shape {_shape(input)}")
    if not training or p == 0.0:
        return input
    if not input.is_floating_point():
        raise TypeError(f"{op}: input must be floating point, got {input.dtype.name}")
    # One draw per (sample, channel), broadcast over the spatial dims.
    mask_shape = tuple(input.shape[:input.ndim - batched_ndim + 2]) + (1,) * (batched_ndim - 2)
    probe = creation.empty(mask_shape, dtype=input.dtype, device=input.device)
    if p == 1.0:
        scaled_mask = creation.zeros_like(probe)
    else:
        scaled_mask = _scaled_keep_mask(probe, p, generator)
    return input.mul_(scaled_mask) if inplace else pointwise.mul(input, scaled_mask)


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False,
              *, generator=None) -> Tensor:
    """Zeroes whole channels of an (N, C, L) or (C, L) input with probability ``p``
    and scales the rest by 1 / (1 - p); the identity when not ``training``."""
    return _feature_dropout(input, p, training, inplace, "dropout1d", 3, generator)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False,
              *, generator=None) -> Tensor:
    """Zeroes whole channels (feature maps) of an (N, C, H, W) or (C, H, W) input
    with probability ``p`` and scales the rest by 1 / (1 - p); the identity when
    not ``training``.

    >>> import nnforge as nf
    >>> y = nf.nn.functional.dropout2d(nf.ones(2, 3, 4, 4), 0.5)
    >>> sorted(set(y.sum((2, 3)).flatten().tolist())) in ([0.0], [32.0], [0.0, 32.0])
    True
    """
    return _feature_dropout(input, p, training, inplace, "dropout2d", 4, generator)


interpolate = _upsample.interpolate


# ---------------------------------------------------------------- losses: arguments
_REDUCTIONS = ("none", "mean", "sum")


def _reduction(op: str, size_average, reduce, reduction_: str,
               allowed: tuple = _REDUCTIONS) -> str:
    if size_average is not None or reduce is not None:
        warnings.warn(f"{op}: size_average and reduce are deprecated, use reduction='...'",
                      DeprecationWarning, stacklevel=3)
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction_ = "none" if not reduce else ("mean" if size_average else "sum")
    if reduction_ not in allowed:
        names = ", ".join(repr(r) for r in allowed[:-1]) + f" or {allowed[-1]!r}"
        raise ValueError(f"{op}: {reduction_!r} is not a valid value for reduction; "
                         f"expected {names}")
    return reduction_


def _reduce(loss: Tensor, reduction_: str) -> Tensor:
    if reduction_ == "mean":
        return _red.mean(loss)
    if reduction_ == "sum":
        return _red.sum(loss)
    return loss


def _pair(op: str, input, target):
    """Checks a pointwise loss's input and target (tensors of one shape) and
    promotes both to their common floating dtype."""
    _check_tensor(input, op)
    _check_tensor(target, op, "target")
    if _shape(input) != _shape(target):
        raise ValueError(f"{op}: input of shape {_shape(input)} and target of shape "
                         f"{_shape(target)} must have the same shape")
    dt = _dt.result_type(input, target)
    if not dt.is_floating_point:
        dt = _dt.get_default_dtype()
    return cast_to(input, dt), cast_to(target, dt)


def _elementwise_weight(op: str, weight, input: Tensor):
    """A weight that broadcasts to the input's shape without changing it, in its dtype."""
    if weight is None:
        return None
    _check_tensor(weight, op, "weight")
    return _broadcastable_to(op, "weight", weight, input)


def _broadcastable_to(op: str, name: str, t: Tensor, input: Tensor) -> Tensor:
    s, target = _shape(t), _shape(input)
    ok = len(s) <= len(target) and all(a in (1, b) for a, b in zip(s[::-1], target[::-1]))
    if not ok:
        raise ValueError(f"{op}: {name} of shape {s} must broadcast to the input's shape "
                         f"{target}")
    return cast_to(t, input.dtype)


# ---------------------------------------------------------------- losses: regression
def mse_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
             reduction: str = "mean", weight: Tensor | None = None, *,
             half: bool = False) -> Tensor:
    """(input - target)^2, reduced. ``weight`` (same shape as input) weights each
    element; the weighted mean divides by sum(weight).

    ``half=True`` (our extra) halves the loss: E = 1/2 * sum_i ||o_i - t_i||^2 with
    reduction='sum', the classic form whose gradient is o - t; 'mean' and 'none'
    are halved the same way.
    """
    op = "mse_loss"
    red = _reduction(op, size_average, reduce, reduction)
    input, target = _pair(op, input, target)
    diff = pointwise.sub(input, target)
    sq = pointwise.mul(diff, diff)
    if half:
        sq = pointwise.mul(sq, 0.5)
    if weight is None:
        return _reduce(sq, red)
    _check_tensor(weight, op, "weight")
    if _shape(weight) != _shape(input):
        raise ValueError(f"{op}: weight of shape {_shape(weight)} must have the input's "
                         f"shape {_shape(input)}")
    weighted = pointwise.mul(sq, weight)
    if red == "mean":
        return pointwise.div(_red.sum(weighted), _red.sum(weight))
    return _reduce(weighted, red)


def l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
            reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    """|input - target|, reduced. With ``weight`` (input's shape) the weighted mean
    divides by sum(weight), as in PyTorch."""
    op = "l1_loss"
    red = _reduction(op, size_average, reduce, reduction)
    input, target = _pair(op, input, target)
    if weight is None:
        return _loss.L1.apply(input, target, red)
    weight = _same_shape_weight(op, weight, input)
    weighted = pointwise.mul(_loss.L1.apply(input, target, "none"), weight)
    if red == "mean":
        return pointwise.div(_red.sum(weighted), _red.sum(weight))
    return _reduce(weighted, red)


def _same_shape_weight(op, weight, input):
    _check_tensor(weight, op, "weight")
    if _shape(weight) != _shape(input):
        raise ValueError(f"{op}: weight of shape {_shape(weight)} must have the input's "
                         f"shape {_shape(input)}")
    return cast_to(weight, input.dtype)


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0,
               weight: Tensor | None = None) -> Tensor:
    """With d = input - target: d^2 / 2 where |d| < delta, delta * (|d| - delta / 2)
    elsewhere. With ``weight`` (input's shape) 'mean' is the plain mean of the
    weighted losses, as in PyTorch (not divided by sum(weight))."""
    op = "huber_loss"
    red = _reduction(op, None, None, reduction)
    if not delta > 0:
        raise ValueError(f"{op}: delta must be positive, got {delta}")
    input, target = _pair(op, input, target)
    if weight is None:
        return _loss.Huber.apply(input, target, float(delta), red)
    weight = _same_shape_weight(op, weight, input)
    return _reduce(pointwise.mul(_loss.Huber.apply(input, target, float(delta), "none"), weight),
                   red)


def smooth_l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                   reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """With d = input - target: d^2 / (2 beta) where |d| < beta, |d| - beta / 2
    elsewhere; beta = 0 gives the L1 loss."""
    op = "smooth_l1_loss"
    red = _reduction(op, size_average, reduce, reduction)
    if beta < 0:
        raise ValueError(f"{op}: beta must be non-negative, got {beta}")
    input, target = _pair(op, input, target)
    if beta == 0:
        return _loss.L1.apply(input, target, red)
    return _loss.SmoothL1.apply(input, target, float(beta), red)


# ---------------------------------------------------------------- losses: binary
def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                         size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """-w [t log(x) + (1 - t) log(1 - x)] for probabilities x in [0, 1]; each log is
    clamped at -100 (as in PyTorch), so x = 0 or 1 gives a finite loss.
    ``weight`` broadcasts to the input's shape."""
    op = "binary_cross_entropy"
    red = _reduction(op, size_average, reduce, reduction)
    input, target = _pair(op, input, target)
    inside = pointwise.logical_and(pointwise.ge(input, 0), pointwise.le(input, 1))
    if not bool(_red.all(inside)):
        raise ValueError(f"{op}: all elements of input should be between 0 and 1 (they are "
                         "probabilities; use binary_cross_entropy_with_logits for logits)")
    weight = _elementwise_weight(op, weight, input)
    return _loss.BinaryCrossEntropy.apply(input, target, weight, red)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor,
                                     weight: Tensor | None = None, size_average=None,
                                     reduce=None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    """binary_cross_entropy(sigmoid(x), t), computed from the logits x in the
    log-sum-exp form pos_weight * t * softplus(-x) + (1 - t) * softplus(x), with
    softplus(z) = max(z, 0) + log1p(exp(-|z|)): finite and accurate for any finite
    x (|x| ~ 1e4 included). ``pos_weight`` weights the positive term per class (it
    broadcasts along the last dim); ``weight`` broadcasts to the input's shape."""
    op = "binary_cross_entropy_with_logits"
    red = _reduction(op, size_average, reduce, reduction)
    input, target = _pair(op, input, target)
    weight = _elementwise_weight(op, weight, input)
    if pos_weight is not None:
        _check_tensor(pos_weight, op, "pos_weight")
        pos_weight = _broadcastable_to(op, "pos_weight", pos_weight, input)
    return _loss.BinaryCrossEntropyWithLogits.apply(input, target, weight, pos_weight, red)


# ---------------------------------------------------------------- losses: distributions
def kl_div(input: Tensor, target: Tensor, size_average=None, reduce=None,
           reduction: str = "mean", log_target: bool = False) -> Tensor:
    """KL(target || q) pointwise, with ``input`` = log q: target * (log target - input)
    (0 where target = 0), or exp(t) * (t - input) with ``log_target``.

    reduction='batchmean' divides the sum by the batch size (the KL divergence per
    sample); 'mean' divides by the number of elements and warns, as in PyTorch.
    """
    op = "kl_div"
    red = _reduction(op, size_average, reduce, reduction, ("none", "batchmean", "sum", "mean"))
    if red == "mean":
        warnings.warn(f"{op}: reduction='mean' divides the total loss by both the batch size "
                      "and the support size; 'batchmean' divides only by the batch size and "
                      "agrees with the definition of the KL divergence", UserWarning,
                      stacklevel=2)
    input, target = _pair(op, input, target)
    return _loss.KLDiv.apply(input, target, red, bool(log_target))


# ---------------------------------------------------------------- losses: classes
_INTEGER_DTYPES = (_dt.uint8, _dt.int8, _dt.int16, _dt.int32, _dt.int64)


def _class_layout(op: str, input: Tensor, target: Tensor):
    """Checks (N, C, d1, ...) input against (N, d1, ...) integer targets; an
    unbatched (C,) input takes a 0-d target. Returns (input, target, unbatched)
    with a batch dim added in the unbatched case."""
    if input.ndim == 0:
        raise ValueError(f"{op}: input must have at least 1 dimension (classes), got shape ()")
    if not input.is_floating_point():
        raise TypeError(f"{op}: input must be floating point, got {input.dtype.name}")
    if target.dtype not in _INTEGER_DTYPES:
        raise TypeError(f"{op}: target must hold class indices of an integer dtype (int64), "
                        f"got {target.dtype.name}")
    unbatched = input.ndim == 1
    if unbatched:
        if target.ndim != 0:
            raise ValueError(f"{op}: for an unbatched input of shape {_shape(input)} the "
                             f"target must be 0-d, got shape {_shape(target)}")
        return shape.unsqueeze(input, 0), shape.unsqueeze(target, 0), True
    expected = (input.shape[0],) + tuple(input.shape[2:])
    if _shape(target) != expected:
        raise ValueError(f"{op}: expected target of shape {expected} for input of shape "
                         f"{_shape(input)}, got target of shape {_shape(target)}")
    return input, target, False


def _check_targets(op: str, target: Tensor, n_classes: int, ignore_index: int) -> None:
    """IndexError for a class index outside [0, C) that is not ``ignore_index``.
    The common case (all in range) costs two reductions."""
    if target.numel() == 0:
        return
    if int(_red.amin(target)) >= 0 and int(_red.amax(target)) < n_classes:
        return
    valid = pointwise.ne(target, ignore_index)
    bad = pointwise.logical_and(valid, pointwise.logical_or(pointwise.lt(target, 0),
                                                            pointwise.ge(target, n_classes)))
    if bool(_red.any(bad)):
        value = int(indexing.masked_select(target, bad)[0])
        raise IndexError(f"{op}: target {value} is out of bounds for {n_classes} classes "
                         f"(valid: 0 to {n_classes - 1}, or ignore_index={ignore_index})")


def _check_weight(op: str, weight, n_classes: int, input: Tensor):
    if weight is None:
        return None
    _check_tensor(weight, op, "weight")
    if _shape(weight) != (n_classes,):
        raise ValueError(f"{op}: weight of shape {_shape(weight)} must have one entry per class, "
                         f"shape ({n_classes},), for input of shape {_shape(input)}")
    return cast_to(weight, input.dtype)


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
             ignore_index: int = -100, reduce=None, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of class-index targets given log-probabilities.

    ``input`` is (N, C), (N, C, d1, ...) or unbatched (C,); ``target`` holds
    int64 class indices of shape (N,), (N, d1, ...) or (). With
    ``reduction='mean'`` the sum is divided by sum of ``weight[target]`` over the
    targets that are not ``ignore_index`` (all ignored: nan, as in PyTorch).
    """
    op = "nll_loss"
    _check_tensor(input, op)
    _check_tensor(target, op, "target")
    red = _reduction(op, size_average, reduce, reduction)
    logp, tgt, unbatched = _class_layout(op, input, target)
    n_classes = logp.shape[1]
    weight = _check_weight(op, weight, n_classes, input)
    _check_targets(op, tgt, n_classes, ignore_index)
    loss = _loss.NllLoss.apply(logp, tgt, weight, int(ignore_index), red)
    if unbatched and red == "none":
        loss = shape.squeeze(loss, 0)
    return loss


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                  size_average=None, ignore_index: int = -100, reduce=None,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Cross entropy between logits and targets: log_softmax over the class dim
    (dim 1, or dim 0 for an unbatched input) and the negative log-likelihood, fused
    in one op whose gradient is softmax(input) - target distribution.

    ``target`` is either class indices (int64, shape as for ``nll_loss``, with
    ``ignore_index``) or class probabilities (float, the input's shape). With
    ``label_smoothing`` = e the target becomes (1 - e) * target + e / C, i.e. for
    class indices loss = (1 - e) * nll + e / C * sum_c(-w_c * logp_c), both parts
    reduced the same way (PyTorch's formula, weighted mean included).

    >>> import nnforge as nf
    >>> logits = nf.tensor([[2.0, 0.0, 0.0]], requires_grad=True)
    >>> loss = nf.nn.functional.cross_entropy(logits, nf.tensor([0]))
    >>> round(loss.item(), 4)
    0.2395
    """
    op = "cross_entropy"
    _check_tensor(input, op)
    _check_tensor(target, op, "target")
    red = _reduction(op, size_average, reduce, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be between 0.0 and 1.0, got "
                         f"{label_smoothing}")
    if not input.is_floating_point():
        raise TypeError(f"{op}: input must hold floating-point logits, got {input.dtype.name}")
    if input.ndim == 0:
        raise ValueError(f"{op}: input must have at least 1 dimension (classes), got shape ()")
    class_dim = 0 if input.ndim == 1 else 1
    n_classes = input.shape[class_dim]
    weight = _check_weight(op, weight, n_classes, input)

    if target.is_floating_point():
        if _shape(target) != _shape(input):
            raise ValueError(f"{op}: class-probability targets must have the input's shape "
                             f"{_shape(input)}, got {_shape(target)} (class-index targets "
                             "must be int64)")
        input, target = _pair(op, input, target)
        if weight is not None:
            weight = cast_to(weight, input.dtype)
        return _loss.SoftCrossEntropy.apply(input, target, weight, red, float(label_smoothing),
                                            class_dim)

    logits, tgt, unbatched = _class_layout(op, input, target)  # targets checked by the op
    loss = _loss.CrossEntropy.apply(logits, tgt, weight, int(ignore_index), red,
                                    float(label_smoothing))
    if unbatched and red == "none":
        loss = shape.squeeze(loss, 0)
    return loss


# ---------------------------------------------------------------- metrics (not differentiable)
def _predicted_labels(op: str, input: Tensor, target: Tensor) -> Tensor:
    """Class labels from ``input``: scores (N, C, d1, ...) against targets (N, d1, ...)
    (or (C,) against ()) give their argmax over the class dim; an input of the
    target's shape is taken as labels already."""
    _check_tensor(input, op)
    _check_tensor(target, op, "target")
    if input.ndim == target.ndim + 1 and input.ndim >= 1:
        expected = (input.shape[0],) + tuple(input.shape[2:]) if input.ndim > 1 else ()
        if _shape(target) != expected:
            raise ValueError(f"{op}: expected target of shape {expected} for scores of shape "
                             f"{_shape(input)}, got {_shape(target)}")
        return _red.argmax(input.detach(), dim=1 if input.ndim > 1 else 0)
    if _shape(input) != _shape(target):
        raise ValueError(f"{op}: input of shape {_shape(input)} must be class scores with one "
                         f"more dim than target {_shape(target)} (classes in dim 1), or labels "
                         "of the target's shape")
    return input.detach()


def zero_one_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """The 0-1 loss: 1 where the predicted label differs from ``target``, else 0.

    ``input`` holds class scores (logits or probabilities, classes in dim 1: the
    prediction is their argmax) or labels of the target's shape. 'mean' gives the
    error rate, 'sum' the number of errors, 'none' the per-element 0/1 values, as
    a tensor of the default float dtype. Not differentiable (a step function);
    train with cross_entropy. For binary logits pass ``(logits > 0)`` as labels.

    >>> import nnforge as nf
    >>> F = nf.nn.functional
    >>> F.zero_one_loss(nf.tensor([[2.0, 1.0], [0.0, 3.0]]), nf.tensor([0, 0])).item()
    0.5
    """
    op = "zero_one_loss"
    red = _reduction(op, None, None, reduction)
    wrong = pointwise.ne(_predicted_labels(op, input, target), target)
    return _reduce(wrong.to(_dt.get_default_dtype()), red)


def accuracy(input: Tensor, target: Tensor) -> Tensor:
    """The fraction of predictions equal to ``target`` (1 - the mean 0-1 loss), as a
    0-d tensor; ``input`` as for ``zero_one_loss``. Not differentiable.

    >>> import nnforge as nf
    >>> nf.nn.functional.accuracy(nf.tensor([1, 2, 3, 4]), nf.tensor([1, 2, 0, 4])).item()
    0.75
    """
    op = "accuracy"
    right = pointwise.eq(_predicted_labels(op, input, target), target)
    return _red.mean(right.to(_dt.get_default_dtype()))
