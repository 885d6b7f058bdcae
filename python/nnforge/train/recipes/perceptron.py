"""Recipes for the perceptron and for the universal approximation theorem:

    nnforge train perceptron --data separable  Rosenblatt's rule converges, the gradient version too
    nnforge train perceptron --data digits01   digits 0 vs 1: separable too, tested on the hold-out
    nnforge train perceptron --data xor        no line separates XOR; one hidden layer does
    nnforge train approximator --data sin      one hidden layer fits sin on [-pi, pi]; also abs, step
"""
from __future__ import annotations

import math
import os
import time

import numpy as np

from ... import optim
from ...autograd.grad_mode import no_grad
from ...data import DataLoader, TensorDataset, datasets
from ...ops.creation import from_numpy, linspace
from ...random import Generator, manual_seed
from . import register


# --------------------------------------------------------------------------- data
def xor_data():
    """The four points of XOR: x in {0, 1}^2, y = x1 xor x2."""
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = np.array([0, 1, 1, 0], dtype=np.int64)
    return from_numpy(x), from_numpy(y)


def separable_data(n: int = 200, margin: float = 0.1, seed: int = 0):
    """A synthetic linearly separable problem: points uniform in [-1, 1]^2,
    labelled by the side of a random line through the square, with the points
    closer than ``margin`` to the line dropped (so the margin is at least that)."""
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0, 2 * math.pi)
    w = np.array([math.cos(angle), math.sin(angle)])  # unit normal of the true line
    b = rng.uniform(-0.3, 0.3)
    x = np.empty((0, 2))
    while len(x) < n:
        cand = rng.uniform(-1, 1, size=(2 * n, 2))
        x = np.concatenate([x, cand[np.abs(cand @ w + b) >= margin]])
    x = x[:n].astype(np.float32)
    y = (x @ w + b > 0).astype(np.int64)
    return from_numpy(x), from_numpy(y)


def digits01(split: str):
    """The digits 0 and 1 of the stratified split (pixels in [0, 1]), labels 0/1."""
    x, y = datasets.digits(split).tensors
    keep = np.flatnonzero(y.numpy() <= 1)
    return from_numpy(x.numpy()[keep]), from_numpy(y.numpy()[keep])


# --------------------------------------------------------------------------- training
def scores(model, x):
    """One score per point: the model's output (N,) or (N, 1)."""
    out = model(x)
    return out.squeeze(-1) if out.ndim == 2 else out


@no_grad()
def accuracy(model, x, y) -> float:
    """Fraction of points whose predicted class (score > 0) is the label."""
    return float(((scores(model, x) > 0).long() == y).float().mean())


def fit_gradient(model, x, y, *, loss: str, epochs: int, batch_size: int, lr: float, seed: int,
                 stop_at_zero_errors: bool = True) -> dict:
    """Minibatch Adam on ``surrogate_loss(scores(model, x), y, loss)``; per epoch
    the mean loss and the training errors (it stops after an epoch without
    errors, as Rosenblatt's rule does, unless ``stop_at_zero_errors`` is False)."""
    from ...models import surrogate_loss
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True,
                        generator=Generator().manual_seed(seed))
    opt = optim.Adam(model.parameters(), lr=lr)
    history = {"loss": [], "errors": []}
    for _ in range(epochs):
        total = 0.0
        for xb, yb in loader:
            opt.zero_grad()
            batch_loss = surrogate_loss(scores(model, xb), yb, loss)
            batch_loss.backward()
            opt.step()
            total += batch_loss.item() * xb.shape[0]
        history["loss"].append(total / len(y))
        history["errors"].append(round((1 - accuracy(model, x, y)) * len(y)))
        if stop_at_zero_errors and history["errors"][-1] == 0:
            break
    return history


def _save_run(out_dir, history: dict, models: dict, log) -> None:
    """history.json (the per-epoch lists) and each model's weights into ``out_dir``."""
    from ...io import save
    from ..fit import History
    if not out_dir:
        return
    os.makedirs(out_dir, exist_ok=True)
    lists = {k: v for k, v in history.items() if isinstance(v, list)}
    History(lists).save_json(os.path.join(out_dir, "history.json"))
    for name, model in models.items():
        save(model.state_dict(), os.path.join(out_dir, f"{name}.safetensors"))
    log(f"wrote history.json and {', '.join(f'{n}.safetensors' for n in models)} to {out_dir}")


