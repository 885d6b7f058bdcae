"""An encoder-decoder Transformer for sequence-to-sequence tasks (Vaswani et
al. 2017), with the interface of ``Seq2Seq`` so the same training and
decoding code drives both.

    memory  = Encoder(E_src[x] * sqrt(d) + PE)                  source padding masked
    logits  = W Decoder(E_tgt[y_<t] * sqrt(d) + PE, memory)     causal self-attention,
                                                                 cross-attention to memory

Token embeddings (initialized N(0, 1/d_model)) are scaled by sqrt(d_model)
before the sinusoidal positions are added (section 3.4), so both are O(1).
Greedy decoding reruns the decoder on the prefix each step (targets here are
short) and returns the last layer's cross-attention, averaged over heads, for
heat maps.
"""
from __future__ import annotations

import math

import numpy as np

from .. import nn
from ..autograd.grad_mode import no_grad
from ..ops.creation import from_numpy, full
from ..ops.shape import cat
from ..tensor import Tensor

__all__ = ["TransformerSeq2Seq"]


class TransformerSeq2Seq(nn.Module):
    """``TransformerSeq2Seq(src_vocab, tgt_vocab, d_model=64, nhead=4,
    num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=128, dropout=0.1,
    max_len=128, bos_id=1, eos_id=2, pad_id=0)``.

    - ``forward(src, src_lengths, tgt_in, teacher_forcing=1.0, generator=None)`` ->
      logits (B, T, tgt_vocab) (full teacher forcing only: a Transformer decoder
      reads all target positions at once);
    - ``greedy(src, src_lengths, max_len)`` -> (tokens (B, max_len) numpy,
      cross-attention (B, max_len, S) numpy).
    """

    def __init__(self, src_vocab: int, tgt_vocab: int, d_model: int = 64, nhead: int = 4,
                 num_encoder_layers: int = 2, num_decoder_layers: int = 2,
                 dim_feedforward: int = 128, dropout: float = 0.1, max_len: int = 128,
                 bos_id: int = 1, eos_id: int = 2, pad_id: int = 0):
        super().__init__()
        self.d_model, self.bos_id, self.eos_id, self.pad_id = d_model, bos_id, eos_id, pad_id
        self.src_emb = nn.Embedding(src_vocab, d_model, padding_idx=pad_id)
        self.tgt_emb = nn.Embedding(tgt_vocab, d_model, padding_idx=pad_id)
        self.pos = nn.SinusoidalPositionalEncoding(d_model, max_len, dropout)
        self.transformer = nn.Transformer(d_model, nhead, num_encoder_layers,
                                          num_decoder_layers, dim_feedforward, dropout,
                                          batch_first=True)
        self.out = nn.Linear(d_model, tgt_vocab)
        # Embeddings N(0, 1/d_model): times sqrt(d_model) they are O(1), the size of the
        # positional signal (PyTorch's N(0, 1) default would drown the positions 8:1).
        for emb in (self.src_emb, self.tgt_emb):
            nn.init.normal_(emb.weight, 0.0, d_model ** -0.5)
            emb.weight.detach()[pad_id] = 0.0

    def _src_padding(self, src: Tensor, src_lengths) -> Tensor:
        if isinstance(src_lengths, Tensor):
            src_lengths = src_lengths.numpy(force=True)
        lengths = np.asarray(src_lengths).reshape(-1, 1)
        return from_numpy(np.arange(src.shape[1])[None, :] >= lengths).to(src.device)

    def _embed(self, emb: nn.Embedding, ids: Tensor) -> Tensor:
        """Token embeddings scaled by sqrt(d_model), plus the sinusoidal positions."""
        return self.pos(emb(ids) * math.sqrt(self.d_model))

    def encode(self, src: Tensor, src_lengths) -> tuple:
        pad = self._src_padding(src, src_lengths)
        x = self._embed(self.src_emb, src)
        return self.transformer.encoder(x, src_key_padding_mask=pad), pad

    def decode_step(self, tgt_in: Tensor, memory: Tensor, pad: Tensor) -> Tensor:
        t = tgt_in.shape[1]
        y = self._embed(self.tgt_emb, tgt_in)
        causal = nn.Transformer.generate_square_subsequent_mask(t, dtype=y.dtype, device=y.device)
        h = self.transformer.decoder(y, memory, tgt_mask=causal, tgt_is_causal=True,
                                     memory_key_padding_mask=pad)
        return self.out(h)

    def forward(self, src: Tensor, src_lengths, tgt_in: Tensor, teacher_forcing: float = 1.0,
                generator=None) -> Tensor:
        if teacher_forcing != 1.0:
            raise ValueError("TransformerSeq2Seq: trains with full teacher forcing only "
                             f"(teacher_forcing=1.0), got {teacher_forcing}")
        memory, pad = self.encode(src, src_lengths)
        return self.decode_step(tgt_in, memory, pad)

    @no_grad()
    def greedy(self, src: Tensor, src_lengths, max_len: int) -> tuple:
        memory, pad = self.encode(src, src_lengths)
        b = src.shape[0]
        tokens = full((b, 1), self.bos_id, dtype=src.dtype, device=src.device)
        for _ in range(max_len):
            logits = self.decode_step(tokens, memory, pad)
            nxt = logits[:, -1].argmax(-1).reshape(b, 1).to(src.dtype)
            tokens = cat([tokens, nxt], 1)
        attn = self._cross_attention(tokens[:, :-1], memory, pad)
        return tokens[:, 1:].numpy(force=True), attn

    def _cross_attention(self, tgt_in: Tensor, memory: Tensor, pad: Tensor) -> np.ndarray:
        """The last decoder layer's cross-attention weights (B, T, S), heads averaged."""
        dec = self.transformer.decoder
        t = tgt_in.shape[1]
        x = self._embed(self.tgt_emb, tgt_in)
        causal = nn.Transformer.generate_square_subsequent_mask(t, dtype=x.dtype, device=x.device)
        for layer in dec.layers[:-1]:
            x = layer(x, memory, tgt_mask=causal, memory_key_padding_mask=pad)
        last = dec.layers[-1]
        if last.norm_first:
            x = x + last._sa_block(last.norm1(x), causal, None, True)
            q = last.norm2(x)
        else:
            q = last.norm1(x + last._sa_block(x, causal, None, True))
        _, w = last.multihead_attn(q, memory, memory, key_padding_mask=pad, need_weights=True)
        return w.numpy(force=True)
