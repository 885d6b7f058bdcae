"""Callbacks: code that ``fit`` runs at fixed points of training.

The hooks, in the order ``fit`` calls them::

    on_fit_begin(logs)
      on_epoch_begin(epoch, logs)          epoch counts from 0
        on_batch_begin(batch, logs)
          forward, loss, backward
        on_after_backward(batch, logs)     gradients are ready: clip them here
          optimizer.step()
        on_batch_end(batch, logs)          logs: "loss", the metrics, "size"
      on_epoch_end(epoch, logs)            logs: the epoch's row of the History
    on_fit_end(logs)
    teardown()                             always, also when training raised

Each callback sees the running fit through ``self.loop`` (a ``FitLoop``:
``model``, ``optimizer``, ``scheduler``, ``train_loader``, ``history``,
``epochs``, ``stop_training``, ...); setting ``self.loop.stop_training = True``
ends training after the current batch. At each hook the callbacks run by
ascending ``order`` (ties keep the given order): the progress line first, then
learning-rate schedules, then everything else, then checkpoints, so that a
checkpoint holds the state after the epoch's schedule step and early stopping.

A callback with state that matters for resuming (the best value so far, a
patience counter) returns it from ``state_dict()``; ``ModelCheckpoint`` saves
it and ``resume(..., callbacks=[...])`` loads it back.

>>> import nnforge as nf
>>> class CountBatches(nf.train.Callback):
...     def on_fit_begin(self, logs=None):
...         self.n = 0
...     def on_batch_end(self, batch, logs=None):
...         self.n += 1
"""
from __future__ import annotations

import math
import os

__all__ = ["Callback", "CallbackList", "ProgressBar", "EarlyStopping", "ModelCheckpoint",
           "LRSchedulerCallback", "GradientClipping"]


class Callback:
    """Base class: override the hooks you need; each does nothing by default."""

    #: Position among the callbacks at every hook (lower runs first).
    order: int = 0

    loop = None

    def set_loop(self, loop) -> None:
        self.loop = loop

    def on_fit_begin(self, logs: dict | None = None) -> None:
        pass

    def on_fit_end(self, logs: dict | None = None) -> None:
        pass

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        pass

    def on_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        pass

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        pass

    def on_after_backward(self, batch: int, logs: dict | None = None) -> None:
        pass

    def teardown(self) -> None:
        """Runs after fit ends, also when it ends with an exception."""

    def state_dict(self) -> dict:
        """What a checkpoint must hold to resume this callback (plain values or tensors)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class CallbackList:
    """Dispatches each hook to a list of callbacks, sorted by ``order``."""

    def __init__(self, callbacks, loop=None):
        callbacks = list(callbacks)
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"fit: callbacks must be nnforge.train.Callback instances, got "
                                f"{type(cb).__name__}")
        self.callbacks = sorted(callbacks, key=lambda cb: cb.order)  # sorted() is stable
        if loop is not None:
            for cb in self.callbacks:
                cb.set_loop(loop)

    def __iter__(self):
        return iter(self.callbacks)

    def __len__(self) -> int:
        return len(self.callbacks)

    def call(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(*args)

    def teardown(self) -> None:
        errors = []
        for cb in self.callbacks:
            try:
                cb.teardown()
            except Exception as e:  # noqa: BLE001 - every callback gets its teardown
                errors.append(e)
        if errors:
            raise errors[0]


def named_states(callbacks) -> dict:
    """{name: state} of the callbacks that have state; a name is the class name,
    with ``#1``, ``#2``... for the second and later of one class."""
    states, seen = {}, {}
    for cb in callbacks:
        name = type(cb).__name__
        i = seen.get(name, 0)
        seen[name] = i + 1
        state = cb.state_dict()
        if state:
            states[name if i == 0 else f"{name}#{i}"] = state
    return states


