"""Recipes: a model trained on a bundled data set, as ``nnforge train MODEL --data NAME`` runs it.

A recipe is a function registered for a (model, data) pair. It takes keyword
arguments (``epochs``, ``batch_size``, ``lr``, ``seed``, ``out_dir``,
``progress``, ``log`` — each optional, with the recipe's own defaults) and
returns a history dict with at least the per-epoch metrics it logged.
"""
from __future__ import annotations

import importlib

RECIPES: dict = {}
DEFAULT_DATA: dict = {}

# Modules that register recipes when imported; each family adds its own.
_FAMILY_MODULES = ["dense"]


def register(model: str, data: str, *, default: bool = False):
    """Decorator: registers ``fn`` as the recipe for ``nnforge train model --data data``."""
    def wrap(fn):
        key = (model, data)
        if key in RECIPES:
            raise ValueError(f"recipe for model {model!r} on data {data!r} registered twice")
        RECIPES[key] = fn
        if default or model not in DEFAULT_DATA:
            DEFAULT_DATA[model] = data
        return fn
    return wrap


def load_all() -> dict:
    for name in _FAMILY_MODULES:
        importlib.import_module(f"{__name__}.{name}")
    return RECIPES
