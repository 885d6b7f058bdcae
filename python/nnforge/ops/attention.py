"""Scaled dot-product attention: ``scaled_dot_product_attention`` with
torch.nn.functional's signature and semantics, one fused op
(FlashAttention-style kernels: the L x S score matrix is never stored).

    S = scale Q K^T + M,  P = softmax_rows(S),  O = dropout(P) V
    backward (Dao 2023, FlashAttention-2): with D_i = dO_i . O_i,
    dV = dropout(P)^T dO,  dP = dropout'(dO V^T),  dS = P o (dP - D),
    dQ = scale dS K,  dK = scale dS^T Q,  dM = dS (additive mask; the scale
    multiplies only Q K^T), summed over the dims M broadcasts along
The forward saves O and the row log-sum-exp; the backward recomputes P from them.

Semantics (PyTorch's): q (..., L, E), k (..., S, E), v (..., S, Ev); batch dims
broadcast; default scale 1 / sqrt(E); ``is_causal``: query i sees keys j <= i
(top-left triangle, also for L != S); ``attn_mask``: bool (True = takes part) or
additive float of q's dtype, broadcastable to (..., L, S); ``enable_gqa``: k/v
may have fewer heads, each serving Hq / Hk consecutive query heads. A query
row whose keys are all masked gives zeros (and zero gradients), never NaN.
Dropout is applied to the attention weights whenever ``dropout_p`` > 0 (pass
0 in evaluation, as PyTorch's callers do); its keep mask comes from a seed
drawn from nnforge's generator and is regenerated, not stored, in the backward.
An additive mask that requires grad gets dM, accumulated tile by tile inside
the same fused backward (a learned bias such as ALiBi or T5's relative
positions); bool masks have no gradient.
"""
from __future__ import annotations

import math

from ..autograd.function import Function
from ..random import _rng
from ..tensor import Tensor
from ._util import check_tensor, same_device

__all__ = ["scaled_dot_product_attention"]

OP = "scaled_dot_product_attention"


class ScaledDotProductAttention(Function):
    @staticmethod
    def forward(ctx, q, k, v, mask, dropout_p, is_causal, scale, seed):
        out, lse = ctx.backend.sdpa_forward(q, k, v, mask, dropout_p, is_causal, scale, seed)
        ctx.save_for_backward(q, k, v, mask, out, lse)
        ctx.params = (dropout_p, is_causal, scale, seed)
        return out

    @staticmethod
    def backward(ctx, g):
        q, k, v, mask, out, lse = ctx.saved_tensors
        need = ctx.needs_input_grad
        dq, dk, dv, dmask = ctx.backend.sdpa_backward(g, q, k, v, mask, out, lse, *ctx.params,
                                                      mask_grad=bool(need[3]))
        return (dq if need[0] else None, dk if need[1] else None, dv if need[2] else None,
                dmask, None, None, None, None)


def _shape(x) -> tuple:
    return tuple(x.shape)


def _broadcast(a: tuple, b: tuple):
    """numpy's broadcast of two shapes, or None when they do not broadcast."""
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + a, (1,) * (n - len(b)) + b
    out = []
    for x, y in zip(a, b):
        if x != y and x != 1 and y != 1:
            return None
        out.append(y if x == 1 else x)
    return tuple(out)


def _check(query, key, value, attn_mask, dropout_p, is_causal, enable_gqa):
    for arg, t in (("query", query), ("key", key), ("value", value)):
        check_tensor(t, OP, arg)
        if t.ndim < 2:
            raise ValueError(f"{OP}: {arg} must have at least 2 dims (..., rows, dim), got shape "
                             f"{_shape(t)}")
        if not t.is_floating_point():
            raise TypeError(f"{OP}: {arg} must be a floating-point tensor, got {t.dtype}")
    if attn_mask is not None:
        check_tensor(attn_mask, OP, "attn_mask")
    same_device(OP, query, key, value, attn_mask)
    shapes = f"query {_shape(query)}, key {_shape(key)}, value {_shape(value)}"
    if not query.dtype == key.dtype == value.dtype:
        raise TypeError(f"{OP}: query, key and value must have the same dtype, got "
                        f"{query.dtype}, {key.dtype} and {value.dtype}")
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(f"{OP}: query and key must have the same last dim (E), got {shapes}")
    if key.shape[-2] != value.shape[-2]:
        raise ValueError(f"{OP}: key and value must have the same number of keys (dim -2), got "
                         f"{shapes}")
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"{OP}: dropout_p must be in [0, 1], got {dropout_p}")
    if is_causal and attn_mask is not None:
        raise ValueError(f"{OP}: explicit attn_mask should not be set when is_causal=True")


