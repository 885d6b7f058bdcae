"""Datasets, the DataLoader and the bundled digits."""
import numpy as np
import pytest

import nnforge as nf
from nnforge.data import DataLoader, Dataset, TensorDataset, digits_split, load_digits, stratified_split


def test_tensor_dataset_indexing_and_errors():
    ds = TensorDataset(nf.arange(10).float().reshape(5, 2), nf.arange(5))
    assert len(ds) == 5
    x, y = ds[3]
    assert x.tolist() == [6.0, 7.0] and y.item() == 3
    with pytest.raises(ValueError, match="size mismatch"):
        TensorDataset(nf.zeros(3, 2), nf.zeros(4))
    with pytest.raises(TypeError, match="not a Tensor"):
        TensorDataset(nf.zeros(3), [1, 2, 3])


@pytest.mark.parametrize("n, bs, drop_last, sizes", [
    (10, 4, False, [4, 4, 2]), (10, 4, True, [4, 4]), (8, 4, False, [4, 4]), (3, 5, False, [3]),
    (3, 5, True, []),
])
def test_batch_sizes(n, bs, drop_last, sizes):
    loader = DataLoader(TensorDataset(nf.arange(n)), batch_size=bs, drop_last=drop_last)
    got = [len(b[0]) for b in loader]
    assert got == sizes and len(loader) == len(sizes)


def test_shuffle_is_a_seeded_permutation():
    ds = TensorDataset(nf.arange(50))

    def order(seed):
        loader = DataLoader(ds, batch_size=7, shuffle=True, generator=nf.Generator().manual_seed(seed))
        return np.concatenate([b[0].numpy() for b in loader])

    a, b, c = order(1), order(1), order(2)
    assert sorted(a.tolist()) == list(range(50))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a, np.arange(50))


class Squares(Dataset):
    def __len__(self):
        return 6

    def __getitem__(self, i):
        return {"x": nf.tensor([float(i), float(i * i)]), "y": i}


def test_default_collate_structures_and_custom_collate():
    batch = next(iter(DataLoader(Squares(), batch_size=4)))
    assert batch["x"].shape == (4, 2) and batch["y"].tolist() == [0, 1, 2, 3]
    sums = [b for b in DataLoader(Squares(), batch_size=3, collate_fn=lambda s: sum(d["y"] for d in s))]
    assert sums == [3, 12]


def test_bad_loader_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(TensorDataset(nf.arange(3)), batch_size=0)


def test_digits_bundled_and_intact():
    images, labels = load_digits()
    assert images.shape == (1797, 8, 8) and images.dtype == np.uint8
    assert labels.shape == (1797,) and set(np.unique(labels)) == set(range(10))
    assert images.max() == 16 and images.min() == 0


def test_stratified_split_keeps_class_proportions():
    _, labels = load_digits()
    tr, te = stratified_split(labels, 0.25, seed=0)
    assert len(np.intersect1d(tr, te)) == 0 and len(tr) + len(te) == len(labels)
    for c in range(10):
        frac = np.mean(labels[te] == c) / np.mean(labels == c)
        assert abs(frac - 1) < 0.05
    tr2, te2 = stratified_split(labels, 0.25, seed=0)
    np.testing.assert_array_equal(te, te2)
    with pytest.raises(ValueError, match="test_fraction"):
        stratified_split(labels, 1.5)


