"""Padding variable-length sequences into one batch tensor.

- ``pad_sequence``: PyTorch's ``torch.nn.utils.rnn.pad_sequence``, built from
  nnforge's differentiable ``pad`` and ``stack`` so gradients flow back into
  each sequence (the padded positions get none).
- ``pad_to_length``: every sequence padded (and, by default, cut) to one fixed
  length.
- ``PadCollate``: a ``collate_fn`` for the ``DataLoader`` that pads the
  samples of a batch and also returns their lengths, the form recurrent
  layers take as ``forward(x, lengths=...)``.

Shapes: each sequence is ``(L_i, *)``, with the same trailing dims ``*``; a
batch is ``(B, T, *)`` with ``batch_first`` and ``(T, B, *)`` without.
"""
from __future__ import annotations

from typing import Sequence

from ..ops.creation import as_tensor, tensor
from ..ops.shape import pad, stack
from ..tensor import Tensor


def _check_side(value: str, arg: str, op: str) -> None:
    if value not in ("left", "right"):
        raise ValueError(f"{op}: {arg} must be 'left' or 'right', got {value!r}")


def _check_sequences(sequences, op: str) -> list:
    if isinstance(sequences, Tensor):
        if sequences.ndim == 0:
            raise ValueError(f"{op}: expected a list of sequences, got a 0-d tensor")
        sequences = list(sequences.unbind(0))
    sequences = list(sequences)
    if not sequences:
        raise ValueError(f"{op}: received an empty list of sequences")
    for i, s in enumerate(sequences):
        if not isinstance(s, Tensor):
            raise TypeError(f"{op}: sequence {i} is {type(s).__name__}, not a Tensor")
        if s.ndim == 0:
            raise ValueError(f"{op}: sequence {i} is a 0-d tensor; sequences need a length dim")
        if tuple(s.shape[1:]) != tuple(sequences[0].shape[1:]):
            raise ValueError(f"{op}: sequences must share their trailing dims; sequence 0 has "
                             f"shape {tuple(sequences[0].shape)}, sequence {i} has shape "
                             f"{tuple(s.shape)}")
    return sequences


def _pad_to(seq: Tensor, length: int, value, side: str) -> Tensor:
    """``seq`` (L, *) padded along dim 0 to ``length >= L``."""
    extra = length - seq.shape[0]
    if extra == 0:
        return seq
    widths = (0, 0) * (seq.ndim - 1) + ((extra, 0) if side == "left" else (0, extra))
    return pad(seq, widths, value=value)


def _stack_padded(seqs: list, length: int, value, side: str, batch_first: bool) -> Tensor:
    return stack([_pad_to(s, length, value, side) for s in seqs], dim=0 if batch_first else 1)


def pad_sequence(sequences: Sequence[Tensor], batch_first: bool = False,
                 padding_value: float = 0.0, padding_side: str = "right") -> Tensor:
    """Pads a list of ``(L_i, *)`` tensors with ``padding_value`` to the longest
    length ``T`` and stacks them: ``(B, T, *)`` if ``batch_first`` else
    ``(T, B, *)``. ``padding_side='left'`` puts the padding before the data.

    >>> import nnforge as nf
    >>> pad_sequence([nf.tensor([1, 2, 3]), nf.tensor([4])], batch_first=True).tolist()
    [[1, 2, 3], [4, 0, 0]]
    """
    _check_side(padding_side, "padding_side", "pad_sequence")
    seqs = _check_sequences(sequences, "pad_sequence")
    longest = max(s.shape[0] for s in seqs)
    return _stack_padded(seqs, longest, padding_value, padding_side, batch_first)


def _as_sequence(x, op: str, i: int) -> Tensor:
    if isinstance(x, Tensor):
        return x
    try:
        return as_tensor(x)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{op}: sample {i} ({type(x).__name__}) cannot be made into a tensor: {e}") \
            from None


