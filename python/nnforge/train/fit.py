"""``fit``: the training loop, with metrics, validation, callbacks and a progress bar.

One epoch, as ``fit`` runs it::

    model.train()
    for inputs..., targets in train_loader:          # the last item is the target
        optimizer.zero_grad()
        loss = loss_fn(model(*inputs), targets)
        loss.backward()
        (callbacks: on_after_backward, e.g. gradient clipping)
        optimizer.step()
    model.eval(); with no_grad(): the same loss and metrics over val_loader
    (callbacks: on_epoch_end: lr schedule, early stopping, checkpoints)

Losses and metrics of an epoch are means over its samples: each batch counts
with its number of samples, which is exact for a loss with reduction="mean".
"""
from __future__ import annotations

import json
import math
import os
import time

from ..autograd.grad_mode import no_grad
from ..tensor import Tensor
from .callbacks import CallbackList, GradientClipping, LRSchedulerCallback, ProgressBar
from .distributed import DataParallelRun, data_parallel_active, is_main_process
from .metrics import get_metric

__all__ = ["fit", "evaluate", "History", "FitLoop"]


class History(dict):
    """What ``fit`` returns: a dict of per-epoch lists, one entry per epoch.

    Keys: "epoch" (1, 2, ...), "loss" and each metric by name (training means),
    "val_loss" and "val_" + each metric (with a val_loader), "lr" (the first
    parameter group's lr the epoch trained with), "epoch_time" (seconds,
    validation included) and "samples_per_s" (training throughput). A key a
    callback adds to the epoch logs is recorded too; an epoch without it has None.

    >>> h = History()
    >>> h.append({"epoch": 1, "loss": 0.9}); h.append({"epoch": 2, "loss": 0.4})
    >>> h["loss"], h.epochs, h.best("loss")
    ([0.9, 0.4], 2, (1, 0.4))
    """

    def __init__(self, data: dict | None = None):
        super().__init__()
        for key, values in (data or {}).items():
            self[key] = list(values)

    @property
    def epochs(self) -> int:
        """Number of epochs recorded."""
        return max((len(v) for v in self.values()), default=0)

    def append(self, logs: dict) -> None:
        """Adds one epoch's logs, keeping every list one entry per epoch."""
        n = self.epochs
        for key, value in logs.items():
            self.setdefault(key, [None] * n).append(value)
        for key, values in self.items():
            if len(values) == n:
                values.append(None)

    def best(self, monitor: str = "val_loss", mode: str = "auto") -> tuple:
        """(epoch index from 0, value) of the best epoch by ``monitor`` (None if unknown)."""
        from .callbacks import _resolve_mode
        mode = _resolve_mode(mode, monitor, "History.best")
        values = [(i, v) for i, v in enumerate(self.get(monitor, []))
                  if v is not None and not math.isnan(v)]
        if not values:
            return None, None
        pick = min if mode == "min" else max
        return pick(values, key=lambda iv: iv[1])

    def to_dict(self) -> dict:
        return {k: list(v) for k, v in self.items()}

    def save_json(self, path) -> None:
        """Writes the history as JSON (NaN and infinities as null)."""
        def clean(v):
            return None if isinstance(v, float) and not math.isfinite(v) else v
        data = {k: [clean(v) for v in values] for k, values in self.items()}
        # One line per key: easy to read and to diff.
        body = ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in data.items())
        tmp = f"{os.fspath(path)}.tmp"
        with open(tmp, "w") as f:
            f.write("{\n" + body + "\n}\n" if data else "{}\n")
        os.replace(tmp, path)

    @classmethod
    def load_json(cls, path) -> "History":
        with open(path) as f:
            return cls(json.load(f))

    def __repr__(self) -> str:
        return f"History(epochs={self.epochs}, keys={list(self)})"


# --------------------------------------------------------------------------- batches
def _to_device(obj, device):
    if device is None:
        return obj
    if isinstance(obj, Tensor):
        return obj.to(device)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_device(o, device) for o in obj) if not hasattr(obj, "_fields") \
            else type(obj)(*(_to_device(o, device) for o in obj))
    if isinstance(obj, dict):
        return {k: _to_device(v, device) for k, v in obj.items()}
    return obj


