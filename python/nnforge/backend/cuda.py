"""CUDA backend: ``nnforge._C.cuda.DeviceArray`` arrays computed by nnforge's
own CUDA kernels (csrc/cuda/). Same function names and semantics as
``backend/cpu.py`` (numpy's), so the ops in ``nnforge.ops`` run unchanged.

Status (issue 8, in progress): written and compiled for sm_80 and sm_90a, not
yet run on a GPU. Implemented:

- transfers and creation: asarray, from_host, to_host, ensure_array, empty,
  zeros, ones, full, zeros_like, arange
- elementwise: add, subtract, multiply, divide, floor_divide, remainder, power,
  maximum, minimum, equal, not_equal, less, less_equal, greater, greater_equal,
  logical_and, logical_or, logical_xor, logical_not, negative, absolute, exp,
  expm1, log, log1p, sqrt, rsqrt, reciprocal, sin, cos, tanh, sigmoid, relu,
  sign, square, floor, ceil, round, isnan, isinf, isfinite, erf, gelu,
  gelu_backward, where, clip
- casts and copies: astype, copy, copyto, add_, ascontiguous, is_contiguous
- reductions (cuda_reduce.py): sum, mean, var, prod, amax, amin, argmax,
  argmin, any, all
- shapes and views (cuda_shape.py): reshape, view, transpose, swap_last,
  moveaxis, broadcast_to, expand_dims, squeeze, getitem/setitem (basic
  indexing), concatenate, stack
- matrix products (cuda_linalg.py): matmul, linear (SIMT, mma.sync tensor-core
  and sm_90a wgmma GEMM kernels)
- attention (cuda_attention.py): sdpa_forward, sdpa_backward, sdpa_dropout_mask
- norms (cuda_norms.py): softmax, log_softmax, softmax_kernel, softmax_backward,
  log_softmax_backward, layer_norm_forward, layer_norm_backward

Every other name of the CPU backend exists here and raises
NotImplementedError naming itself (conv, pooling, batch norm, losses,
optimizer updates, rnn, gather/scatter, ...).

Arrays are created on the current device (``nf.cuda.set_device``); the
creation functions take an extra keyword ``device=`` (an index).
"""
from __future__ import annotations

from .. import _C
from . import cpu as _cpu
from .cuda_core import *  # noqa: F401,F403
from .cuda_core import _cuda  # noqa: F401
from .cuda_reduce import *  # noqa: F401,F403
from .cuda_shape import *  # noqa: F401,F403
from .cuda_linalg import *  # noqa: F401,F403
from .cuda_attention import *  # noqa: F401,F403
from .cuda_norms import *  # noqa: F401,F403
from .cuda_conv import *  # noqa: F401,F403
from .cuda_pool import *  # noqa: F401,F403
from .cuda_batchnorm import *  # noqa: F401,F403
from .cuda_loss import *  # noqa: F401,F403
from .cuda_optim import *  # noqa: F401,F403
from .cuda_random import *  # noqa: F401,F403
from .cuda_index import *  # noqa: F401,F403
from .cuda_rnn import *  # noqa: F401,F403

name = "cuda"


class _NotBuilt:
    """Stands in for DeviceArray in a build without CUDA (no value is ever one)."""


array_type = getattr(_C.cuda, "DeviceArray", _NotBuilt)


def _not_yet(fn_name: str):
    def fn(*args, **kwargs):
        raise NotImplementedError(f"{fn_name}: not yet implemented in the CUDA backend "
                                  "(issue 8, in progress)")
    fn.__name__ = fn_name
    fn.__qualname__ = fn_name
    fn.__doc__ = f"Not yet implemented on CUDA (the CPU backend has {fn_name})."
    return fn


def _missing_names():
    """Public functions of the CPU backend that this module does not define."""
    here = globals()
    return sorted(n for n, v in vars(_cpu).items()
                  if callable(v) and not n.startswith("_") and n not in here
                  and not isinstance(v, type) and getattr(v, "__module__", "") != "builtins")


NOT_IMPLEMENTED = tuple(_missing_names())
for _fn_name in NOT_IMPLEMENTED:
    globals()[_fn_name] = _not_yet(_fn_name)
globals().pop("_fn_name", None)  # absent when nothing is missing
