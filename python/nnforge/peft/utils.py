"""What every fine-tuning method shares: choosing submodules by qualified name,
freezing the base model, counting parameters, saving only the trained ones."""
from __future__ import annotations

import fnmatch
import re
from typing import Callable, Iterable

from ..nn.module import Module

__all__ = ["count_parameters", "print_trainable_parameters", "trainable_summary",
           "freeze", "trainable_state_dict", "match_modules"]


def count_parameters(model: Module) -> tuple:
    """``(trainable, total)`` element counts; a parameter shared by several modules
    (a tied embedding and head) counts once.

    >>> import nnforge as nf
    >>> fc = nf.nn.Linear(4, 3)
    >>> _ = fc.bias.requires_grad_(False)
    >>> nf.peft.count_parameters(fc)
    (12, 15)
    """
    trainable = total = 0
    for p in model.parameters():
        total += p.numel()
        if p.requires_grad:
            trainable += p.numel()
    return trainable, total


def trainable_summary(model: Module) -> str:
    """``"trainable params: 12,288 || all params: 348,096 || trainable%: 3.5301"``."""
    trainable, total = count_parameters(model)
    pct = 100.0 * trainable / total if total else 0.0
    return f"trainable params: {trainable:,} || all params: {total:,} || trainable%: {pct:.4f}"


def print_trainable_parameters(model: Module, log=print) -> tuple:
    """Logs ``trainable_summary(model)``; returns ``(trainable, total)``."""
    log(trainable_summary(model))
    return count_parameters(model)


def freeze(model: Module) -> Module:
    """Sets ``requires_grad=False`` on every parameter of ``model`` (its base weights)."""
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def trainable_state_dict(model: Module) -> dict:
    """Only the parameters that train (``requires_grad``), under their ``state_dict``
    names: what a fine-tuning run needs to save. Load it back into a model wrapped
    the same way with ``model.load_state_dict(sd, strict=False)``."""
    keep = {name for name, p in model.named_parameters(remove_duplicate=False) if p.requires_grad}
    return {k: v for k, v in model.state_dict().items() if k in keep}


def _matcher(target) -> Callable[[str, Module], bool]:
    """A predicate over (qualified name, module) from ``target``:

    - a ``str``: a regular expression that must match the whole qualified name
      (``r"blocks\\.[01]\\.attn\\.qkv"``);
    - a sequence of strings: a name matches an entry equal to it or to its last
      dotted components (``"qkv"`` matches ``"blocks.3.attn.qkv"``, ``"attn.proj"``
      matches ``"blocks.0.attn.proj"``); an entry with ``*``, ``?`` or ``[`` is a
      shell glob over the whole name (``"blocks.*.mlp.0"``);
    - a callable ``(name, module) -> bool``.
    """
    if callable(target) and not isinstance(target, str):
        return target
    if isinstance(target, str):
        try:
            rx = re.compile(target)
        except re.error as e:
            raise ValueError(f"target_modules: {target!r} is not a valid regular expression "
                             f"({e})") from None
        return lambda name, module: rx.fullmatch(name) is not None
    if not isinstance(target, Iterable):
        raise TypeError(f"target_modules must be a str (regex), a sequence of names or globs, "
                        f"or a callable, got {type(target).__name__}")
    entries = list(target)
    if not entries or not all(isinstance(e, str) and e for e in entries):
        raise ValueError(f"target_modules must hold non-empty strings, got {entries!r}")

    def match(name: str, module: Module) -> bool:
        for e in entries:
            if any(c in e for c in "*?["):
                if fnmatch.fnmatchcase(name, e):
                    return True
            elif name == e or name.endswith("." + e):
                return True
        return False
    return match


def match_modules(model: Module, target, kind: type | tuple, op: str) -> list:
    """``(parent, attribute, qualified name, module)`` for every submodule of type
    ``kind`` whose qualified name ``target`` selects; a ``ValueError`` naming the
    candidates when there is none."""
    pred = _matcher(target)
    found, candidates = [], []
    for name, module in model.named_modules():
        if not name or not isinstance(module, kind):
            continue
        candidates.append(name)
        if pred(name, module):
            parent_name, _, attr = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            found.append((parent, attr, name, module))
    if not found:
        shown = ", ".join(candidates[:12]) + (", ..." if len(candidates) > 12 else "")
        kinds = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise ValueError(f"{op}: target_modules={target!r} matches no {kinds} module; "
                         f"the {kinds} modules are: {shown or 'none'}")
    return found
