"""Sequence-to-sequence with attention (Sutskever et al. 2014; Bahdanau et al.
2015; Luong et al. 2015).

An encoder reads the source x_1..x_S into states h_1..h_S (here a
bidirectional RNN, so h_j sees the whole sentence around x_j); a decoder
writes the target one token at a time, each step conditioned on the token
before it and on a *context* vector c_t, a weighted average of the encoder
states:

    a_tj = softmax_j(score(s, h_j))      (padding positions get weight 0)
    c_t  = sum_j a_tj h_j

Scores:
    additive (Bahdanau)   score = v^T tanh(W_s s_{t-1} + W_h h_j)
                          c_t feeds the RNN step: s_t = cell([E y_{t-1}; c_t], s_{t-1})
    dot (Luong)           score = s_t^T h_j
    general (Luong)       score = s_t^T W h_j
                          after the RNN step: s~_t = tanh(W_c [c_t; s_t]) predicts y_t
    none                  no attention: the decoder sees only the encoder's final state

Training feeds the true previous token with probability ``teacher_forcing``
(else the model's own prediction, so it learns to recover from its errors);
decoding is greedy or beam search. The attention weights of a decoded
sequence are returned for plotting (``nf.viz.plot_attention``).
"""
from __future__ import annotations

import math

import numpy as np

from .. import nn
from ..autograd.grad_mode import no_grad
from ..nn import functional as F
from ..ops.creation import from_numpy, full, zeros
from ..ops.shape import cat, stack
from ..random import _rng
from ..tensor import Tensor

_CELLS = {"gru": ("GRU", "GRUCell"), "lstm": ("LSTM", "LSTMCell"), "rnn": ("RNN", "RNNCell")}
ATTENTIONS = ("additive", "dot", "general", "none")


class Attention(nn.Module):
    """score(query (B, Hq), keys (B, S, Hk)) -> weights (B, S) over the unmasked keys."""

    def __init__(self, kind: str, query_size: int, key_size: int, attn_size: int | None = None):
        super().__init__()
        if kind not in ATTENTIONS[:3]:
            raise ValueError(f"Attention: kind must be 'additive', 'dot' or 'general', got {kind!r}")
        self.kind = kind
        if kind == "additive":
            attn_size = attn_size or query_size
            self.query_proj = nn.Linear(query_size, attn_size, bias=False)
            self.key_proj = nn.Linear(key_size, attn_size)
            self.v = nn.Linear(attn_size, 1, bias=False)
        elif kind == "general":
            self.key_proj = nn.Linear(key_size, query_size, bias=False)
        elif key_size != query_size:
            raise ValueError(f"Attention: 'dot' needs keys and queries of one size, got "
                             f"{key_size} and {query_size}")

    def forward(self, query: Tensor, keys: Tensor, mask: Tensor | None) -> Tensor:
        if self.kind == "additive":
            e = self.v((self.query_proj(query).unsqueeze(1) + self.key_proj(keys)).tanh())
            scores = e.squeeze(-1)
        else:
            k = self.key_proj(keys) if self.kind == "general" else keys
            scores = (k @ query.unsqueeze(-1)).squeeze(-1)
        if mask is not None:
            scores = scores.masked_fill(~mask, -math.inf)
        return F.softmax(scores, dim=-1)


