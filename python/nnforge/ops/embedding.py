"""Embedding lookup: row ``i`` of a weight matrix for every index ``i``.

    y[..., :] = W[idx[...], :]                 W: (num_embeddings, embedding_dim)
    dW[r, :] = sum over positions p with idx[p] = r of dy[p, :]

so the gradient is a scatter-add of the output gradient into the rows that
were read (a row read twice gets both contributions), and the ``padding_idx``
row gets none: it stays what it was (zeros by default), as in PyTorch.
``max_norm`` renormalizes, in place and before the lookup, every row that is
read and whose ``norm_type`` norm exceeds it (PyTorch's embedding_renorm_).
"""
from __future__ import annotations

import numpy as np

from ..autograd.function import Function
from ..autograd.grad_mode import no_grad
from ..tensor import Tensor
from ._util import check_tensor, same_device

__all__ = ["embedding"]


class EmbeddingLookup(Function):
    @staticmethod
    def forward(ctx, weight, indices, padding_idx):
        be = ctx.backend
        ctx.indices, ctx.padding_idx, ctx.num_rows = indices, padding_idx, weight.shape[0]
        return be.take(weight, indices, 0)

    @staticmethod
    def backward(ctx, g):
        be = ctx.backend
        dim = g.shape[-1]
        dw = be.zeros((ctx.num_rows, dim), g.dtype)
        be.index_add(dw, be.reshape(ctx.indices, (-1,)), be.reshape(g, (-1, dim)))
        if ctx.padding_idx is not None:
            be.setitem(dw, ctx.padding_idx, 0)
        return dw, None, None


def _row_norms(be, a, p: float):
    """The ``p``-norm of every row of ``a`` (k, D), as numpy.linalg.norm's ``ord``."""
    a = be.absolute(a)
    if p == float("inf"):
        return be.amax(a, axis=1)
    if p == float("-inf"):
        return be.amin(a, axis=1)
    if p == 0:
        return be.sum(be.astype(be.not_equal(a, 0), a.dtype), axis=1)
    if p == 2:
        return be.sqrt(be.sum(be.multiply(a, a), axis=1))
    return be.power(be.sum(be.power(a, p), axis=1), 1.0 / p)


def _renorm_(weight: Tensor, indices, max_norm: float, norm_type: float) -> None:
    """Rescales, in place, the rows of ``weight`` read by ``indices`` (a backend int
    array) whose norm exceeds ``max_norm`` to norm max_norm (a row read twice is
    written twice with the same value)."""
    be = weight.device.backend
    with no_grad():
        w = weight.data
        flat = be.reshape(indices, (-1,))
        rows = be.take(w, flat, 0)
        norms = _row_norms(be, be.astype(rows, np.float64), norm_type)
        big = be.greater(norms, max_norm)
        if bool(be.to_host(be.any(big))):
            scale = be.where(big, be.divide(max_norm, be.add(norms, 1e-7)), 1.0)
            new = be.astype(be.multiply(rows, be.expand_dims(scale, 1)), w.dtype)
            at = be.broadcast_to(be.expand_dims(flat, 1), new.shape)
            be.put_along_axis(w, at, new, 0)
            weight._bump_version()


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Looks up rows of ``weight`` (num_embeddings, embedding_dim) for the integer
    indices ``input`` (any shape); the result has shape input.shape + (embedding_dim,).

    >>> import nnforge as nf
    >>> w = nf.arange(6.0).reshape(3, 2)
    >>> nf.nn.functional.embedding(nf.tensor([[2, 0]]), w)
    tensor([[[4., 5.],
             [0., 1.]]])
    """
    check_tensor(input, "embedding")
    check_tensor(weight, "embedding", "weight")
    same_device("embedding", weight, input)
    if input.data.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be an integer tensor, got {input.dtype.name}")
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must be 2-D (num_embeddings, embedding_dim), got "
                         f"shape {tuple(weight.shape)}")
    if scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding: scale_grad_by_freq and sparse gradients are not "
                                  "implemented")
    n = weight.shape[0]
    be = input.device.backend
    idx = input.data
    lo = hi = 0
    if idx.size:  # one host sync on a GPU (PyTorch asserts in the kernel instead)
        lo, hi = int(be.to_host(be.amin(idx))), int(be.to_host(be.amax(idx)))
    if lo < 0 or hi >= n:
        bad = lo if lo < 0 else hi
        raise IndexError(f"embedding: index {bad} is out of range for an embedding of "
                         f"{n} rows (input shape {tuple(input.shape)})")
    if padding_idx is not None:
        if not -n <= padding_idx < n:
            raise ValueError(f"embedding: padding_idx {padding_idx} must be within the "
                             f"{n} rows")
        padding_idx = padding_idx % n
    if max_norm is not None:
        _renorm_(weight, idx, float(max_norm), float(norm_type))
    if idx.dtype != np.int64:
        idx = be.astype(idx, np.int64)
    return EmbeddingLookup.apply(weight, idx, padding_idx)
