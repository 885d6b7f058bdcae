"""GPT: a decoder-only Transformer language model (Radford et al. 2018, 2019).

Tokens x_1..x_T are embedded, given positions, and passed through n_layer
pre-norm blocks; a final LayerNorm and a linear head (tied to the token
embedding) give the logits of the next token at every position:

    h_0 = E[x] (+ P[positions])
    h_l = h_{l-1} + Attn(LN1(h_{l-1}))          causal: position t sees 1..t
    h_l = h_l + MLP(LN2(h_l)),   MLP(u) = W_2 GELU(W_1 u),  4 x d_model wide
    logits = LN_f(h_L) E^T

Attention heads run in the fused kernel (``F.scaled_dot_product_attention``,
``is_causal``). ``n_kv_head`` < ``n_head`` gives grouped-query attention
(Ainslie et al. 2023): groups of query heads share one key/value head, which
shrinks the KV cache. ``positions`` picks learned (GPT-2), sinusoidal or
rotary (RoPE) positions.

Generation appends one token at a time. Without a cache every step reruns
the whole context; with a ``KVCache`` each layer keeps the keys and values of
the tokens seen so far, so a step computes only the new token's row: O(T)
work per token instead of O(T^2). Both give the same tokens (tested).
Initialization as GPT-2: N(0, 0.02) weights, zero biases, and the residual
output projections scaled by 1/sqrt(2 n_layer).
"""
from __future__ import annotations

import math

import numpy as np

from .. import nn
from ..autograd.grad_mode import no_grad
from ..nn import functional as F
from ..ops.creation import from_numpy, tensor
from ..ops.shape import cat
from ..tensor import Tensor
from . import gpt_decode
from .sampling import check_sampling, sample_next

__all__ = ["GPT", "KVCache", "CausalSelfAttention", "GPTBlock"]

POSITIONS = ("learned", "sinusoidal", "rotary")


class KVCache:
    """Per-layer keys and values of the tokens processed so far, (B, n_kv_head, S,
    head_dim) each; ``len(cache)`` is S. Pass the same cache to successive
    ``GPT.forward`` calls; it grows in place.

    With a ``capacity`` (``GPT.new_cache`` passes ``block_size``) and keys that
    need no gradient (generation), each layer's keys and values are written into
    buffers of ``capacity`` steps allocated once, and the steps so far are views
    of them: a decode step copies only its own row, not the whole cache (which
    concatenation would, O(S) per token). Otherwise the cache concatenates, and
    gradients flow through it."""

    def __init__(self, n_layer: int, capacity: int | None = None):
        self.layers: list = [None] * n_layer
        self.capacity = capacity
        self._buffers: list = [None] * n_layer

    def __len__(self) -> int:
        last = self.layers[-1]      # the last layer is updated last: complete steps only
        return 0 if last is None else last[0].shape[2]

    def update(self, layer: int, k: Tensor, v: Tensor) -> tuple:
        """Appends the new steps' k, v (B, Hkv, T, D); returns all of them."""
        old = self.layers[layer]
        past = 0 if old is None else old[0].shape[2]
        end = past + k.shape[2]
        needs_grad = k.requires_grad or v.requires_grad or (
            old is not None and (old[0].requires_grad or old[1].requires_grad))
        if self.capacity is None or end > self.capacity or needs_grad:
            if old is not None:
                k, v = cat([old[0], k], 2), cat([old[1], v], 2)
            self.layers[layer] = (k, v)
            self._buffers[layer] = None
            return k, v
        be = k.device.backend
        buffers = self._buffers[layer]
        if buffers is None:
            shape = (k.shape[0], k.shape[1], self.capacity)
            buffers = (be.empty(shape + (k.shape[3],), k.data.dtype),
                       be.empty(shape + (v.shape[3],), v.data.dtype))
            if old is not None:     # the cache grew by concatenation so far
                for buf, x in zip(buffers, old):
                    be.setitem(buf, (slice(None), slice(None), slice(0, past)), x.data)
            self._buffers[layer] = buffers
        new_steps = (slice(None), slice(None), slice(past, end))
        be.setitem(buffers[0], new_steps, k.data)
        be.setitem(buffers[1], new_steps, v.data)
        steps = (slice(None), slice(None), slice(0, end))
        k = Tensor._make(be.getitem(buffers[0], steps), k.device, False)
        v = Tensor._make(be.getitem(buffers[1], steps), v.device, False)
        self.layers[layer] = (k, v)
        return k, v


