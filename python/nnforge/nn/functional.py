"""``nnforge.nn.functional`` (import as ``F``): the stateless form of the layers.

Signatures, defaults and semantics follow ``torch.nn.functional``. Activations
are single differentiable ops (``nnforge.ops.activation``: each a ``Function``
with its derivative beside it); this module checks the arguments, names the op
in every error, and handles ``inplace=``. The rest is composed from ``nnforge.ops``.

Losses take ``reduction`` = 'mean' | 'sum' | 'none'; the deprecated
``size_average``/``reduce`` arguments are accepted and mapped as PyTorch maps them.
"""
from __future__ import annotations

import warnings

from .. import dtypes as _dt
from ..ops import activation as _act
from ..ops import creation, indexing, linalg, pointwise, shape
from ..ops import reduction as _red
from ..tensor import Tensor

__all__ = [
    "linear", "pad", "one_hot", "dropout",
    # activations
    "relu", "relu6", "leaky_relu", "prelu", "rrelu", "elu", "selu", "celu", "gelu", "silu",
    "mish", "softplus", "hardswish", "hardsigmoid", "hardtanh", "threshold", "sigmoid",
    "logsigmoid", "tanh", "softsign", "tanhshrink", "softshrink", "hardshrink",
    "softmax", "log_softmax", "softmin",
    # losses
    "mse_loss", "nll_loss", "cross_entropy",
]

# ---------------------------------------------------------------- re-exported ops
linear = linalg.linear
pad = shape.pad
one_hot = indexing.one_hot


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
        keep = creation.bernoulli(input, 1.0 - p, generator=generator)
        scaled_mask = pointwise.mul(keep, 1.0 / (1.0 - p))
    return input.mul_(scaled_mask) if inplace else pointwise.mul(input, scaled_mask)


# ---------------------------------------------------------------- losses
_REDUCTIONS = ("none", "mean", "sum")


def _reduction(op: str, size_average, reduce, reduction_: str) -> str:
    if size_average is not None or reduce is not None:
        warnings.warn(f"{op}: size_average and reduce are deprecated, use reduction='...'",
                      DeprecationWarning, stacklevel=3)
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction_ = "none" if not reduce else ("mean" if size_average else "sum")
    if reduction_ not in _REDUCTIONS:
        raise ValueError(f"{op}: {reduction_!r} is not a valid value for reduction; "
                         "expected 'none', 'mean' or 'sum'")
    return reduction_


def _reduce(loss: Tensor, reduction_: str) -> Tensor:
    if reduction_ == "mean":
        return _red.mean(loss)
    if reduction_ == "sum":
        return _red.sum(loss)
    return loss


def mse_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
             reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    """(input - target)^2, reduced. ``weight`` (same shape as input) weights each
    element; the weighted mean divides by sum(weight).

    Unlike PyTorch (which warns and broadcasts), input and target must have the same
    shape: a broadcast here is almost always a bug, e.g. (N, 1) against (N,).
    """
    _check_tensor(input, "mse_loss")
    _check_tensor(target, "mse_loss", "target")
    red = _reduction("mse_loss", size_average, reduce, reduction)
    if _shape(input) != _shape(target):
        raise ValueError(f"mse_loss: input of shape {_shape(input)} and target of shape "
                         f"{_shape(target)} must have the same shape")
    diff = pointwise.sub(input, target)
    sq = pointwise.mul(diff, diff)
    if weight is None:
        return _reduce(sq, red)
    _check_tensor(weight, "mse_loss", "weight")
    if _shape(weight) != _shape(input):
        raise ValueError(f"mse_loss: weight of shape {_shape(weight)} must have the input's "
                         f"shape {_shape(input)}")
    weighted = pointwise.mul(sq, weight)
    if red == "mean":
        return pointwise.div(_red.sum(weighted), _red.sum(weight))
    return _reduce(weighted, red)


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
    return weight.to(input.dtype)


