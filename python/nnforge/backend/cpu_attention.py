"""CPU scaled dot-product attention over nnforge._C.cpu (csrc/cpu/attention.cpp).

Arrays are q (*batch_q, Hq, L, E), k (*batch_k, Hk, S, E), v (*batch_v, Hk, S, Ev)
with batch dims that broadcast; heads match, or one side has 1 head
(broadcast), or Hq is a multiple of Hk (grouped-query). The kernels see 4-D
(B, H, rows, dim) views: nothing is copied unless a view cannot be expressed
with strides (last dim not contiguous, several broadcast batch dims). The
mask (bool "takes part", or additive in q's dtype) broadcasts to
(*batch, H, L, S); its broadcast dims stay stride-0 views, so a key-padding
mask (B, 1, 1, S) is never expanded. float16 and bfloat16 compute in float32. An additive
mask's gradient is summed over those same broadcast dims inside the backward
kernel (dS = P o (dP - D), never stored as a full (..., L, S) array) and
then over any other dims it was broadcast along.
"""
from __future__ import annotations

import numpy as np

from ..dtypes import BFLOAT16_NP as _BF16

# float16 and bfloat16: computed in float32 and rounded back.
_REDUCED = tuple(d for d in (np.dtype(np.float16), _BF16) if d is not None)

__all__ = ["sdpa_forward", "sdpa_backward", "sdpa_dropout_mask"]


def _kernels():
    from .._C import cpu  # imported on first use: numpy-only code never needs it
    return cpu


def _work(x):
    x = np.asarray(x)
    if x.dtype in _REDUCED:
        x = x.astype(np.float32)
    if x.ndim and x.shape[-1] > 1 and x.strides[-1] != x.itemsize:
        x = np.ascontiguousarray(x)
    return x


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _layout(q, k, v):
    """(batch shape, output heads): how q, k, v broadcast."""
    batch = np.broadcast_shapes(q.shape[:-3], k.shape[:-3], v.shape[:-3])
    hq, hk = q.shape[-3], k.shape[-3]
    heads = hk if (hq == 1 and hk > 1) else hq
    return batch, heads


def _as4(x, batch, heads, grouped):
    """x (*b, H, rows, dim) as a 4-D (B, H', rows, dim) view of its broadcast to batch."""
    h = x.shape[-3] if grouped else heads
    x = np.broadcast_to(x, batch + (h,) + x.shape[-2:])
    return x.reshape((_numel(batch),) + x.shape[-3:])


def _mask4(mask, batch, heads, length, keys):
    if mask is None:
        return None
    m = _work(mask)
    while m.ndim < 3:
        m = m[None]
    if m.shape[-1] != keys:  # broadcast along the keys: give it its own key dim
        m = np.ascontiguousarray(np.broadcast_to(m, m.shape[:-1] + (keys,)))
    lead = m.shape[:-3]
    if all(d == 1 for d in lead):
        return m.reshape((1,) + m.shape[-3:])
    m = np.broadcast_to(m, batch + m.shape[-3:])
    return m.reshape((_numel(batch),) + m.shape[-3:])


def _prepare(q, k, v, mask):
    q, k, v = _work(q), _work(k), _work(v)
    batch, heads = _layout(q, k, v)
    # k, v keep their own head count (the kernel maps query head h to h // (Hq / Hk));
    # a single-head q is broadcast to the output heads.
    q4 = _as4(q, batch, heads, False)
    k4, v4 = _as4(k, batch, heads, True), _as4(v, batch, heads, True)
    m4 = _mask4(mask, batch, heads, q.shape[-2], k.shape[-2])
    if m4 is not None and m4.dtype != np.bool_:
        m4 = m4.astype(q4.dtype, copy=False)
    return q4, k4, v4, m4, batch, heads


def sdpa_forward(q, k, v, mask, dropout_p, is_causal, scale, seed):
    """(out (*batch, H, L, Ev), lse (B, H, L)): softmax(scale q k^T + mask) v, with dropout
    on the weights when ``dropout_p`` > 0 (keep mask from ``seed``)."""
    q4, k4, v4, m4, batch, heads = _prepare(q, k, v, mask)
    out, lse = _kernels().sdpa_forward(q4, k4, v4, m4, bool(is_causal), float(scale),
                                       float(dropout_p), int(seed))
    out = out.reshape(batch + out.shape[1:])
    return out.astype(np.asarray(q).dtype, copy=False), lse


def _sum_to(x, shape):
    """x summed over the dims it was broadcast along to come from ``shape``."""
    extra = x.ndim - len(shape)
    if extra:
        x = x.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, d in enumerate(shape) if d == 1 and x.shape[i] != 1)
    return x.sum(axis=axes, keepdims=True) if axes else x


def _mask_grad(dm4, mask, batch):
    """The additive mask's gradient, of its shape and dtype, from the kernel's
    (Bm, Hm, Lm, S) sums (a dim is 1 where the mask view does not step along it)."""
    m = np.asarray(mask)
    shape3 = (1,) * max(0, 3 - m.ndim) + m.shape
    if all(d == 1 for d in shape3[:-3]):  # _mask4 gave (1, *shape3[-3:])
        g = _sum_to(dm4.reshape(dm4.shape[1:]), shape3[-3:])
    else:  # _mask4 gave the mask broadcast to batch, flattened: dm4 has every batch row
        g = _sum_to(dm4.reshape(batch + dm4.shape[1:]), shape3)
    return g.reshape(m.shape).astype(m.dtype, copy=False)


def sdpa_backward(g, q, k, v, mask, out, lse, dropout_p, is_causal, scale, seed,
                  mask_grad=False):
    """(dq, dk, dv, dmask), each of its input's shape and dtype; dmask (the additive
    mask's gradient) is None unless ``mask_grad``."""
    if mask_grad:  # its own strides must be 0 only along dims it broadcasts by shape
        mask = np.ascontiguousarray(mask)
    q4, k4, v4, m4, batch, heads = _prepare(q, k, v, mask)
    dt = q4.dtype
    b = q4.shape[0]
    out4 = np.ascontiguousarray(np.asarray(out, dtype=dt).reshape(b, heads, *out.shape[-2:]))
    g4 = np.ascontiguousarray(np.asarray(g, dtype=dt).reshape(out4.shape))
    dq, dk, dv, dm4 = _kernels().sdpa_backward(q4, k4, v4, m4, out4, g4,
                                               np.ascontiguousarray(lse), bool(is_causal),
                                               float(scale), float(dropout_p), int(seed),
                                               bool(mask_grad))
    dq = _sum_to(dq.reshape(batch + dq.shape[1:]), q.shape)
    dk = _sum_to(dk.reshape(batch + dk.shape[1:]), k.shape)
    dv = _sum_to(dv.reshape(batch + dv.shape[1:]), v.shape)
    dmask = None if dm4 is None else _mask_grad(dm4, mask, batch)
    return (dq.astype(q.dtype, copy=False), dk.astype(k.dtype, copy=False),
            dv.astype(v.dtype, copy=False), dmask)


def sdpa_dropout_mask(seed, b, h, length, keys, dropout_p):
    """The (b, h, L, S) bool keep mask the kernels use for ``seed`` (for tests)."""
    return _kernels().sdpa_dropout_mask(int(seed), int(b), int(h), int(length), int(keys),
                                        float(dropout_p))