def _split_batch(batch, op: str):
    """(inputs tuple, targets): the last item of a batch is the target."""
    if not isinstance(batch, (list, tuple)) or len(batch) < 2:
        what = f"a {type(batch).__name__}" + (f" of {len(batch)}" if isinstance(
            batch, (list, tuple)) else "")
        raise TypeError(f"{op}: each batch must be a tuple (inputs..., targets), got {what}; "
                        "for an autoencoder use a TensorDataset(x, x)")
    return tuple(batch[:-1]), batch[-1]


def _batch_size(inputs, targets) -> int:
    for t in (targets,) + tuple(inputs):
        if isinstance(t, Tensor) and t.ndim > 0:
            return int(t.shape[0])
        if isinstance(t, (list, tuple)) and t:
            return len(t)
    return 1


class _Means:
    """Sample-weighted running means of named values."""

    def __init__(self):
        self.sums: dict = {}
        self.count = 0

    def add(self, values: dict, n: int) -> None:
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + v * n
        self.count += n

    def means(self) -> dict:
        if self.count == 0:
            return {k: math.nan for k in self.sums}
        return {k: s / self.count for k, s in self.sums.items()}


def _check_device(device, op: str):
    if device is None:
        return None
    from ..device import as_device
    dev = as_device(device)
    if dev.type == "cuda":
        from .. import cuda
        if not cuda.is_available():
            reason = ("this nnforge was built without CUDA" if not cuda.is_built() else
                      "no CUDA device is visible" if cuda.device_count() == 0 else
                      "the CUDA backend is not part of this version yet")
            raise ValueError(f"{op}: device {device!r} is not available: {reason}; use "
                             "device='cpu'")
    return dev


# --------------------------------------------------------------------------- evaluation
def _score_loader(model, loader, loss_fn, metrics, device, op: str) -> dict:
    """Sample-weighted means of the loss and metrics over ``loader``, in no_grad."""
    means = _Means()
    with no_grad():
        for batch in loader:
            inputs, targets = _split_batch(_to_device(batch, device), op)
            outputs = model(*inputs)
            values = {}
            if loss_fn is not None:
                values["loss"] = float(loss_fn(outputs, targets).item())
            for name, fn in metrics:
                values[name] = float(fn(outputs, targets))
            means.add(values, _batch_size(inputs, targets))
    if means.count == 0:
        keys = (["loss"] if loss_fn is not None else []) + [name for name, _ in metrics]
        return {k: math.nan for k in keys}
    return means.means()


def evaluate(model, loader, loss_fn=None, metrics=("accuracy",), *, device=None) -> dict:
    """Mean loss (when ``loss_fn`` is given) and metrics of ``model`` over
    ``loader``, in eval mode and without gradients; the model's train/eval mode
    is restored afterwards.

    >>> import nnforge as nf
    >>> ds = nf.data.TensorDataset(nf.randn(8, 3), nf.tensor([0, 1] * 4))
    >>> scores = evaluate(nf.nn.Linear(3, 2), nf.data.DataLoader(ds, batch_size=4),
    ...                   nf.nn.CrossEntropyLoss())
    >>> sorted(scores)
    ['accuracy', 'loss']
    """
    named = [get_metric(m) for m in metrics]
    dev = _check_device(device, "evaluate")
    if dev is not None:
        model.to(dev)
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        return _score_loader(model, loader, loss_fn, named, dev, "evaluate")
    finally:
        for m, mode in modes:
            m.training = mode


