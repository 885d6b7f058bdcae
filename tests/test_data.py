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
