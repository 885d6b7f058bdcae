"""What ``fit`` changes when it runs as one rank of a data-parallel job.

``fit`` turns data-parallel on by itself when a process group of more than
one rank is initialized (``nf.distributed.init_process_group()`` under
``mpirun -n N``; ``nnforge train ... --distributed`` does that), as
PyTorch Lightning's DDP strategy does:

- the model trains wrapped in ``DistributedDataParallel`` (callbacks and
  checkpoints still see the plain model, so a checkpoint loads without DDP);
- the training loader is rebuilt over a ``DistributedSampler`` (same data
  set, batch size, collate function and drop_last; shuffled when the loader
  was, seeded from its generator), whose epoch is set before every epoch:
  each rank reads 1/N of the data, ``batch_size`` samples per step;
- the epoch's loss and metrics are means over all ranks' samples, and rank
  0's buffers (BatchNorm statistics) are copied to every rank after each
  epoch, so every rank validates, stops early and picks "best" the same way;
- only rank 0 shows progress, logs and runs callbacks marked
  ``rank_zero_only`` (``ModelCheckpoint``): other ranks write no files.
"""
from __future__ import annotations

__all__ = ["data_parallel_active", "is_main_process", "DataParallelRun"]


def data_parallel_active() -> bool:
    """True when a process group of more than one rank is initialized."""
    from .. import distributed as dist
    return dist.is_initialized() and dist.get_world_size() > 1


def is_main_process() -> bool:
    """True on rank 0, and in a process that is not part of a job."""
    from .. import distributed as dist
    return not dist.is_initialized() or dist.get_rank() == 0


def _shard_loader(loader):
    from ..data import DataLoader, DistributedSampler, IterableDataset
    from ..data.sampler import BatchSampler, RandomSampler, SequentialSampler
    sampler = getattr(loader, "sampler", None)
    if isinstance(sampler, DistributedSampler):
        return loader, sampler
    if not isinstance(loader, DataLoader) or isinstance(loader.dataset, IterableDataset) \
            or type(loader.batch_sampler) is not BatchSampler \
            or not isinstance(sampler, (RandomSampler, SequentialSampler)):
        raise ValueError("fit (distributed): the training loader must be an nnforge DataLoader "
                         "over a map-style data set with batch_size and shuffle (or give it a "
                         f"DistributedSampler yourself); got {type(loader).__name__} with "
                         f"sampler {type(sampler).__name__}")
    shuffle = isinstance(sampler, RandomSampler)
    gen = loader.generator or getattr(sampler, "generator", None)
    seed = gen.initial_seed() if gen is not None else 0
    dsampler = DistributedSampler(loader.dataset, shuffle=shuffle, seed=seed,
                                  drop_last=loader.drop_last)
    sharded = DataLoader(loader.dataset, batch_size=loader.batch_size, sampler=dsampler,
                         num_workers=loader.num_workers, collate_fn=loader.collate_fn,
                         drop_last=loader.drop_last, timeout=loader.timeout,
                         worker_init_fn=loader.worker_init_fn)
    return sharded, dsampler


class DataParallelRun:
    """The data-parallel side of one ``fit``: the wrapped model, the sharded
    loader, and the cross-rank sums of the epoch's means."""

    started = 0  # how many data-parallel fits this process ran (the CLI checks it)

    def __init__(self, model, train_loader):
        DataParallelRun.started += 1
        from ..nn.parallel import DistributedDataParallel
        self.ddp = model if isinstance(model, DistributedDataParallel) else \
            DistributedDataParallel(model)
        self.train_loader, self.sampler = _shard_loader(train_loader)

    def begin_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def end_epoch(self, means) -> None:
        """Makes ``means`` (fit's ``_Means``) the means over every rank's samples,
        and every rank's buffers rank 0's."""
        import numpy as np

        from .. import distributed as dist
        from ..ops.creation import from_numpy
        keys = sorted(means.sums)
        buf = np.array([means.sums[k] for k in keys] + [means.count], dtype=np.float64)
        dist.all_reduce(from_numpy(buf))  # in place on buf
        means.sums = {k: float(v) for k, v in zip(keys, buf[:-1])}
        means.count = int(round(buf[-1]))
        self.ddp._sync_buffers()