def _class_dim_view(weight: Tensor, ndim: int) -> Tensor:
    """A (C,) weight shaped (1, C, 1, ...) to broadcast against (N, C, d1, ...)."""
    return shape.reshape(weight, (1, -1) + (1,) * (ndim - 2))


def _nll(logp: Tensor, target: Tensor, weight, ignore_index: int, red: str):
    """The core of nll_loss over checked (N, C, d1, ...) log-probabilities:
    loss_i = -w[y_i] * logp[i, y_i], zero where y_i == ignore_index; 'mean' divides
    by the summed weight of the counted targets (PyTorch's weighted mean).
    Returns (reduced loss, per-element weights w_i)."""
    valid = pointwise.ne(target, ignore_index)
    safe = pointwise.where(valid, target, 0)  # any in-range class; masked out below
    picked = shape.squeeze(indexing.gather(logp, 1, shape.unsqueeze(safe, 1)), 1)
    w = valid.to(logp.dtype)
    if weight is not None:
        w = pointwise.mul(weight[safe], w)
    loss = pointwise.neg(pointwise.mul(picked, w))
    if red == "none":
        return loss, w
    total = _red.sum(loss)
    if red == "sum":
        return total, w
    return pointwise.div(total, _red.sum(w)), w


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
    loss, _ = _nll(logp, tgt, weight, ignore_index, red)
    if unbatched and red == "none":
        loss = shape.squeeze(loss, 0)
    return loss


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                  size_average=None, ignore_index: int = -100, reduce=None,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Cross entropy between logits and targets: log_softmax over dim 1, then the
    negative log-likelihood.

    ``target`` is either class indices (int64, shape as for ``nll_loss``, with
    ``ignore_index``) or class probabilities (float, the input's shape). With
    ``label_smoothing`` = e the target becomes (1 - e) * target + e / C, i.e. for
    class indices loss = (1 - e) * nll + e / C * sum_c(-w_c * logp_c), both parts
    reduced the same way (PyTorch's formula, weighted mean included).
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
        return _soft_cross_entropy(input, target, weight, red, label_smoothing, class_dim)

    logits, tgt, unbatched = _class_layout(op, input, target)
    _check_targets(op, tgt, n_classes, ignore_index)
    logp = _red.log_softmax(logits, 1)
    loss, w = _nll(logp, tgt, weight, ignore_index, red)
    if label_smoothing > 0.0:
        # smooth_i = -sum_c w_c logp[i, c], zero at ignored targets
        lp = logp if weight is None else pointwise.mul(logp, _class_dim_view(weight, logp.ndim))
        smooth = pointwise.neg(_red.sum(lp, 1))
        smooth = pointwise.mul(smooth, pointwise.ne(tgt, ignore_index).to(logp.dtype))
        if red == "mean":
            smooth = pointwise.div(_red.sum(smooth), _red.sum(w))
        elif red == "sum":
            smooth = _red.sum(smooth)
        loss = pointwise.add(pointwise.mul(loss, 1.0 - label_smoothing),
                             pointwise.mul(smooth, label_smoothing / n_classes))
    if unbatched and red == "none":
        loss = shape.squeeze(loss, 0)
    return loss


def _soft_cross_entropy(input, target, weight, red, label_smoothing, class_dim):
    """loss_i = -sum_c w_c * t_ic * logp_ic; 'mean' divides by the number of
    samples N * d1 * ... (not by the weights, as PyTorch does for probabilities)."""
    n_classes = input.shape[class_dim]
    logp = _red.log_softmax(input, class_dim)
    if label_smoothing > 0.0:
        target = pointwise.add(pointwise.mul(target, 1.0 - label_smoothing),
                               label_smoothing / n_classes)
    prod = pointwise.mul(logp, target)
    if weight is not None:
        w = weight if input.ndim == 1 else _class_dim_view(weight, input.ndim)
        prod = pointwise.mul(prod, w)
    loss = pointwise.neg(_red.sum(prod, class_dim))
    if red == "mean":
        return pointwise.div(_red.sum(loss), loss.numel())  # 0 samples: 0/0 = nan
    if red == "sum":
        return _red.sum(loss)
    return loss
