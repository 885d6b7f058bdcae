"""Prompt-tuning (Lester et al. 2021): learned input embeddings ahead of the text.

P trainable vectors (P, d_model) are prepended to the token embeddings of every
sequence; the frozen model runs on the P + T embeddings and the logits of the
P virtual positions are dropped:

    logits = GPT([E_prompt ; E[x_1..x_T]])[P:]

Only P * d_model numbers train. Lester et al. start the prompt at the
embeddings of real vocabulary tokens, which ``init_ids`` does.
"""
from __future__ import annotations

from ..autograd.grad_mode import no_grad
from ..models.gpt import GPT, KVCache
from ..nn import init
from ..nn.module import Module
from ..nn.parameter import Parameter
from ..ops import creation
from ..ops.shape import cat
from ..tensor import Tensor
from .utils import freeze

__all__ = ["PromptTuning"]


class PromptTuning(Module):
    """``PromptTuning(model, num_virtual_tokens=8, init_ids=None)`` wraps a GPT
    (frozen here) with a trainable ``prompt`` (num_virtual_tokens, d_model);
    ``forward(idx (B, T), kv_cache=None)`` -> logits (B, T, vocab_size) for the
    real tokens only. With a KV cache the prompt enters on the first call (it
    then sits in the cache) and ``generate`` works as GPT's.

    >>> import nnforge as nf
    >>> gpt = nf.models.GPT(65, block_size=32, n_layer=2, n_head=2, d_model=32)
    >>> pt = nf.peft.PromptTuning(gpt, num_virtual_tokens=4)
    >>> tuple(pt(nf.randint(0, 65, (2, 10))).shape), nf.peft.count_parameters(pt)[0]
    ((2, 10, 65), 128)
    """

    def __init__(self, model: GPT, num_virtual_tokens: int = 8, init_ids=None):
        super().__init__()
        if not isinstance(model, GPT):
            raise TypeError(f"PromptTuning: model must be an nnforge.models.GPT, got "
                            f"{type(model).__name__}")
        if isinstance(num_virtual_tokens, bool) or not isinstance(num_virtual_tokens, int) \
                or not 0 < num_virtual_tokens < model.block_size:
            raise ValueError(f"PromptTuning: num_virtual_tokens must be an int in [1, "
                             f"block_size {model.block_size}), got {num_virtual_tokens!r}")
        freeze(model)
        self.model = model
        self.num_virtual_tokens = num_virtual_tokens
        emb = model.tok_emb.weight
        self.prompt = Parameter(creation.empty(num_virtual_tokens, emb.shape[1],
                                               device=emb.device, dtype=emb.dtype))
        if init_ids is None:
            init.normal_(self.prompt, 0.0, 0.02)
        else:
            ids = [int(i) for i in init_ids]
            if len(ids) != num_virtual_tokens:
                raise ValueError(f"PromptTuning: init_ids holds {len(ids)} ids, "
                                 f"num_virtual_tokens is {num_virtual_tokens}")
            with no_grad():
                self.prompt.copy_(emb[creation.tensor(ids)])

    @property
    def block_size(self) -> int:
        """Real tokens that fit beside the prompt."""
        return self.model.block_size - self.num_virtual_tokens

    def new_cache(self) -> KVCache:
        return self.model.new_cache()

    def forward(self, idx: Tensor, kv_cache: KVCache | None = None) -> Tensor:
        if idx.ndim != 2:
            raise ValueError(f"PromptTuning: expected token ids of shape (B, T), got "
                             f"{tuple(idx.shape)}")
        x = self.model.tok_emb(idx)
        first = kv_cache is None or len(kv_cache) == 0
        if not first:
            return self.model.forward_embeds(x, kv_cache)
        b, p = idx.shape[0], self.num_virtual_tokens
        prompt = self.prompt.unsqueeze(0).expand(b, p, self.prompt.shape[1])
        logits = self.model.forward_embeds(cat([prompt, x], 1), kv_cache)
        return logits[:, p:]

    def generate(self, prompt_ids, max_new_tokens: int, **kwargs) -> list:
        """As ``GPT.generate``, with the learned prompt ahead of the context."""
        return GPT.generate(self, prompt_ids, max_new_tokens, **kwargs)