class CausalSelfAttention(nn.Module):
    """Masked multi-head self-attention with a fused q/k/v projection ``qkv`` and an
    output projection ``proj``; optional rotary positions and grouped KV heads."""

    def __init__(self, d_model: int, n_head: int, n_kv_head: int | None = None,
                 dropout: float = 0.0, bias: bool = True, rotary=None):
        super().__init__()
        n_kv_head = n_head if n_kv_head is None else n_kv_head
        if d_model % n_head or n_head % n_kv_head:
            raise ValueError(f"CausalSelfAttention: d_model ({d_model}) must be divisible by "
                             f"n_head ({n_head}), and n_head by n_kv_head ({n_kv_head})")
        self.n_head, self.n_kv_head, self.head_dim = n_head, n_kv_head, d_model // n_head
        self.qkv = nn.Linear(d_model, d_model + 2 * n_kv_head * self.head_dim, bias=bias)
        self.proj = nn.Linear(d_model, d_model, bias=bias)
        self.dropout = dropout
        self.rotary = rotary
        # Prefix-tuning (nf.peft): a module whose forward(B) gives learned keys and values
        # (B, n_kv_head, P, head_dim) that every query sees, ahead of the tokens' own.
        self.prefix = None

    def forward(self, x: Tensor, cache: KVCache | None = None, layer: int = 0,
                past: int = 0) -> Tensor:
        """x (B, T, d_model) at positions past .. past + T - 1; with a cache, its
        first ``past`` steps hold this layer's earlier keys and values."""
        b, t, d = x.shape
        q, k, v = self._heads(x, past)
        if cache is not None:
            k, v = cache.update(layer, k, v)
        seen = past     # keys before this call's first token: cached steps, then prefix ones
        if self.prefix is not None:
            pk, pv = self.prefix(b)
            k, v = cat([pk, k], 2), cat([pv, v], 2)
            seen += pk.shape[2]
        p = self.dropout if self.training else 0.0
        gqa = self.n_kv_head != self.n_head
        if seen == 0:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True,
                                               enable_gqa=gqa)
        else:
            # New token i (at position past + i) sees keys 0 .. seen + i (the prefix keys
            # come first, always visible): the causal mask aligned to the bottom-right
            # corner (all keys when t == 1).
            mask = None
            if t > 1:
                allowed = np.arange(seen + t)[None, :] <= seen + np.arange(t)[:, None]
                mask = from_numpy(allowed).to(x.device)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p,
                                               enable_gqa=gqa)
        # (B, H, T, hd) -> (B, T, H hd); for one token the memory order already matches
        y = y.reshape(b, t, d) if t == 1 else y.transpose(1, 2).reshape(b, t, d)
        return self.proj(y)

    def _heads(self, x: Tensor, past: int) -> tuple:
        """q (B, n_head, T, hd), k and v (B, n_kv_head, T, hd) of x (B, T, d_model) at
        positions past .. past + T - 1 (rotated when the positions are rotary)."""
        b, t, d = x.shape
        hd, kv = self.head_dim, self.n_kv_head * self.head_dim
        qkv = self.qkv(x)
        if self.n_kv_head == self.n_head:   # one reshape: (B, T, 3, H, hd) -> (3, B, H, T, hd)
            q, k, v = qkv.reshape(b, t, 3, self.n_head, hd).permute(2, 0, 3, 1, 4).unbind(0)
            if self.rotary is not None:
                q, k = self.rotary(q, past), self.rotary(k, past)
            return q, k, v
        q = qkv[..., :d].reshape(b, t, self.n_head, hd).transpose(1, 2)
        k = qkv[..., d:d + kv].reshape(b, t, self.n_kv_head, hd).transpose(1, 2)
        v = qkv[..., d + kv:].reshape(b, t, self.n_kv_head, hd).transpose(1, 2)
        if self.rotary is not None:
            q, k = self.rotary(q, past), self.rotary(k, past)
        return q, k, v

    @no_grad()
    def attention_weights(self, x: Tensor) -> Tensor:
        """The causal attention weights (B, n_head, T, T) of input x (B, T, d_model),
        formed explicitly (the fused forward never stores them): for plotting."""
        b, t, _ = x.shape
        hd = self.head_dim
        q, k, _ = self._heads(x, 0)
        if self.n_kv_head != self.n_head:     # each KV head serves a group of query heads
            g = self.n_head // self.n_kv_head
            k = k.unsqueeze(2).expand(b, self.n_kv_head, g, t, hd).reshape(b, self.n_head, t, hd)
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
        future = from_numpy(np.triu(np.ones((t, t), dtype=bool), 1)).to(x.device)
        return F.softmax(scores.masked_fill(future, -math.inf), dim=-1)


