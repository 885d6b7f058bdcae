"""Callbacks: early stopping, checkpoints, bit-exact resume, lr schedules, clipping."""
import os

import numpy as np
import pytest

import nnforge as nf
from nnforge import nn
from nnforge.data import DataLoader, TensorDataset
from nnforge.optim import lr_scheduler
from nnforge.train import (Callback, EarlyStopping, GradientClipping, LRSchedulerCallback,
                           ModelCheckpoint, fit, resume)


def _data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n)
    x = rng.normal(size=(n, 6)).astype(np.float32) + np.eye(3, 6, dtype=np.float32)[y] * 2
    return nf.from_numpy(x), nf.from_numpy(y.astype(np.int64))


def _run_objects(seed=0, loader_seed=0, optimizer="sgd", dropout=0.3, lr=0.05):
    """A fresh model, optimizer, StepLR schedule and shuffling loaders; ``seed`` goes to the
    default generator before the model is built."""
    nf.manual_seed(seed)
    x, y = _data()
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 3))
    if optimizer == "adam":
        opt = nf.optim.Adam(model.parameters(), lr=lr * 0.2)
    else:
        opt = nf.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-3)
    sched = lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    train = DataLoader(TensorDataset(x, y), batch_size=10, shuffle=True,
                       generator=nf.Generator().manual_seed(loader_seed))
    val = DataLoader(TensorDataset(x, y), batch_size=16)
    return model, opt, sched, train, val


def _params(model):
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


class _Scripted(Callback):
    """Replaces the epoch's val_loss by scripted values (before the other callbacks
    see it) and keeps a copy of the weights of every epoch."""

    order = -150

    def __init__(self, values):
        self.values = values
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        logs["val_loss"] = self.values[epoch]
        self.weights.append(_params(self.loop.model))


# --------------------------------------------------------------------------- early stopping
@pytest.mark.parametrize("patience, values, stop_epoch, best_epoch", [
    (2, [1.0, 0.8, 0.9, 0.85, 0.7, 0.6], 3, 1),   # two epochs without improvement
    (2, [1.0, 0.8, 0.9, 0.7, 0.75, 0.72], 5, 3),  # the patience counter restarts at 0.7
    (0, [1.0, 0.9, 0.95, 0.5], 2, 1),             # patience 0 stops at the first miss
    (3, [1.0, 0.9, 0.8, 0.7], None, 3),           # never stops
])
def test_early_stopping_epoch_and_restored_weights(patience, values, stop_epoch, best_epoch):
    model, opt, _, train, val = _run_objects()
    script = _Scripted(values)
    stop = EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True,
                         verbose=False)
    h = fit(model, nn.CrossEntropyLoss(), opt, train, val, epochs=len(values),
            callbacks=[stop, script], progress=False, log=None)
    assert stop.stopped_epoch == stop_epoch
    assert h.epochs == (stop_epoch + 1 if stop_epoch is not None else len(values))
    assert stop.best_epoch == best_epoch and stop.best == values[best_epoch]
    final = _params(model)
    for k, v in script.weights[best_epoch].items():
        assert np.array_equal(final[k], v)


def test_early_stopping_min_delta_mode_and_messages():
    model, opt, _, train, val = _run_objects()
    # min_delta 0.1: 0.95 and 0.91 are no improvement over 1.0
    stop = EarlyStopping(patience=2, min_delta=0.1, verbose=True)
    lines = []
    fit(model, nn.CrossEntropyLoss(), opt, train, val, epochs=5,
        callbacks=[stop, _Scripted([1.0, 0.95, 0.91, 0.5, 0.4])], progress=False, log=lines.append)
    assert stop.stopped_epoch == 2 and stop.best_epoch == 0
    assert "early stopping after epoch 3: val_loss has not improved for 2 epochs" in lines[-1]
    # "auto" picks max for accuracies; mode="max" on a falling loss stops at once
    assert EarlyStopping(monitor="val_accuracy").mode == "max"
    stop = EarlyStopping(monitor="loss", mode="max", verbose=False)
    h = fit(model, nn.CrossEntropyLoss(), opt, train, epochs=5, callbacks=[stop],
            progress=False, log=None)
    assert h.epochs == 2 and stop.stopped_epoch == 1
    with pytest.raises(ValueError, match="monitor 'val_loss' is not in the epoch logs.*needs "
                                         "a val_loader"):
        fit(model, nn.CrossEntropyLoss(), opt, train, epochs=1, callbacks=[EarlyStopping()],
            progress=False, log=None)
    with pytest.raises(ValueError, match="mode must be"):
        EarlyStopping(mode="lowest")


