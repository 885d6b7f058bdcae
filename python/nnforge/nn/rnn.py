"""Recurrent layers RNN, LSTM, GRU and the cells RNNCell, LSTMCell, GRUCell, with
PyTorch's arguments, parameter names, gate orders and weight layouts (a PyTorch
``state_dict`` loads as it is), over the fused kernels of ops/rnn.py.

Extras (keyword-only):

- ``forward(input, hx=None, lengths=None)``: ``lengths`` (list, array or int64
  tensor, one per batch row, each in [1, T]) gives PyTorch's packed-sequence
  results without packing: row b runs its first lengths[b] steps, the output is
  zero after them (it keeps all T steps) and h_n/c_n are each row's own last
  state; the reverse direction starts from each row's last step. A
  ``PackedSequence`` input works as in PyTorch (output packed the same way).
- ``merge_mode`` = 'concat' (PyTorch's output) | 'sum' | 'mean' | 'max': how the
  two directions of a bidirectional net are merged in the *output of the last
  layer* (between layers they are always concatenated, so parameter shapes are
  PyTorch's whatever the mode). h_n is never merged.
- LSTM ``peephole=True`` (Gers & Schmidhuber 2000): parameters
  ``weight_peephole_l{k}{_reverse}`` of shape (3 * hidden_size,) = (p_i, p_f, p_o);
  i and f see c_{t-1}, o sees c_t. ``coupled=True``: one gate for forget and
  input (i = 1 - f); weight_ih/weight_hh/biases then have 3 * hidden_size rows,
  the blocks (f, g, o), and the peephole weights are (p_f, p_o), (2 * hidden_size,).
  All initialized like the others, U(-1/sqrt(H), 1/sqrt(H)).
- RNN ``init='identity'``: the IRNN of Le, Jaitly & Hinton (2015): weight_hh = I
  and all biases zero (weight_ih keeps the default uniform init); best with
  ``nonlinearity='relu'``.
"""
from __future__ import annotations

import math

import numpy as np

from ..ops import creation
from ..ops import rnn as rnn_ops
from ..tensor import Tensor
from . import functional as F
from . import init as nn_init
from .module import Module
from .parameter import Parameter
from .utils.rnn import PackedSequence, pad_packed_sequence, repack_like

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]

_MERGE_MODES = ("concat", "sum", "mean", "max")


def _check_size(cls: str, name: str, v, minimum: int) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise ValueError(f"{cls}: {name} must be an int >= {minimum}, got {v!r}")