def load_named_states(callbacks, states: dict) -> list:
    """Loads ``named_states`` output into matching callbacks; returns the names used."""
    used, seen = [], {}
    for cb in callbacks:
        name = type(cb).__name__
        i = seen.get(name, 0)
        seen[name] = i + 1
        key = name if i == 0 else f"{name}#{i}"
        if key in states:
            cb.load_state_dict(states[key])
            used.append(key)
    return used


# --------------------------------------------------------------------------- helpers
def _resolve_mode(mode: str, monitor: str, op: str) -> str:
    if mode == "auto":
        return "max" if ("acc" in monitor or monitor.endswith(("f1", "auc"))) else "min"
    if mode not in ("min", "max"):
        raise ValueError(f"{op}: mode must be 'min', 'max' or 'auto', got {mode!r}")
    return mode


def _check_monitor(loop, monitor: str, op: str) -> None:
    """Fails before the first epoch when ``monitor`` will never be in the epoch logs."""
    keys = loop.log_keys()
    if monitor in keys:
        return
    hint = ""
    if monitor.startswith("val_") and loop.val_loader is None:
        hint = f"; it needs a val_loader (or monitor {monitor[4:]!r})"
    raise ValueError(f"{op}: monitor {monitor!r} is not in the epoch logs, which have "
                     f"{', '.join(sorted(keys))}{hint}")


def _improved(value, best, mode: str, min_delta: float) -> bool:
    if value is None or math.isnan(value):
        return False
    if best is None:
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


def _format_value(name: str, value) -> str:
    if value is None:
        return f"{name} -"
    if "acc" in name and 0.0 <= value <= 1.0:
        return f"{name} {value * 100:.2f}%"
    if name == "lr":
        return f"lr {value:.3g}"
    return f"{name} {value:.4f}"


# --------------------------------------------------------------------------- progress
class ProgressBar(Callback):
    """A tqdm bar over each epoch's batches showing the running loss, metrics and
    throughput, and one line per epoch with its results (through ``log``; with
    a bar and ``log=print`` through ``tqdm.write``, so the bars stay intact).
    ``fit(progress=..., log=...)`` adds one; ``enabled=False`` keeps the lines
    and drops the bars, ``log=None`` drops the lines."""

    order = -200

    def __init__(self, enabled: bool = True, log=print, *, mininterval: float = 0.2):
        self.enabled = enabled
        self.log = log
        self.mininterval = mininterval
        self._bar = None

    def _write(self, line: str) -> None:
        if self.log is None:
            return
        if self.enabled and self.log is print:
            from tqdm.auto import tqdm
            tqdm.write(line)
        else:
            self.log(line)

    def on_epoch_begin(self, epoch, logs=None):
        if not self.enabled:
            return
        from tqdm.auto import tqdm
        try:
            total = len(self.loop.train_loader)
        except TypeError:
            total = None
        width = len(str(self.loop.epochs))
        self._bar = tqdm(total=total, desc=f"epoch {epoch + 1:>{width}}/{self.loop.epochs}",
                         unit="batch", leave=False, dynamic_ncols=True,
                         mininterval=self.mininterval)

    def on_batch_end(self, batch, logs=None):
        if self._bar is None:
            return
        self._bar.update(1)
        running = self.loop.running_logs()
        parts = [_format_value(k, v) for k, v in running.items()]
        elapsed = self.loop.epoch_elapsed()
        if elapsed > 0:
            parts.append(f"{self.loop.samples_seen / elapsed:,.0f} samples/s")
        self._bar.set_postfix_str(", ".join(parts), refresh=False)

    def on_epoch_end(self, epoch, logs=None):
        self._close()
        logs = logs or {}
        skip = {"epoch", "epoch_time", "samples_per_s", "lr"}
        parts = [f"epoch {epoch + 1:3d}/{self.loop.epochs}"]
        parts += [_format_value(k, v) for k, v in logs.items() if k not in skip]
        if "lr" in logs:
            parts.append(_format_value("lr", logs["lr"]))
        parts.append(f"{logs.get('epoch_time', 0.0):.2f}s")
        if logs.get("samples_per_s"):
            parts.append(f"{logs['samples_per_s']:,.0f} samples/s")
        self._write("  ".join(parts))

    def _close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def teardown(self):
        self._close()