def pad_to_length(sequences, length: int, truncate: bool = True, padding_value=0,
                  padding_side: str = "right", *, truncation_side: str = "right") -> Tensor:
    """``(B, length, *)``: each sequence padded to exactly ``length``; longer
    ones are cut (keeping the first ``length`` items, or the last ones with
    ``truncation_side='left'``) or, with ``truncate=False``, refused.
    Sequences may be tensors, numpy arrays or lists.

    >>> pad_to_length([[1, 2, 3, 4], [5]], 3).tolist()
    [[1, 2, 3], [5, 0, 0]]
    """
    op = "pad_to_length"
    if isinstance(length, bool) or not isinstance(length, int) or length < 0:
        raise ValueError(f"{op}: length must be a non-negative int, got {length!r}")
    _check_side(padding_side, "padding_side", op)
    _check_side(truncation_side, "truncation_side", op)
    if isinstance(sequences, Tensor):
        sequences = list(sequences.unbind(0)) if sequences.ndim else sequences
    seqs = [_as_sequence(s, op, i) for i, s in enumerate(sequences)]
    seqs = _check_sequences(seqs, op)
    cut = []
    for i, s in enumerate(seqs):
        if s.shape[0] > length:
            if not truncate:
                raise ValueError(f"{op}: sequence {i} has length {s.shape[0]} > {length} "
                                 "and truncate=False")
            s = s[:length] if truncation_side == "right" else s[s.shape[0] - length:]
        cut.append(s)
    return _stack_padded(cut, length, padding_value, padding_side, batch_first=True)


class PadCollate:
    """A ``collate_fn`` for variable-length samples.

    A sample is either a sequence (tensor, numpy array or list, ``(L_i, *)``)
    or a tuple whose first field is the sequence and whose other fields
    (labels, ...) are batched by ``default_collate`` (a list is always read
    as a sequence). A batch is then
    ``(padded, lengths)`` or ``(padded, lengths, *other_fields)``:

    - ``padded``: ``(B, T, *)`` with ``batch_first`` else ``(T, B, *)``, where
      ``T`` is the longest sample of the batch, or exactly ``max_length`` when
      that is given (longer samples are cut to it);
    - ``lengths``: int64 ``(B,)``, each sample's length after cutting.

    >>> import nnforge as nf
    >>> samples = [([1, 2, 3], 0), ([4], 1)]
    >>> x, lengths, y = PadCollate()(samples)
    >>> x.tolist(), lengths.tolist(), y.tolist()
    ([[1, 2, 3], [4, 0, 0]], [3, 1], [0, 1])
    """

    def __init__(self, padding_value=0, batch_first: bool = True, max_length: int | None = None,
                 *, padding_side: str = "right"):
        if max_length is not None and (isinstance(max_length, bool) or
                                       not isinstance(max_length, int) or max_length < 1):
            raise ValueError(f"PadCollate: max_length must be a positive int or None, "
                             f"got {max_length!r}")
        _check_side(padding_side, "padding_side", "PadCollate")
        self.padding_value = padding_value
        self.batch_first = batch_first
        self.max_length = max_length
        self.padding_side = padding_side

    def __call__(self, samples):
        from .loader import default_collate
        if not samples:
            raise ValueError("PadCollate: received an empty batch")
        structured = isinstance(samples[0], tuple)
        seqs = [s[0] for s in samples] if structured else list(samples)
        seqs = _check_sequences([_as_sequence(s, "PadCollate", i) for i, s in enumerate(seqs)],
                                "PadCollate")
        if self.max_length is not None:
            seqs = [s[:self.max_length] for s in seqs]
            length = self.max_length
        else:
            length = max(s.shape[0] for s in seqs)
        padded = _stack_padded(seqs, length, self.padding_value, self.padding_side,
                               self.batch_first)
        lengths = tensor([s.shape[0] for s in seqs])
        if not structured:
            return padded, lengths
        rest = [tuple(s[1:]) for s in samples]
        if rest and len(rest[0]):
            return (padded, lengths, *default_collate(rest))
        return padded, lengths

    def __repr__(self) -> str:
        return (f"PadCollate(padding_value={self.padding_value!r}, batch_first={self.batch_first}, "
                f"max_length={self.max_length})")
