"""Seeing vanishing and exploding gradients in a recurrent net.

Backpropagation through time multiplies the gradient by the step Jacobian
dh_t/dh_{t-1} once per step:

    dL/dh_t = dL/dh_T  prod_{k=t+1..T} dh_k/dh_{k-1}

For a tanh RNN, dh_k/dh_{k-1} = diag(1 - h_k^2) W_hh: when its norm stays
below 1 the product shrinks geometrically (vanishing: early inputs cannot
influence learning), above 1 it grows (exploding: one huge step ruins the
weights). The LSTM's cell path c_t = f_t * c_{t-1} + ... has Jacobian diag(f_t),
which stays near 1 while the forget gate is open, so its gradients reach far
back (Hochreiter and Schmidhuber 1997).

``hidden_gradient_norms`` replays a one-layer RNN/LSTM/GRU step by step with
a cell holding the same weights, keeps every h_t in the graph, and returns
||dL/dh_t|| for each t, L being a function of the last state only.
"""
from __future__ import annotations

import numpy as np

from .. import nn

__all__ = ["hidden_gradient_norms"]

_CELL_FOR = {"RNN": "RNNCell", "LSTM": "LSTMCell", "GRU": "GRUCell"}


def _cell_like(layer):
    kind = type(layer).__name__
    if kind not in _CELL_FOR:
        raise TypeError(f"hidden_gradient_norms: expected an nn.RNN, nn.LSTM or nn.GRU, got {kind}")
    if layer.num_layers != 1 or layer.bidirectional:
        raise ValueError("hidden_gradient_norms: needs a one-layer, one-direction recurrent layer "
                         f"(got num_layers={layer.num_layers}, bidirectional={layer.bidirectional})")
    kwargs = {"nonlinearity": layer.nonlinearity} if kind == "RNN" else {}
    cell = getattr(nn, _CELL_FOR[kind])(layer.input_size, layer.hidden_size, bias=layer.bias,
                                        **kwargs).to(layer.weight_ih_l0.device)
    state = {name: getattr(layer, f"{name}_l0") for name in ("weight_ih", "weight_hh")}
    if layer.bias:
        state.update({name: getattr(layer, f"{name}_l0") for name in ("bias_ih", "bias_hh")})
    cell.load_state_dict({k: v.detach() for k, v in state.items()})
    return cell, kind


def hidden_gradient_norms(layer, x, loss_fn=None) -> np.ndarray:
    """||dL/dh_t|| (averaged over the batch) for t = 0 .. T-1, with L = loss_fn(h_T)
    (default: the sum of h_T's entries). ``x`` is (T, B, input_size), or (B, T, ...)
    when the layer is batch_first."""
    cell, kind = _cell_like(layer)
    if layer.batch_first:
        x = x.transpose(0, 1)
    if x.ndim != 3 or x.shape[-1] != layer.input_size:
        raise ValueError(f"hidden_gradient_norms: expected input (T, B, {layer.input_size}), got "
                         f"shape {tuple(x.shape)}")
    state = None
    hs = []
    for t in range(x.shape[0]):
        state = cell(x[t], state)
        h = state[0] if kind == "LSTM" else state
        h.retain_grad()
        hs.append(h)
    loss = loss_fn(hs[-1]) if loss_fn is not None else hs[-1].sum()
    loss.backward()
    return np.array([float(np.linalg.norm(h.grad.numpy(force=True), axis=-1).mean())
                     if h.grad is not None else 0.0 for h in hs])
