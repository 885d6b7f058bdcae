"""Packed sequences, as ``torch.nn.utils.rnn``: a batch of variable-length
sequences stored without padding.

A ``PackedSequence`` keeps the steps time-major with the sequences sorted by
length, longest first: ``data`` holds step 0 of every sequence, then step 1 of
every sequence still running, and so on; ``batch_sizes[t]`` says how many
sequences have a step t. For lengths (3, 1, 2) sorted to (3, 2, 1):

    data        = [a0 b0 c0 | a1 b1 | a2]    (a: length 3, b: 2, c: 1)
    batch_sizes = [3, 2, 1]

``sorted_indices`` maps sorted positions to the caller's order and
``unsorted_indices`` back (None when the batch came sorted); as in PyTorch they
live on ``data``'s device and ``batch_sizes`` on the CPU. Packing and
unpacking are gathers, so gradients flow through both. nnforge's recurrent
layers also take the padded batch with ``lengths=`` directly.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from ...data.padding import pad_sequence
from ...ops.creation import from_numpy, zeros
from ...ops.indexing import index_select
from ...ops.shape import cat, reshape, transpose
from ...tensor import Tensor

__all__ = ["PackedSequence", "pack_padded_sequence", "pad_packed_sequence", "pack_sequence",
           "unpack_sequence", "pad_sequence", "unpad_sequence"]


class PackedSequence(NamedTuple):
    data: Tensor
    batch_sizes: Tensor
    sorted_indices: Tensor | None = None
    unsorted_indices: Tensor | None = None

    def lengths(self) -> np.ndarray:
        """The lengths in the caller's (unsorted) order, as int64 numpy."""
        sizes = self.batch_sizes.numpy(force=True)
        sorted_lengths = (sizes[None, :] > np.arange(int(sizes[0]))[:, None]).sum(1)
        if self.unsorted_indices is None:
            return sorted_lengths
        return sorted_lengths[self.unsorted_indices.numpy(force=True)]


def _lengths_array(lengths, batch: int, steps: int, op: str) -> np.ndarray:
    arr = np.asarray(lengths.numpy(force=True) if isinstance(lengths, Tensor) else lengths)
    if arr.ndim != 1 or arr.dtype.kind not in "iu" and not (arr.size == 0):
        raise ValueError(f"{op}: lengths must be a 1-D sequence of ints, got {arr!r}")
    arr = arr.astype(np.int64)
    if len(arr) != batch:
        raise ValueError(f"{op}: {len(arr)} lengths for a batch of {batch} sequences")
    if batch and (arr.min() <= 0 or arr.max() > steps):
        raise ValueError(f"{op}: every length must be in [1, {steps}] (the padded length), "
                         f"got {arr.tolist()}")
    return arr


def pack_padded_sequence(input: Tensor, lengths, batch_first: bool = False,
                         enforce_sorted: bool = True) -> PackedSequence:
    """Packs a padded batch (T, B, *) ((B, T, *) with ``batch_first``) whose
    sequence b has ``lengths[b]`` valid steps. With ``enforce_sorted`` the
    lengths must be non-increasing; otherwise the batch is sorted here.

    >>> import nnforge as nf
    >>> x = nf.tensor([[1, 2, 3], [4, 0, 0], [5, 6, 0]])
    >>> p = pack_padded_sequence(x, [3, 1, 2], batch_first=True, enforce_sorted=False)
    >>> p.data.tolist(), p.batch_sizes.tolist()
    ([1, 5, 4, 2, 6, 3], [3, 2, 1])
    """
    op = "pack_padded_sequence"
    if not isinstance(input, Tensor) or input.ndim < 2:
        raise ValueError(f"{op}: input must be a padded batch tensor of at least 2 dims")
    if batch_first:
        input = transpose(input, 0, 1)
    steps, batch = input.shape[0], input.shape[1]
    lens = _lengths_array(lengths, batch, steps, op)
    if enforce_sorted:
        if np.any(np.diff(lens) > 0):
            raise ValueError(f"{op}: lengths {lens.tolist()} are not sorted in decreasing "
                             "order; pass enforce_sorted=False to sort them here")
        order = None
    else:
        order = np.argsort(-lens, kind="stable")
        lens = lens[order]
    batch_sizes = (lens[None, :] > np.arange(lens[0])[:, None]).sum(1)
    data = _gather_packed(input, batch_sizes, order)
    sorted_idx = unsorted_idx = None
    if order is not None:
        sorted_idx = from_numpy(order.astype(np.int64)).to(input.device)
        unsorted_idx = from_numpy(np.argsort(order).astype(np.int64)).to(input.device)
    return PackedSequence(data, from_numpy(batch_sizes.astype(np.int64)), sorted_idx,
                          unsorted_idx)


