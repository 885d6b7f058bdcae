"""Many-to-one recurrent models: read a whole sequence, give one answer.

    h_1 .. h_T = RNN(x_1 .. x_T)            (stacked, optionally bidirectional)
    y = W summary(h) + b                    summary: the last state, or the mean
                                            or max of the outputs over time

For classification y holds class scores (e.g. a digit read row by row, one
8-pixel row per step); for forecasting, the next value(s) of a series from a
window of past values. A bidirectional layer's "last state" is the forward
direction's state after x_T beside the backward direction's after x_1, so
both have read the whole sequence.
"""
from __future__ import annotations

import numpy as np

from .. import nn
from ..ops.creation import as_tensor
from ..tensor import Tensor

_CELLS = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}
_SUMMARIES = ("last", "mean", "max")


class ManyToOne(nn.Module):
    """``ManyToOne(input_size, hidden_size, out_features, cell="lstm", num_layers=1,
    bidirectional=False, summary="last", dropout=0.0)``: a batch_first recurrent
    stack and a linear head on its ``summary`` of the sequence.
    ``forward(x (B, T, input_size), lengths=None)`` -> (B, out_features).
    """

    def __init__(self, input_size: int, hidden_size: int, out_features: int,
                 cell: str = "lstm", num_layers: int = 1, bidirectional: bool = False,
                 summary: str = "last", dropout: float = 0.0):
        super().__init__()
        if cell not in _CELLS:
            raise ValueError(f"ManyToOne: cell must be one of {sorted(_CELLS)}, got {cell!r}")
        if summary not in _SUMMARIES:
            raise ValueError(f"ManyToOne: summary must be one of {_SUMMARIES}, got {summary!r}")
        self.summary = summary
        self.rnn = getattr(nn, _CELLS[cell])(input_size, hidden_size, num_layers,
                                            batch_first=True, dropout=dropout,
                                            bidirectional=bidirectional)
        width = hidden_size * (2 if bidirectional else 1)
        self.head = nn.Linear(width, out_features)

    def forward(self, x: Tensor, lengths=None) -> Tensor:
        out, state = self.rnn(x, lengths=lengths) if lengths is not None else self.rnn(x)
        if self.summary == "last":
            h_n = state[0] if isinstance(state, tuple) else state   # (layers * dirs, B, H)
            if self.rnn.bidirectional:
                feats = h_n[-2:].transpose(0, 1).flatten(1)        # last layer, both directions
            else:
                feats = h_n[-1]
        elif self.summary == "mean":
            if lengths is None:
                feats = out.mean(1)
            else:  # padded steps give zero outputs: divide the sum by each true length
                if isinstance(lengths, Tensor):
                    lengths = lengths.numpy(force=True)
                n = as_tensor(np.asarray(lengths, dtype=np.float64), dtype=out.dtype,
                              device=out.device)
                feats = out.sum(1) / n.unsqueeze(1)
        else:
            feats = out.amax(1)
        return self.head(feats)
