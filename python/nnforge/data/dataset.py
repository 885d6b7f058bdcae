"""Data sets: ``Dataset``, ``TensorDataset``, ``Subset``, ``ConcatDataset``,
``IterableDataset``, ``ChainDataset`` and ``random_split``, as in
``torch.utils.data``.

A map-style data set answers ``ds[i]`` and ``len(ds)``; an iterable data set
is read front to back with ``iter(ds)``. ``TensorDataset`` can also fetch a
whole batch at once (``_fetch_batch(indices)``, one gather per tensor); with
the default collate function the ``DataLoader`` uses it, directly or through
a ``Subset``, instead of one ``__getitem__`` call per sample.
``__getitems__(indices)`` is PyTorch's hook for fetching a list of samples at
once; the loader calls it where a data set defines it.
"""
from __future__ import annotations

import bisect
import math
import warnings
from typing import Iterable, Sequence

import numpy as np

from ..random import Generator, _rng
from ..tensor import Tensor


class Dataset:
    """A map-style data set: implement ``__getitem__(index)`` and ``__len__``.

    ``a + b`` concatenates two data sets into a ``ConcatDataset``.
    """

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __add__(self, other: "Dataset") -> "ConcatDataset":
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """A data set read as a stream: implement ``__iter__``.

    The ``DataLoader`` batches what ``iter(dataset)`` yields, in order; it
    takes no sampler and no ``shuffle``. ``a + b`` chains two streams.

    >>> class Count(IterableDataset):
    ...     def __iter__(self):
    ...         return iter(range(3))
    >>> list(Count() + Count())
    [0, 1, 2, 0, 1, 2]
    """

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must implement __iter__")

    def __add__(self, other: "IterableDataset") -> "ChainDataset":
        return ChainDataset([self, other])


class TensorDataset(Dataset):
    """Samples are the i-th rows of the given tensors, which share their first dim.

    >>> import nnforge as nf
    >>> ds = nf.data.TensorDataset(nf.zeros(4, 2), nf.arange(4))
    >>> len(ds), ds[1][1].item()
    (4, 1)
    """

    def __init__(self, *tensors: Tensor):
        if not tensors:
            raise ValueError("TensorDataset: needs at least one tensor")
        for i, t in enumerate(tensors):
            if not isinstance(t, Tensor):
                raise TypeError(f"TensorDataset: argument {i} is {type(t).__name__}, not a Tensor")
        n = tensors[0].shape[0] if tensors[0].ndim else None
        for t in tensors:
            if t.ndim == 0 or t.shape[0] != n:
                raise ValueError("TensorDataset: size mismatch between tensors: first dims are "
                                 f"{[tuple(x.shape)[:1] for x in tensors]}")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def _fetch_batch(self, indices) -> list:
        """The whole batch at once: one gather per tensor, returned as a list
        of batched tensors (what ``default_collate`` makes of the samples)."""
        idx = np.asarray(indices, dtype=np.int64)
        return [t[idx] for t in self.tensors]

    def __len__(self) -> int:
        return self.tensors[0].shape[0]


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order.

    >>> ds = Subset(list("abcdef"), [4, 0, 2])
    >>> len(ds), ds[0], ds[-1]
    (3, 'e', 'c')
    """

    def __init__(self, dataset, indices: Sequence[int]):
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, idx):
        if isinstance(idx, list):
            return self.dataset[[self.indices[i] for i in idx]]
        return self.dataset[self.indices[idx]]

    def __getitems__(self, indices) -> list:
        mapped = [int(self.indices[i]) for i in indices]
        if callable(getattr(self.dataset, "__getitems__", None)):
            return self.dataset.__getitems__(mapped)
        return [self.dataset[i] for i in mapped]

    def __len__(self) -> int:
        return len(self.indices)


class ConcatDataset(Dataset):
    """Map-style data sets one after another: index ``i`` falls into the data
    set whose cumulative size first exceeds it.

    >>> ds = ConcatDataset([list("ab"), list("cde")])
    >>> len(ds), ds[1], ds[2], ds[-1], ds.cumulative_sizes
    (5, 'b', 'c', 'e', [2, 5])
    """

    @staticmethod
    def cumsum(sequence) -> list:
        out, total = [], 0
        for d in sequence:
            total += len(d)
            out.append(total)
        return out

    def __init__(self, datasets: Iterable):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise TypeError("ConcatDataset does not support IterableDataset (use ChainDataset)")
        self.cumulative_sizes = self.cumsum(self.datasets)

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx):
        n = len(self)
        if idx < 0:
            if -idx > n:
                raise IndexError(f"ConcatDataset: index {idx} is out of range for length {n}")
            idx += n
        if idx >= n:
            raise IndexError(f"ConcatDataset: index {idx} is out of range for length {n}")
        which = bisect.bisect_right(self.cumulative_sizes, idx)
        start = self.cumulative_sizes[which - 1] if which else 0
        return self.datasets[which][idx - start]


class ChainDataset(IterableDataset):
    """Iterable data sets read one after another."""

    def __init__(self, datasets: Iterable):
        self.datasets = list(datasets)

    def __iter__(self):
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise TypeError(f"ChainDataset: only IterableDatasets can be chained, "
                                f"got {type(d).__name__}")
            yield from d

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)


def _split_lengths(n: int, lengths: Sequence) -> list:
    """Integer lengths from ``lengths``: kept as they are when they sum to ``n``;
    fractions summing to 1 become ``floor(n * f)`` each, and the remainder is
    handed out one at a time, round robin from the first split (PyTorch's rule)."""
    lengths = list(lengths)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        sizes = []
        for i, frac in enumerate(lengths):
            if not 0 <= frac <= 1:
                raise ValueError(f"random_split: fraction at index {i} is not between 0 and 1, "
                                 f"got {frac}")
            sizes.append(math.floor(n * frac))
        for i in range(n - sum(sizes)):
            sizes[i % len(sizes)] += 1
        for i, s in enumerate(sizes):
            if s == 0:
                warnings.warn(f"random_split: length of split at index {i} is 0; this split "
                              "will be empty", stacklevel=3)
        return sizes
    for i, s in enumerate(lengths):
        if isinstance(s, bool) or int(s) != s or s < 0:
            raise ValueError(f"random_split: lengths must be non-negative integers or fractions "
                             f"summing to 1, got {lengths[i]!r} at index {i}")
    if sum(lengths) != n:
        raise ValueError(f"random_split: sum of input lengths {lengths} ({sum(lengths)}) does "
                         f"not equal the length of the input dataset ({n})")
    return [int(s) for s in lengths]


def random_split(dataset, lengths: Sequence, generator: Generator | None = None) -> list:
    """Splits ``dataset`` into non-overlapping ``Subset``s of the given lengths
    (integers summing to ``len(dataset)``, or fractions summing to 1), taking
    the samples in the order of one random permutation from ``generator``.

    >>> import nnforge as nf
    >>> a, b = random_split(range(10), [0.7, 0.3], generator=nf.Generator().manual_seed(0))
    >>> len(a), len(b), sorted(list(a) + list(b)) == list(range(10))
    (7, 3, True)
    """
    sizes = _split_lengths(len(dataset), lengths)
    order = _rng(generator).permutation(sum(sizes)).tolist()
    out, start = [], 0
    for s in sizes:
        out.append(Subset(dataset, order[start:start + s]))
        start += s
    return out
