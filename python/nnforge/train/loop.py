"""A plain supervised training loop: epochs of minibatch steps with a progress
bar, then evaluation. ``nf.train.fit`` (fit.py) is the full loop, with metrics,
callbacks and checkpoints; these stay for code written against them
(``nf.train.evaluate`` is fit.py's, which returns a dict: this module's
``evaluate`` returns (loss, accuracy))."""
from __future__ import annotations

import time

from ..autograd.grad_mode import no_grad


def train_epoch(model, loader, loss_fn, optimizer) -> float:
    """One pass over ``loader``; returns the mean training loss."""
    model.train()
    total, count = 0.0, 0
    for x, y in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        n = x.shape[0]
        total += loss.item() * n
        count += n
    return total / max(count, 1)


@no_grad()
def evaluate(model, loader, loss_fn) -> tuple:
    """(mean loss, accuracy) of a classifier over ``loader``."""
    model.eval()
    total, correct, count = 0.0, 0, 0
    for x, y in loader:
        out = model(x)
        total += loss_fn(out, y).item() * x.shape[0]
        correct += int((out.argmax(1) == y).sum().item())
        count += x.shape[0]
    return total / max(count, 1), correct / max(count, 1)


def fit_classifier(model, train_loader, test_loader, loss_fn, optimizer, epochs: int,
                   *, progress: bool = True, log=print) -> dict:
    """Trains for ``epochs`` and logs one line per epoch; returns the history."""
    from tqdm.auto import tqdm
    history = {"train_loss": [], "test_loss": [], "test_acc": []}
    bar = tqdm(range(1, epochs + 1), desc="training", unit="epoch", disable=not progress)
    for epoch in bar:
        t0 = time.perf_counter()
        tr = train_epoch(model, train_loader, loss_fn, optimizer)
        te, acc = evaluate(model, test_loader, loss_fn)
        history["train_loss"].append(tr)
        history["test_loss"].append(te)
        history["test_acc"].append(acc)
        bar.set_postfix(loss=f"{tr:.4f}", acc=f"{acc * 100:.1f}%", refresh=False)
        line = (f"epoch {epoch:3d}/{epochs}  train loss {tr:.4f}  test loss {te:.4f}  "
                f"test acc {acc * 100:.2f}%  ({time.perf_counter() - t0:.2f}s)")
        bar.write(line) if progress and log is print else log(line)
    bar.close()
    return history