def test_digits_split_standardize_uses_training_statistics():
    x_tr, y_tr, x_te, y_te = digits_split(standardize=True)
    assert x_tr.shape == (1347, 64) and x_te.shape == (450, 64)
    assert x_tr.dtype == np.float32 and y_tr.dtype == np.int64
    varying = x_tr.std(0) > 0
    np.testing.assert_allclose(x_tr.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(x_tr.std(0)[varying], 1, atol=1e-4)
    raw_tr, _, _, _ = digits_split()
    assert raw_tr.min() >= 0 and raw_tr.max() <= 1


# ============================================================================ data sets
from helpers import requires_torch, to_numpy, torch  # noqa: E402

from nnforge.data import (BatchSampler, ChainDataset, ConcatDataset, IterableDataset,  # noqa: E402
                          PadCollate, RandomSampler, SequentialSampler, Subset,
                          SubsetRandomSampler, WeightedRandomSampler, default_collate,
                          get_worker_info, pad_sequence, pad_to_length, random_split,
                          train_val_test_split)


def test_subset_and_concat_index_like_lists():
    base = list("abcdefg")
    sub = Subset(base, [5, 0, 3])
    assert len(sub) == 3 and [sub[i] for i in range(3)] == ["f", "a", "d"] and sub[-1] == "d"
    assert sub.__getitems__([2, 0]) == ["d", "f"]
    cat = ConcatDataset([base[:2], base[2:5], [], base[5:]])
    assert len(cat) == 7 and cat.cumulative_sizes == [2, 5, 5, 7]
    assert [cat[i] for i in range(7)] == base
    assert [cat[-i] for i in range(1, 8)] == base[::-1]
    for bad in (7, -8):
        with pytest.raises(IndexError):
            cat[bad]
    with pytest.raises(ValueError, match="empty"):
        ConcatDataset([])
    ds = TensorDataset(nf.arange(3)) + TensorDataset(nf.arange(10, 12))
    assert isinstance(ds, ConcatDataset) and [int(ds[i][0]) for i in range(5)] == [0, 1, 2, 10, 11]


class Stream(IterableDataset):
    def __init__(self, n, fail_at=None):
        self.n, self.fail_at = n, fail_at

    def __iter__(self):
        for i in range(self.n):
            if i == self.fail_at:
                raise ValueError(f"stream broke at {i}")
            yield i

    def __len__(self):
        return self.n


def test_iterable_and_chain_datasets():
    assert list(Stream(3) + Stream(2)) == [0, 1, 2, 0, 1]
    assert len(ChainDataset([Stream(3), Stream(4)])) == 7
    with pytest.raises(TypeError, match="IterableDataset"):
        ConcatDataset([Stream(3)])


@pytest.mark.filterwarnings("ignore:.*is 0")  # empty splits warn, here and in PyTorch
@pytest.mark.parametrize("n, lengths", [(10, [3, 7]), (10, [0.5, 0.5]), (11, [0.3, 0.3, 0.4]),
                                        (7, [0.1, 0.2, 0.7]), (5, [1.0]), (100, [0.8, 0.1, 0.1]),
                                        (1, [0.5, 0.5]), (5, [1]), (0, [0.5, 0.5])])
def test_random_split_disjoint_covering_reproducible(n, lengths):
    def split(seed):
        return random_split(range(n), lengths, generator=nf.Generator().manual_seed(seed))

    parts = split(0)
    got = [list(p) for p in parts]
    assert sorted(sum(got, [])) == list(range(n))
    assert [list(p) for p in split(0)] == got
    if n > 5:
        assert [list(p) for p in split(1)] != got
    if torch is not None:  # PyTorch's rule for turning fractions into lengths
        ref = torch.utils.data.random_split(range(n), lengths)
        assert [len(p) for p in parts] == [len(p) for p in ref]


def test_random_split_errors():
    with pytest.raises(ValueError, match="does not equal"):
        random_split(range(10), [3, 3])
    with pytest.raises(ValueError, match="between 0 and 1"):
        random_split(range(10), [1.5, -0.5])
    with pytest.warns(UserWarning, match="empty"):
        random_split(range(2), [0.5, 0.25, 0.25])


# ============================================================================ samplers
def test_sequential_and_random_samplers():
    assert list(SequentialSampler(range(4))) == [0, 1, 2, 3]
    g = nf.Generator().manual_seed(3)
    perm = list(RandomSampler(range(20), generator=g))
    assert sorted(perm) == list(range(20)) and perm != list(range(20))
    again = list(RandomSampler(range(20), generator=nf.Generator().manual_seed(3)))
    assert again == perm
    # more samples than items without replacement: chained permutations
    long = list(RandomSampler(range(5), num_samples=13, generator=g))
    counts = np.bincount(long, minlength=5)
    assert len(long) == 13 and set(counts) <= {2, 3} and sorted(long[:5]) == list(range(5))
    draws = np.array(list(RandomSampler(range(10), replacement=True, num_samples=20000, generator=g)))
    freq = np.bincount(draws, minlength=10) / 20000
    np.testing.assert_allclose(freq, 0.1, atol=0.01)
    assert len(RandomSampler(range(7))) == 7 and len(RandomSampler(range(7), num_samples=3)) == 3


def test_sampler_argument_errors_match_torch():
    with pytest.raises(TypeError, match="replacement"):
        RandomSampler(range(3), replacement=1)
    with pytest.raises(ValueError, match="num_samples"):
        RandomSampler(range(3), num_samples=0)
    with pytest.raises(ValueError, match="num_samples"):
        RandomSampler([])
    with pytest.raises(ValueError, match="batch_size"):
        BatchSampler(range(3), 0, False)
    with pytest.raises(ValueError, match="drop_last"):
        BatchSampler(range(3), 2, 1)
    with pytest.raises(ValueError, match="1d"):
        WeightedRandomSampler([[1.0, 2.0]], 2)
    with pytest.raises(ValueError, match="non-negative"):
        WeightedRandomSampler([1.0, -1.0], 2)
    with pytest.raises(ValueError, match="without replacement"):
        WeightedRandomSampler([1.0, 0.0, 1.0], 3, replacement=False)


def test_subset_random_sampler_is_a_permutation_of_its_indices():
    idx = [3, 9, 4, 20, 11]
    s = SubsetRandomSampler(idx, generator=nf.Generator().manual_seed(0))
    a, b = list(s), list(s)
    assert sorted(a) == sorted(idx) and sorted(b) == sorted(idx) and len(s) == 5
    assert any(list(s) != a for _ in range(10))  # a fresh order each pass


def test_weighted_random_sampler_frequencies():
    w = np.array([1.0, 2.0, 0.0, 5.0, 2.0])
    s = WeightedRandomSampler(nf.tensor(w), 40000, generator=nf.Generator().manual_seed(0))
    freq = np.bincount(list(s), minlength=5) / 40000
    np.testing.assert_allclose(freq, w / w.sum(), atol=0.01)
    assert freq[2] == 0
    no_rep = WeightedRandomSampler(w, 4, replacement=False, generator=nf.Generator().manual_seed(1))
    got = list(no_rep)
    assert sorted(got) == [0, 1, 3, 4] and len(no_rep) == 4
    # without replacement, heavier items tend to come first
    firsts = [list(WeightedRandomSampler([1.0, 9.0], 2, replacement=False))[0] for _ in range(400)]
    assert 0.8 < np.mean(np.array(firsts) == 1) < 0.97


@requires_torch
@pytest.mark.parametrize("n, bs, drop_last", [(10, 3, False), (10, 3, True), (9, 3, True), (2, 5, False)])
def test_batch_sampler_matches_torch(n, bs, drop_last):
    ours = BatchSampler(SequentialSampler(range(n)), bs, drop_last)
    ref = torch.utils.data.BatchSampler(torch.utils.data.SequentialSampler(range(n)), bs, drop_last)
    assert list(ours) == list(ref) and len(ours) == len(ref)


# ============================================================================ DataLoader
def _batches(loader):
    return [[to_numpy(f).tolist() for f in batch] for batch in loader]


@requires_torch
@pytest.mark.parametrize("kwargs", [
    dict(batch_size=4), dict(batch_size=4, drop_last=True), dict(batch_size=3),
    dict(batch_size=20), dict(batch_size=1),
    dict(batch_sampler=[[0, 5], [9, 1, 2], [7]]),
    dict(sampler=[9, 8, 7, 1, 0], batch_size=2),
    dict(sampler=[9, 8, 7, 1, 0], batch_size=2, drop_last=True),
])
def test_loader_batches_match_torch(kwargs):
    x = np.arange(30, dtype=np.float32).reshape(10, 3)
    y = np.arange(10) % 3
    ours = DataLoader(TensorDataset(nf.from_numpy(x), nf.from_numpy(y)), **kwargs)
    ref = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), **kwargs)
    assert _batches(ours) == _batches(ref)
    assert len(ours) == len(ref)
    # the generic path (one __getitem__ per sample + default_collate) agrees with the fast one
    slow = DataLoader(TensorDataset(nf.from_numpy(x), nf.from_numpy(y)),
                      collate_fn=lambda s: default_collate(s), **kwargs)
    assert _batches(slow) == _batches(ref)


