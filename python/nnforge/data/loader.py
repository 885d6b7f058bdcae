"""``DataLoader``: batches from a data set, shuffled by a seeded generator.

A ``TensorDataset`` is batched by indexing its tensors with the whole batch of
indices at once (one gather per tensor, not one per sample); other data sets
go through ``collate_fn``, which stacks samples as PyTorch's default does.
"""
from __future__ import annotations

import math

import numpy as np

from ..random import _rng
from ..tensor import Tensor
from .dataset import TensorDataset


def default_collate(samples):
    """Stacks a list of samples: tensors -> stacked tensor, numbers -> tensor,
    tuples/lists/dicts -> the same structure of stacked fields."""
    from ..ops.creation import tensor
    from ..ops.shape import stack
    first = samples[0]
    if isinstance(first, Tensor):
        return stack(list(samples))
    if isinstance(first, np.ndarray):
        return tensor(np.stack(samples))
    if isinstance(first, (int, float, bool, np.number)):
        return tensor(list(samples))
    if isinstance(first, dict):
        return {k: default_collate([s[k] for s in samples]) for k in first}
    if isinstance(first, (tuple, list)):
        if any(len(s) != len(first) for s in samples):
            raise ValueError("default_collate: each sample must have the same number of fields")
        return type(first)(default_collate(list(f)) for f in zip(*samples)) \
            if isinstance(first, tuple) else [default_collate(list(f)) for f in zip(*samples)]
    raise TypeError(f"default_collate: don't know how to batch samples of type {type(first).__name__}")


class DataLoader:
    """Iterates over ``dataset`` in batches.

    >>> import nnforge as nf
    >>> ds = nf.data.TensorDataset(nf.arange(10).float(), nf.arange(10))
    >>> [len(x) for x, _ in nf.data.DataLoader(ds, batch_size=4)]
    [4, 4, 2]
    """

    def __init__(self, dataset, batch_size: int = 1, shuffle: bool = False, collate_fn=None,
                 drop_last: bool = False, num_workers: int = 0, generator=None):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if num_workers != 0:
            raise ValueError("DataLoader: num_workers > 0 is not supported yet")
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.collate_fn = collate_fn
        self.drop_last = drop_last
        self.num_workers = num_workers
        self.generator = generator

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _order(self) -> np.ndarray:
        n = len(self.dataset)
        return _rng(self.generator).permutation(n) if self.shuffle else np.arange(n)

    def __iter__(self):
        order = self._order()
        fast = isinstance(self.dataset, TensorDataset) and self.collate_fn is None
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            if len(idx) < self.batch_size and self.drop_last:
                return
            if fast:
                yield self.dataset[idx]
            else:
                collate = self.collate_fn or default_collate
                yield collate([self.dataset[int(i)] for i in idx])
