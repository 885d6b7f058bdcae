"""nf.train.fit: the History, loss and metric means, modes, hooks, progress output."""
import math

import numpy as np
import pytest

import nnforge as nf
from nnforge import nn
from nnforge.data import DataLoader, TensorDataset
from nnforge.train import History, evaluate, fit
from nnforge.train import metrics as M


def _blobs(n=40, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n)
    x = rng.normal(size=(n, 4)).astype(np.float32) + np.eye(3, 4, dtype=np.float32)[y] * 3
    return nf.from_numpy(x), nf.from_numpy(y.astype(np.int64))


def _setup(n=40, batch_size=8, lr=0.1, seed=0):
    nf.manual_seed(seed)
    x, y = _blobs(n, seed)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True,
                        generator=nf.Generator().manual_seed(seed))
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    opt = nf.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    return model, opt, loader, (x, y)


def test_history_keys_lengths_and_learning():
    model, opt, loader, (x, y) = _setup()
    val = DataLoader(TensorDataset(x, y), batch_size=16)
    h = fit(model, nn.CrossEntropyLoss(), opt, loader, val, epochs=5, metrics=["accuracy"],
            progress=False, log=None)
    assert isinstance(h, History) and h.epochs == 5
    assert set(h) == {"epoch", "lr", "loss", "accuracy", "val_loss", "val_accuracy",
                      "epoch_time", "samples_per_s"}
    assert all(len(v) == 5 for v in h.values())
    assert h["epoch"] == [1, 2, 3, 4, 5] and h["lr"] == [0.1] * 5
    assert h["loss"][-1] < h["loss"][0] and h["val_accuracy"][-1] >= 0.9
    assert all(t > 0 for t in h["epoch_time"]) and all(s > 0 for s in h["samples_per_s"])
    # Without a val_loader there are no val_ keys.
    h2 = fit(model, nn.CrossEntropyLoss(), opt, loader, epochs=1, progress=False, log=None)
    assert set(h2) == {"epoch", "lr", "loss", "epoch_time", "samples_per_s"}


def test_epoch_loss_is_the_sample_weighted_mean():
    # lr=0 keeps the weights: the epoch's mean over batches of 4, 4 and 2 samples
    # must equal the loss over all 10 samples at once (reduction="mean").
    nf.manual_seed(1)
    x, y = _blobs(10, 1)
    model = nn.Linear(4, 3)
    opt = nf.optim.SGD(model.parameters(), lr=0.0)
    loader = DataLoader(TensorDataset(x, y), batch_size=4)
    h = fit(model, nn.CrossEntropyLoss(), opt, loader, loader, epochs=2, progress=False,
            log=None, metrics=["accuracy"])
    with nf.no_grad():
        out = model(x)
        full = nn.CrossEntropyLoss()(out, y).item()
    acc = float((out.argmax(1) == y).float().mean().item())
    for key in ("loss", "val_loss"):
        assert h[key][0] == pytest.approx(full, rel=1e-6)
    assert h["accuracy"] == pytest.approx([acc, acc]) and h["val_accuracy"][0] == pytest.approx(acc)


def test_metric_values_on_a_fixed_model():
    # Scores are the inputs themselves (identity weights, lr=0): 3 of 5 argmaxes
    # hit the target, 4 of 5 targets are in the top 2.
    x = nf.tensor([[3.0, 2.0, 1.0], [1.0, 3.0, 2.0], [2.0, 1.0, 3.0],
                   [3.0, 2.0, 1.0], [1.0, 2.0, 3.0]])
    y = nf.tensor([0, 1, 1, 1, 2])
    model = nn.Linear(3, 3, bias=False)
    with nf.no_grad():
        model.weight.copy_(nf.eye(3))
    opt = nf.optim.SGD(model.parameters(), lr=0.0)
    loader = DataLoader(TensorDataset(x, y), batch_size=2)

    def mean_score(outputs, targets):
        return float(outputs.mean().item())

    h = fit(model, nn.CrossEntropyLoss(), opt, loader, loader, epochs=1, progress=False,
            log=None, metrics=["accuracy", "top2_accuracy", mean_score])
    assert h["accuracy"] == [pytest.approx(0.6)] and h["val_accuracy"] == [pytest.approx(0.6)]
    assert h["top2_accuracy"] == [pytest.approx(0.8)]
    assert h["mean_score"] == [pytest.approx(2.0)]