class Mixed(Dataset):
    """Samples of every kind default_collate handles."""

    def __len__(self):
        return 5

    def __getitem__(self, i):
        return {"arr": np.full(2, i, dtype=np.int32), "f": i / 2, "i": i, "b": i % 2 == 0,
                "s": f"s{i}", "pair": (np.float64(i), [i, -i])}


@requires_torch
def test_default_collate_types_match_torch():
    import torch.utils.data as tud
    ours = next(iter(DataLoader(Mixed(), batch_size=3)))
    ref = next(iter(tud.DataLoader(Mixed(), batch_size=3)))
    for k in ("arr", "f", "i", "b"):
        assert ours[k].dtype.name == str(ref[k].dtype).replace("torch.", ""), k
        assert ours[k].tolist() == ref[k].tolist()
    assert ours["s"] == ref["s"] == ["s0", "s1", "s2"]
    assert isinstance(ours["pair"], list) and isinstance(ref["pair"], list)
    assert ours["pair"][0].dtype == nf.float64 and ours["pair"][0].tolist() == [0.0, 1.0, 2.0]
    assert [t.tolist() for t in ours["pair"][1]] == [t.tolist() for t in ref["pair"][1]]
    # tuples of tensors batch into lists, as in PyTorch
    batch = next(iter(DataLoader(TensorDataset(nf.zeros(4, 2), nf.arange(4)), batch_size=2)))
    assert isinstance(batch, list) and len(batch) == 2


