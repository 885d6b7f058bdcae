"""nnforge: a small deep-learning library with hand-written CPU and CUDA kernels.

>>> import nnforge as nf
>>> x = nf.randn(4, 3, requires_grad=True)
>>> loss = (x @ nf.ones(3, 2)).relu().sum()
>>> loss.backward()
>>> tuple(x.grad.shape)
(4, 3)
"""
from __future__ import annotations

__version__ = "0.1.0"

from . import _methods
from .dtypes import (bfloat16, bool_ as bool, dtype, float16, float32, float64,  # noqa: A001
                     get_default_dtype, int8, int16, int32, int64, result_type, set_default_dtype,
                     uint8)
from .dtypes import float16 as half, float32 as float, float64 as double, int64 as long  # noqa: A001
from .dtypes import int32 as int  # noqa: A001
from .device import device
from .random import Generator, default_generator, get_rng_state, initial_seed, manual_seed, seed, set_rng_state
from .tensor import Size, Tensor
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from . import autograd

from .ops.creation import (arange, as_tensor, bernoulli, empty, empty_like, eye, from_numpy, full,
                           full_like, linspace, multinomial, normal, ones, ones_like, rand, rand_like,
                           randint, randint_like, randn, randn_like, randperm, tensor, uniform, zeros,
                           zeros_like)
from .ops.convert import clone, contiguous
from .ops.pointwise import (abs, add, allclose, ceil, clamp, clip, cos, div, eq, equal,  # noqa: A004
                            exp, floor, floor_divide, ge, gt, isfinite, isinf, isnan, le, log,
                            log1p, logical_and, logical_not, logical_or, logical_xor, lt,
                            masked_fill, maximum, minimum, mul, ne, neg, pow, relu, remainder,
                            round, rsqrt, sigmoid, sign, sin, sqrt, sub, tanh, where)
from .ops.pointwise import div as divide, mul as multiply, neg as negative, sub as subtract  # noqa: F401
from .ops.reduction import (all, amax, amin, any, argmax, argmin, cumsum, log_softmax,  # noqa: A004
                            logsumexp, max, mean, min, prod, softmax, std, sum, var, var_mean)
from .ops.linalg import bmm, dot, matmul, mm
from .ops.shape import (broadcast_to, cat, chunk, concat, concatenate, expand, flatten, flip,
                        narrow, permute, repeat, reshape, split, squeeze, stack, swapaxes, t,
                        transpose, unbind, unflatten, unsqueeze)
from .ops.indexing import gather, index_select, masked_select, nonzero, one_hot, scatter_add, take

from .config import get_num_threads, set_num_threads, show_config
from . import cuda
from . import nn
from . import optim
from . import data
from . import models
from . import peft
from . import io
from .io import load, save
from . import train
from . import distributed
from . import viz

_methods.install()


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def numel(input: Tensor) -> int:
    return input.numel()