class RNNBase(Module):
    """The shared machinery of RNN, LSTM and GRU (see the module docstring)."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None, dtype=None, *,
                 merge_mode: str = "concat", peephole: bool = False, coupled: bool = False):
        super().__init__()
        name = type(self).__name__
        _check_size(name, "input_size", input_size, 1)
        _check_size(name, "hidden_size", hidden_size, 1)
        _check_size(name, "num_layers", num_layers, 1)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or \
                not 0 <= dropout <= 1:
            raise ValueError(f"{name}: dropout should be a number in range [0, 1] representing "
                             f"the probability of an element being zeroed, got {dropout!r}")
        if proj_size:
            raise NotImplementedError(f"{name}: proj_size (LSTM with projections) is not "
                                      f"implemented; use proj_size=0")
        if merge_mode not in _MERGE_MODES:
            raise ValueError(f"{name}: merge_mode must be one of {_MERGE_MODES}, got "
                             f"{merge_mode!r}")
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = 0
        self.merge_mode = merge_mode
        self.peephole = peephole
        self.coupled = coupled
        gate_rows = rnn_ops._gate_blocks(mode, coupled) * hidden_size
        directions = 2 if bidirectional else 1
        self._flat_weights_names = []
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * directions
            for suffix in ("", "_reverse")[:directions]:
                shapes = [("weight_ih", (gate_rows, layer_input)),
                          ("weight_hh", (gate_rows, hidden_size))]
                if bias:
                    shapes += [("bias_ih", (gate_rows,)), ("bias_hh", (gate_rows,))]
                if peephole:
                    shapes.append(("weight_peephole", ((2 if coupled else 3) * hidden_size,)))
                for base, shape in shapes:
                    pname = f"{base}_l{layer}{suffix}"
                    setattr(self, pname, Parameter(creation.empty(*shape, dtype=dtype,
                                                                  device=device)))
                    self._flat_weights_names.append(pname)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every parameter from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), as PyTorch."""
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn_init.uniform_(p, -stdv, stdv)

    def flatten_parameters(self) -> None:
        """PyTorch's cuDNN weight-compaction hook; nothing to do here."""

    @property
    def all_weights(self) -> list:
        per = len(self._flat_weights_names) // (self.num_layers * (2 if self.bidirectional else 1))
        params = [getattr(self, n) for n in self._flat_weights_names]
        return [params[k:k + per] for k in range(0, len(params), per)]

    # -- forward
    def _layer_params(self, layer: int, suffix: str):
        get = lambda base: getattr(self, f"{base}_l{layer}{suffix}", None)  # noqa: E731
        return (get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh"),
                get("weight_peephole"))

    def _check_state(self, state, name: str, expected: tuple, unbatched: bool) -> None:
        cls = type(self).__name__
        if not isinstance(state, Tensor):
            raise TypeError(f"{cls}: {name} must be a Tensor, got {type(state).__name__}")
        if tuple(state.shape) != expected:
            what = "(num_layers * num_directions, hidden_size)" if unbatched else \
                "(num_layers * num_directions, batch, hidden_size)"
            raise ValueError(f"{cls}: expected {name} of shape {expected} {what}, got "
                             f"{tuple(state.shape)}")

    def forward(self, input: Tensor, hx=None, lengths=None):
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx, lengths)
        self._check_input(input, (2, 3), "2-D (L, H_in) or 3-D")
        unbatched = input.ndim == 2
        x = input.unsqueeze(1) if unbatched else (
            input.transpose(0, 1) if self.batch_first else input)
        out, state = self._forward_time_major(x, hx, lengths, unbatched)
        if unbatched:
            out = out.squeeze(1)
        elif self.batch_first:
            out = out.transpose(0, 1)
        return out, state

    def _forward_packed(self, packed: PackedSequence, hx, lengths):
        """A PackedSequence in, a PackedSequence out (same batch sizes and order), as
        PyTorch: the packed steps are laid out as a padded batch with lengths, run,
        and packed again. hx and h_n are in the caller's batch order."""
        if lengths is not None:
            raise ValueError(f"{type(self).__name__}: lengths= is for padded input; a "
                             "PackedSequence carries its own lengths")
        self._check_input(packed.data, (2,), "PackedSequence data of 2-D (N, H_in)")
        padded, lens = pad_packed_sequence(packed)
        out, state = self._forward_time_major(padded, hx, lens, False)
        return repack_like(out, packed), state

    def _check_input(self, input, ndims: tuple, what: str) -> None:
        cls = type(self).__name__
        if not isinstance(input, Tensor):
            raise TypeError(f"{cls}: input must be a Tensor, got {type(input).__name__}")
        if input.ndim not in ndims:
            raise ValueError(f"{cls}: expected input to be {what}, got {input.ndim}-D input "
                             f"of shape {tuple(input.shape)}")
        if input.shape[-1] != self.input_size:
            raise ValueError(f"{cls}: input.size(-1) must be equal to input_size. Expected "
                             f"{self.input_size}, got {input.shape[-1]} (input of shape "
                             f"{tuple(input.shape)})")
        w = self.weight_ih_l0
        if input.dtype != w.dtype:
            raise TypeError(f"{cls}: input has dtype {input.dtype.name} but the parameters "
                            f"have {w.dtype.name}")

    def _forward_time_major(self, x: Tensor, hx, lengths, unbatched: bool):
        """x (T, B, I) (B = 1 for unbatched input, whose hx has no batch dim):
        checks lengths and hx, runs the layers; (output (T, B, *), h_n or (h_n, c_n))."""
        cls = type(self).__name__
        steps, batch = x.shape[0], x.shape[1]
        if lengths is not None:
            if unbatched and isinstance(lengths, (int, np.integer)):
                lengths = [int(lengths)]
            lengths = rnn_ops._check_lengths(lengths, steps, batch, cls)
            if lengths.size and lengths.min() < 1:
                raise ValueError(f"{cls}: lengths must be >= 1 (an empty sequence has no "
                                 f"last state), got {lengths.tolist()}")
        directions = 2 if self.bidirectional else 1
        expected = (self.num_layers * directions, batch, self.hidden_size)
        if unbatched:
            expected = (expected[0], expected[2])
        h0 = c0 = None
        if hx is not None:
            if self.mode == "lstm":
                if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                    raise TypeError(f"{cls}: hx must be a tuple (h_0, c_0), got "
                                    f"{type(hx).__name__}")
                h0, c0 = hx
                self._check_state(h0, "h_0", expected, unbatched)
                self._check_state(c0, "c_0", expected, unbatched)
            else:
                h0 = hx
                self._check_state(h0, "hx", expected, unbatched)
            if unbatched:
                h0 = h0.unsqueeze(1)
                c0 = c0.unsqueeze(1) if c0 is not None else None
        out, h_n, c_n = self._run(x, h0, c0, lengths)
        if unbatched:
            h_n = h_n.squeeze(1)
            c_n = c_n.squeeze(1) if c_n is not None else None
        return out, ((h_n, c_n) if self.mode == "lstm" else h_n)

    def _run(self, x: Tensor, h0, c0, lengths):
        """The stacked layers over x (T, B, I) from h0/c0 ((L * D, B, H) or None), with
        lengths an int64 array or None: (output (T, B, D * H or H), h_n, c_n or None).
        A PackedSequence front end only has to unpack to this."""
        batch = x.shape[1]
        directions = 2 if self.bidirectional else 1
        lstm = self.mode == "lstm"
        zeros = None
        if h0 is None or (lstm and c0 is None):
            zeros = creation.zeros(batch, self.hidden_size, dtype=x.dtype, device=x.device)
        h_out, c_out = [], []
        layer_input = x
        for layer in range(self.num_layers):
            outs = []
            for d, suffix in enumerate(("", "_reverse")[:directions]):
                k = layer * directions + d
                w_ih, w_hh, b_ih, b_hh, peep = self._layer_params(layer, suffix)
                h = zeros if h0 is None else h0[k]
                c = (zeros if c0 is None else c0[k]) if lstm else None
                res = rnn_ops.rnn_layer(layer_input, h, w_ih, w_hh, b_ih, b_hh, mode=self.mode,
                                        cx=c, peephole=peep, coupled=self.coupled,
                                        lengths=lengths, reverse=d == 1)
                outs.append(res[0])
                h_out.append(res[1])
                if lstm:
                    c_out.append(res[2])
            last = layer == self.num_layers - 1
            if directions == 1:
                layer_input = outs[0]
            elif not last or self.merge_mode == "concat":
                layer_input = _cat(outs, 2)
            else:
                layer_input = self._merge(outs[0], outs[1])
            if not last and self.dropout > 0 and self.training:
                layer_input = F.dropout(layer_input, self.dropout, True)
        h_n = _stack(h_out)
        c_n = _stack(c_out) if lstm else None
        return layer_input, h_n, c_n

    def _merge(self, fwd: Tensor, bwd: Tensor) -> Tensor:
        if self.merge_mode == "sum":
            return fwd + bwd
        if self.merge_mode == "mean":
            return (fwd + bwd) * 0.5
        from .. import maximum
        return maximum(fwd, bwd)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
            if self.merge_mode != "concat":
                s += f", merge_mode={self.merge_mode!r}"
        if self.peephole:
            s += ", peephole=True"
        if self.coupled:
            s += ", coupled=True"
        return s


