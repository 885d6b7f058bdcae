"""Vanishing and exploding gradients made visible (Bengio, Simard & Frasconi
1994; Pascanu, Mikolov & Bengio 2013):

    nnforge train gradients --data sunspots [--out DIR]

Backpropagation through time multiplies dL/dh_t by one step Jacobian per step
(see nf.train.diagnostics). The recipe reads the same 100-year windows of the
standardized sunspot series with several one-layer nets of 32 units and
records ||dL/dh_t|| for every t, L a function of the last state:

- a tanh RNN: the norm falls geometrically with distance from the end
  (vanishing), so year 1 of the window gets practically no learning signal;
- an LSTM, whose cell path c_t = f_t * c_{t-1} + i_t * g_t has Jacobian
  diag(f_t): its gradient decays per step about as fast as its forget gates
  close. With PyTorch's initialization f is about sigmoid(0) = 0.5 and the
  LSTM vanishes too; a forget-gate bias of 1 (Gers et al. 2000; Jozefowicz et
  al. 2015) or 3 keeps the gate open and the gradient reaches far back;
- a ReLU RNN with W_hh = 1.05 I (a slightly over-scaled IRNN): the norm grows
  going back in time (exploding).

Then the exploding net is trained to forecast the next year with plain SGD,
once as it is and once with the gradient norm clipped at 1
(``clip_grad_norm_``): without clipping the first large gradient throws the
weights off and the loss becomes inf/NaN; with clipping it trains.

``--out DIR`` writes gradient_norms.png and clipping.png.
"""
from __future__ import annotations

import math
import os

import numpy as np

from ... import nn, optim
from ...nn import functional as F
from ...nn.utils import clip_grad_norm_
from ...ops.creation import from_numpy
from ...random import manual_seed
from ..diagnostics import hidden_gradient_norms
from . import register


def _windows(length: int, stride: int):
    """(x (N, length, 1), y (N, 1)): standardized sunspot windows and the next year."""
    from ...data.datasets import sunspots, windowed
    _, values = sunspots()
    z = ((values - values.mean()) / values.std()).astype(np.float32)
    x, y = windowed(z, length)
    return np.ascontiguousarray(x[::stride, :, None]), np.ascontiguousarray(y[::stride])


def _lstm(hidden: int, forget_bias: float | None):
    lstm = nn.LSTM(1, hidden, batch_first=True)
    if forget_bias is not None:   # gate rows (i, f, g, o): f is the second block
        lstm.bias_ih_l0.detach()[hidden:2 * hidden] = forget_bias
        lstm.bias_hh_l0.detach()[hidden:2 * hidden] = 0.0
    return lstm


def _exploding_rnn(hidden: int, scale: float):
    rnn = nn.RNN(1, hidden, nonlinearity="relu", init="identity", batch_first=True)
    rnn.weight_hh_l0.detach().mul_(scale)
    return rnn


def _train_forecaster(rnn, x, y, *, steps: int, lr: float, clip: float | None) -> list:
    """SGD on MSE(linear(h_T), next year); the loss before each step."""
    head = nn.Linear(rnn.hidden_size, 1)
    params = list(rnn.parameters()) + list(head.parameters())
    opt = optim.SGD(params, lr=lr)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        _, h_n = rnn(x)
        loss = F.mse_loss(head(h_n[-1]), y)
        value = float(loss)
        losses.append(value)
        if not math.isfinite(value):
            losses.extend([math.nan] * (steps - len(losses)))
            break
        loss.backward()
        if clip is not None:
            clip_grad_norm_(params, clip)
        opt.step()
    return losses


@register("gradients", "sunspots")
def gradients_sunspots(*, length: int = 100, hidden: int = 32, scale: float = 1.05,
                       steps: int = 150, lr: float = 0.01, clip: float = 1.0, seed: int = 0,
                       out_dir=None, progress: bool = True, log=print,
                       epochs: int | None = None) -> dict:
    """||dL/dh_t|| over 100 steps for a tanh RNN, LSTMs and an exploding ReLU RNN on
    sunspot windows, then SGD on the exploding net with and without gradient clipping.

    ``epochs`` (the CLI's --epochs) sets the number of SGD steps in hundreds.
    """
    log = log if log is not None else (lambda line: None)
    steps = steps if epochs is None else 100 * epochs
    x_np, y_np = _windows(length, stride=3)
    x, y = from_numpy(x_np), from_numpy(y_np)
    log(f"sunspots: {len(x_np)} windows of {length} years (standardized); one-layer nets of "
        f"{hidden} units; L = sum of h_T's entries")
    nets = {
        "tanh RNN": lambda: nn.RNN(1, hidden, batch_first=True),
        "LSTM": lambda: _lstm(hidden, None),
        "LSTM, forget bias 1": lambda: _lstm(hidden, 1.0),
        "LSTM, forget bias 3": lambda: _lstm(hidden, 3.0),
        f"ReLU RNN, W_hh = {scale:g} I": lambda: _exploding_rnn(hidden, scale),
    }
    norms, factors = {}, {}
    for name, build in nets.items():
        manual_seed(seed)
        g = hidden_gradient_norms(build(), x)
        norms[name] = g
        # Mean change of the norm per step going back from t = T-1, over the steps
        # where it is still representable (a vanishing float32 norm reaches 0).
        first = int(np.argmax(g > 0))
        factors[name] = (g[first] / g[-1]) ** (1.0 / max(length - 1 - first, 1))
        where = "" if first == 0 else f", underflows to 0 before t = {first}"
        log(f"  {name:28s} ||dL/dh_0|| / ||dL/dh_T-1|| = {g[0] / g[-1]:9.3g}   "
            f"(x{factors[name]:.3f} per step back{where})")

    curves = {}
    for label, c in (("no clipping", None), (f"clipped at norm {clip:g}", clip)):
        manual_seed(seed)
        curves[label] = _train_forecaster(_exploding_rnn(hidden, scale), x, y, steps=steps,
                                          lr=lr, clip=c)
        finite = [v for v in curves[label] if math.isfinite(v)]
        end = curves[label][-1]
        log(f"  SGD lr={lr:g}, {label:20s} loss {curves[label][0]:.3g} -> "
            + (f"{end:.3g} after {steps} steps" if math.isfinite(end)
               else f"inf/NaN after {len(finite)} steps"))
    if out_dir is not None:
        from ... import viz
        os.makedirs(out_dir, exist_ok=True)
        p1 = viz.plot_gradient_norms(norms, os.path.join(out_dir, "gradient_norms.png"),
                                     title=f"BPTT over {length} years of sunspots")
        p2 = viz.plot_curves(curves, os.path.join(out_dir, "clipping.png"), xlabel="SGD step",
                             ylabel="training MSE",
                             title=f"ReLU RNN with W_hh = {scale:g} I, lr {lr:g}")
        log(f"wrote {p1} and {p2}")
    return {"gradient_norms": norms, "factor_per_step": factors, "losses": curves}
