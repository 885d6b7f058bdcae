"""GPT decoding on backend arrays: one new token per sequence through the
network without autograd or module dispatch, for ``GPT.generate``.

Why: a decode step multiplies a single row by every weight matrix, so its
arithmetic is small (6 layers of d_model 384: ~10 MFLOP, well under a
millisecond), while the module path runs ~17 autograd ops per layer, each
with 10-20 us of Python (argument checks, dtype promotion, graph
bookkeeping) that a no-grad step does not need. Here the same weights go
straight to the backend's kernels, 14 calls per layer:

    h = LN1(x);  q, k, v = split(h W_qkv^T + b)     (rotary positions on q, k)
    K, V = cache.update(k, v);  a = softmax(q K^T / sqrt(hd)) V    (decode kernel)
    x = x + a W_o^T + b;  x = x + GELU(LN2(x) W_1^T + b_1) W_2^T + b_2
    logits = LN_f(x) E^T

which is ``GPTBlock.forward`` for one token in eval mode, so the logits equal
the module path's (tested). The cache is the same ``KVCache`` the module path
fills (the prompt goes through the module path, then each step here).

Only a plain network may take this path: ``plain(model)`` checks that every
layer is exactly the class the formula assumes (a LoRA- or adapter-wrapped
Linear, a prefix, a forward hook or training mode would be skipped silently
otherwise) and falls back to the module path when it is not.
"""
from __future__ import annotations

import math

from .. import nn
from ..tensor import Tensor

__all__ = ["plain", "decode_step"]


def plain(model) -> bool:
    """True when ``decode_step`` computes exactly what ``model.forward`` would."""
    from .gpt import GPT, CausalSelfAttention, GPTBlock
    if type(model) is not GPT or model.training:    # a subclass or wrapper may differ
        return False
    for m in model.modules():
        if m._forward_hooks or m._forward_pre_hooks:
            return False
    if type(model.ln_f) is not nn.LayerNorm or type(model.head) is not nn.Linear:
        return False
    if model.pos is not None and type(model.pos) not in (nn.LearnedPositionalEmbedding,
                                                          nn.SinusoidalPositionalEncoding):
        return False
    for blk in model.blocks:
        attn, mlp = blk.attn, blk.mlp
        if (type(blk) is not GPTBlock or type(attn) is not CausalSelfAttention
                or attn.prefix is not None or type(blk.ln1) is not nn.LayerNorm
                or type(blk.ln2) is not nn.LayerNorm or type(attn.qkv) is not nn.Linear
                or type(attn.proj) is not nn.Linear or type(mlp) is not nn.Sequential
                or len(mlp) != 3 or type(mlp[0]) is not nn.Linear
                or type(mlp[1]) is not nn.GELU or type(mlp[2]) is not nn.Linear):
            return False
        if attn.rotary is not None and type(attn.rotary) is not nn.RotaryEmbedding:
            return False
    return True


def _layer_norm(be, ln, x):
    w = None if ln.weight is None else ln.weight.data
    b = None if getattr(ln, "bias", None) is None else ln.bias.data
    return be.layer_norm_forward(x, 1, w, b, ln.eps)[0]


def _linear(be, lin, x):
    return be.linear(x, lin.weight.data, None if lin.bias is None else lin.bias.data)


def decode_step(model, ids, cache) -> Tensor:
    """Logits (B, vocab_size) for the next token after ``ids`` (B ints: one new
    token per sequence), whose keys and values are appended to ``cache``."""
    emb = model.tok_emb.weight
    device, be = emb.device, emb.device.backend
    past = len(cache)
    x = be.take(emb.data, be.asarray(ids, dtype="int64"), 0)           # (B, d)
    if isinstance(model.pos, nn.LearnedPositionalEmbedding):
        x = be.add(x, be.getitem(model.pos.weight.data, past))
    elif isinstance(model.pos, nn.SinusoidalPositionalEncoding):
        x = be.add(x, be.astype(be.getitem(model.pos.pe.data, past), x.dtype))
    b, d = x.shape
    for i, blk in enumerate(model.blocks):
        attn = blk.attn
        hq, hk, hd = attn.n_head, attn.n_kv_head, attn.head_dim
        qkv = _linear(be, attn.qkv, _layer_norm(be, blk.ln1, x))      # (B, d + 2 hk hd)
        kv = hk * hd
        q = be.reshape(be.getitem(qkv, (slice(None), slice(0, d))), (b, hq, 1, hd))
        k = be.reshape(be.getitem(qkv, (slice(None), slice(d, d + kv))), (b, hk, 1, hd))
        v = be.reshape(be.getitem(qkv, (slice(None), slice(d + kv, None))), (b, hk, 1, hd))
        q, k, v = (Tensor._make(a, device, False) for a in (q, k, v))
        if attn.rotary is not None:
            q, k = attn.rotary(q, past), attn.rotary(k, past)
        keys, values = cache.update(i, k, v)
        y, _ = be.sdpa_forward(q.data, keys.data, values.data, None, 0.0, False,
                               1.0 / math.sqrt(hd), 0)
        x = be.add(x, _linear(be, attn.proj, be.reshape(y, (b, d))))
        mlp = blk.mlp
        h = be.gelu(_linear(be, mlp[0], _layer_norm(be, blk.ln2, x)), mlp[1].approximate)
        x = be.add(x, _linear(be, mlp[2], h))
    return Tensor._make(_linear(be, model.head, _layer_norm(be, model.ln_f, x)), device, False)