def _perceptron_recipe(name, x, y, x_test=None, y_test=None, *, epochs, batch_size, lr, seed,
                       loss, log, out_dir=None) -> dict:
    """Rosenblatt's rule, then the gradient version, on one problem."""
    from ...models import Perceptron
    manual_seed(seed)
    log(f"perceptron on {name}: {len(y)} training points of {x.shape[1]} features")
    t0 = time.perf_counter()
    unit = Perceptron(x.shape[1])
    mistakes = unit.fit_rosenblatt(x, y, lr=1.0, max_epochs=epochs,
                                   generator=Generator().manual_seed(seed))
    converged = mistakes[-1] == 0
    history = {"rosenblatt_mistakes": mistakes, "rosenblatt_converged": converged,
               "rosenblatt_train_acc": accuracy(unit, x, y), "rosenblatt": unit}
    log(f"Rosenblatt's rule: mistakes per epoch {_short(mistakes)}; "
        + (f"converged after {len(mistakes)} epochs (an epoch without mistakes)" if converged
           else f"not converged after {len(mistakes)} epochs")
        + f"; training accuracy {history['rosenblatt_train_acc'] * 100:.1f}%"
        + f" ({time.perf_counter() - t0:.2f}s)")
    if x_test is not None:
        history["rosenblatt_test_acc"] = accuracy(unit, x_test, y_test)
        log(f"Rosenblatt's rule: test accuracy {history['rosenblatt_test_acc'] * 100:.1f}% "
            f"on {len(y_test)} held-out points")

    t0 = time.perf_counter()
    unit = Perceptron(x.shape[1])
    grad = fit_gradient(unit, x, y, loss=loss, epochs=epochs, batch_size=batch_size, lr=lr,
                        seed=seed)
    history.update({"gradient_loss": grad["loss"], "gradient_errors": grad["errors"],
                    "gradient_train_acc": accuracy(unit, x, y), "gradient": unit})
    log(f"gradient version ({loss} loss, Adam lr={lr}, batch {batch_size}): training errors "
        f"per epoch {_short(grad['errors'])}; training accuracy "
        f"{history['gradient_train_acc'] * 100:.1f}% ({time.perf_counter() - t0:.2f}s)")
    if x_test is not None:
        history["gradient_test_acc"] = accuracy(unit, x_test, y_test)
        log(f"gradient version: test accuracy {history['gradient_test_acc'] * 100:.1f}%")
    _save_run(out_dir, history, {"rosenblatt": history["rosenblatt"], "gradient": unit}, log)
    return history


def _short(values, head: int = 8) -> str:
    values = list(values)
    if len(values) <= 2 * head:
        return str(values)
    return f"[{', '.join(map(str, values[:head]))}, ..., {', '.join(map(str, values[-2:]))}]"


# --------------------------------------------------------------------------- perceptron recipes
@register("perceptron", "separable", default=True)
def perceptron_separable(*, epochs: int = 100, batch_size: int = 32, lr: float = 0.1,
                         loss: str = "logistic", n: int = 200, margin: float = 0.1, seed: int = 0,
                         out_dir: str | None = None, progress: bool = True, log=print) -> dict:
    """Rosenblatt's rule and the gradient version on a separable 2-D problem.

    Both stop with zero training errors (``separable_data``: 200 points with
    margin 0.1); the convergence theorem bounds Rosenblatt's mistakes."""
    x, y = separable_data(n, margin, seed)
    return _perceptron_recipe("a separable 2-D problem", x, y, epochs=epochs,
                              batch_size=batch_size, lr=lr, seed=seed, loss=loss, log=log,
                              out_dir=out_dir)


@register("perceptron", "digits01")
def perceptron_digits01(*, epochs: int = 100, batch_size: int = 32, lr: float = 0.1,
                        loss: str = "logistic", seed: int = 0, out_dir: str | None = None,
                        progress: bool = True, log=print) -> dict:
    """Rosenblatt's rule and the gradient version on digits 0 vs 1 (64 pixels).

    The two classes are linearly separable, so Rosenblatt's rule stops with no
    training errors; the hold-out split checks that it generalizes."""
    x, y = digits01("train")
    x_test, y_test = digits01("test")
    return _perceptron_recipe("digits 0 vs 1", x, y, x_test, y_test, epochs=epochs,
                              batch_size=batch_size, lr=lr, seed=seed, loss=loss, log=log,
                              out_dir=out_dir)


@register("perceptron", "xor")
def perceptron_xor(*, epochs: int = 300, batch_size: int = 4, lr: float = 0.05,
                   loss: str = "logistic", hidden: int = 8, seed: int = 0,
                   out_dir: str | None = None, progress: bool = True, log=print) -> dict:
    """XOR: a perceptron fails (either rule), an MLP 2-8-1 with one hidden layer solves it.

    No line separates XOR, so a single unit never gets all four points right
    (at best 3 of 4) and Rosenblatt's rule never stops; the MLP (tanh, logistic
    loss, Adam) reaches 100%."""
    from ...models import MLP
    x, y = xor_data()
    history = _perceptron_recipe("XOR", x, y, epochs=epochs, batch_size=batch_size, lr=lr,
                                 seed=seed, loss=loss, log=log)
    manual_seed(seed)
    mlp = MLP(2, [hidden], 1, activation="tanh")
    t0 = time.perf_counter()
    grad = fit_gradient(mlp, x, y, loss="logistic", epochs=epochs, batch_size=batch_size,
                        lr=lr, seed=seed, stop_at_zero_errors=False)
    history.update({"mlp_loss": grad["loss"], "mlp_errors": grad["errors"],
                    "mlp_train_acc": accuracy(mlp, x, y), "mlp": mlp})
    log(f"MLP 2-{hidden}-1 (tanh, logistic loss): training errors per epoch "
        f"{_short(grad['errors'])}; final loss {grad['loss'][-1]:.4f}, accuracy "
        f"{history['mlp_train_acc'] * 100:.0f}% ({time.perf_counter() - t0:.2f}s)")
    _save_run(out_dir, history, {"rosenblatt": history["rosenblatt"],
                                 "gradient": history["gradient"], "mlp": mlp}, log)
    return history


