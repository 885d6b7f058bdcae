"""Recipes: a model trained on a bundled data set, as ``nnforge train MODEL --data NAME`` runs it.

A recipe is a function registered for a (model, data) pair::

    @register("mlp", "digits", evaluate=evaluate_mlp_digits)
    def mlp_digits(*, epochs=40, batch_size=32, lr=0.01, seed=0, device=None,
                   out_dir=None, resume=None, progress=True, log=print) -> dict: ...

It takes keyword arguments, each optional with the recipe's own default:
``epochs``, ``batch_size``, ``lr``, ``seed``, ``progress``, ``log``, and where
it supports them ``device`` ("cpu"/"cuda"), ``out_dir`` (write checkpoints
with ``nf.train.ModelCheckpoint(out_dir)`` and the run's outputs with
``nf.train.write_run_outputs``) and ``resume`` (a checkpoint path for
``nf.train.resume``). The command line passes only the options the user gave
and refuses, with a clear message, those the recipe does not take. A recipe
returns a dict with at least the per-epoch metrics it logged.

The optional evaluator (``evaluate=``) is what ``nnforge evaluate MODEL
--checkpoint PATH`` runs: ``fn(checkpoint, *, batch_size=None, device=None,
progress=True, log=print) -> dict`` of metrics on the recipe's test data.
``register_evaluator(model, data)`` attaches one to a recipe defined earlier.

Each model family keeps its recipes in a module of this package; every module
here is imported by ``load_all`` (no list to edit). A module that fails to
import does not take the others down: its error is kept in ``LOAD_ERRORS``
and shown by ``nnforge list`` and when its recipe is asked for.
"""
from __future__ import annotations

import importlib
import pkgutil
import traceback

RECIPES: dict = {}      # (model, data) -> training function
EVALUATORS: dict = {}   # (model, data) -> evaluation function
DEFAULT_DATA: dict = {}  # model -> the data set `nnforge train MODEL` uses without --data
LOAD_ERRORS: dict = {}  # family module name -> the error that stopped its import

# Modules to import besides those found in this package (kept for compatibility).
_FAMILY_MODULES = ["dense"]


def register(model: str, data: str, *, default: bool = False, evaluate=None):
    """Decorator: registers ``fn`` as the recipe for ``nnforge train model --data data``
    (the model's default data set if it is its first recipe or ``default=True``)
    and ``evaluate`` as its evaluator."""
    def wrap(fn):
        key = (model, data)
        if key in RECIPES:
            raise ValueError(f"recipe for model {model!r} on data {data!r} registered twice")
        RECIPES[key] = fn
        if evaluate is not None:
            register_evaluator(model, data)(evaluate)
        if default or model not in DEFAULT_DATA:
            DEFAULT_DATA[model] = data
        return fn
    return wrap


def register_evaluator(model: str, data: str):
    """Decorator: registers ``fn`` as what ``nnforge evaluate model --data data`` runs."""
    def wrap(fn):
        key = (model, data)
        if key in EVALUATORS:
            raise ValueError(f"evaluator for model {model!r} on data {data!r} registered twice")
        EVALUATORS[key] = fn
        return fn
    return wrap


def family_modules() -> list:
    """Names of the recipe modules: every module of this package, plus _FAMILY_MODULES."""
    found = [m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]
    return sorted(set(found) | set(_FAMILY_MODULES))


def load_all() -> dict:
    """Imports every recipe module (once) and returns RECIPES."""
    for name in family_modules():
        if name in LOAD_ERRORS:
            continue
        try:
            importlib.import_module(f"{__name__}.{name}")
        except Exception as e:  # noqa: BLE001 - one broken family must not hide the others
            LOAD_ERRORS[name] = "".join(traceback.format_exception_only(type(e), e)).strip()
    return RECIPES


def describe(fn, width: int = 80) -> str:
    """The first sentence of a recipe's docstring, cut to ``width`` characters."""
    doc = (getattr(fn, "__doc__", None) or "").strip()
    text = " ".join(doc.split("\n\n")[0].split())
    end = text.find(". ")
    if end >= 0:
        text = text[:end + 1]
    if len(text) > width:
        text = text[:width - 3].rsplit(" ", 1)[0] + "..."
    return text