# --------------------------------------------------------------------------- checkpoints
def test_model_checkpoint_files_and_contents(tmp_path):
    model, opt, sched, train, val = _run_objects()
    ckpt = ModelCheckpoint(tmp_path / "run", monitor="val_loss", extra={"hidden": 16})
    script = _Scripted([1.0, 0.5, 0.7, 0.9])  # best: the second epoch
    h = fit(model, nn.CrossEntropyLoss(), opt, train, val, epochs=4, callbacks=[ckpt, script],
            scheduler=sched, metrics=["accuracy"], progress=False, log=None)
    assert sorted(os.listdir(tmp_path / "run")) == ["best.safetensors", "last.safetensors"]

    last = nf.load(ckpt.last_path)
    assert {"format", "version", "epoch", "model", "optimizer", "scheduler", "rng", "history",
            "callbacks", "monitor", "extra"} <= set(last)
    assert last["format"] == "nnforge.train.checkpoint" and last["epoch"] == 4
    for k, v in model.state_dict().items():
        assert np.array_equal(last["model"][k].numpy(), v.numpy())
    momentum = last["optimizer"]["state"][0]["momentum_buffer"]
    assert np.array_equal(momentum.numpy(), opt.state[opt.param_groups[0]["params"][0]]
                          ["momentum_buffer"].numpy())
    assert last["scheduler"]["last_epoch"] == 4 and last["extra"] == {"hidden": 16}
    # the random streams as they were after the last epoch
    assert last["rng"]["default"] == nf.get_rng_state()
    assert last["rng"]["loader"] == train.generator.get_state()
    assert last["history"]["loss"] == h["loss"] and last["history"]["epoch"] == [1, 2, 3, 4]
    assert last["callbacks"]["ModelCheckpoint"] == {"best": 0.5, "best_epoch": 1}
    assert last["monitor"] == {"name": "val_loss", "value": 0.9, "best": 0.5}

    best = nf.load(ckpt.best_path)
    assert best["epoch"] == 2 and best["monitor"]["value"] == 0.5
    for k, v in script.weights[1].items():
        assert np.array_equal(best["model"][k].numpy(), v)
    # the weights read back by name with the flat safetensors reader
    flat = nf.io.load_file(ckpt.best_path)
    assert np.array_equal(flat["model.0.weight"].numpy(), script.weights[1]["0.weight"])
    # loading the weights into a fresh model
    fresh = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))
    info = nf.train.load_weights(ckpt.best_path, fresh)
    assert info == {"epoch": 2, "extra": {"hidden": 16}}
    assert np.array_equal(fresh[0].weight.detach().numpy(), script.weights[1]["0.weight"])


def test_model_checkpoint_last_only_without_validation(tmp_path):
    model, opt, _, train, _ = _run_objects()
    ckpt = ModelCheckpoint(tmp_path, save_best=False)
    fit(model, nn.CrossEntropyLoss(), opt, train, epochs=1, callbacks=[ckpt], progress=False,
        log=None)
    assert os.listdir(tmp_path) == ["last.safetensors"]
    with pytest.raises(ValueError, match="monitor 'val_loss'"):
        fit(model, nn.CrossEntropyLoss(), opt, train, epochs=1, progress=False, log=None,
            callbacks=[ModelCheckpoint(tmp_path)])
    with pytest.raises(ValueError, match="nothing would be saved"):
        ModelCheckpoint(tmp_path, save_best=False, save_last=False)