# --------------------------------------------------------------------------- approximation
# name: (f, the hidden units' default activation). Any non-polynomial activation
# will do (Leshno et al. 1993); |x| = relu(x) + relu(-x) has a kink that tanh
# units round off, so it gets ReLU units.
TARGETS = {
    "sin": (np.sin, "tanh"),
    "abs": (np.abs, "relu"),
    "step": (lambda x: np.tanh(5.0 * x), "tanh"),  # a smoothed step from -1 to 1
}


def _approximator(data: str):
    @register("approximator", data, default=data == "sin")
    def recipe(*, epochs: int = 3000, lr: float = 0.02,
               hidden: int = 64, activation: str | None = None, tolerance: float = 0.05,
               n_train: int = 256, seed: int = 0, out_dir: str | None = None,
               progress: bool = True, log=print) -> dict:
        history = fit_function(data, epochs=epochs, lr=lr, hidden=hidden,
                               activation=activation, tolerance=tolerance, n_train=n_train,
                               seed=seed, progress=progress, log=log)
        _save_run(out_dir, history, {"approximator": history["model"]}, log)
        return history
    recipe.__name__ = f"approximator_{data}"
    recipe.__doc__ = (f"An MLP 1-64-1 fits {data} on [-pi, pi] to a max-abs error below 0.05.\n\n"
                      "``tolerance`` sets the bar; full-batch Adam, one step per epoch, see "
                      "``fit_function``.")
    return recipe


def fit_function(data: str, *, epochs: int = 3000, lr: float = 0.02, hidden: int = 64,
                 activation: str | None = None, tolerance: float = 0.05, n_train: int = 256,
                 seed: int = 0,
                 progress: bool = True, log=print) -> dict:
    """Universal approximation (Cybenko 1989, Hornik 1991): one hidden layer of
    enough units (tanh, ReLU, ...) approximates a continuous function on a compact set to
    any tolerance. Full-batch Adam on the squared error over ``n_train``
    random points of [-pi, pi]; every 50 steps the max-abs error
    max_x |f(x) - net(x)| on a 2001-point grid is checked, and training stops
    once it is below ``tolerance`` (an epoch is one full-batch step)."""
    from tqdm.auto import tqdm

    from ...models import MLP
    if data not in TARGETS:
        raise ValueError(f"fit_function: data must be one of {sorted(TARGETS)}, got {data!r}")
    f, default_activation = TARGETS[data]
    activation = activation or default_activation
    manual_seed(seed)
    rng = np.random.default_rng(seed)
    x_np = np.sort(rng.uniform(-math.pi, math.pi, size=(n_train, 1))).astype(np.float32)
    x, y = from_numpy(x_np), from_numpy(f(x_np).astype(np.float32))
    grid = linspace(-math.pi, math.pi, 2001).unsqueeze(1)
    grid_y = from_numpy(f(grid.numpy()).astype(np.float32))
    model = MLP(1, [hidden], 1, activation=activation)
    opt = optim.Adam(model.parameters(), lr=lr)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs, eta_min=lr * 0.01)
    log(f"approximator: MLP 1-{hidden}-1 ({activation}) fitting {data} on [-pi, pi] from {n_train} "
        f"points, target max-abs error {tolerance}")
    history = {"loss": [], "max_abs_error": [], "step": []}
    t0 = time.perf_counter()
    bar = tqdm(range(1, epochs + 1), desc=f"approximator {data}", unit="step",
               disable=not progress)
    for step in bar:
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        sched.step()
        if step % 50 == 0 or step == epochs:
            with no_grad():
                err = float((model(grid) - grid_y).abs().max())
            history["loss"].append(loss.item())
            history["max_abs_error"].append(err)
            history["step"].append(step)
            bar.set_postfix(loss=f"{loss.item():.2e}", max_err=f"{err:.4f}", refresh=False)
            if err < tolerance:
                break
    bar.close()
    err = history["max_abs_error"][-1]
    history.update({"reached": err < tolerance, "tolerance": tolerance, "model": model})
    log(f"approximator {data}: max-abs error {err:.4f} on the grid after "
        f"{history['step'][-1]} steps ({'below' if err < tolerance else 'ABOVE'} the "
        f"tolerance {tolerance}; {time.perf_counter() - t0:.1f}s)")
    return history


for _data in TARGETS:
    _approximator(_data)
