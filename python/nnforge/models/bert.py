"""BERT: a bidirectional Transformer encoder pretrained by masked language
modelling, then fine-tuned (Devlin et al. 2019).

    embeddings:  E_tok[x_t] + E_pos[t] + E_seg[s_t], LayerNorm, dropout
    encoder:     post-norm Transformer encoder layers, GELU; every position sees
                 every other (no causal mask), padding keys masked out
    MLM head:    LayerNorm(GELU(W h_t)) E_tok^T + b   (decoder tied to E_tok)
    classifier:  pooled = tanh(W_p h_[CLS]); logits = W_c dropout(pooled)

Masked-LM pretraining (``mask_tokens``) picks 15% of the non-special
positions as prediction targets; of those 80% are replaced by <mask>, 10% by a
random token and 10% left as they are, so the model cannot tell which visible
tokens are targets and must keep a good representation of every token. The
loss is cross-entropy on the picked positions only (labels -100 elsewhere).
"""
from __future__ import annotations

import numpy as np

from .. import nn
from ..ops.creation import from_numpy, zeros
from ..random import _rng
from ..tensor import Tensor

__all__ = ["BERT", "BertClassifier", "mask_tokens"]


class BERT(nn.Module):
    """``BERT(vocab_size, d_model=128, n_layer=2, n_head=4, dim_feedforward=512,
    max_len=128, dropout=0.1, type_vocab_size=2, pad_id=0)``.
    ``forward(ids (B, T), padding_mask=None, token_type_ids=None)`` -> hidden
    states (B, T, d_model); ``padding_mask`` is True at padding (PyTorch's
    key_padding_mask convention), default ``ids == pad_id``.
    ``mlm_logits(hidden)`` -> (B, T, vocab_size)."""

    def __init__(self, vocab_size: int, d_model: int = 128, n_layer: int = 2, n_head: int = 4,
                 dim_feedforward: int = 512, max_len: int = 128, dropout: float = 0.1,
                 type_vocab_size: int = 2, pad_id: int = 0):
        super().__init__()
        self.vocab_size, self.pad_id, self.max_len = vocab_size, pad_id, max_len
        self.tok_emb = nn.Embedding(vocab_size, d_model, padding_idx=pad_id)
        self.pos = nn.LearnedPositionalEmbedding(max_len, d_model)
        self.seg_emb = nn.Embedding(type_vocab_size, d_model)
        self.emb_norm = nn.LayerNorm(d_model, eps=1e-12)
        self.drop = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(d_model, n_head, dim_feedforward, dropout,
                                           activation="gelu", batch_first=True,
                                           layer_norm_eps=1e-12)
        self.encoder = nn.TransformerEncoder(layer, n_layer)
        self.mlm_dense = nn.Linear(d_model, d_model)
        self.mlm_norm = nn.LayerNorm(d_model, eps=1e-12)
        self.mlm_bias = nn.Parameter(zeros(vocab_size))
        for name, p in self.named_parameters():     # BERT's N(0, 0.02) initialization
            if p.ndim == 2 and "norm" not in name:
                nn.init.normal_(p, 0.0, 0.02)
        with_pad = self.tok_emb.weight.detach()
        with_pad[pad_id] = 0.0

    def forward(self, ids: Tensor, padding_mask=None, token_type_ids=None) -> Tensor:
        if ids.ndim != 2:
            raise ValueError(f"BERT: expected token ids (B, T), got shape {tuple(ids.shape)}")
        if ids.shape[1] > self.max_len:
            raise ValueError(f"BERT: sequence length {ids.shape[1]} exceeds max_len "
                             f"{self.max_len}")
        if padding_mask is None:
            padding_mask = ids == self.pad_id
        x = self.pos(self.tok_emb(ids))
        if token_type_ids is not None:
            x = x + self.seg_emb(token_type_ids)
        else:
            x = x + self.seg_emb.weight[0]
        x = self.drop(self.emb_norm(x))
        return self.encoder(x, src_key_padding_mask=padding_mask)

    def mlm_logits(self, hidden: Tensor) -> Tensor:
        h = self.mlm_norm(nn.functional.gelu(self.mlm_dense(hidden)))
        return h @ self.tok_emb.weight.T + self.mlm_bias


class BertClassifier(nn.Module):
    """``BertClassifier(bert, num_classes, dropout=0.1, *, pooling="cls")``: the [CLS]
    (first) position's final state (``pooling="mean"``: the mean of the non-padding
    positions' states) through BERT's pooler (Linear + tanh), dropout and a linear
    layer. ``forward(ids, padding_mask=None)`` -> logits (B, num_classes)."""

    def __init__(self, bert: BERT, num_classes: int, dropout: float = 0.1, *,
                 pooling: str = "cls"):
        super().__init__()
        if pooling not in ("cls", "mean"):
            raise ValueError(f"BertClassifier: pooling must be 'cls' or 'mean', got {pooling!r}")
        self.pooling = pooling
        d = bert.tok_emb.embedding_dim
        self.bert = bert
        self.pooler = nn.Linear(d, d)
        self.drop = nn.Dropout(dropout)
        self.classifier = nn.Linear(d, num_classes)

    def forward(self, ids: Tensor, padding_mask=None) -> Tensor:
        if padding_mask is None:
            padding_mask = ids == self.bert.pad_id
        h = self.bert(ids, padding_mask)
        if self.pooling == "cls":
            pooled = h[:, 0]
        else:
            keep = (~padding_mask).to(h.dtype)[:, :, None]
            pooled = (h * keep).sum(1) / keep.sum(1)
        return self.classifier(self.drop(self.pooler(pooled).tanh()))


def mask_tokens(ids, mask_id: int, vocab_size: int, special_ids=(), prob: float = 0.15,
                generator=None, first_regular_id: int = 0) -> tuple:
    """(inputs, labels) for masked-LM training from int64 ids (B, T) (numpy or
    tensor): each position whose id is not in ``special_ids`` becomes a target with
    probability ``prob``; targets are replaced by ``mask_id`` (80%), a random
    regular token from [first_regular_id, vocab_size) (10%) or kept (10%); labels
    hold the original id at targets and -100 elsewhere (cross_entropy's
    ignore_index)."""
    device = ids.device if isinstance(ids, Tensor) else None
    a = ids.numpy(force=True) if isinstance(ids, Tensor) else np.asarray(ids)
    if a.dtype.kind not in "iu":
        raise TypeError(f"mask_tokens: ids must be integers, got {a.dtype}")
    if not 0.0 < prob < 1.0:
        raise ValueError(f"mask_tokens: prob must be in (0, 1), got {prob}")
    rng = _rng(generator)
    eligible = ~np.isin(a, np.asarray(list(special_ids), dtype=a.dtype))
    target = eligible & (rng.random(a.shape) < prob)
    labels = np.where(target, a, -100).astype(np.int64)
    roll = rng.random(a.shape)
    inputs = a.astype(np.int64).copy()
    inputs[target & (roll < 0.8)] = mask_id
    swap = target & (roll >= 0.8) & (roll < 0.9)
    inputs[swap] = rng.integers(first_regular_id, vocab_size, size=int(swap.sum()))
    inputs, labels = from_numpy(inputs), from_numpy(labels)
    if device is not None:  # back where the ids were (a copy unless on the CPU)
        inputs, labels = inputs.to(device), labels.to(device)
    return inputs, labels