@requires_torch
def test_loader_without_batching_matches_torch():
    ours = list(DataLoader(Mixed(), batch_size=None))
    ref = list(torch.utils.data.DataLoader(Mixed(), batch_size=None))
    assert len(ours) == len(ref) == 5
    assert isinstance(ours[2]["arr"], nf.Tensor) and ours[2]["arr"].tolist() == [2, 2]
    assert ours[2]["f"] == ref[2]["f"] == 1.0 and ours[2]["s"] == "s2"
    assert len(DataLoader(Mixed(), batch_size=None)) == 5


def _loader_error(make):
    try:
        make()
    except ValueError as e:
        return str(e)
    return None


@requires_torch
@pytest.mark.parametrize("kwargs", [
    dict(shuffle=True, sampler=[0, 1]),
    dict(batch_sampler=[[0]], batch_size=2),
    dict(batch_sampler=[[0]], shuffle=True),
    dict(batch_sampler=[[0]], sampler=[0]),
    dict(batch_sampler=[[0]], drop_last=True),
    dict(batch_size=None, drop_last=True),
    dict(num_workers=-1),
    dict(prefetch_factor=2),
    dict(persistent_workers=True),
    dict(timeout=-1),
])
def test_loader_argument_conflicts_match_torch(kwargs):
    ds = TensorDataset(nf.arange(4))
    ours = _loader_error(lambda: DataLoader(ds, **kwargs))
    ref = _loader_error(lambda: torch.utils.data.DataLoader(torch.utils.data.TensorDataset(
        torch.arange(4)), **kwargs))
    assert ours is not None and ref is not None, (ours, ref)
    key = ref.split()[0]  # the option PyTorch's message names first
    assert key in ours


@requires_torch
@pytest.mark.parametrize("kwargs", [dict(shuffle=True), dict(sampler=[0]), dict(batch_sampler=[[0]])])
def test_iterable_dataset_refuses_samplers_like_torch(kwargs):
    with pytest.raises(ValueError, match="IterableDataset"):
        DataLoader(Stream(4), **kwargs)

    class TorchStream(torch.utils.data.IterableDataset):
        def __iter__(self):
            return iter(range(4))

    with pytest.raises(ValueError, match="IterableDataset"):
        torch.utils.data.DataLoader(TorchStream(), **kwargs)