def test_metric_functions():
    logits = nf.tensor([[2.0, 1.0, 0.0], [0.0, 1.0, 2.0], [1.0, 1.0, 0.0]])
    y = nf.tensor([0, 0, 1])
    assert M.accuracy(logits, y) == pytest.approx(1 / 3)
    assert M.accuracy(logits, nf.tensor([[1.0, 0, 0], [0, 0, 1.0], [1.0, 0, 0]])) == 1.0
    assert M.top_k_accuracy(logits, y, k=2) == pytest.approx(2 / 3)
    assert M.top_k_accuracy(logits, y, k=3) == 1.0
    # Per-position targets: outputs (N, C, T), targets (N, T).
    assert M.accuracy(nf.tensor([[[1.0, 0.0], [0.0, 1.0]]]), nf.tensor([[0, 0]])) == 0.5
    assert M.binary_accuracy(nf.tensor([0.9, 0.2, 0.6]), nf.tensor([1.0, 0.0, 0.0])) == \
        pytest.approx(2 / 3)
    assert M.mean_absolute_error(nf.tensor([1.0, 2.0]), nf.tensor([2.0, 4.0])) == 1.5
    assert M.get_metric("acc")[0] == "accuracy"
    assert M.get_metric("mae") == ("mae", M.mean_absolute_error)
    assert M.get_metric("top3_accuracy")[0] == "top3_accuracy"
    with pytest.raises(ValueError, match="unknown metric 'f2'"):
        M.get_metric("f2")
    with pytest.raises(ValueError, match=r"targets of shape \(2,\) do not match outputs"):
        M.accuracy(logits, nf.tensor([0, 1]))
    with pytest.raises(ValueError, match="binary_accuracy"):
        M.accuracy(nf.tensor([0.1, 0.9]), nf.tensor([0, 1]))