class GPTBlock(nn.Module):
    """Pre-norm Transformer decoder block without cross-attention."""

    def __init__(self, d_model: int, n_head: int, n_kv_head: int | None, dropout: float,
                 bias: bool, rotary):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model, bias=bias)
        self.attn = CausalSelfAttention(d_model, n_head, n_kv_head, dropout, bias, rotary)
        self.ln2 = nn.LayerNorm(d_model, bias=bias)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model, bias=bias), nn.GELU(),
                                 nn.Linear(4 * d_model, d_model, bias=bias))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, cache: KVCache | None = None, layer: int = 0,
                past: int = 0) -> Tensor:
        x = x + self.drop(self.attn(self.ln1(x), cache, layer, past))
        return x + self.drop(self.mlp(self.ln2(x)))


class GPT(nn.Module):
    """``GPT(vocab_size, block_size=256, n_layer=6, n_head=6, d_model=384,
    dropout=0.0, bias=True, positions="learned", n_kv_head=None,
    tie_weights=True)``. ``forward(idx (B, T) int64, kv_cache=None)`` -> logits
    (B, T, vocab_size)."""

    def __init__(self, vocab_size: int, block_size: int = 256, n_layer: int = 6,
                 n_head: int = 6, d_model: int = 384, dropout: float = 0.0, bias: bool = True,
                 positions: str = "learned", n_kv_head: int | None = None,
                 tie_weights: bool = True):
        super().__init__()
        if positions not in POSITIONS:
            raise ValueError(f"GPT: positions must be one of {POSITIONS}, got {positions!r}")
        self.vocab_size, self.block_size, self.n_layer = vocab_size, block_size, n_layer
        self.positions = positions
        self.tok_emb = nn.Embedding(vocab_size, d_model)
        rotary = None
        if positions == "learned":
            self.pos = nn.LearnedPositionalEmbedding(block_size, d_model)
        elif positions == "sinusoidal":
            self.pos = nn.SinusoidalPositionalEncoding(d_model, block_size)
        else:
            self.pos = None
            rotary = nn.RotaryEmbedding(d_model // n_head, block_size)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList([GPTBlock(d_model, n_head, n_kv_head, dropout, bias, rotary)
                                     for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(d_model, bias=bias)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        self._init_weights()
        if tie_weights:
            self.head.weight = self.tok_emb.weight

    def _init_weights(self) -> None:
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif p.ndim == 2:
                std = 0.02
                if name.endswith("attn.proj.weight") or name.endswith("mlp.2.weight"):
                    std /= math.sqrt(2 * self.n_layer)   # residual branches (GPT-2)
                nn.init.normal_(p, 0.0, std)

    def forward(self, idx: Tensor, kv_cache: KVCache | None = None) -> Tensor:
        if idx.ndim != 2:
            raise ValueError(f"GPT: expected token ids of shape (B, T), got {tuple(idx.shape)}")
        past = 0 if kv_cache is None else len(kv_cache)
        if past + idx.shape[1] > self.block_size:
            raise ValueError(f"GPT: {past} cached + {idx.shape[1]} new tokens exceed "
                             f"block_size {self.block_size}")
        return self.forward_embeds(self.tok_emb(idx), kv_cache)

    def forward_embeds(self, x: Tensor, kv_cache: KVCache | None = None) -> Tensor:
        """Logits (B, T, vocab_size) for input embeddings x (B, T, d_model) given in
        place of token ids (prompt-tuning in nf.peft prepends learned ones)."""
        past = 0 if kv_cache is None else len(kv_cache)
        if x.ndim != 3 or past + x.shape[1] > self.block_size:
            raise ValueError(f"GPT.forward_embeds: expected embeddings (B, T, d_model) with "
                             f"{past} cached + T <= block_size {self.block_size}, got "
                             f"{tuple(x.shape)}")
        if self.pos is not None:
            x = self.pos(x, past)
        x = self.drop(x)
        for i, block in enumerate(self.blocks):
            x = block(x, kv_cache, i, past)
        return self.head(self.ln_f(x))

    @no_grad()
    def attention_maps(self, idx: Tensor) -> list:
        """Per layer, the attention weights (B, n_head, T, T) for token ids idx (B, T)."""
        x = self.tok_emb(idx)
        if self.pos is not None:
            x = self.pos(x)
        maps = []
        for block in self.blocks:
            maps.append(block.attn.attention_weights(block.ln1(x)))
            x = block(x)
        return maps

    def new_cache(self) -> KVCache:
        return KVCache(self.n_layer, capacity=self.block_size)

    @no_grad()
    def generate(self, prompt_ids, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None,
                 use_cache: bool = True, generator=None) -> list:
        """``max_new_tokens`` ids after ``prompt_ids`` (a non-empty list of ints),
        sampled at ``temperature`` (0: greedy) from the ``top_k`` most likely or
        the ``top_p`` nucleus. The context is the last ``block_size`` tokens; once
        the sequence is longer than that, each step recomputes that window (the
        cache cannot slide: the positions of the cached keys would shift)."""
        ids = list(prompt_ids)
        if not ids:
            raise ValueError("GPT.generate: the prompt must hold at least one token")
        check_sampling("GPT.generate", temperature, top_k, top_p)
        was_training = self.training
        self.eval()
        cache = self.new_cache() if use_cache else None
        # one token at a time on the backend arrays when the network is plain
        # (models/gpt_decode.py): the same logits without per-op autograd overhead
        fast = use_cache and gpt_decode.plain(self)
        new = []
        window = ids[-self.block_size:]
        device = next(iter(self.parameters())).device  # self may be a wrapper (nf.peft)
        logits = self(tensor([window], device=device), cache)[:, -1]
        for _ in range(max_new_tokens):
            nxt = sample_next(logits[0].numpy(force=True), temperature, top_k, top_p, generator)
            new.append(nxt)
            ids.append(nxt)
            if cache is not None and len(cache) < self.block_size:
                logits = (gpt_decode.decode_step(self, [nxt], cache) if fast
                          else self(tensor([[nxt]], device=device), cache)[:, -1])
            else:
                cache = self.new_cache() if use_cache else None
                logits = self(tensor([ids[-self.block_size:]], device=device), cache)[:, -1]
        self.train(was_training)
        return new