@pytest.mark.parametrize("workers", [0, 3])
@pytest.mark.parametrize("bs, drop_last", [(3, False), (3, True), (None, False)])
def test_iterable_dataset_batches(workers, bs, drop_last):
    loader = DataLoader(Stream(10), batch_size=bs, drop_last=drop_last, num_workers=workers)
    got = [b.tolist() if isinstance(b, nf.Tensor) else b for b in loader]
    if bs is None:
        assert got == list(range(10)) and len(loader) == 10
    else:
        want = [[0, 1, 2], [3, 4, 5], [6, 7, 8]] + ([] if drop_last else [[9]])
        assert got == want and len(loader) == len(want)


# ---------------------------------------------------------------------------- worker threads
import threading  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402


class Slow(Dataset):
    """Sleeps in __getitem__ (as reading a file would) and counts the fetches."""

    def __init__(self, n, delay, fail_at=None, jitter=False):
        self.n, self.delay, self.fail_at, self.jitter = n, delay, fail_at, jitter
        self.fetched = 0
        self.lock = threading.Lock()

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        with self.lock:
            self.fetched += 1
        time.sleep(self.delay * ((i * 7919) % 5) / 2 if self.jitter else self.delay)
        if i == self.fail_at:
            raise KeyError(f"sample {i} is unreadable")
        return nf.tensor([float(i)]), i


def _loader_threads():
    return [t for t in threading.enumerate() if t.name.startswith("nnforge-DataLoader")]


def _wait_threads_gone(timeout=2.0):
    end = time.perf_counter() + timeout
    while _loader_threads() and time.perf_counter() < end:
        time.sleep(0.01)
    return not _loader_threads()


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_workers_give_the_same_batches_in_order(workers):
    ds = Slow(23, 0.002, jitter=True)  # uneven fetch times: results come back out of order
    kw = dict(batch_size=3, shuffle=True)
    serial = _batches(DataLoader(ds, generator=nf.Generator().manual_seed(5), **kw))
    threaded = DataLoader(ds, num_workers=workers, generator=nf.Generator().manual_seed(5), **kw)
    assert _batches(threaded) == serial
    assert _wait_threads_gone()
    tds = TensorDataset(nf.arange(50).float(), nf.arange(50))  # the fast path, with workers
    fast = DataLoader(Subset(tds, list(range(49, -1, -2))), batch_size=7, num_workers=workers)
    assert _batches(fast) == _batches(DataLoader(Subset(tds, list(range(49, -1, -2))), batch_size=7))


def test_worker_exception_is_reraised_with_its_traceback():
    loader = DataLoader(Slow(12, 0.001, fail_at=7), batch_size=2, num_workers=2)
    seen = []
    with pytest.raises(KeyError, match="sample 7 is unreadable") as info:
        for x, y in loader:
            seen.append(y.tolist())
    assert seen == [[0, 1], [2, 3], [4, 5]]  # the batches before the failing one arrive
    frames = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
    assert "__getitem__" in frames  # the frame in the worker thread where it was raised
    notes = getattr(info.value, "__notes__", [])
    assert not hasattr(info.value, "add_note") or any("worker thread" in n for n in notes)
    assert _wait_threads_gone()
    with pytest.raises(ValueError, match="stream broke at 4"):
        list(DataLoader(Stream(10, fail_at=4), batch_size=2, num_workers=2))
    assert _wait_threads_gone()


def test_breaking_out_of_a_loop_stops_the_workers():
    ds = Slow(400, 0.002)
    for i, _ in enumerate(DataLoader(ds, batch_size=2, num_workers=3)):
        if i == 2:
            break
    assert _wait_threads_gone(), "worker threads still running after break"
    assert ds.fetched < 60  # they stopped fetching: far fewer than the 400 samples
    for i, _ in enumerate(DataLoader(Stream(10 ** 9), batch_size=4, num_workers=2)):
        if i == 3:
            break
    assert _wait_threads_gone()
    t0 = time.perf_counter()
    for _ in DataLoader(Slow(40, 0.3), batch_size=1, num_workers=4):
        break  # the workers are each in the middle of a 0.3 s fetch
    assert time.perf_counter() - t0 < 1.0  # not the 3 s the rest of the epoch would take
    assert _wait_threads_gone()


