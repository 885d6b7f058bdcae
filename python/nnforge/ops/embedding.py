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
from ._util import check_tensor

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
            dw[ctx.padding_idx] = 0
        return dw, None, None


def _renorm_(weight: Tensor, indices: np.ndarray, max_norm: float, norm_type: float) -> None:
    rows = np.unique(indices)
    with no_grad():
        w = weight.data
        norms = np.linalg.norm(w[rows].astype(np.float64), ord=norm_type, axis=1)
        big = norms > max_norm
        if big.any():
            scale = max_norm / (norms[big] + 1e-7)
            w[rows[big]] = (w[rows[big]] * scale[:, None]).astype(w.dtype)
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
    if input.data.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be an integer tensor, got {input.dtype.name}")
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must be 2-D (num_embeddings, embedding_dim), got "
                         f"shape {tuple(weight.shape)}")
    if scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding: scale_grad_by_freq and sparse gradients are not "
                                  "implemented")
    n = weight.shape[0]
    idx = np.asarray(input.numpy())
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        bad = int(idx.min()) if idx.min() < 0 else int(idx.max())
        raise IndexError(f"embedding: index {bad} is out of range for an embedding of "
                         f"{n} rows (input shape {tuple(input.shape)})")
    if padding_idx is not None:
        if not -n <= padding_idx < n:
            raise ValueError(f"embedding: padding_idx {padding_idx} must be within the "
                             f"{n} rows")
        padding_idx = padding_idx % n
    if max_norm is not None:
        _renorm_(weight, idx, float(max_norm), float(norm_type))
    return EmbeddingLookup.apply(weight, idx.astype(np.int64, copy=False), padding_idx)