def _heads_and_batch(q, k, v, enable_gqa, shapes):
    """Checks how q, k, v (all >= 3-D) broadcast; returns the output's leading dims."""
    hq, hk, hv = q.shape[-3], k.shape[-3], v.shape[-3]
    if hk != hv:
        raise ValueError(f"{OP}: key and value must have the same number of heads (dim -3), got "
                         f"{shapes}")
    if enable_gqa:
        if hk == 0 or hq % hk:
            raise ValueError(f"{OP}: with enable_gqa the query heads (dim -3) must be a multiple "
                             f"of the key/value heads, got {shapes}")
        heads = hq
    else:
        if hq != hk and hq != 1 and hk != 1:
            raise ValueError(f"{OP}: query and key/value heads (dim -3) differ: {shapes} (pass "
                             f"enable_gqa=True for grouped-query attention)")
        heads = hk if hq == 1 else hq
    batch = _broadcast(_shape(q)[:-3], _shape(k)[:-3])
    batch = None if batch is None else _broadcast(batch, _shape(v)[:-3])
    if batch is None:
        raise ValueError(f"{OP}: the batch dims of query, key and value do not broadcast: {shapes}")
    return batch + (heads,)


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask=None,
                                 dropout_p: float = 0.0, is_causal: bool = False,
                                 scale: float | None = None, enable_gqa: bool = False, *,
                                 generator=None) -> Tensor:
    """softmax(query key^T * scale + mask) value over the last two dims, fused: the
    (L, S) score matrix is never stored, in the forward or the backward.

    query (..., L, E), key (..., S, E), value (..., S, Ev) -> (..., L, Ev). See the
    module docstring for masks, causality, grouped-query heads and dropout;
    ``generator`` (our extra) draws the dropout seed.

    >>> import nnforge as nf
    >>> q, k, v = nf.randn(2, 4, 5, 8), nf.randn(2, 4, 7, 8), nf.randn(2, 4, 7, 3)
    >>> tuple(nf.nn.functional.scaled_dot_product_attention(q, k, v).shape)
    (2, 4, 5, 3)
    """
    dropout_p = float(dropout_p)
    _check(query, key, value, attn_mask, dropout_p, is_causal, enable_gqa)
    shapes = f"query {_shape(query)}, key {_shape(key)}, value {_shape(value)}"
    squeeze = max(query.ndim, key.ndim, value.ndim) == 2
    q, k, v = (t if t.ndim >= 3 else t.unsqueeze(0) for t in (query, key, value))
    lead = _heads_and_batch(q, k, v, enable_gqa, shapes)
    length, keys = q.shape[-2], k.shape[-2]
    mask = attn_mask
    if mask is not None:
        if mask.dtype.name != "bool" and mask.dtype != query.dtype:
            raise TypeError(f"{OP}: attn_mask must be bool or have query's dtype ({query.dtype}), "
                            f"got {mask.dtype}")
        full = lead + (length, keys)
        if _broadcast(_shape(mask), full) != full:
            raise ValueError(f"{OP}: attn_mask of shape {_shape(mask)} does not broadcast to the "
                             f"scores' shape {full} of {shapes}")
    if scale is None:  # E == 0: every score is 0 whatever the scale
        scale = 1.0 / math.sqrt(query.shape[-1]) if query.shape[-1] else 1.0
    scale = float(scale)
    if not math.isfinite(scale):
        raise ValueError(f"{OP}: scale must be finite, got {scale}")
    seed = int(_rng(generator).integers(0, 2 ** 63)) if dropout_p > 0.0 else 0
    out = ScaledDotProductAttention.apply(q, k, v, mask, dropout_p, bool(is_causal), scale, seed)
    return out.squeeze(0) if squeeze else out