def _gather_packed(padded: Tensor, batch_sizes: np.ndarray, order) -> Tensor:
    """The packed ``data`` of a time-major padded batch (T, B, *): step t of the
    first batch_sizes[t] sequences in sorted order (``order`` maps sorted
    positions to batch rows; None when the batch is already sorted)."""
    steps, batch = padded.shape[0], padded.shape[1]
    # Row t * B + b of the flattened (T * B, *) input, in packed order.
    src_batch = np.arange(batch) if order is None else np.asarray(order)
    rows = np.concatenate([t * batch + src_batch[:n] for t, n in enumerate(batch_sizes)])
    flat = reshape(padded, (steps * batch,) + tuple(padded.shape[2:]))
    return index_select(flat, 0, from_numpy(rows.astype(np.int64)).to(padded.device))


def repack_like(padded: Tensor, like: PackedSequence) -> PackedSequence:
    """A time-major padded batch (T, B, *) in the caller's batch order, packed
    with ``like``'s batch sizes and order: how a recurrent layer returns its
    output for a PackedSequence input."""
    sizes = like.batch_sizes.numpy(force=True)
    order = None if like.sorted_indices is None else like.sorted_indices.numpy(force=True)
    return PackedSequence(_gather_packed(padded, sizes, order), like.batch_sizes,
                          like.sorted_indices, like.unsorted_indices)


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False,
                        padding_value: float = 0.0, total_length: int | None = None) -> tuple:
    """(padded batch (T, B, *) or (B, T, *), lengths int64 (B,)) from a PackedSequence,
    in the caller's original batch order; ``total_length`` pads T further."""
    op = "pad_packed_sequence"
    if not isinstance(sequence, PackedSequence):
        raise TypeError(f"{op}: expected a PackedSequence, got {type(sequence).__name__}")
    data, sizes = sequence.data, sequence.batch_sizes.numpy(force=True).astype(np.int64)
    batch, steps = int(sizes[0]), len(sizes)
    if total_length is not None:
        if total_length < steps:
            raise ValueError(f"{op}: total_length {total_length} is shorter than the longest "
                             f"sequence ({steps} steps)")
        steps = total_length
    # Every padded slot (t, sorted b) reads a packed row, or the padding row after data.
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    pad_row = int(offsets[-1])
    index = np.full((steps, batch), pad_row, dtype=np.int64)
    for t, n in enumerate(sizes):
        index[t, :n] = offsets[t] + np.arange(n)
    if sequence.unsorted_indices is not None:
        index = index[:, sequence.unsorted_indices.numpy(force=True)]
    filler = zeros((1,) + tuple(data.shape[1:]), dtype=data.dtype, device=data.device)
    source = cat([data, filler + padding_value], 0)
    padded = index_select(source, 0, from_numpy(index.reshape(-1)).to(data.device))
    padded = reshape(padded, (steps, batch) + tuple(data.shape[1:]))
    if batch_first:
        padded = transpose(padded, 0, 1)
    return padded, from_numpy(sequence.lengths())


def pack_sequence(sequences: Sequence[Tensor], enforce_sorted: bool = True) -> PackedSequence:
    """Packs a list of (L_i, *) tensors (longest first unless ``enforce_sorted=False``)."""
    lengths = [len(s) for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpad_sequence(padded: Tensor, lengths, batch_first: bool = False) -> list:
    """The list of (L_i, *) sequences in a padded batch."""
    if not batch_first:
        padded = transpose(padded, 0, 1)
    lens = _lengths_array(lengths, padded.shape[0], padded.shape[1], "unpad_sequence")
    return [padded[b, :int(n)] for b, n in enumerate(lens)]


def unpack_sequence(packed: PackedSequence) -> list:
    """The list of (L_i, *) sequences in a PackedSequence, in the original order."""
    padded, lengths = pad_packed_sequence(packed, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