def _cat(tensors, dim):
    from .. import cat
    return cat(tensors, dim)


def _stack(tensors):
    from .. import stack
    return stack(tensors, 0)


class RNN(RNNBase):
    """Elman RNN, h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh) (or relu),
    stacked and optionally bidirectional, as torch.nn.RNN; ``init='identity'``
    gives the IRNN initialization (weight_hh = I, biases 0).

    >>> import nnforge as nf
    >>> rnn = nf.nn.RNN(10, 20, num_layers=2)
    >>> out, h_n = rnn(nf.randn(5, 3, 10))
    >>> tuple(out.shape), tuple(h_n.shape)
    ((5, 3, 20), (2, 3, 20))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, device=None, dtype=None, *,
                 merge_mode: str = "concat", init: str = "uniform"):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: unknown nonlinearity {nonlinearity!r}; expected 'tanh' or "
                             f"'relu'")
        if init not in ("uniform", "identity"):
            raise ValueError(f"RNN: init must be 'uniform' or 'identity', got {init!r}")
        self.nonlinearity = nonlinearity
        self.init = init
        super().__init__(f"rnn_{nonlinearity}", input_size, hidden_size, num_layers, bias,
                         batch_first, dropout, bidirectional, 0, device, dtype,
                         merge_mode=merge_mode)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.init == "identity":
            for name, p in self.named_parameters():
                if name.startswith("weight_hh"):
                    nn_init.eye_(p)
                elif name.startswith("bias"):
                    nn_init.zeros_(p)

    def extra_repr(self) -> str:
        s = super().extra_repr()
        if self.nonlinearity != "tanh":
            s += f", nonlinearity={self.nonlinearity!r}"
        if self.init != "uniform":
            s += f", init={self.init!r}"
        return s


class LSTM(RNNBase):
    """Long short-term memory, PyTorch's torch.nn.LSTM (gates i, f, g, o), with the
    peephole and coupled input/forget variants as extras; returns
    (output, (h_n, c_n)).

    >>> import nnforge as nf
    >>> lstm = nf.nn.LSTM(10, 20, bidirectional=True, batch_first=True)
    >>> out, (h_n, c_n) = lstm(nf.randn(3, 5, 10), lengths=[5, 2, 4])
    >>> tuple(out.shape), tuple(h_n.shape), tuple(c_n.shape)
    ((3, 5, 40), (2, 3, 20), (2, 3, 20))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None, dtype=None, *,
                 merge_mode: str = "concat", peephole: bool = False, coupled: bool = False):
        super().__init__("lstm", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, proj_size, device, dtype,
                         merge_mode=merge_mode, peephole=peephole, coupled=coupled)


