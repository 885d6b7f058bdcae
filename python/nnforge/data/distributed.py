"""``DistributedSampler``: each rank of a data-parallel job reads its own
share of a map-style data set (``torch.utils.data.distributed``).

Every rank draws the same permutation (seeded with ``seed + epoch``: call
``set_epoch`` at the start of each epoch for a new order), pads it to a
multiple of ``num_replicas`` by repeating its start (or, with ``drop_last``,
cuts it to one), and takes every ``num_replicas``-th index from position
``rank``. So the ranks' shares are disjoint, of equal length, and together
cover the data set once per epoch (plus the padding).

>>> s = DistributedSampler(range(10), num_replicas=4, rank=1, shuffle=False)
>>> list(s), len(s)
([1, 5, 9], 3)
"""
from __future__ import annotations

import math
from typing import Iterator

from ..random import Generator, _rng
from .sampler import Sampler

__all__ = ["DistributedSampler"]


def _from_process_group(what: str) -> int:
    from .. import distributed as dist
    if not dist.is_initialized():
        raise RuntimeError(f"DistributedSampler: {what} was not given and no process group is "
                           "initialized; call nnforge.distributed.init_process_group() (under "
                           f"mpirun) or pass {what}")
    return dist.get_world_size() if what == "num_replicas" else dist.get_rank()


class DistributedSampler(Sampler):
    """Indices of ``dataset`` for rank ``rank`` of ``num_replicas`` (both from the
    default process group when None); see the module docstring."""

    def __init__(self, dataset, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False):
        if num_replicas is None:
            num_replicas = _from_process_group("num_replicas")
        if rank is None:
            rank = _from_process_group("rank")
        if isinstance(num_replicas, bool) or int(num_replicas) != num_replicas \
                or num_replicas < 1:
            raise ValueError(f"DistributedSampler: num_replicas must be a positive int, "
                             f"got {num_replicas!r}")
        if rank >= num_replicas or rank < 0:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval "
                             f"[0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.epoch = 0
        self.drop_last = drop_last
        n = len(dataset)
        if drop_last and n % self.num_replicas != 0:
            self.num_samples = math.ceil((n - self.num_replicas) / self.num_replicas)
        else:
            self.num_samples = math.ceil(n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas
        self.shuffle = shuffle
        self.seed = seed

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        if self.shuffle:
            gen = Generator().manual_seed(self.seed + self.epoch)
            indices = _rng(gen).permutation(n).tolist()
        else:
            indices = list(range(n))
        if not self.drop_last:
            pad = self.total_size - len(indices)
            if pad > 0 and indices:
                indices += (indices * math.ceil(pad / len(indices)))[:pad]
        else:
            indices = indices[:self.total_size]
        return iter(indices[self.rank:self.total_size:self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """The epoch this pass belongs to: with ``shuffle`` it picks the order, the
        same on every rank."""
        self.epoch = epoch