# --------------------------------------------------------------------------- resume
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_resume_is_bit_exact(tmp_path, optimizer):
    """4 epochs straight == 2 epochs, checkpoint, fresh objects, resume, 2 more epochs
    (shuffling, dropout, momentum or Adam moments, a StepLR schedule, early stopping)."""
    loss = nn.CrossEntropyLoss()

    model, opt, sched, train, val = _run_objects(optimizer=optimizer)
    stop = EarlyStopping(patience=10, verbose=False)
    straight = fit(model, loss, opt, train, val, epochs=4, scheduler=sched, callbacks=[stop],
                   progress=False, log=None)
    expected = _params(model)

    model, opt, sched, train, val = _run_objects(optimizer=optimizer)
    fit(model, loss, opt, train, val, epochs=2, scheduler=sched, progress=False, log=None,
        callbacks=[ModelCheckpoint(tmp_path), EarlyStopping(patience=10, verbose=False)])
    del model, opt, sched, train, val

    # Fresh objects from other seeds: everything that matters must come from the file.
    model, opt, sched, train, val = _run_objects(seed=123, loader_seed=7, optimizer=optimizer)
    nf.rand(5)
    stop2 = EarlyStopping(patience=10, verbose=False)
    state = resume(tmp_path / "last.safetensors", model, opt, sched, loader=train,
                   callbacks=[stop2])
    assert state.epoch == 2 and state.history["epoch"] == [1, 2]
    assert state.callbacks == ["EarlyStopping"] and stop2.best_epoch in (0, 1)
    resumed = fit(model, loss, opt, train, val, epochs=4, scheduler=sched, callbacks=[stop2],
                  start_epoch=state.epoch, history=state.history, progress=False, log=None)

    got = _params(model)
    for k in expected:
        assert np.array_equal(got[k], expected[k]), k
    for key in ("loss", "val_loss", "lr", "epoch"):
        assert resumed[key] == straight[key], key
    assert (stop2.best_epoch, stop2.best) == (stop.best_epoch, stop.best)


def test_resume_errors_and_warnings(tmp_path):
    model, opt, sched, train, _ = _run_objects()
    nf.save(model.state_dict(), tmp_path / "weights.safetensors")
    with pytest.raises(ValueError, match="not an nnforge training checkpoint.*bare state_dict"):
        resume(tmp_path / "weights.safetensors", model, opt)
    fit(model, nn.CrossEntropyLoss(), opt, train, epochs=1, scheduler=sched, progress=False,
        log=None, callbacks=[ModelCheckpoint(tmp_path, save_best=False)])
    with pytest.warns(UserWarning, match="scheduler"):
        resume(tmp_path / "last.safetensors", model, opt, loader=train)
    with pytest.warns(UserWarning, match="generator"):
        resume(tmp_path / "last.safetensors", model, opt, sched)


# --------------------------------------------------------------------------- lr schedules
def _manual_run(epochs, make_sched, per_batch=False, monitor_loss=False):
    model, opt, _, train, _ = _run_objects(dropout=0.0)
    sched = make_sched(opt)
    loss_fn = nn.CrossEntropyLoss()
    lrs = []
    for _ in range(epochs):
        lrs.append(opt.param_groups[0]["lr"])
        total, count = 0.0, 0
        model.train()
        for x, y in train:
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            total += loss.item() * x.shape[0]
            count += x.shape[0]
            if per_batch:
                sched.step()
        if monitor_loss:
            sched.step(total / count)
        elif not per_batch:
            sched.step()
    return _params(model), lrs