def test_prefetch_is_bounded():
    ds = Slow(200, 0.0005)
    it = iter(DataLoader(ds, batch_size=2, num_workers=2, prefetch_factor=3))
    next(it)
    time.sleep(0.2)  # plenty of time to run ahead if nothing held the workers back
    assert ds.fetched <= 2 * (1 + 2 * 3)  # one batch taken + prefetch_factor * workers in flight
    it.close()
    assert _wait_threads_gone()


def test_workers_overlap_data_preparation_with_compute():
    def epoch(workers):
        ds = Slow(40, 0.005)  # 4 samples per batch: 20 ms to prepare a batch
        t0 = time.perf_counter()
        for _ in DataLoader(ds, batch_size=4, num_workers=workers):
            time.sleep(0.02)  # the "training step"
        return time.perf_counter() - t0

    serial, threaded = epoch(0), epoch(2)
    assert threaded < 0.8 * serial, (serial, threaded)


def test_worker_init_fn_and_worker_info():
    seen = []

    class WhoAmI(Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            info = get_worker_info()
            return info.id if info is not None else -1

    ids = [int(v) for b in DataLoader(WhoAmI(), batch_size=2, num_workers=2,
                                      worker_init_fn=seen.append) for v in b.tolist()]
    assert set(ids) <= {0, 1} and sorted(seen) == [0, 1]
    assert [int(v) for b in DataLoader(WhoAmI(), batch_size=4) for v in b.tolist()] == [-1] * 8
    assert get_worker_info() is None

    def bad_init(wid):
        raise RuntimeError("init failed")

    with pytest.raises(RuntimeError, match="init failed"):
        list(DataLoader(WhoAmI(), batch_size=2, num_workers=2, worker_init_fn=bad_init))
    assert _wait_threads_gone()


def test_loader_timeout():
    with pytest.raises(RuntimeError, match="timed out"):
        list(DataLoader(Slow(4, 0.5), batch_size=1, num_workers=1, timeout=0.1))
    assert _wait_threads_gone(3.0)


# ============================================================================ padding
@requires_torch
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("trailing", [(), (3,), (2, 2)])
def test_pad_sequence_matches_torch_with_gradients(batch_first, side, trailing, rng):
    lengths = [4, 1, 6, 0, 6]
    data = [rng.standard_normal((n,) + trailing) for n in lengths]
    ours_in = [nf.tensor(d, dtype=nf.float64, requires_grad=True) for d in data]
    ref_in = [torch.tensor(d, requires_grad=True) for d in data]
    out = pad_sequence(ours_in, batch_first=batch_first, padding_value=-2.5, padding_side=side)
    ref = torch.nn.utils.rnn.pad_sequence(ref_in, batch_first=batch_first, padding_value=-2.5,
                                          padding_side=side)
    np.testing.assert_array_equal(to_numpy(out), to_numpy(ref))
    g = rng.standard_normal(tuple(ref.shape))
    (out * nf.tensor(g)).sum().backward()
    (ref * torch.tensor(g)).sum().backward()
    for a, b in zip(ours_in, ref_in):
        np.testing.assert_array_equal(to_numpy(a.grad), to_numpy(b.grad))


@requires_torch
def test_pad_sequence_integer_sequences_and_errors():
    seqs = [[5, 6, 7], [1], [2, 3]]
    ours = pad_sequence([nf.tensor(s) for s in seqs], batch_first=True, padding_value=-1)
    ref = torch.nn.utils.rnn.pad_sequence([torch.tensor(s) for s in seqs], batch_first=True,
                                          padding_value=-1)
    assert ours.dtype == nf.int64 and ours.tolist() == ref.tolist()
    with pytest.raises(ValueError, match="empty list"):
        pad_sequence([])
    with pytest.raises(ValueError, match="trailing dims"):
        pad_sequence([nf.zeros(2, 3), nf.zeros(2, 4)])
    with pytest.raises(ValueError, match="padding_side"):
        pad_sequence([nf.zeros(2)], padding_side="middle")
    with pytest.raises(TypeError, match="not a Tensor"):
        pad_sequence([[1, 2]])


def test_pad_to_length_pads_and_truncates():
    seqs = [[1, 2, 3, 4, 5], [6], np.array([7, 8, 9]), nf.tensor([10, 11])]
    assert pad_to_length(seqs, 3).tolist() == [[1, 2, 3], [6, 0, 0], [7, 8, 9], [10, 11, 0]]
    assert pad_to_length(seqs, 3, padding_side="left", truncation_side="left",
                         padding_value=-1).tolist() == [[3, 4, 5], [-1, -1, 6], [7, 8, 9], [-1, 10, 11]]
    assert tuple(pad_to_length([nf.zeros(2, 4)], 5).shape) == (1, 5, 4)
    with pytest.raises(ValueError, match="truncate=False"):
        pad_to_length(seqs, 3, truncate=False)
    assert pad_to_length(seqs, 5, truncate=False).shape == (4, 5)
    x = nf.randn(6, 2, requires_grad=True)
    pad_to_length([x], 4)[0].sum().backward()  # truncation is differentiable: cut rows get 0
    assert x.grad.tolist() == [[1.0, 1.0]] * 4 + [[0.0, 0.0]] * 2


def test_pad_collate_in_a_loader():
    class Sentences(Dataset):
        data = [[3, 1, 4], [1, 5], [9, 2, 6, 5, 3], [5], [8, 9]]

        def __len__(self):
            return len(self.data)

        def __getitem__(self, i):
            return self.data[i], i % 2

    batches = list(DataLoader(Sentences(), batch_size=3, collate_fn=PadCollate(padding_value=-1)))
    x, lengths, y = batches[0]
    assert x.tolist() == [[3, 1, 4, -1, -1], [1, 5, -1, -1, -1], [9, 2, 6, 5, 3]]
    assert lengths.tolist() == [3, 2, 5] and lengths.dtype == nf.int64 and y.tolist() == [0, 1, 0]
    assert batches[1][0].tolist() == [[5, -1], [8, 9]]
    x, lengths, _ = next(iter(DataLoader(Sentences(), batch_size=3,
                                         collate_fn=PadCollate(max_length=4, batch_first=False))))
    assert tuple(x.shape) == (4, 3) and lengths.tolist() == [3, 2, 4]
    assert x[:, 2].tolist() == [9, 2, 6, 5]
    x, lengths = PadCollate()([np.ones((2, 3)), np.ones((4, 3))])  # bare (L, features) samples
    assert tuple(x.shape) == (2, 4, 3) and lengths.tolist() == [2, 4]
    with pytest.raises(ValueError, match="max_length"):
        PadCollate(max_length=0)


# ============================================================================ splits
@pytest.mark.parametrize("val, test", [(0.15, 0.15), (0.2, 0.1), (0.0, 0.25), (0.1, 0.0)])
def test_train_val_test_split_stratified(val, test):
    _, labels = load_digits()
    tr, va, te = train_val_test_split(labels, val, test, seed=3)
    allidx = np.concatenate([tr, va, te])
    assert len(allidx) == len(labels) and len(np.unique(allidx)) == len(labels)
    assert tr.dtype == va.dtype == te.dtype == np.int64
    for part, frac in ((va, val), (te, test)):
        for c in range(10):
            n_c = np.sum(labels == c)
            assert np.sum(labels[part] == c) == round(n_c * frac)
    again = train_val_test_split(labels, val, test, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip((tr, va, te), again))
    if test > 0:  # the test part is stratified_split's
        np.testing.assert_array_equal(te, stratified_split(labels, test, seed=3)[1])


def test_train_val_test_split_plain_and_errors():
    tr, va, te = train_val_test_split(100, 0.2, 0.1, seed=0)
    assert (len(tr), len(va), len(te)) == (70, 20, 10)
    assert sorted(np.concatenate([tr, va, te]).tolist()) == list(range(100))
    labels = np.array([0] * 90 + [1] * 10)
    tr, va, te = train_val_test_split(labels, 0.1, 0.1, stratify=False, seed=0)
    assert (len(tr), len(va), len(te)) == (80, 10, 10)
    with pytest.raises(ValueError, match="must be < 1"):
        train_val_test_split(10, 0.5, 0.5)
    with pytest.raises(ValueError, match="val_fraction"):
        train_val_test_split(10, -0.1, 0.2)
    with pytest.raises(ValueError, match="1-D"):
        train_val_test_split(np.zeros((2, 2)), 0.1, 0.1)
