"""Prefix-tuning (Li & Liang 2021): P learned keys and values per attention layer.

Every attention layer l gets trainable K_l, V_l (n_kv_head, P, head_dim),
prepended to the keys and values its tokens compute; each query attends to the
P prefix positions (never masked) and to the tokens the causal mask allows:

    Attn(q_t) = softmax(q_t [K_l ; k_1..k_t]^T / sqrt(d)) [V_l ; v_1..v_t]

The base model is frozen; n_layer * 2 * P * n_kv_head * head_dim numbers train.
The prefix takes no positions, so the tokens keep theirs (0, 1, ...) and the
KV cache holds only the tokens' keys: cached generation equals recomputation.
Initialising the prefix with the keys and values a real text produces (Li &
Liang's "activations of real words") starts it where that text would have
put the model, which trains faster than a random start.
"""
from __future__ import annotations

from ..autograd.grad_mode import no_grad
from ..nn import init
from ..nn.module import Module
from ..nn.parameter import Parameter
from ..ops import creation
from .utils import freeze

__all__ = ["Prefix", "apply_prefix_tuning", "remove_prefix_tuning"]


class Prefix(Module):
    """Learned ``key`` and ``value`` (n_kv_head, P, head_dim); ``forward(batch)``
    gives them expanded to (batch, n_kv_head, P, head_dim)."""

    def __init__(self, n_kv_head: int, num_virtual_tokens: int, head_dim: int,
                 device=None, dtype=None):
        super().__init__()
        shape = (n_kv_head, num_virtual_tokens, head_dim)
        self.key = Parameter(creation.empty(*shape, device=device, dtype=dtype))
        self.value = Parameter(creation.empty(*shape, device=device, dtype=dtype))
        init.normal_(self.key, 0.0, 1.0)
        init.normal_(self.value, 0.0, 0.02)

    def forward(self, batch: int) -> tuple:
        h, p, d = self.key.shape
        return self.key.unsqueeze(0).expand(batch, h, p, d), \
            self.value.unsqueeze(0).expand(batch, h, p, d)

    def extra_repr(self) -> str:
        h, p, d = self.key.shape
        return f"n_kv_head={h}, num_virtual_tokens={p}, head_dim={d}"


def _attention_layers(model: Module) -> list:
    from ..models.gpt import CausalSelfAttention
    return [m for m in model.modules() if isinstance(m, CausalSelfAttention)]


def apply_prefix_tuning(model: Module, num_virtual_tokens: int = 8, init_ids=None) -> Module:
    """Freezes ``model`` (a GPT) and gives each of its attention layers a trainable
    ``Prefix`` of ``num_virtual_tokens`` keys and values; returns ``model``.
    ``init_ids`` (that many token ids) starts each prefix at the keys and values
    the frozen model computes for those tokens; otherwise keys start N(0, 1) and
    values N(0, 0.02^2).

    >>> import nnforge as nf
    >>> gpt = nf.models.GPT(65, block_size=32, n_layer=2, n_head=2, d_model=32)
    >>> _ = nf.peft.apply_prefix_tuning(gpt, num_virtual_tokens=4)
    >>> nf.peft.count_parameters(gpt)[0] == 2 * 2 * 4 * 32
    True
    """
    if isinstance(num_virtual_tokens, bool) or not isinstance(num_virtual_tokens, int) \
            or num_virtual_tokens <= 0:
        raise ValueError(f"apply_prefix_tuning: num_virtual_tokens must be a positive int, "
                         f"got {num_virtual_tokens!r}")
    layers = _attention_layers(model)
    if not layers:
        raise ValueError(f"apply_prefix_tuning: {type(model).__name__} has no GPT "
                         "CausalSelfAttention layers")
    if any(a.prefix is not None for a in layers):
        raise ValueError("apply_prefix_tuning: the model already has prefixes")
    start = None
    if init_ids is not None:
        start = _keys_values_of(model, init_ids, num_virtual_tokens, len(layers))
    freeze(model)
    for i, attn in enumerate(layers):
        w = attn.qkv.weight
        prefix = Prefix(attn.n_kv_head, num_virtual_tokens, attn.head_dim,
                        device=w.device, dtype=w.dtype)
        if start is not None:
            with no_grad():
                prefix.key.copy_(start[i][0][0])
                prefix.value.copy_(start[i][1][0])
        attn.prefix = prefix
    return model


@no_grad()
def _keys_values_of(model: Module, ids, n: int, n_layers: int) -> list:
    """Each layer's (k, v), (1, n_kv_head, n, head_dim), for the token ids ``ids``."""
    ids = [int(i) for i in ids]
    if len(ids) != n:
        raise ValueError(f"apply_prefix_tuning: init_ids holds {len(ids)} ids, "
                         f"num_virtual_tokens is {n}")
    if not hasattr(model, "new_cache"):
        raise ValueError("apply_prefix_tuning: init_ids needs a model with a KV cache (GPT)")
    cache = model.new_cache()
    was_training = model.training
    model.eval()
    model(creation.tensor([ids]), cache)
    model.train(was_training)
    if len(cache.layers) != n_layers:
        raise ValueError(f"apply_prefix_tuning: the cache has {len(cache.layers)} layers, "
                         f"the model {n_layers} attention layers")
    return cache.layers


def remove_prefix_tuning(model: Module) -> Module:
    """Takes the prefixes out again (the base weights were never changed)."""
    for attn in _attention_layers(model):
        attn.prefix = None
    return model