# --------------------------------------------------------------------------- the loop
class FitLoop:
    """The state of one ``fit`` call, as callbacks see it (``callback.loop``).

    Attributes: ``model``, ``loss_fn``, ``optimizer``, ``scheduler`` (the one
    checkpoints save), ``train_loader``, ``val_loader``, ``epochs``,
    ``start_epoch``, ``epoch`` (the current one, from 0), ``last_epoch`` (the
    last finished one), ``global_step`` (optimizer steps in this fit),
    ``history``, ``callbacks``, ``metric_names``, ``device`` and
    ``stop_training`` (set it to end training after the current batch).
    """

    def __init__(self, model, loss_fn, optimizer, train_loader, val_loader, epochs, callbacks,
                 metrics, scheduler, device, start_epoch, history, log, parallel=None):
        self.model = model
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.train_loader = train_loader
        self.val_loader = val_loader
        self.epochs = epochs
        self.start_epoch = start_epoch
        self.epoch = start_epoch
        self.last_epoch = None
        self.global_step = 0
        self.history = history
        self.metrics = metrics
        self.metric_names = [name for name, _ in metrics]
        self.device = device
        self.stop_training = False
        self.samples_seen = 0
        self._log = log
        self._means = _Means()
        self._epoch_t0 = time.perf_counter()
        self.callbacks = CallbackList(callbacks, self)
        # One rank of a data-parallel job (train/distributed.py): train through DDP on a
        # shard of the loader. ``model`` stays the plain model for callbacks and checkpoints.
        self.train_model = model
        self._parallel = None
        if parallel is not None:
            self._parallel = parallel
            self.train_model = parallel.ddp
            self.train_loader = parallel.train_loader

    # ---- helpers for callbacks
    def log_keys(self) -> set:
        """The names every epoch's logs will have."""
        keys = {"epoch", "lr", "epoch_time", "samples_per_s", "loss", *self.metric_names}
        if self.val_loader is not None:
            keys |= {"val_loss"} | {f"val_{m}" for m in self.metric_names}
        return keys

    def running_logs(self) -> dict:
        """Means of the loss and metrics over the current epoch's batches so far."""
        return self._means.means()

    def epoch_elapsed(self) -> float:
        return time.perf_counter() - self._epoch_t0

    def write(self, line: str) -> None:
        """Prints a line without breaking the progress bars (or sends it to ``log``)."""
        for cb in self.callbacks:
            if isinstance(cb, ProgressBar):
                cb._write(line)
                return
        if self._log is not None:
            self._log(line)

    # ---- the loop
    def _train_epoch(self, epoch: int) -> dict:
        model, opt, cbs = self.train_model, self.optimizer, self.callbacks
        model.train()
        if self._parallel is not None:
            self._parallel.begin_epoch(epoch)
        self._means = _Means()
        self.samples_seen = 0
        for i, batch in enumerate(self.train_loader):
            logs = {}
            cbs.call("on_batch_begin", i, logs)
            inputs, targets = _split_batch(_to_device(batch, self.device), "fit")
            n = _batch_size(inputs, targets)
            opt.zero_grad()
            outputs = model(*inputs)
            loss = self.loss_fn(outputs, targets)
            loss.backward()
            cbs.call("on_after_backward", i, logs)
            opt.step()
            logs["loss"] = float(loss.item())
            with no_grad():
                for name, fn in self.metrics:
                    logs[name] = float(fn(outputs, targets))
            self._means.add(logs, n)
            logs["size"] = n
            self.samples_seen += n
            self.global_step += 1
            cbs.call("on_batch_end", i, logs)
            if self.stop_training:
                break
        if self._parallel is not None:
            self._parallel.end_epoch(self._means)
            self.samples_seen = self._means.count  # all ranks': throughput of the job
        if self._means.count == 0:
            raise ValueError("fit: train_loader gave no batches (an empty data set, or "
                             "drop_last with fewer samples than batch_size?)")
        return self._means.means()

    def run(self) -> History:
        cbs = self.callbacks
        try:
            cbs.call("on_fit_begin", {})
            if self.start_epoch >= self.epochs:
                self.write(f"nothing to train: {self.start_epoch} epochs done already, "
                           f"epochs={self.epochs}")
            for epoch in range(self.start_epoch, self.epochs):
                self.epoch = epoch
                self._epoch_t0 = time.perf_counter()
                logs = {"epoch": epoch + 1, "lr": float(self.optimizer.param_groups[0]["lr"])}
                cbs.call("on_epoch_begin", epoch, logs)
                logs.update(self._train_epoch(epoch))
                train_time = time.perf_counter() - self._epoch_t0
                if self.val_loader is not None:
                    self.model.eval()
                    scores = _score_loader(self.model, self.val_loader, self.loss_fn,
                                           self.metrics, self.device, "fit (validation)")
                    logs.update({f"val_{k}": v for k, v in scores.items()})
                logs["epoch_time"] = time.perf_counter() - self._epoch_t0
                logs["samples_per_s"] = self.samples_seen / train_time if train_time > 0 else 0.0
                self.history.append(logs)
                self.last_epoch = epoch
                cbs.call("on_epoch_end", epoch, logs)
                if self.stop_training:
                    break
            cbs.call("on_fit_end", {})
        finally:
            cbs.teardown()
        return self.history