class Seq2Seq(nn.Module):
    """``Seq2Seq(src_vocab, tgt_vocab, embedding_dim=64, hidden_size=128,
    cell="gru", attention="additive", bos_id=1, eos_id=2, pad_id=0)``.

    - ``forward(src, src_lengths, tgt_in, teacher_forcing=1.0)`` -> logits
      (B, T, tgt_vocab) for the target positions, where ``tgt_in`` (B, T)
      starts with BOS (the usual "shifted right" target);
    - ``greedy(src, src_lengths, max_len)`` and ``beam_search(src, src_length,
      beam=4, max_len)`` decode; both return token ids and attention weights.
    """

    def __init__(self, src_vocab: int, tgt_vocab: int, embedding_dim: int = 64,
                 hidden_size: int = 128, cell: str = "gru", attention: str = "additive",
                 bos_id: int = 1, eos_id: int = 2, pad_id: int = 0):
        super().__init__()
        if cell not in _CELLS:
            raise ValueError(f"Seq2Seq: cell must be one of {sorted(_CELLS)}, got {cell!r}")
        if attention not in ATTENTIONS:
            raise ValueError(f"Seq2Seq: attention must be one of {ATTENTIONS}, got {attention!r}")
        layer, cell_cls = (getattr(nn, name) for name in _CELLS[cell])
        self.cell_kind, self.attention_kind = cell, attention
        self.bos_id, self.eos_id, self.pad_id = bos_id, eos_id, pad_id
        self.hidden_size = hidden_size
        self.src_embed = nn.Embedding(src_vocab, embedding_dim, padding_idx=pad_id)
        self.encoder = layer(embedding_dim, hidden_size, batch_first=True, bidirectional=True)
        self.bridge = nn.Linear(2 * hidden_size, hidden_size)  # [h_fwd; h_bwd] -> s_0
        self.tgt_embed = nn.Embedding(tgt_vocab, embedding_dim, padding_idx=pad_id)
        key_size = 2 * hidden_size
        step_in = embedding_dim + (key_size if attention == "additive" else 0)
        self.decoder = cell_cls(step_in, hidden_size)
        self.attention = None
        if attention == "dot":
            self.key_proj = nn.Linear(key_size, hidden_size, bias=False)  # to the query's size
            self.attention = Attention("dot", hidden_size, hidden_size)
        elif attention != "none":
            self.attention = Attention(attention, hidden_size, key_size)
        out_in = hidden_size
        if attention in ("dot", "general"):
            self.combine = nn.Linear(hidden_size + (hidden_size if attention == "dot"
                                                    else key_size), hidden_size)
        self.out = nn.Linear(out_in, tgt_vocab)

    # ---------------------------------------------------------------- encoder
    def encode(self, src: Tensor, src_lengths) -> tuple:
        """(keys (B, S, K), mask (B, S) of real positions, decoder state s_0)."""
        lengths = np.asarray(src_lengths.numpy() if isinstance(src_lengths, Tensor)
                             else src_lengths, dtype=np.int64)
        out, final = self.encoder(self.src_embed(src), lengths=lengths)
        h_n = final[0] if isinstance(final, tuple) else final  # (2, B, H): forward, backward
        s0 = self.bridge(cat([h_n[0], h_n[1]], -1)).tanh()
        state = (s0, zeros(s0.shape, dtype=s0.dtype)) if self.cell_kind == "lstm" else s0
        mask = from_numpy(np.arange(src.shape[1])[None, :] < lengths[:, None])
        keys = self.key_proj(out) if self.attention_kind == "dot" else out
        return keys, mask, state

    # ---------------------------------------------------------------- one decoder step
    def step(self, prev_tokens: Tensor, state, keys: Tensor, mask: Tensor) -> tuple:
        """(logits (B, V), new state, attention weights (B, S) or None)."""
        emb = self.tgt_embed(prev_tokens)
        s_prev = state[0] if isinstance(state, tuple) else state
        weights = None
        if self.attention_kind == "additive":
            weights = self.attention(s_prev, keys, mask)
            context = (weights.unsqueeze(1) @ keys).squeeze(1)
            emb = cat([emb, context], -1)
        state = self.decoder(emb, state)
        s = state[0] if isinstance(state, tuple) else state
        if self.attention_kind in ("dot", "general"):
            weights = self.attention(s, keys, mask)
            context = (weights.unsqueeze(1) @ keys).squeeze(1)
            s = self.combine(cat([context, s], -1)).tanh()
        return self.out(s), state, weights

    def forward(self, src: Tensor, src_lengths, tgt_in: Tensor,
                teacher_forcing: float = 1.0, generator=None) -> Tensor:
        keys, mask, state = self.encode(src, src_lengths)
        rng = _rng(generator)
        logits = []
        prev = tgt_in[:, 0]
        for t in range(tgt_in.shape[1]):
            step_logits, state, _ = self.step(prev, state, keys, mask)
            logits.append(step_logits)
            if t + 1 < tgt_in.shape[1]:
                use_truth = teacher_forcing >= 1.0 or rng.random() < teacher_forcing
                prev = tgt_in[:, t + 1] if use_truth else step_logits.argmax(-1)
        return stack(logits, 1)

    # ---------------------------------------------------------------- decoding
    @no_grad()
    def greedy(self, src: Tensor, src_lengths, max_len: int) -> tuple:
        """(token ids (B, <= max_len) int64 numpy, attention (B, steps, S) numpy or None):
        the most likely token at every step, until every row has written EOS."""
        keys, mask, state = self.encode(src, src_lengths)
        prev = full((src.shape[0],), self.bos_id, dtype=src.dtype)
        tokens, attn = [], []
        done = np.zeros(src.shape[0], dtype=bool)
        for _ in range(max_len):
            logits, state, weights = self.step(prev, state, keys, mask)
            prev = logits.argmax(-1)
            tokens.append(prev.numpy())
            if weights is not None:
                attn.append(weights.numpy())
            done |= tokens[-1] == self.eos_id
            if done.all():
                break
        return np.stack(tokens, 1), (np.stack(attn, 1) if attn else None)

    @no_grad()
    def beam_search(self, src: Tensor, src_length: int, beam: int = 4, max_len: int = 20,
                    length_penalty: float = 0.0) -> tuple:
        """Beam search for one source sequence ``src`` (1, S): (best token ids as a
        list ending with EOS when one was written, attention (steps, S) numpy or
        None). Hypotheses are ranked by log-probability / length ** length_penalty."""
        if src.shape[0] != 1:
            raise ValueError(f"Seq2Seq.beam_search: decodes one sequence at a time, got a batch "
                             f"of {src.shape[0]}")
        keys, mask, state = self.encode(src, [src_length])
        # Each hypothesis: (log-prob, tokens, state, attention rows, finished)
        beams = [(0.0, [], state, [], False)]
        for _ in range(max_len):
            candidates = []
            for logp, toks, st, att, finished in beams:
                if finished:
                    candidates.append((logp, toks, st, att, True))
                    continue
                prev = full((1,), toks[-1] if toks else self.bos_id, dtype=src.dtype)
                logits, new_state, weights = self.step(prev, st, keys, mask)
                log_probs = F.log_softmax(logits, -1)[0].numpy()
                for tok in np.argsort(-log_probs)[:beam]:
                    row = [] if weights is None else [weights[0].numpy()]
                    candidates.append((logp + float(log_probs[tok]), toks + [int(tok)],
                                       new_state, att + row, int(tok) == self.eos_id))

            def score(c):
                return c[0] / (max(len(c[1]), 1) ** length_penalty)
            beams = sorted(candidates, key=score, reverse=True)[:beam]
            if all(b[4] for b in beams):
                break
        best = beams[0]
        return best[1], (np.stack(best[3]) if best[3] else None)
