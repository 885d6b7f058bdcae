"""CUDA fused optimizer updates over nnforge._C.cuda (csrc/cuda/optim.cu): the
CPU backend's ``sgd_update_``, ``adam_update_``, ``rmsprop_update_``,
``adagrad_update_`` and ``adadelta_update_`` with the same keyword arguments,
updating the parameter and its state buffers in place (see backend/cpu.py).

One kernel launch per call. float32 and float64 update in their own dtype;
float16 and bfloat16 parameters (and their states, of the same dtype) are
loaded into float32, updated in float32 and rounded back, element by element
inside the kernel, which is what the CPU backend's float32 staging computes.
Arrays the kernel cannot take directly (strided views, a gradient or state of
another dtype) are staged: the kernel runs on contiguous copies in the compute
dtype, and the copies of the updated arrays are written back.
"""
from __future__ import annotations

from .cuda_core import _cuda, _device_array, ascontiguous

__all__ = ["sgd_update_", "adam_update_", "rmsprop_update_", "adagrad_update_",
           "adadelta_update_"]

_FLOATS = ("float32", "float64", "float16", "bfloat16")


def _optim_step(kernel, name, param, grad, states, **options):
    """Runs ``kernel(param, grad, *states, **options)`` on the device, staging arrays it
    cannot take (see the module docstring)."""
    param = _device_array(param, name)
    grad = _device_array(grad, name)
    states = [None if s is None else _device_array(s, name) for s in states]
    if param.dtype_name not in _FLOATS:
        raise TypeError(f"{name}: param has dtype {param.dtype_name}; optimizers update "
                        "floating-point tensors")
    arrays = (param, grad, *states)
    direct = all(a is None or (a.dtype_name == param.dtype_name and a.is_contiguous())
                 for a in arrays)
    if direct:
        getattr(_cuda(), kernel)(*arrays, **options)
        return
    compute = param.dtype_name if param.dtype_name in ("float32", "float64") else "float32"

    def stage(a):
        if a is None or (a.dtype_name == compute and a.is_contiguous()):
            return a
        return ascontiguous(a) if a.dtype_name == compute else _cuda().astype(a, compute)

    staged = [stage(a) for a in arrays]
    getattr(_cuda(), kernel)(*staged, **options)
    for original, copy in zip((param, *states), (staged[0], *staged[2:])):
        if copy is not original and original is not None:
            _cuda().copy_(original, copy)


def sgd_update_(p, g, buf, *, lr, momentum, dampening, weight_decay, nesterov, maximize,
                first_step):
    """One SGD step in place on ``p`` (and on the momentum buffer ``buf``, None
    without momentum); ``first_step`` sets the buffer to the gradient."""
    _optim_step("sgd_update", "sgd_update_", p, g, (buf,), lr=lr, momentum=momentum,
                dampening=dampening, weight_decay=weight_decay, nesterov=nesterov,
                maximize=maximize, first_step=first_step)


def adam_update_(p, g, exp_avg, exp_avg_sq, max_exp_avg_sq, *, step, lr, beta1, beta2, eps,
                 weight_decay, amsgrad, maximize, decoupled_weight_decay):
    """One Adam (AdamW with ``decoupled_weight_decay``) step in place; ``step``
    counts from 1; ``max_exp_avg_sq`` is None unless ``amsgrad``."""
    _optim_step("adam_update", "adam_update_", p, g, (exp_avg, exp_avg_sq, max_exp_avg_sq),
                step=step, lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
                amsgrad=amsgrad, maximize=maximize,
                decoupled_weight_decay=decoupled_weight_decay)


def rmsprop_update_(p, g, square_avg, grad_avg, momentum_buffer, *, lr, alpha, eps,
                    weight_decay, momentum, centered, maximize):
    """One RMSprop step in place; ``grad_avg`` is None unless ``centered``,
    ``momentum_buffer`` None unless ``momentum > 0``."""
    _optim_step("rmsprop_update", "rmsprop_update_", p, g, (square_avg, grad_avg, momentum_buffer),
                lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                centered=centered, maximize=maximize)


def adagrad_update_(p, g, state_sum, *, step, lr, lr_decay, weight_decay, eps, maximize):
    """One Adagrad step in place on ``p`` and ``state_sum``; ``step`` counts from 1."""
    _optim_step("adagrad_update", "adagrad_update_", p, g, (state_sum,), step=step, lr=lr,
                lr_decay=lr_decay, weight_decay=weight_decay, eps=eps, maximize=maximize)


def adadelta_update_(p, g, square_avg, acc_delta, *, lr, rho, eps, weight_decay, maximize):
    """One Adadelta step in place on ``p``, ``square_avg`` and ``acc_delta``."""
    _optim_step("adadelta_update", "adadelta_update_", p, g, (square_avg, acc_delta), lr=lr,
                rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)