@pytest.mark.parametrize("kind", ["step", "batch", "plateau", "fit_argument"])
def test_lr_schedule_via_callback_matches_direct_use(kind):
    makers = {
        "step": lambda o: lr_scheduler.StepLR(o, step_size=2, gamma=0.5),
        "batch": lambda o: lr_scheduler.ExponentialLR(o, gamma=0.97),
        "plateau": lambda o: lr_scheduler.ReduceLROnPlateau(o, mode="max", factor=0.5,
                                                            patience=0),
        "fit_argument": lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=5),
    }
    make = makers[kind]
    expected, lrs = _manual_run(5, make, per_batch=kind == "batch",
                                monitor_loss=kind == "plateau")

    model, opt, _, train, _ = _run_objects(dropout=0.0)
    sched = make(opt)
    kwargs = {}
    if kind == "fit_argument":
        kwargs["scheduler"] = sched
    else:
        # mode="max" on a falling loss: the plateau rule halves the lr every epoch
        kwargs["callbacks"] = [LRSchedulerCallback(sched, interval="batch" if kind == "batch"
                                                   else "epoch", monitor="loss")]
    h = fit(model, nn.CrossEntropyLoss(), opt, train, epochs=5, progress=False, log=None,
            **kwargs)
    assert h["lr"] == lrs and len(set(lrs)) > 1
    got = _params(model)
    for k in expected:
        assert np.array_equal(got[k], expected[k]), k


def test_lr_scheduler_callback_checks():
    model, opt, _, train, _ = _run_objects()
    other = nf.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)
    with pytest.raises(ValueError, match="another optimizer"):
        fit(model, nn.CrossEntropyLoss(), opt, train, progress=False, log=None,
            callbacks=[LRSchedulerCallback(lr_scheduler.StepLR(other, 1))])
    with pytest.raises(ValueError, match="interval='epoch'"):
        LRSchedulerCallback(lr_scheduler.ReduceLROnPlateau(opt), interval="batch")
    with pytest.raises(TypeError, match="lr_scheduler"):
        LRSchedulerCallback(opt)


# --------------------------------------------------------------------------- clipping
class _GradProbe(Callback):
    """Records the total gradient norm and the largest |g| as the optimizer will see them."""

    order = 10  # after GradientClipping

    def __init__(self):
        self.norms, self.maxes = [], []

    def on_after_backward(self, batch, logs=None):
        grads = [p.grad.numpy().ravel() for p in self.loop.model.parameters()]
        g = np.concatenate(grads).astype(np.float64)
        self.norms.append(float(np.sqrt((g * g).sum())))
        self.maxes.append(float(np.abs(g).max()))


def test_gradient_clipping_by_norm_and_value():
    model, opt, _, train, _ = _run_objects(lr=0.5)
    clip, probe = GradientClipping(max_norm=0.05), _GradProbe()
    fit(model, nn.CrossEntropyLoss(), opt, train, epochs=1, callbacks=[probe, clip],
        progress=False, log=None)
    assert clip.last_norm > 0.05  # it had something to clip
    assert max(probe.norms) <= 0.05 * (1 + 1e-4)

    model, opt, _, train, _ = _run_objects(lr=0.5)
    clip, probe = GradientClipping(clip_value=0.01), _GradProbe()
    fit(model, nn.CrossEntropyLoss(), opt, train, epochs=1, callbacks=[clip, probe],
        progress=False, log=None)
    assert max(probe.maxes) <= 0.01 + 1e-9 and min(probe.maxes) == pytest.approx(0.01)

    with pytest.raises(ValueError, match="exactly one of max_norm and clip_value"):
        GradientClipping()
    with pytest.raises(ValueError, match="positive"):
        GradientClipping(max_norm=-1.0)


def test_fit_grad_clip_matches_manual_clipping():
    from nnforge.nn.utils import clip_grad_norm_
    model, opt, _, train, _ = _run_objects(dropout=0.0)
    loss_fn = nn.CrossEntropyLoss()
    for x, y in train:
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        clip_grad_norm_(model.parameters(), 0.1)
        opt.step()
    expected = _params(model)
    model, opt, _, train, _ = _run_objects(dropout=0.0)
    fit(model, loss_fn, opt, train, epochs=1, grad_clip=0.1, progress=False, log=None)
    got = _params(model)
    for k in expected:
        assert np.array_equal(got[k], expected[k]), k


def test_callback_states_roundtrip():
    stop = EarlyStopping(patience=3)
    stop.best, stop.best_epoch, stop.wait = 0.25, 4, 2
    other = EarlyStopping(patience=3)
    other.load_state_dict(stop.state_dict())
    assert (other.best, other.best_epoch, other.wait) == (0.25, 4, 2)
    assert Callback().state_dict() == {}
