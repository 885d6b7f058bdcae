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
            raise ValueError(f"Attention: kind must be 'additive', 'dot' or 'general', "
                             f"got {kind!r}")
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

    def prepare(self, keys: Tensor) -> Tensor:
        """The part of the score that depends on the keys alone (W_h h_j + b for
        additive, W h_j for general, h_j for dot): computed once per source
        sequence, not once per decoder step."""
        return keys if self.kind == "dot" else self.key_proj(keys)

    def forward(self, query: Tensor, keys: Tensor, mask: Tensor | None,
                prepared: Tensor | None = None) -> Tensor:
        k = self.prepare(keys) if prepared is None else prepared
        if self.kind == "additive":
            scores = self.v((self.query_proj(query).unsqueeze(1) + k).tanh()).squeeze(-1)
        else:
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
      beam=4, max_len)`` decode; both return token ids and attention weights;
      ``beam_search_batch(src, src_lengths, beam, max_len)`` runs the beams of
      a whole batch of sources together (B * beam rows per decoder step).
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
        lengths = np.asarray(src_lengths.numpy(force=True) if isinstance(src_lengths, Tensor)
                             else src_lengths, dtype=np.int64)
        out, final = self.encoder(self.src_embed(src), lengths=lengths)
        h_n = final[0] if isinstance(final, tuple) else final  # (2, B, H): forward, backward
        s0 = self.bridge(cat([h_n[0], h_n[1]], -1)).tanh()
        state = ((s0, zeros(s0.shape, dtype=s0.dtype, device=s0.device))
                 if self.cell_kind == "lstm" else s0)
        mask = from_numpy(np.arange(src.shape[1])[None, :] < lengths[:, None]).to(src.device)
        keys = self.key_proj(out) if self.attention_kind == "dot" else out
        return keys, mask, state

    def prepare(self, keys: Tensor):
        """The attention's key projection, done once per source (None without attention)."""
        return None if self.attention is None else self.attention.prepare(keys)

    # ---------------------------------------------------------------- one decoder step
    def step(self, prev_tokens: Tensor, state, keys: Tensor, mask: Tensor,
             prepared: Tensor | None = None) -> tuple:
        """(logits (B, V), new state, attention weights (B, S) or None); ``prepared``
        is ``self.prepare(keys)`` (computed here when not given)."""
        emb = self.tgt_embed(prev_tokens)
        s_prev = state[0] if isinstance(state, tuple) else state
        weights = None
        if self.attention_kind == "additive":
            weights = self.attention(s_prev, keys, mask, prepared)
            context = (weights.unsqueeze(1) @ keys).squeeze(1)
            emb = cat([emb, context], -1)
        state = self.decoder(emb, state)
        s = state[0] if isinstance(state, tuple) else state
        if self.attention_kind in ("dot", "general"):
            weights = self.attention(s, keys, mask, prepared)
            context = (weights.unsqueeze(1) @ keys).squeeze(1)
            s = self.combine(cat([context, s], -1)).tanh()
        return self.out(s), state, weights

    def forward(self, src: Tensor, src_lengths, tgt_in: Tensor,
                teacher_forcing: float = 1.0, generator=None) -> Tensor:
        keys, mask, state = self.encode(src, src_lengths)
        prepared = self.prepare(keys)
        rng = _rng(generator)
        logits = []
        prev = tgt_in[:, 0]
        for t in range(tgt_in.shape[1]):
            step_logits, state, _ = self.step(prev, state, keys, mask, prepared)
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
        prepared = self.prepare(keys)
        prev = full((src.shape[0],), self.bos_id, dtype=src.dtype, device=src.device)
        tokens, attn = [], []
        done = np.zeros(src.shape[0], dtype=bool)
        for _ in range(max_len):
            logits, state, weights = self.step(prev, state, keys, mask, prepared)
            prev = logits.argmax(-1)
            tokens.append(prev.numpy(force=True))
            if weights is not None:
                attn.append(weights.numpy(force=True))
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
                             f"of {src.shape[0]} (use beam_search_batch)")
        tokens, attn = self.beam_search_batch(src, [src_length], beam, max_len, length_penalty)
        return tokens[0], (None if attn is None else attn[0])

    @no_grad()
    def beam_search_batch(self, src: Tensor, src_lengths, beam: int = 4, max_len: int = 20,
                          length_penalty: float = 0.0) -> tuple:
        """Beam search for a batch ``src`` (B, S), all ``beam`` hypotheses of all
        sources decoded as one batch of B * beam rows: (B lists of token ids, each
        ending with EOS when one was written; B attention arrays (steps, S) or None).

        Each step extends every live hypothesis by every token, scores a candidate
        by its summed log-probability / length ** length_penalty and keeps the
        best ``beam`` per source. A finished hypothesis (it wrote EOS) is carried
        over unchanged as one candidate, so it competes with the live ones."""
        if beam < 1:
            raise ValueError(f"Seq2Seq.beam_search: beam must be >= 1, got {beam}")
        batch = src.shape[0]
        keys, mask, state = self.encode(src, src_lengths)
        rows = np.repeat(np.arange(batch), beam)            # hypothesis row -> its source
        rows = from_numpy(rows).to(src.device)
        keys, mask = keys[rows], mask[rows]
        state = _gather_state(state, rows)
        prepared = self.prepare(keys)
        logp = np.full((batch, beam), -np.inf)
        logp[:, 0] = 0.0                                     # one start hypothesis per source
        length = np.zeros((batch, beam), dtype=np.int64)
        finished = np.zeros((batch, beam), dtype=bool)
        tokens = np.zeros((batch, beam, 0), dtype=np.int64)
        attn = None
        prev = full((batch * beam,), self.bos_id, dtype=src.dtype, device=src.device)
        for t in range(max_len):
            logits, state, weights = self.step(prev, state, keys, mask, prepared)
            step_logp = F.log_softmax(logits, -1).numpy(force=True).astype(np.float64)
            vocab = step_logp.shape[-1]
            step_logp = step_logp.reshape(batch, beam, vocab)
            # A finished hypothesis has one continuation (EOS as padding), at no cost.
            step_logp[finished] = -np.inf
            step_logp[finished, self.eos_id] = 0.0
            total = logp[:, :, None] + step_logp                       # (B, beam, V)
            new_len = np.where(finished, length, t + 1)[:, :, None]
            rank = total / np.maximum(new_len, 1) ** length_penalty
            best = np.argsort(-rank.reshape(batch, -1), axis=1, kind="stable")[:, :beam]
            src_beam, tok = best // vocab, best % vocab
            b_idx = np.arange(batch)[:, None]
            was_finished = finished[b_idx, src_beam]
            logp = total.reshape(batch, -1)[b_idx, best]
            length = np.where(was_finished, length[b_idx, src_beam], t + 1)
            finished = was_finished | (tok == self.eos_id)
            tokens = np.concatenate([tokens[b_idx, src_beam], tok[:, :, None]], axis=2)
            flat = (b_idx * beam + src_beam).reshape(-1)
            state = _gather_state(state, from_numpy(flat).to(src.device))
            if weights is not None:
                w = weights.numpy(force=True).reshape(batch, beam, 1, -1)
                attn = w if attn is None else np.concatenate([attn, w], axis=2)
                attn = attn[b_idx, src_beam]
            prev = from_numpy(np.ascontiguousarray(tok.reshape(-1))).to(src.device)
            if finished.all():
                break
        score = logp / np.maximum(length, 1) ** length_penalty
        top = np.argmax(score, axis=1)
        out_tokens = [tokens[b, top[b], :length[b, top[b]]].tolist() for b in range(batch)]
        out_attn = None if attn is None else [attn[b, top[b], :length[b, top[b]]]
                                              for b in range(batch)]
        return out_tokens, out_attn


def _gather_state(state, rows: Tensor):
    """The decoder state (a tensor, or a tuple for LSTM) at the given batch rows."""
    if isinstance(state, tuple):
        return tuple(s[rows] for s in state)
    return state[rows]
