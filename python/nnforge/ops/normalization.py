"""Batch normalization, as torch.nn.functional.batch_norm: one fused ``Function``.

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
"""
from __future__ import annotations

from ..autograd.function import Function
from ..tensor import Tensor
from ._util import check_tensor

__all__ = ["batch_norm"]


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
    if input.dtype.np.kind != "f":
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
