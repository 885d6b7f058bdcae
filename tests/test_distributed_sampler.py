"""DistributedSampler: sharding, padding, drop_last and per-epoch shuffling, against
the index lists PyTorch's sampler gives (no MPI needed: rank and num_replicas are passed)."""
import pytest

import nnforge as nf
from helpers import HAS_TORCH, requires_torch
from nnforge.data import DistributedSampler

if HAS_TORCH:
    import torch


@pytest.mark.parametrize("n, replicas, drop_last, expected", [
    # 10 samples on 4 ranks: padded with the first two to 12, three each.
    (10, 4, False, [[0, 4, 8], [1, 5, 9], [2, 6, 0], [3, 7, 1]]),
    # drop_last cuts to 8: two each.
    (10, 4, True, [[0, 4], [1, 5], [2, 6], [3, 7]]),
    # fewer samples than ranks: the list repeats until every rank has one.
    (2, 5, False, [[0], [1], [0], [1], [0]]),
    (6, 3, False, [[0, 3], [1, 4], [2, 5]]),
])
def test_unshuffled_shards(n, replicas, drop_last, expected):
    shards = [list(DistributedSampler(range(n), replicas, r, shuffle=False, drop_last=drop_last))
              for r in range(replicas)]
    assert shards == expected
    assert all(len(DistributedSampler(range(n), replicas, r, shuffle=False,
                                      drop_last=drop_last)) == len(expected[0])
               for r in range(replicas))


@requires_torch
@pytest.mark.parametrize("n, replicas, drop_last", [(10, 4, False), (10, 4, True), (7, 3, False),
                                                    (3, 8, False), (9, 2, True)])
def test_unshuffled_matches_torch(n, replicas, drop_last):
    for r in range(replicas):
        ours = DistributedSampler(range(n), replicas, r, shuffle=False, drop_last=drop_last)
        theirs = torch.utils.data.DistributedSampler(range(n), replicas, r, shuffle=False,
                                                     drop_last=drop_last)
        assert list(ours) == list(theirs) and len(ours) == len(theirs)
        assert ours.total_size == theirs.total_size


def test_shuffled_shards_cover_once_and_change_with_epoch():
    n, replicas = 23, 3
    samplers = [DistributedSampler(range(n), replicas, r, seed=7) for r in range(replicas)]
    orders = []
    for epoch in range(3):
        for s in samplers:
            s.set_epoch(epoch)
        shards = [list(s) for s in samplers]
        assert all(len(sh) == 8 for sh in shards)
        flat = [i for sh in shards for i in sh]
        assert set(flat) == set(range(n))  # 24 slots: every index, one padded repeat
        orders.append(shards)
    assert orders[0] != orders[1] != orders[2]
    again = DistributedSampler(range(n), replicas, 1, seed=7)
    again.set_epoch(1)
    assert list(again) == orders[1][1]  # same seed and epoch: same order on every process
    other_seed = DistributedSampler(range(n), replicas, 1, seed=8)
    other_seed.set_epoch(1)
    assert list(other_seed) != orders[1][1]


def test_with_data_loader():
    ds = nf.data.TensorDataset(nf.arange(10.0))
    s = DistributedSampler(ds, num_replicas=2, rank=1, shuffle=False)
    batches = [b[0].tolist() for b in nf.data.DataLoader(ds, batch_size=2, sampler=s)]
    assert batches == [[1.0, 3.0], [5.0, 7.0], [9.0]]
    assert nf.data.distributed.DistributedSampler is DistributedSampler


def test_errors():
    with pytest.raises(ValueError,
                       match=r"Invalid rank 2, rank should be in the interval \[0, 1\]"):
        DistributedSampler(range(4), num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="num_replicas must be a positive int"):
        DistributedSampler(range(4), num_replicas=0, rank=0)
    if not nf.distributed.is_initialized():
        with pytest.raises(RuntimeError, match="no process group is initialized"):
            DistributedSampler(range(4))
