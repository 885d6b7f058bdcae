"""CUDA backend: ``nnforge._C.cuda.DeviceArray`` arrays computed by nnforge's
own CUDA kernels (csrc/cuda/). Same function names and semantics as
``backend/cpu.py`` (numpy's), so the ops in ``nnforge.ops`` run unchanged.

Status (issue 8): every public function of the CPU backend has a CUDA version
here; written and compiled for sm_80 and sm_90a, not yet run on a GPU. By file:

- cuda_core.py: transfers and creation (asarray, from_host, to_host, empty,
  zeros, ones, full, arange, ...), elementwise unary/binary/compare with
  broadcasting, casts and copies
- cuda_reduce.py: sum, mean, var, prod, amax, amin, argmax, argmin, any, all
- cuda_shape.py: reshape, view, transpose, moveaxis, broadcast_to, squeeze,
  concatenate, stack, getitem/setitem (basic and advanced indexing)
- cuda_linalg.py: matmul, linear (SIMT, mma.sync and sm_90a wgmma GEMMs)
- cuda_attention.py: sdpa_forward, sdpa_backward, sdpa_dropout_mask
- cuda_norms.py: softmax, log_softmax and their backwards, layer norm
- cuda_conv.py: conv2d forward, input and weight gradients (implicit GEMM)
- cuda_pool.py: max, average and adaptive pooling, forward and backward
- cuda_batchnorm.py: batch norm train/eval forward, backward, running stats
- cuda_loss.py: cross_entropy_forward/backward, logsumexp
- cuda_optim.py: fused SGD, Adam/AdamW, RMSprop, Adagrad, Adadelta updates
- cuda_random.py: Philox4x32-10 uniform, normal, Bernoulli, dropout masks
- cuda_index.py: gather, take, take_along_axis, put_along_axis, scatter_add,
  index_add, nonzero, cumsum, cumprod, flip, tile, pad, eye, linspace
- cuda_rnn.py: RNN/LSTM/GRU layer forward and backward through time

A CPU backend name missing here would be bound to a stand-in that raises
NotImplementedError naming itself (``NOT_IMPLEMENTED`` lists them; empty now).

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