# --------------------------------------------------------------------------- early stopping
class EarlyStopping(Callback):
    """Stops training once ``monitor`` has not improved for ``patience`` epochs
    in a row (at least one), as Keras' ``EarlyStopping``.

    An improvement beats the best value so far by more than ``min_delta``
    (lower for ``mode="min"``, higher for ``"max"``; ``"auto"`` picks "max" for
    names with "acc" in them). With ``restore_best_weights`` the model gets the
    weights of its best epoch back when fit ends (whether it stopped early or
    ran out of epochs). ``best``, ``best_epoch`` (counting from 0) and
    ``stopped_epoch`` (None if it never stopped) tell what happened.

    >>> import nnforge as nf
    >>> stop = nf.train.EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
    """

    def __init__(self, monitor: str = "val_loss", mode: str = "auto", patience: int = 0,
                 min_delta: float = 0.0, restore_best_weights: bool = False,
                 verbose: bool = True):
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"EarlyStopping: patience must be a non-negative int, got "
                             f"{patience!r}")
        if min_delta < 0:
            raise ValueError(f"EarlyStopping: min_delta must be >= 0, got {min_delta}")
        self.monitor = monitor
        self.mode = _resolve_mode(mode, monitor, "EarlyStopping")
        self.patience = patience
        self.min_delta = float(min_delta)
        self.restore_best_weights = restore_best_weights
        self.verbose = verbose
        self._resumed = False
        self._reset()

    def _reset(self):
        self.best = None
        self.best_epoch = None
        self.wait = 0
        self.stopped_epoch = None
        self.best_weights = None

    def on_fit_begin(self, logs=None):
        _check_monitor(self.loop, self.monitor, "EarlyStopping")
        if not self._resumed:
            self._reset()
        self._resumed = False

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if _improved(value, self.best, self.mode, self.min_delta):
            self.best, self.best_epoch, self.wait = float(value), epoch, 0
            if self.restore_best_weights:
                self.best_weights = {k: v.detach().clone()
                                     for k, v in self.loop.model.state_dict().items()}
            return
        self.wait += 1
        if self.wait >= max(self.patience, 1):
            self.stopped_epoch = epoch
            self.loop.stop_training = True
            if self.verbose:
                self.loop.write(f"early stopping after epoch {epoch + 1}: {self.monitor} has not "
                                f"improved for {self.wait} epoch{'s' * (self.wait > 1)}; best "
                                f"{self.best:.4f} at epoch {self.best_epoch + 1}"
                                if self.best is not None else
                                f"early stopping after epoch {epoch + 1}: {self.monitor} is nan")

    def on_fit_end(self, logs=None):
        if not (self.restore_best_weights and self.best_weights is not None):
            return
        if self.best_epoch == self.loop.last_epoch:
            return  # the weights are the best ones already
        self.loop.model.load_state_dict(self.best_weights)
        if self.verbose:
            self.loop.write(f"restored the weights of epoch {self.best_epoch + 1} "
                            f"({self.monitor} {self.best:.4f})")

    def state_dict(self) -> dict:
        state = {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait,
                 "stopped_epoch": self.stopped_epoch}
        if self.best_weights is not None:
            state["best_weights"] = dict(self.best_weights)
        return state

    def load_state_dict(self, state: dict) -> None:
        self.best = state.get("best")
        self.best_epoch = state.get("best_epoch")
        self.wait = state.get("wait", 0)
        self.stopped_epoch = state.get("stopped_epoch")
        weights = state.get("best_weights")
        self.best_weights = dict(weights) if weights is not None else None
        self._resumed = True