def fit(model, loss_fn, optimizer, train_loader, val_loader=None, epochs: int = 1,
        callbacks=(), metrics=(), *, scheduler=None, grad_clip: float | None = None,
        device=None, progress: bool = True, log=print, start_epoch: int = 0,
        history: History | None = None, distributed: bool | None = None) -> History:
    """Trains ``model`` and returns its ``History``.

    - ``loss_fn(outputs, targets)``: a loss with reduction "mean"; batches are
      tuples ``(inputs..., targets)`` and the model is called as ``model(*inputs)``.
    - ``val_loader``: evaluated after each epoch (eval mode, no_grad) into
      "val_loss" and "val_<metric>".
    - ``epochs``: the epoch to stop at, counting from 0 like ``start_epoch``
      (Keras' ``epochs``/``initial_epoch``): ``fit(..., epochs=4, start_epoch=2)``
      runs the third and fourth epochs.
    - ``metrics``: names ("accuracy", "top5_accuracy", "mae", ...) or callables
      ``(outputs, targets) -> float`` (see ``nf.train.metrics``).
    - ``callbacks``: ``Callback`` instances (early stopping, checkpoints, ...).
    - ``scheduler``: an lr scheduler stepped once per epoch (``ReduceLROnPlateau``
      with "val_loss", or "loss" without a val_loader); for per-batch steps
      use ``LRSchedulerCallback(s, interval="batch")``.
    - ``grad_clip``: clip the gradients' total norm to this value each step.
    - ``device``: moves the model and each batch there ("cpu", "cuda").
    - ``progress``: a tqdm bar per epoch; ``log``: where the per-epoch lines go
      (``print``; None for silence). ``history``: a History to continue (from
      ``resume``), to which the new epochs are appended.
    - ``distributed``: train as one rank of a data-parallel job (DDP, a sharded
      loader, rank 0 alone logs and checkpoints; see ``nf.train.distributed``).
      None: when a process group of more than one rank is initialized.

    >>> import nnforge as nf
    >>> _ = nf.manual_seed(0)
    >>> x = nf.randn(64, 2); y = (x[:, 0] > 0).long()
    >>> loader = nf.data.DataLoader(nf.data.TensorDataset(x, y), batch_size=16)
    >>> model = nf.nn.Linear(2, 2)
    >>> opt = nf.optim.SGD(model.parameters(), lr=0.5)
    >>> h = fit(model, nf.nn.CrossEntropyLoss(), opt, loader, epochs=3, metrics=["accuracy"],
    ...         progress=False, log=None)
    >>> len(h["loss"]), h["accuracy"][-1] > 0.8
    (3, True)
    """
    for name, v in (("epochs", epochs), ("start_epoch", start_epoch)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"fit: {name} must be a non-negative int, got {v!r}")
    if not callable(loss_fn):
        raise TypeError(f"fit: loss_fn must be callable (outputs, targets) -> loss, got "
                        f"{type(loss_fn).__name__}")
    if not hasattr(optimizer, "param_groups"):
        raise TypeError(f"fit: optimizer must be an nnforge optimizer, got "
                        f"{type(optimizer).__name__}")
    if isinstance(metrics, (str, bytes)) or callable(metrics):
        metrics = [metrics]
    named = [get_metric(m) for m in metrics]
    names = [n for n, _ in named]
    if len(set(names)) != len(names) or "loss" in names:
        raise ValueError(f"fit: metric names must be distinct and not 'loss', got {names}")
    if isinstance(callbacks, (list, tuple)):
        callbacks = list(callbacks)
    else:
        callbacks = [callbacks] if callbacks is not None else []

    dev = _check_device(device, "fit")
    if dev is not None:
        model.to(dev)
    parallel = None
    if distributed or (distributed is None and data_parallel_active()):
        from ..nn.parallel import DistributedDataParallel
        parallel = DataParallelRun(model, train_loader)
        if isinstance(model, DistributedDataParallel):
            model = model.module
        if not is_main_process():
            progress, log = False, None
            callbacks = [cb for cb in callbacks if not getattr(cb, "rank_zero_only", False)]

    extra = []
    if not any(isinstance(cb, ProgressBar) for cb in callbacks):
        extra.append(ProgressBar(enabled=progress, log=log))
    if scheduler is not None:
        extra.append(LRSchedulerCallback(scheduler, monitor="val_loss" if val_loader is not None
                                         else "loss"))
    if grad_clip is not None:
        extra.append(GradientClipping(max_norm=grad_clip))
    history = History() if history is None else history
    if not isinstance(history, History):
        history = History(history)
    loop = FitLoop(model, loss_fn, optimizer, train_loader, val_loader, epochs,
                   extra + callbacks, named, scheduler, dev, start_epoch, history, log,
                   parallel)
    return loop.run()
