"""LoRA: low-rank adaptation of Linear layers (Hu et al. 2021).

The frozen weight W (out, in) gets a trainable low-rank update:

    y = x W^T + b + (alpha / r) * dropout(x) A^T B^T,   A (r, in), B (out, r)

A starts Kaiming-uniform and B at zero, so the wrapped model starts exactly
as the base one. Training touches r (in + out) numbers per layer instead of
in * out. ``merge()`` folds the update into W (W += (alpha/r) B A), after which
the layer costs what the base one did; ``unmerge()`` takes it back out.
"""
from __future__ import annotations

import math

from ..autograd.grad_mode import no_grad
from ..nn import functional as F
from ..nn import init
from ..nn.linear import Linear
from ..nn.module import Module
from ..nn.parameter import Parameter
from ..ops import creation
from ..tensor import Tensor
from .utils import freeze, match_modules

__all__ = ["LoRALinear", "apply_lora", "merge_lora", "unmerge_lora", "lora_state_dict"]


class LoRALinear(Linear):
    """A ``Linear`` that keeps ``base``'s own ``weight`` and ``bias`` (the same
    Parameters, so ``state_dict`` names and tied weights stay as they were) and
    adds ``lora_A`` (r, in_features) and ``lora_B`` (out_features, r).

    >>> import nnforge as nf
    >>> fc = nf.nn.Linear(16, 8)
    >>> lora = nf.peft.LoRALinear(fc, r=2, alpha=4)
    >>> x = nf.randn(3, 16)
    >>> bool(nf.allclose(lora(x), fc(x)))       # B = 0: starts as the base layer
    True
    >>> tuple(lora.lora_A.shape), tuple(lora.lora_B.shape), lora.scaling
    ((2, 16), (8, 2), 2.0)
    """

    def __init__(self, base: Linear, r: int = 8, alpha: float = 16, dropout: float = 0.0):
        if not isinstance(base, Linear):
            raise TypeError(f"LoRALinear: base must be an nnforge.nn.Linear, got "
                            f"{type(base).__name__}")
        if isinstance(base, LoRALinear):
            raise TypeError("LoRALinear: base is already a LoRALinear")
        if isinstance(r, bool) or not isinstance(r, int) or r <= 0:
            raise ValueError(f"LoRALinear: r must be a positive int, got {r!r}")
        if not alpha > 0:
            raise ValueError(f"LoRALinear: alpha must be positive, got {alpha!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"LoRALinear: dropout must be in [0, 1), got {dropout!r}")
        Module.__init__(self)
        self.in_features, self.out_features = base.in_features, base.out_features
        self.weight = base.weight
        if base.bias is not None:
            self.bias = base.bias
        else:
            self.register_parameter("bias", None)
        self.r, self.lora_alpha, self.lora_dropout = r, alpha, dropout
        self.scaling = alpha / r
        kw = dict(dtype=base.weight.dtype, device=base.weight.device)
        self.lora_A = Parameter(creation.empty(r, self.in_features, **kw))
        self.lora_B = Parameter(creation.empty(self.out_features, r, **kw))
        init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        init.zeros_(self.lora_B)
        self.merged = False

    def forward(self, input: Tensor) -> Tensor:
        y = F.linear(input, self.weight, self.bias)
        if self.merged:
            return y
        x = F.dropout(input, self.lora_dropout, self.training) if self.lora_dropout else input
        return y + F.linear(F.linear(x, self.lora_A), self.lora_B) * self.scaling

    def delta_weight(self) -> Tensor:
        """(alpha / r) B A, of the weight's shape (out_features, in_features)."""
        return (self.lora_B @ self.lora_A) * self.scaling

    @no_grad()
    def merge(self) -> None:
        """W += (alpha/r) B A; forward then skips the low-rank branch."""
        if self.merged:
            raise RuntimeError("LoRALinear.merge: already merged")
        self.weight.copy_(self.weight + self.delta_weight())
        self.merged = True

    @no_grad()
    def unmerge(self) -> None:
        """W -= (alpha/r) B A: back to the base weight and the separate branch."""
        if not self.merged:
            raise RuntimeError("LoRALinear.unmerge: not merged")
        self.weight.copy_(self.weight - self.delta_weight())
        self.merged = False

    def to_linear(self) -> Linear:
        """A plain ``Linear`` holding the merged weight (a copy) and the bias."""
        out = Linear(self.in_features, self.out_features, bias=self.bias is not None,
                     dtype=self.weight.dtype, device=self.weight.device)
        with no_grad():
            w = self.weight if self.merged else self.weight + self.delta_weight()
            out.weight.copy_(w)
            if self.bias is not None:
                out.bias.copy_(self.bias)
        return out

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, r={self.r}, alpha={self.lora_alpha}, "
                f"dropout={self.lora_dropout}, merged={self.merged}")


def apply_lora(model: Module, target_modules=("qkv", "proj"), r: int = 8, alpha: float = 16,
               dropout: float = 0.0) -> Module:
    """Replaces, in place, every ``nn.Linear`` whose qualified name ``target_modules``
    selects (names or their last components, shell globs, a regex string, or a
    callable; see ``nf.peft.utils.match_modules``) by a ``LoRALinear``, freezes all
    the other parameters and returns ``model``. A pattern that selects no Linear
    raises ``ValueError`` listing the Linear modules there are. A layer whose weight
    is shared (GPT's ``head`` and its tied ``tok_emb``) changes in both places on
    ``merge``.

    >>> import nnforge as nf
    >>> gpt = nf.models.GPT(65, block_size=32, n_layer=2, n_head=2, d_model=32)
    >>> _ = nf.peft.apply_lora(gpt, ("qkv", "proj"), r=4)
    >>> nf.peft.count_parameters(gpt)[0] == 2 * 4 * ((32 + 96) + (32 + 32))
    True
    """
    if isinstance(r, bool) or not isinstance(r, int) or r <= 0:
        raise ValueError(f"apply_lora: r must be a positive int, got {r!r}")
    found = [f for f in match_modules(model, target_modules, Linear, "apply_lora")
             if not isinstance(f[3], LoRALinear)]
    if not found:
        raise ValueError(f"apply_lora: every Linear that target_modules={target_modules!r} "
                         "matches already has LoRA")
    freeze(model)
    for parent, attr, _, linear in found:
        setattr(parent, attr, LoRALinear(linear, r=r, alpha=alpha, dropout=dropout))
    return model


def _lora_layers(model: Module, op: str) -> list:
    layers = [m for m in model.modules() if isinstance(m, LoRALinear)]
    if not layers:
        raise ValueError(f"{op}: the model has no LoRALinear layers (call apply_lora first)")
    return layers


def merge_lora(model: Module) -> Module:
    """Merges every unmerged LoRALinear of ``model``; returns ``model``."""
    for m in _lora_layers(model, "merge_lora"):
        if not m.merged:
            m.merge()
    return model


def unmerge_lora(model: Module) -> Module:
    """Unmerges every merged LoRALinear of ``model``; returns ``model``."""
    for m in _lora_layers(model, "unmerge_lora"):
        if m.merged:
            m.unmerge()
    return model


def lora_state_dict(model: Module) -> dict:
    """Only the ``lora_A``/``lora_B`` tensors, under their ``state_dict`` names: save
    with ``nf.save``; load into a model given the same ``apply_lora`` with
    ``load_state_dict(sd, strict=False)``."""
    return {k: v for k, v in model.state_dict().items()
            if k.endswith(".lora_A") or k.endswith(".lora_B") or k in ("lora_A", "lora_B")}