# --------------------------------------------------------------------------- checkpoints
class ModelCheckpoint(Callback):
    """Saves training checkpoints to ``dirpath``: ``last.safetensors`` after every
    epoch (``save_last``) and ``best.safetensors`` whenever ``monitor`` improves
    (``save_best``; ``mode`` as in ``EarlyStopping``).

    A checkpoint is an ``nf.save`` file (safetensors, written atomically) of::

        {"format": "nnforge.train.checkpoint", "version": 1,
         "epoch": epochs completed, "model": model.state_dict(),
         "optimizer": optimizer.state_dict(), "scheduler": its state_dict() or None,
         "rng": {"default": the default generator's state,
                 "loader": the training loader's generator state or None},
         "history": the History so far, "callbacks": {name: state},
         "monitor": {"name": ..., "value": ..., "best": ...}, "extra": extra}

    so ``nf.train.resume(path, model, optimizer, scheduler, loader)`` continues
    the run exactly, and ``nf.load(path)["model"]`` gives the weights alone.
    ``extra`` (plain values: the model's configuration, say) is stored as given.

    >>> import nnforge as nf, tempfile
    >>> ckpt = nf.train.ModelCheckpoint(tempfile.mkdtemp(), monitor="val_loss")
    """

    order = 100
    rank_zero_only = True  # in a data-parallel fit, only rank 0 writes (train/distributed.py)
    BEST = "best.safetensors"
    LAST = "last.safetensors"

    def __init__(self, dirpath, monitor: str = "val_loss", mode: str = "auto",
                 save_best: bool = True, save_last: bool = True, *, extra: dict | None = None,
                 verbose: bool = False):
        if not (save_best or save_last):
            raise ValueError("ModelCheckpoint: save_best and save_last are both False; "
                             "nothing would be saved")
        self.dirpath = os.fspath(dirpath)
        self.monitor = monitor
        self.mode = _resolve_mode(mode, monitor, "ModelCheckpoint")
        self.save_best = save_best
        self.save_last = save_last
        self.extra = extra
        self.verbose = verbose
        self.best = None
        self.best_epoch = None
        self._resumed = False

    @property
    def best_path(self) -> str:
        return os.path.join(self.dirpath, self.BEST)

    @property
    def last_path(self) -> str:
        return os.path.join(self.dirpath, self.LAST)

    def on_fit_begin(self, logs=None):
        if self.save_best:
            _check_monitor(self.loop, self.monitor, "ModelCheckpoint")
        os.makedirs(self.dirpath, exist_ok=True)
        if not self._resumed:
            self.best, self.best_epoch = None, None
        self._resumed = False

    def on_epoch_end(self, epoch, logs=None):
        from ..io import save
        from .checkpoint import training_state
        value = (logs or {}).get(self.monitor)
        improved = self.save_best and _improved(value, self.best, self.mode, 0.0)
        if improved:
            self.best, self.best_epoch = float(value), epoch
        if not (improved or self.save_last):
            return
        loop = self.loop
        state = training_state(loop.model, loop.optimizer, epoch=epoch + 1,
                               scheduler=loop.scheduler, loader=loop.train_loader,
                               history=loop.history, callbacks=loop.callbacks, extra=self.extra)
        state["monitor"] = {"name": self.monitor, "value": value, "best": self.best}
        if self.save_last:
            save(state, self.last_path)
        if improved:
            save(state, self.best_path)
            if self.verbose:
                loop.write(f"saved {self.best_path} ({self.monitor} {value:.4f})")

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict) -> None:
        self.best = state.get("best")
        self.best_epoch = state.get("best_epoch")
        self._resumed = True