class _Probe(nn.Module):
    """Records (training, grad enabled) at each call."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 3)
        self.calls = []

    def forward(self, x):
        self.calls.append((self.training, nf.is_grad_enabled()))
        return self.lin(x)


def test_train_mode_in_training_eval_and_no_grad_in_validation():
    nf.manual_seed(0)
    x, y = _blobs(16)
    model = _Probe()
    opt = nf.optim.SGD(model.parameters(), lr=0.1)
    train = DataLoader(TensorDataset(x, y), batch_size=8)
    val = DataLoader(TensorDataset(x, y), batch_size=16)
    fit(model, nn.CrossEntropyLoss(), opt, train, val, epochs=2, progress=False, log=None)
    # per epoch: 2 training batches, then 1 validation batch
    assert model.calls == [(True, True), (True, True), (False, False)] * 2
    model.train()
    scores = evaluate(model, val, nn.CrossEntropyLoss())
    assert set(scores) == {"loss", "accuracy"} and model.training  # mode restored


def test_hook_order_and_stop_training():
    events = []

    class Record(nf.train.Callback):
        def on_fit_begin(self, logs=None):
            events.append("fit_begin")

        def on_epoch_begin(self, epoch, logs=None):
            events.append(f"epoch_begin {epoch}")

        def on_batch_begin(self, batch, logs=None):
            events.append(f"batch_begin {batch}")

        def on_after_backward(self, batch, logs=None):
            grads = [p.grad for p in self.loop.model.parameters()]
            events.append(f"after_backward {batch} {all(g is not None for g in grads)}")

        def on_batch_end(self, batch, logs=None):
            events.append(f"batch_end {batch} {sorted(logs)}")
            if self.loop.epoch == 1 and batch == 0:
                self.loop.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            events.append(f"epoch_end {epoch} {logs['epoch']}")

        def on_fit_end(self, logs=None):
            events.append("fit_end")

    model, opt, loader, _ = _setup(n=16, batch_size=8)
    h = fit(model, nn.CrossEntropyLoss(), opt, loader, epochs=5, callbacks=[Record()],
            progress=False, log=None)
    assert events == [
        "fit_begin",
        "epoch_begin 0",
        "batch_begin 0", "after_backward 0 True", "batch_end 0 ['loss', 'size']",
        "batch_begin 1", "after_backward 1 True", "batch_end 1 ['loss', 'size']",
        "epoch_end 0 1",
        "epoch_begin 1",
        "batch_begin 0", "after_backward 0 True", "batch_end 0 ['loss', 'size']",
        "epoch_end 1 2",
        "fit_end"]
    assert h.epochs == 2


def test_start_epoch_and_epochs_count_like_keras():
    model, opt, loader, _ = _setup(n=16)
    h = fit(model, nn.CrossEntropyLoss(), opt, loader, epochs=4, start_epoch=2, progress=False,
            log=None)
    assert h["epoch"] == [3, 4]
    h = fit(model, nn.CrossEntropyLoss(), opt, loader, epochs=6, start_epoch=4, history=h,
            progress=False, log=None)
    assert h["epoch"] == [3, 4, 5, 6]


def test_progress_lines(capsys):
    model, opt, loader, (x, y) = _setup(n=16)
    fit(model, nn.CrossEntropyLoss(), opt, loader, DataLoader(TensorDataset(x, y), 8),
        epochs=2, metrics=["accuracy"], progress=False)
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 2 and lines[1].startswith("epoch   2/2  loss ")
    assert "val_accuracy" in lines[1] and "samples/s" in lines[1] and "%" in lines[1]
    assert captured.err == ""  # no bars
    fit(model, nn.CrossEntropyLoss(), opt, loader, epochs=1, progress=True)
    captured = capsys.readouterr()
    assert "epoch   1/1  loss" in captured.out and "epoch 1/1" in captured.err  # the bar
    got = []
    fit(model, nn.CrossEntropyLoss(), opt, loader, epochs=1, progress=False, log=got.append)
    assert len(got) == 1 and capsys.readouterr().out == ""


def test_bad_arguments_are_clear_errors():
    model, opt, loader, _ = _setup(n=16)
    loss = nn.CrossEntropyLoss()
    with pytest.raises(ValueError, match="epochs must be a non-negative int"):
        fit(model, loss, opt, loader, epochs=-1)
    with pytest.raises(ValueError, match="unknown metric"):
        fit(model, loss, opt, loader, metrics=["accuracy", "nope"])
    with pytest.raises(TypeError, match="optimizer must be an nnforge optimizer"):
        fit(model, loss, None, loader)
    with pytest.raises(TypeError, match=r"each batch must be a tuple \(inputs..., targets\)"):
        fit(model, loss, opt, [nf.randn(2, 4)], progress=False, log=None)
    with pytest.raises(ValueError, match="gave no batches"):
        fit(model, loss, opt, [], progress=False, log=None)
    with pytest.raises(TypeError, match="Callback instances"):
        fit(model, loss, opt, loader, callbacks=[print], progress=False, log=None)
    if not nf.cuda.is_available():
        with pytest.raises(ValueError, match="device 'cuda' is not available"):
            fit(model, loss, opt, loader, device="cuda")


def test_history_helpers(tmp_path):
    h = History()
    h.append({"epoch": 1, "loss": 1.0})
    h.append({"epoch": 2, "loss": 0.5, "val_loss": math.nan})
    h.append({"epoch": 3, "val_loss": 0.7})
    assert list(h) == ["epoch", "loss", "val_loss"] and h.epochs == 3
    assert h["loss"] == [1.0, 0.5, None] and h["val_loss"][0] is None
    assert math.isnan(h["val_loss"][1]) and h["val_loss"][2] == 0.7
    assert h.best("loss") == (1, 0.5) and h.best("val_loss") == (2, 0.7)
    assert h.best("val_accuracy") == (None, None)
    h.save_json(tmp_path / "h.json")
    back = History.load_json(tmp_path / "h.json")
    assert back["val_loss"] == [None, None, 0.7] and back["epoch"] == [1, 2, 3]
