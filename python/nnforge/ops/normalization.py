"""Batch and layer normalization, as torch.nn.functional.batch_norm / layer_norm:
one fused ``Function`` each (RMS norm is composed from pointwise ops).

For an input (N, C, *) and each channel c over its M = N * prod(*) values:

    training:    mean_c, var_c = the batch's mean and biased variance
    evaluation:  mean_c, var_c = running_mean[c], running_var[c]
    y = (x - mean_c) / sqrt(var_c + eps) * weight[c] + bias[c]

In training with running statistics, they move towards the batch's (in place):
running = (1 - momentum) running + momentum batch, with the unbiased variance
var_c * M / (M - 1) for running_var (PyTorch's rule).

Backward (Ioffe & Szegedy 2015), with xhat = (x - mean) invstd, invstd = 1 / sqrt(var + eps):
    dbias_c = sum dy,   dweight_c = sum dy xhat
    training:   dx = weight_c invstd_c / M (M dy - dbias_c - xhat dweight_c)
    evaluation: dx = weight_c invstd_c dy

Layer norm (Ba, Kiros & Hinton 2016) normalizes each sample over its last
k = len(normalized_shape) dims, N values, with the biased variance:
    y = (x - mean) rstd * weight + bias,   rstd = 1 / sqrt(var + eps)
Backward, with xhat = (x - mean) rstd and wg = dy * weight, per sample:
    dx = rstd (wg - mean(wg) - xhat mean(wg xhat)),
    dweight = sum over samples of dy xhat,   dbias = sum over samples of dy
"""
from __future__ import annotations

from ..autograd.function import Function
from ..tensor import Tensor
from . import pointwise, reduction
from ._util import check_tensor

__all__ = ["batch_norm", "layer_norm", "rms_norm"]


class BatchNorm(Function):
    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, training, momentum, eps):
        be = ctx.backend
        if training:
            y, mean, invstd, var = be.batch_norm_train(x, weight, bias, eps)
            if running_mean is not None or running_var is not None:
                count = x.size // x.shape[1]
                be.batch_norm_update_stats_(running_mean, running_var, mean, var, momentum,
                                            count)
        else:
            y = be.batch_norm_eval(x, weight, bias, running_mean, running_var, eps)
            mean = invstd = None
            if any(ctx.needs_input_grad):
                mean = be.copy(running_mean)  # the buffers may change before backward
                invstd = be.batch_norm_invstd(running_var, eps)
        ctx.training = training
        ctx.save_for_backward(x, weight, mean, invstd)
        return y

    @staticmethod
    def backward(ctx, g):
        x, weight, mean, invstd = ctx.saved_tensors
        needs = ctx.needs_input_grad
        gx, gw, gb = ctx.backend.batch_norm_backward(
            g, x, weight, mean, invstd, ctx.training,
            (needs[0], needs[1] and weight is not None, needs[2]))
        return gx, gw, gb, None, None, None, None, None


def _check_channels(op, name, t, c, input):
    if t is None:
        return
    check_tensor(t, op, name)
    if tuple(t.shape) != (c,):
        raise ValueError(f"{op}: {name} of shape {tuple(t.shape)} does not match input of "
                         f"shape {tuple(input.shape)} with {c} channels (expected ({c},))")
    if t.dtype != input.dtype and name in ("weight", "bias"):
        raise TypeError(f"{op}: {name} has dtype {t.dtype}, input has {input.dtype}; "
                        "expected the same")


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-05) -> Tensor:
    """Batch normalization of (N, C, *) over N and the spatial dims, per channel.

    ``running_mean``/``running_var`` ((C,) or None) are the statistics used in
    evaluation and updated in place in training (when given).

    >>> import nnforge as nf
    >>> x = nf.tensor([[1.0, 10.0], [3.0, 30.0]])
    >>> y = nf.nn.functional.batch_norm(x, None, None, training=True)
    >>> [round(v, 3) for v in y[:, 0].tolist()]
    [-1.0, 1.0]
    """
    op = "batch_norm"
    check_tensor(input, op)
    if input.ndim < 2:
        raise ValueError(f"{op}: expected an input of shape (N, C, *) with at least 2 dims, "
                         f"got shape {tuple(input.shape)}")
    if not input.dtype.is_floating_point:
        raise TypeError(f"{op}: expected a floating-point input, got {input.dtype}")
    c = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        _check_channels(op, name, t, c, input)
    if training:
        per_channel = input.numel() // c if c else 0
        if per_channel <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got "
                             f"input size {tuple(input.shape)}")
    elif running_mean is None or running_var is None:
        raise ValueError(f"{op}: running_mean and running_var must be given in evaluation "
                         "mode (training=False)")
    if training and momentum is None:
        momentum = 0.0
    y = BatchNorm.apply(input, weight, bias, running_mean, running_var, bool(training),
                        float(momentum if momentum is not None else 0.0), float(eps))
    if training:
        for t in (running_mean, running_var):
            if t is not None:
                t._bump_version()
    return y


