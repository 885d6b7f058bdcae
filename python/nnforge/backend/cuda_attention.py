"""CUDA scaled dot-product attention over nnforge._C.cuda (csrc/cuda/attention*.cu),
the CPU backend's ``sdpa_forward`` / ``sdpa_backward`` / ``sdpa_dropout_mask``
with the same arguments, layouts and conventions (see cpu_attention.py):
q (*batch_q, Hq, L, E), k (*batch_k, Hk, S, E), v (*batch_v, Hk, S, Ev) with
broadcasting batch dims, grouped-query heads, a bool or additive mask that
broadcasts to (*batch, H, L, S) and stays a stride-0 view where it broadcasts,
top-left causal, masked rows -> 0 with lse +inf, and the same dropout keep
mask for one seed. bfloat16 and float16 stay in their dtype (the kernels
compute in float32); lse is float32 (float64 for float64 inputs).
"""
from __future__ import annotations

import numpy as np

from .cuda_core import _cuda, _device_array, from_host
from .cuda_reduce import sum as _sum
from .cuda_shape import broadcast_to, expand_dims, reshape

__all__ = ["sdpa_forward", "sdpa_backward", "sdpa_dropout_mask"]


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _work(x, op):
    x = _device_array(x, op)
    if x.ndim and x.shape[-1] > 1 and x.element_strides[-1] != 1:
        x = _cuda().contiguous(x)
    return x


def _as(x, dtype_name):
    return x if x.dtype_name == dtype_name else _cuda().astype(x, dtype_name)


def _layout(q, k, v):
    batch = tuple(np.broadcast_shapes(q.shape[:-3], k.shape[:-3], v.shape[:-3]))
    hq, hk = q.shape[-3], k.shape[-3]
    heads = hk if (hq == 1 and hk > 1) else hq
    return batch, heads


def _as4(x, batch, heads, grouped):
    h = x.shape[-3] if grouped else heads
    x = broadcast_to(x, batch + (h,) + tuple(x.shape[-2:]))
    return reshape(x, (_numel(batch),) + tuple(x.shape[-3:]))


def _mask4(mask, batch, keys, op):
    if mask is None:
        return None
    m = _work(mask, op)
    while m.ndim < 3:
        m = expand_dims(m, 0)
    if m.shape[-1] != keys:  # broadcast along the keys: give it its own key dim
        m = _cuda().contiguous(broadcast_to(m, tuple(m.shape[:-1]) + (keys,)))
    lead = m.shape[:-3]
    if all(d == 1 for d in lead):
        return reshape(m, (1,) + tuple(m.shape[-3:]))
    m = broadcast_to(m, batch + tuple(m.shape[-3:]))
    return reshape(m, (_numel(batch),) + tuple(m.shape[-3:]))


def _prepare(q, k, v, mask, op):
    q, k, v = _work(q, op), _work(k, op), _work(v, op)
    batch, heads = _layout(q, k, v)
    q4 = _as4(q, batch, heads, False)
    k4, v4 = _as4(k, batch, heads, True), _as4(v, batch, heads, True)
    m4 = _mask4(mask, batch, k.shape[-2], op)
    if m4 is not None and m4.dtype_name != "bool":
        m4 = _as(m4, q4.dtype_name)
    return q4, k4, v4, m4, batch, heads


def sdpa_forward(q, k, v, mask, dropout_p, is_causal, scale, seed):
    """(out (*batch, H, L, Ev), lse (B, H, L)): softmax(scale q k^T + mask) v, with dropout
    on the weights when ``dropout_p`` > 0 (keep mask from ``seed``)."""
    q4, k4, v4, m4, batch, heads = _prepare(q, k, v, mask, "sdpa_forward")
    out, lse = _cuda().sdpa_forward(q4, k4, v4, m4, bool(is_causal), float(scale),
                                    float(dropout_p), int(seed))
    out = reshape(out, batch + tuple(out.shape[1:]))
    return _as(out, q.dtype_name), lse


def _sum_to(x, shape):
    """x summed over the dims it was broadcast along to come from ``shape``."""
    name = x.dtype_name
    if name in ("bfloat16", "float16"):  # sum in float32, as the kernels accumulate
        x = _cuda().astype(x, "float32")
    extra = x.ndim - len(shape)
    if extra:
        x = _sum(x, axis=tuple(range(extra)))
    axes = tuple(i for i, d in enumerate(shape) if d == 1 and x.shape[i] != 1)
    if axes:
        x = _sum(x, axis=axes, keepdims=True)
    return _as(x, name)


def _mask_grad(dm4, mask, batch):
    """The additive mask's gradient, of its shape and dtype, from the kernel's
    (Bm, Hm, Lm, S) sums (a dim is 1 where the mask view does not step along it)."""
    shape3 = (1,) * max(0, 3 - mask.ndim) + tuple(mask.shape)
    if all(d == 1 for d in shape3[:-3]):
        g = _sum_to(reshape(dm4, dm4.shape[1:]), shape3[-3:])
    else:
        g = _sum_to(reshape(dm4, batch + tuple(dm4.shape[1:])), shape3)
    return _as(reshape(g, mask.shape), mask.dtype_name)


def sdpa_backward(g, q, k, v, mask, out, lse, dropout_p, is_causal, scale, seed,
                  mask_grad=False):
    """(dq, dk, dv, dmask), each of its input's shape and dtype; dmask (the additive
    mask's gradient) is None unless ``mask_grad``."""
    op = "sdpa_backward"
    if mask_grad:  # its own strides must be 0 only along dims it broadcasts by shape
        mask = _cuda().contiguous(_device_array(mask, op))
    q4, k4, v4, m4, batch, heads = _prepare(q, k, v, mask, op)
    dt = q4.dtype_name
    b = q4.shape[0]
    shape4 = (b, heads) + tuple(out.shape[-2:])
    out4 = _cuda().contiguous(_as(reshape(_device_array(out, op), shape4), dt))
    g4 = _cuda().contiguous(_as(reshape(_device_array(g, op), shape4), dt))
    dq, dk, dv, dm4 = _cuda().sdpa_backward(q4, k4, v4, m4, out4, g4, _cuda().contiguous(lse),
                                            bool(is_causal), float(scale), float(dropout_p),
                                            int(seed), bool(mask_grad))
    dq = _sum_to(reshape(dq, batch + tuple(dq.shape[1:])), q.shape)
    dk = _sum_to(reshape(dk, batch + tuple(dk.shape[1:])), k.shape)
    dv = _sum_to(reshape(dv, batch + tuple(dv.shape[1:])), v.shape)
    dmask = None if dm4 is None else _mask_grad(dm4, mask, batch)
    return (_as(dq, q.dtype_name), _as(dk, k.dtype_name), _as(dv, v.dtype_name), dmask)


def sdpa_dropout_mask(seed, b, h, length, keys, dropout_p):
    """The (b, h, L, S) bool keep mask the kernels use for ``seed`` (for tests): the
    CPU kernel's, since both devices hash (seed, row, key) the same way."""
    from .. import _C
    return from_host(_C.cpu.sdpa_dropout_mask(int(seed), int(b), int(h), int(length), int(keys),
                                              float(dropout_p)))