class GRU(RNNBase):
    """Gated recurrent unit in PyTorch's form (gates r, z, n;
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = (1 - z) * n + z * h).

    >>> import nnforge as nf
    >>> gru = nf.nn.GRU(10, 20, num_layers=2)
    >>> out, h_n = gru(nf.randn(5, 3, 10))
    >>> tuple(out.shape), tuple(h_n.shape)
    ((5, 3, 20), (2, 3, 20))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, device=None, dtype=None, *,
                 merge_mode: str = "concat"):
        super().__init__("gru", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, 0, device, dtype, merge_mode=merge_mode)


# ---------------------------------------------------------------- cells
class RNNCellBase(Module):
    """weight_ih (G * hidden_size, input_size), weight_hh (G * hidden_size, hidden_size),
    bias_ih, bias_hh (G * hidden_size,), all from U(-1/sqrt(H), 1/sqrt(H))."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool, num_chunks: int,
                 device=None, dtype=None):
        super().__init__()
        name = type(self).__name__
        _check_size(name, "input_size", input_size, 1)
        _check_size(name, "hidden_size", hidden_size, 1)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        rows = num_chunks * hidden_size
        self.weight_ih = Parameter(creation.empty(rows, input_size, dtype=dtype, device=device))
        self.weight_hh = Parameter(creation.empty(rows, hidden_size, dtype=dtype, device=device))
        if bias:
            self.bias_ih = Parameter(creation.empty(rows, dtype=dtype, device=device))
            self.bias_hh = Parameter(creation.empty(rows, dtype=dtype, device=device))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn_init.uniform_(p, -stdv, stdv)

    def _prepare(self, input, hx):
        """(input (B, I), hx (B, H) or None, unbatched) after PyTorch's checks."""
        cls = type(self).__name__
        if not isinstance(input, Tensor):
            raise TypeError(f"{cls}: input must be a Tensor, got {type(input).__name__}")
        if input.ndim not in (1, 2):
            raise ValueError(f"{cls}: Expected input to be 1D or 2D, got {input.ndim}D input "
                             f"of shape {tuple(input.shape)}")
        if input.shape[-1] != self.input_size:
            raise ValueError(f"{cls}: input has inconsistent input_size: got "
                             f"{input.shape[-1]} expected {self.input_size} (input of shape "
                             f"{tuple(input.shape)})")
        unbatched = input.ndim == 1
        if unbatched:
            input = input.unsqueeze(0)
        expected = (input.shape[0], self.hidden_size)
        states = hx if isinstance(hx, (tuple, list)) else (hx,)
        out = []
        for k, h in enumerate(states):
            if h is None:
                out.append(creation.zeros(*expected, dtype=input.dtype, device=input.device))
                continue
            if not isinstance(h, Tensor):
                raise TypeError(f"{cls}: hx must be a Tensor, got {type(h).__name__}")
            if unbatched:
                h = h.unsqueeze(0)
            if tuple(h.shape) != expected:
                label = "hx" if len(states) == 1 else ("hx", "cx")[k]
                raise ValueError(f"{cls}: {label} of shape {tuple(h.shape)} does not match "
                                 f"input of shape {tuple(input.shape)}; expected "
                                 f"{expected[1:] if unbatched else expected}")
            out.append(h)
        return input, out, unbatched

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        return s