# ---------------------------------------------------------------- layer norm
class LayerNorm(Function):
    @staticmethod
    def forward(ctx, x, weight, bias, k, eps):
        y, mean, rstd = ctx.backend.layer_norm_forward(x, k, weight, bias, eps)
        ctx.k = k
        ctx.save_for_backward(x, weight, mean, rstd)
        return y

    @staticmethod
    def backward(ctx, g):
        x, weight, mean, rstd = ctx.saved_tensors
        needs = ctx.needs_input_grad
        gx, gw, gb = ctx.backend.layer_norm_backward(
            g, x, ctx.k, weight, mean, rstd, (needs[0], needs[1], needs[2]))
        return gx, gw, gb, None, None


def _normalized_shape(op, normalized_shape, input) -> tuple:
    """normalized_shape as a tuple of ints, checked against the input's trailing dims."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else normalized_shape
    try:
        shape = tuple(int(d) for d in shape)
    except TypeError:
        raise TypeError(f"{op}: normalized_shape must be an int or a sequence of ints, got "
                        f"{type(normalized_shape).__name__}") from None
    k = len(shape)
    if k == 0:
        raise ValueError(f"{op}: normalized_shape must have at least one dim, got ()")
    if input.ndim < k or tuple(input.shape[input.ndim - k:]) != shape:
        raise ValueError(f"{op}: given normalized_shape={list(shape)}, expected input with "
                         f"shape [*, {', '.join(map(str, shape))}], but got input of shape "
                         f"{tuple(input.shape)}")
    return shape


def _check_affine(op, name, t, shape, input):
    if t is None:
        return
    check_tensor(t, op, name)
    if tuple(t.shape) != shape:
        raise ValueError(f"{op}: expected {name} of the normalized shape {shape}, got {name} "
                         f"of shape {tuple(t.shape)}")
    if t.dtype != input.dtype:
        raise TypeError(f"{op}: {name} has dtype {t.dtype}, input has {input.dtype}; "
                        "expected the same")


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-05) -> Tensor:
    """Layer normalization over the last ``len(normalized_shape)`` dims of ``input``:
    (x - mean) / sqrt(var + eps) * weight + bias with each sample's own mean and
    biased variance; ``weight``/``bias`` (of ``normalized_shape``) are optional.

    >>> import nnforge as nf
    >>> x = nf.tensor([[1.0, 2.0, 3.0], [10.0, 10.0, 40.0]])
    >>> y = nf.nn.functional.layer_norm(x, (3,))
    >>> [round(v, 3) for v in y[0].tolist()]
    [-1.225, 0.0, 1.225]
    """
    op = "layer_norm"
    check_tensor(input, op)
    if not input.dtype.is_floating_point:
        raise TypeError(f"{op}: expected a floating-point input, got {input.dtype}")
    shape = _normalized_shape(op, normalized_shape, input)
    _check_affine(op, "weight", weight, shape, input)
    _check_affine(op, "bias", bias, shape, input)
    return LayerNorm.apply(input, weight, bias, len(shape), float(eps))


# torch.finfo(dtype).eps, rms_norm's default eps.
_MACHINE_EPS = {"float16": 2.0 ** -10, "bfloat16": 2.0 ** -7, "float32": 2.0 ** -23,
                "float64": 2.0 ** -52}


def rms_norm(input, normalized_shape, weight=None, eps=None) -> Tensor:
    """RMS normalization over the last ``len(normalized_shape)`` dims (Zhang & Sennrich
    2019): x / sqrt(mean(x^2) + eps) * weight; ``eps=None`` is the dtype's machine
    epsilon (as in PyTorch). Composed from pointwise ops and a mean.

    >>> import nnforge as nf
    >>> y = nf.nn.functional.rms_norm(nf.tensor([[3.0, 4.0]]), (2,), eps=0.0)
    >>> [round(v, 4) for v in y[0].tolist()]
    [0.8485, 1.1314]
    """
    op = "rms_norm"
    check_tensor(input, op)
    if not input.dtype.is_floating_point:
        raise TypeError(f"{op}: expected a floating-point input, got {input.dtype}")
    shape = _normalized_shape(op, normalized_shape, input)
    _check_affine(op, "weight", weight, shape, input)
    if eps is None:
        eps = _MACHINE_EPS.get(input.dtype.name, _MACHINE_EPS["float32"])
    dims = tuple(range(input.ndim - len(shape), input.ndim))
    ms = reduction.mean(pointwise.mul(input, input), dims, keepdim=True)
    y = pointwise.mul(input, pointwise.rsqrt(pointwise.add(ms, float(eps))))
    return y if weight is None else pointwise.mul(y, weight)
