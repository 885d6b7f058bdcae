"""Training checkpoints: everything a run needs to continue bit for bit.

``training_state`` gathers it into one nested dict (what ``ModelCheckpoint``
saves with ``nf.save``); ``resume`` puts it back into fresh objects.

Why each part is there — training from epoch k on depends on:
- the parameters and buffers (``model``) and the optimizer's state (momentum
  buffers, Adam's moments and step counts, the lr in each group);
- the scheduler's position (``last_epoch``, ReduceLROnPlateau's best value);
- the random streams: the default generator (dropout masks, and shuffling
  when the loader has no generator of its own) and the training loader's
  generator (the order of the next epochs);
- the callbacks' counters (early stopping's patience, the best value so far).
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field

from .. import random as _random
from .callbacks import load_named_states, named_states
from .fit import History

__all__ = ["training_state", "resume", "load_weights", "read_weights", "Resumed", "FORMAT"]

FORMAT = "nnforge.train.checkpoint"
VERSION = 1


def loader_generator(loader):
    """The ``nf.Generator`` that shuffles ``loader`` (its own, or its sampler's), or None."""
    if loader is None:
        return None
    gen = getattr(loader, "generator", None)
    if gen is not None:
        return gen
    sampler = getattr(loader, "sampler", None)
    if sampler is None:
        sampler = getattr(getattr(loader, "batch_sampler", None), "sampler", None)
    return getattr(sampler, "generator", None)


def training_state(model, optimizer, *, epoch: int, scheduler=None, loader=None, history=None,
                   callbacks=(), extra: dict | None = None) -> dict:
    """The checkpoint of a run after ``epoch`` completed epochs (see ``ModelCheckpoint``)."""
    gen = loader_generator(loader)
    return {
        "format": FORMAT,
        "version": VERSION,
        "epoch": int(epoch),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rng": {"default": _random.get_rng_state(),
                "loader": gen.get_state() if gen is not None else None},
        "history": dict(history or {}),
        "callbacks": named_states(callbacks),
        "extra": extra,
    }


@dataclass
class Resumed:
    """What ``resume`` restored: ``epoch`` (epochs completed: pass it to
    ``fit(start_epoch=...)``), the ``history`` so far (pass it to
    ``fit(history=...)``), the checkpoint's ``extra`` and its ``path``."""

    epoch: int
    history: History
    extra: dict | None = None
    path: str = ""
    callbacks: list = field(default_factory=list)


def _read_training_checkpoint(path, op: str) -> dict:
    from ..io import load
    path = os.fspath(path)
    state = load(path)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        hint = ""
        if isinstance(state, dict) and state and all(isinstance(k, str) for k in state):
            hint = (" (it looks like a bare state_dict: load it with "
                    "model.load_state_dict(nf.load(path)))")
        raise ValueError(f"{op}: {path} is not an nnforge training checkpoint{hint}")
    if state.get("version") != VERSION:
        raise ValueError(f"{op}: {path} is a training checkpoint of version "
                         f"{state.get('version')!r}; this nnforge reads version {VERSION}")
    return state


def resume(checkpoint_path, model, optimizer, scheduler=None, loader=None, *,
           callbacks=()) -> Resumed:
    """Restores a ``ModelCheckpoint`` file into ``model``, ``optimizer``, ``scheduler``
    and the random streams (the default generator and ``loader``'s generator),
    and the state of ``callbacks`` of the same classes as were saved.

    Continuing with ``fit(..., start_epoch=r.epoch, history=r.history)`` then
    gives bit for bit the parameters of a run that never stopped, given the same
    seed, data, model and optimizer settings (and the same number of threads:
    the kernels' summation order depends on it).

    >>> # r = nf.train.resume("out/last.safetensors", model, opt, sched, loader=train_loader)
    >>> # nf.train.fit(model, loss_fn, opt, train_loader, epochs=10, scheduler=sched,
    >>> #              start_epoch=r.epoch, history=r.history)
    """
    state = _read_training_checkpoint(checkpoint_path, "resume")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if state.get("scheduler") is not None:
        if scheduler is None:
            warnings.warn(f"resume: {checkpoint_path} holds a learning-rate scheduler's state "
                          "but no scheduler was given; the lr schedule starts afresh",
                          stacklevel=2)
        else:
            scheduler.load_state_dict(state["scheduler"])
    elif scheduler is not None:
        warnings.warn(f"resume: {checkpoint_path} holds no scheduler state; the given "
                      "scheduler keeps its own", stacklevel=2)
    rng = state.get("rng") or {}
    if rng.get("default") is not None:
        _random.set_rng_state(rng["default"])
    gen = loader_generator(loader)
    if rng.get("loader") is not None:
        if gen is not None:
            gen.set_state(rng["loader"])
        else:
            warnings.warn(f"resume: {checkpoint_path} holds a data loader's generator state "
                          "but no loader with a generator was given; its shuffling will differ "
                          "from the original run", stacklevel=2)
    used = load_named_states(callbacks, state.get("callbacks") or {})
    return Resumed(epoch=int(state["epoch"]), history=History(state.get("history") or {}),
                   extra=state.get("extra"), path=os.fspath(checkpoint_path), callbacks=used)


def read_weights(path) -> tuple:
    """(state_dict, info) from a training checkpoint (its "model" part; info holds its
    "epoch" and "extra") or from a bare ``state_dict`` file (info is {})."""
    from ..io import load
    state = load(os.fspath(path))
    if isinstance(state, dict) and state.get("format") == FORMAT:
        return state["model"], {"epoch": state.get("epoch"), "extra": state.get("extra")}
    if not isinstance(state, dict):
        raise ValueError(f"read_weights: {os.fspath(path)} holds a {type(state).__name__}, not "
                         "a state_dict or a training checkpoint")
    return state, {}


def load_weights(path, model, *, strict: bool = True) -> dict:
    """Loads model weights from a training checkpoint or a bare ``state_dict`` file
    into ``model``; returns the info of ``read_weights`` ({} for a state_dict)."""
    weights, info = read_weights(path)
    model.load_state_dict(weights, strict=strict)
    return info
