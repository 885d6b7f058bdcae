"""Bottleneck adapters (Houlsby et al. 2019).

A small module after a sublayer's output h (before the residual addition):

    adapter(h) = h + W_up act(W_down h + b_down) + b_up,  W_down (m, d), W_up (d, m)

with a bottleneck m << d. W_up and b_up start at zero, so the adapted model
starts as the base one; only the adapters train, 2 m d + m + d numbers each.
Houlsby places one after the attention sublayer and one after the feed-forward
sublayer of every Transformer layer; ``apply_adapters`` does that by wrapping
those submodules (GPT blocks' ``attn`` and ``mlp``, TransformerEncoderLayer's
``self_attn`` and ``linear2``).
"""
from __future__ import annotations

from ..nn import init
from ..nn.activation import GELU, ReLU
from ..nn.linear import Linear
from ..nn.module import Module
from ..nn.transformer import TransformerDecoderLayer, TransformerEncoderLayer
from ..tensor import Tensor
from .utils import freeze

__all__ = ["Adapter", "AdapterWrapper", "apply_adapters"]


class Adapter(Module):
    """``h + up(act(down(h)))`` over the last dimension (``d_model``), ``up`` at zero.

    >>> import nnforge as nf
    >>> a = nf.peft.Adapter(16, 4)
    >>> h = nf.randn(2, 5, 16)
    >>> bool(nf.equal(a(h), h))
    True
    """

    def __init__(self, d_model: int, bottleneck: int = 16, activation: str = "gelu",
                 device=None, dtype=None):
        super().__init__()
        if isinstance(bottleneck, bool) or not isinstance(bottleneck, int) or bottleneck <= 0:
            raise ValueError(f"Adapter: bottleneck must be a positive int, got {bottleneck!r}")
        if activation not in ("gelu", "relu"):
            raise ValueError(f"Adapter: activation must be 'gelu' or 'relu', got {activation!r}")
        self.down = Linear(d_model, bottleneck, device=device, dtype=dtype)
        self.act = GELU() if activation == "gelu" else ReLU()
        self.up = Linear(bottleneck, d_model, device=device, dtype=dtype)
        init.zeros_(self.up.weight)
        init.zeros_(self.up.bias)

    def forward(self, h: Tensor) -> Tensor:
        return h + self.up(self.act(self.down(h)))


class AdapterWrapper(Module):
    """Runs ``module`` and passes its output through ``adapter`` (the first element
    when the module returns a tuple, as MultiheadAttention does)."""

    def __init__(self, module: Module, adapter: Adapter):
        super().__init__()
        self.module = module
        self.adapter = adapter

    def forward(self, *args, **kwargs):
        out = self.module(*args, **kwargs)
        if isinstance(out, tuple):
            return (self.adapter(out[0]),) + out[1:]
        return self.adapter(out)

    def __getattr__(self, name: str):
        # Attributes the wrapped module's callers read (MultiheadAttention.batch_first, ...).
        try:
            return super().__getattr__(name)
        except AttributeError:
            inner = self.__dict__.get("_modules", {}).get("module")
            if inner is None:       # not initialised yet (copy.deepcopy probes attributes)
                raise
            return getattr(inner, name)


def _sites(model: Module) -> list:
    """(parent, attribute, d_model) of every sublayer output an adapter follows."""
    from ..models.gpt import GPTBlock
    sites = []
    for m in model.modules():
        if isinstance(m, GPTBlock):
            d = m.ln1.normalized_shape[0]
            sites += [(m, "attn", d), (m, "mlp", d)]
        elif isinstance(m, (TransformerEncoderLayer, TransformerDecoderLayer)):
            d = m.linear2.out_features
            sites += [(m, "self_attn", d)]
            if isinstance(m, TransformerDecoderLayer):
                sites += [(m, "multihead_attn", d)]
            sites += [(m, "linear2", d)]
    return sites


def apply_adapters(model: Module, bottleneck: int = 16, activation: str = "gelu") -> Module:
    """Freezes ``model`` and puts an ``Adapter`` after the attention and the
    feed-forward sublayers of each of its GPT blocks and Transformer encoder and
    decoder layers (after cross-attention too); returns ``model``.

    >>> import nnforge as nf
    >>> gpt = nf.models.GPT(65, block_size=32, n_layer=2, n_head=2, d_model=32)
    >>> _ = nf.peft.apply_adapters(gpt, bottleneck=8)
    >>> nf.peft.count_parameters(gpt)[0] == 2 * 2 * (2 * 8 * 32 + 8 + 32)
    True
    """
    sites = _sites(model)
    if not sites:
        raise ValueError(f"apply_adapters: {type(model).__name__} has no GPTBlock, "
                         "TransformerEncoderLayer or TransformerDecoderLayer to adapt")
    if any(isinstance(getattr(parent, attr), AdapterWrapper) for parent, attr, _ in sites):
        raise ValueError("apply_adapters: the model already has adapters")
    freeze(model)
    for parent, attr, d in sites:
        inner = getattr(parent, attr)
        w = next(inner.parameters())
        adapter = Adapter(d, bottleneck, activation, device=w.device, dtype=w.dtype)
        setattr(parent, attr, AdapterWrapper(inner, adapter))
    return model