# --------------------------------------------------------------------------- lr schedules
class LRSchedulerCallback(Callback):
    """Steps an ``nf.optim.lr_scheduler`` scheduler: once per epoch after its
    validation (``interval="epoch"``) or after every optimizer step
    (``interval="batch"``). ``ReduceLROnPlateau`` steps per epoch with the
    epoch's ``monitor`` value. ``fit(scheduler=...)`` adds one per epoch.

    The lr an epoch trained with is in the History under "lr" (the first
    parameter group's, read when the epoch began)."""

    order = -100

    def __init__(self, scheduler, interval: str = "epoch", monitor: str = "val_loss"):
        from ..optim.lr_scheduler import LRScheduler
        if not isinstance(scheduler, LRScheduler):
            raise TypeError(f"LRSchedulerCallback: expected an nf.optim.lr_scheduler scheduler, "
                            f"got {type(scheduler).__name__}")
        if interval not in ("epoch", "batch"):
            raise ValueError(f"LRSchedulerCallback: interval must be 'epoch' or 'batch', got "
                             f"{interval!r}")
        self.scheduler = scheduler
        self.interval = interval
        self.monitor = monitor
        self.plateau = type(scheduler).__name__ == "ReduceLROnPlateau"
        if self.plateau and interval != "epoch":
            raise ValueError("LRSchedulerCallback: ReduceLROnPlateau steps once per epoch with "
                             "the monitored value; use interval='epoch'")

    def on_fit_begin(self, logs=None):
        if self.plateau:
            _check_monitor(self.loop, self.monitor, "LRSchedulerCallback")
        if self.scheduler.optimizer is not self.loop.optimizer:
            raise ValueError("LRSchedulerCallback: the scheduler belongs to another optimizer "
                             "than the one fit trains with")
        if self.loop.scheduler is None:
            self.loop.scheduler = self.scheduler  # the one checkpoints save

    def on_batch_end(self, batch, logs=None):
        if self.interval == "batch":
            self.scheduler.step()

    def on_epoch_end(self, epoch, logs=None):
        if self.interval != "epoch":
            return
        if self.plateau:
            self.scheduler.step((logs or {})[self.monitor])
        else:
            self.scheduler.step()


# --------------------------------------------------------------------------- clipping
class GradientClipping(Callback):
    """Clips the gradients between ``backward()`` and ``optimizer.step()``: to a
    total ``max_norm`` (``nn.utils.clip_grad_norm_``, with ``norm_type``) or to
    [-clip_value, clip_value] elementwise (``nn.utils.clip_grad_value_``).
    ``last_norm`` is the total norm before the last clipping (max_norm only).
    ``fit(grad_clip=x)`` adds ``GradientClipping(max_norm=x)``.

    >>> import nnforge as nf
    >>> clip = nf.train.GradientClipping(max_norm=1.0)
    """

    def __init__(self, max_norm: float | None = None, clip_value: float | None = None,
                 norm_type: float = 2.0, error_if_nonfinite: bool = False):
        if (max_norm is None) == (clip_value is None):
            raise ValueError("GradientClipping: give exactly one of max_norm and clip_value")
        for name, v in (("max_norm", max_norm), ("clip_value", clip_value)):
            if v is not None and not (isinstance(v, (int, float)) and v > 0):
                raise ValueError(f"GradientClipping: {name} must be a positive number, got {v!r}")
        self.max_norm = max_norm
        self.clip_value = clip_value
        self.norm_type = norm_type
        self.error_if_nonfinite = error_if_nonfinite
        self.last_norm = None

    def _parameters(self):
        return [p for group in self.loop.optimizer.param_groups for p in group["params"]
                if p.grad is not None]

    def on_after_backward(self, batch, logs=None):
        from ..nn.utils import clip_grad_norm_, clip_grad_value_
        params = self._parameters()
        if not params:
            return
        if self.max_norm is not None:
            norm = clip_grad_norm_(params, self.max_norm, self.norm_type,
                                   error_if_nonfinite=self.error_if_nonfinite)
            self.last_norm = float(norm.item())
        else:
            clip_grad_value_(params, self.clip_value)

