"""The multilayer perceptron: Linear layers with a nonlinearity between them.

    h_0 = x,   h_{l+1} = act(W_l h_l + b_l),   logits = W_L h_L + b_L

Rumelhart, Hinton and Williams (1986) trained it with backpropagation; with
one hidden layer it is already a universal approximator (Cybenko 1989).
"""
from __future__ import annotations

from .. import nn

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


class MLP(nn.Module):
    """``MLP(in_features, hidden_sizes, out_features, activation="relu", dropout=0.0)``.

    >>> import nnforge as nf
    >>> model = nf.models.MLP(64, [128], 10)
    >>> tuple(model(nf.randn(5, 64)).shape)
    (5, 10)
    """

    def __init__(self, in_features: int, hidden_sizes=(256,), out_features: int = 10,
                 activation: str = "relu", dropout: float = 0.0):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"MLP: activation must be one of {sorted(_ACTIVATIONS)}, "
                             f"got {activation!r}")
        layers = []
        width = in_features
        for h in hidden_sizes:
            layers.append(nn.Linear(width, h))
            layers.append(_ACTIVATIONS[activation]())
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, out_features))
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x.flatten(1) if x.ndim > 2 else x)
