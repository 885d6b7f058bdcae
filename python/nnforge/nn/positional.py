"""Position information for attention, which by itself is blind to order.

- ``SinusoidalPositionalEncoding`` (Vaswani et al. 2017, section 3.5): a fixed
  table added to the token embeddings,
      PE[pos, 2i] = sin(pos / 10000^(2i / d)),   PE[pos, 2i+1] = cos(pos / 10000^(2i / d)),
  so each pair of dimensions is a clock of its own frequency and PE[pos + k] is
  a rotation of PE[pos] (relative offsets are linear in it).
- ``LearnedPositionalEmbedding`` (BERT, GPT-2): one trained vector per position.
- ``RotaryEmbedding`` (RoPE, Su et al. 2021): no addition at all; queries and
  keys are rotated by a position-dependent angle inside each head, pair of
  dimensions (x_j, x_{j + d/2}) by angle pos * base^(-2j/d), so that
  q_m . k_n depends only on m - n.

Each takes an ``offset``: the position of the first step, for decoding with a
KV cache where the new tokens come after the cached ones. These are nnforge
extras: PyTorch has no such modules.
"""
from __future__ import annotations

import math

import numpy as np

from ..ops import creation
from ..ops.shape import cat
from ..tensor import Tensor
from .dropout import Dropout
from . import init
from .module import Module
from .parameter import Parameter

__all__ = ["SinusoidalPositionalEncoding", "LearnedPositionalEmbedding", "RotaryEmbedding"]


def _check_span(cls: str, offset: int, length: int, max_len: int) -> None:
    if offset < 0 or offset + length > max_len:
        raise ValueError(f"{cls}: positions {offset}..{offset + length - 1} exceed max_len "
                         f"{max_len}")


class SinusoidalPositionalEncoding(Module):
    """``SinusoidalPositionalEncoding(d_model, max_len=5000, dropout=0.0,
    batch_first=True)``: ``forward(x, offset=0)`` = dropout(x + PE[offset:offset + T])
    for x (B, T, d_model) (or (T, B, d_model) without batch_first)."""

    def __init__(self, d_model: int, max_len: int = 5000, dropout: float = 0.0,
                 batch_first: bool = True, dtype=None):
        super().__init__()
        pos = np.arange(max_len, dtype=np.float64)[:, None]
        freq = np.exp(-math.log(10000.0) * np.arange(0, d_model, 2) / d_model)
        pe = np.zeros((max_len, d_model))
        pe[:, 0::2] = np.sin(pos * freq)
        pe[:, 1::2] = np.cos(pos * freq[: d_model // 2])
        self.register_buffer("pe", creation.tensor(pe, dtype=dtype), persistent=False)
        self.dropout = Dropout(dropout)
        self.d_model, self.max_len, self.batch_first = d_model, max_len, batch_first

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        t = x.shape[1 if self.batch_first else 0]
        _check_span("SinusoidalPositionalEncoding", offset, t, self.max_len)
        pe = self.pe[offset:offset + t].to(x.dtype)
        return self.dropout(x + (pe if self.batch_first else pe.unsqueeze(1)))

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, max_len={self.max_len}"


class LearnedPositionalEmbedding(Module):
    """``LearnedPositionalEmbedding(max_len, d_model)``: ``forward(x, offset=0)`` =
    x + P[offset:offset + T] for x (B, T, d_model), P a trained (max_len, d_model)
    table (``weight``, N(0, 0.02) initialized as in GPT-2)."""

    def __init__(self, max_len: int, d_model: int, dtype=None):
        super().__init__()
        self.weight = Parameter(creation.empty(max_len, d_model, dtype=dtype))
        init.normal_(self.weight, 0.0, 0.02)
        self.max_len, self.d_model = max_len, d_model

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        t = x.shape[1]
        _check_span("LearnedPositionalEmbedding", offset, t, self.max_len)
        return x + self.weight[offset:offset + t]

    def extra_repr(self) -> str:
        return f"{self.max_len}, {self.d_model}"


class RotaryEmbedding(Module):
    """``RotaryEmbedding(head_dim, max_len=4096, base=10000.0)``:
    ``forward(x, offset=0)`` rotates x (..., T, head_dim) (queries or keys split
    into heads): x * cos + rotate_half(x) * sin, rotate_half(x) = (-x2, x1) for the
    halves x1 = x[..., :d/2], x2 = x[..., d/2:]."""

    def __init__(self, head_dim: int, max_len: int = 4096, base: float = 10000.0, dtype=None):
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"RotaryEmbedding: head_dim must be even, got {head_dim}")
        inv_freq = base ** (-np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
        angles = np.arange(max_len, dtype=np.float64)[:, None] * inv_freq   # (max_len, d/2)
        angles = np.concatenate([angles, angles], axis=1)                   # (max_len, d)
        self.register_buffer("cos", creation.tensor(np.cos(angles), dtype=dtype),
                             persistent=False)
        self.register_buffer("sin", creation.tensor(np.sin(angles), dtype=dtype),
                             persistent=False)
        self.head_dim, self.max_len, self.base = head_dim, max_len, base

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        t, d = x.shape[-2], x.shape[-1]
        if d != self.head_dim:
            raise ValueError(f"RotaryEmbedding: expected head_dim {self.head_dim} in the last "
                             f"dim, got shape {tuple(x.shape)}")
        _check_span("RotaryEmbedding", offset, t, self.max_len)
        cos = self.cos[offset:offset + t].to(x.dtype)
        sin = self.sin[offset:offset + t].to(x.dtype)
        half = d // 2
        rotated = cat([-x[..., half:], x[..., :half]], -1)
        return x * cos + rotated * sin

    def extra_repr(self) -> str:
        return f"head_dim={self.head_dim}, max_len={self.max_len}, base={self.base}"