class RNNCell(RNNCellBase):
    """One Elman step, h' = tanh(W_ih x + b_ih + W_hh h + b_hh) (or relu).

    >>> import nnforge as nf
    >>> cell = nf.nn.RNNCell(10, 20)
    >>> tuple(cell(nf.randn(3, 10)).shape)
    (3, 20)
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: unknown nonlinearity {nonlinearity!r}; expected "
                             f"'tanh' or 'relu'")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, 1, device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        x, (h,), unbatched = self._prepare(input, hx)
        fn = rnn_ops.rnn_tanh_cell if self.nonlinearity == "tanh" else rnn_ops.rnn_relu_cell
        out = fn(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return out.squeeze(0) if unbatched else out


class LSTMCell(RNNCellBase):
    """One LSTM step: returns (h', c').

    >>> import nnforge as nf
    >>> cell = nf.nn.LSTMCell(10, 20)
    >>> h, c = cell(nf.randn(3, 10))
    >>> tuple(h.shape), tuple(c.shape)
    ((3, 20), (3, 20))
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None):
        super().__init__(input_size, hidden_size, bias, 4, device, dtype)

    def forward(self, input: Tensor, hx=None):
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise TypeError(f"LSTMCell: hx must be a tuple (h_0, c_0), got "
                            f"{type(hx).__name__}")
        x, (h, c), unbatched = self._prepare(input, hx if hx is not None else (None, None))
        h, c = rnn_ops.lstm_cell(x, h, c, self.weight_ih, self.weight_hh, self.bias_ih,
                                 self.bias_hh)
        return (h.squeeze(0), c.squeeze(0)) if unbatched else (h, c)


class GRUCell(RNNCellBase):
    """One GRU step (PyTorch's form, gates r, z, n).

    >>> import nnforge as nf
    >>> cell = nf.nn.GRUCell(10, 20)
    >>> tuple(cell(nf.randn(3, 10)).shape)
    (3, 20)
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None):
        super().__init__(input_size, hidden_size, bias, 3, device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        x, (h,), unbatched = self._prepare(input, hx)
        out = rnn_ops.gru_cell(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return out.squeeze(0) if unbatched else out
