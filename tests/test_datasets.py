"""The real data sets bundled in nnforge/data/files: intact, attributed, and
loaded with the documented shapes, dtypes and splits."""
import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

import nnforge as nf
from nnforge.data import DataLoader, TensorDataset, datasets
from nnforge.data.datasets import CharVocab, data_path, digits, names, sunspots, tinyshakespeare, windowed

FILES = Path(datasets.__file__).parent / "files"
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"


def test_names_list_every_bundled_file():
    assert names() == ["digits", "sunspots", "tinyshakespeare"]
    for name in names():
        assert Path(data_path(name)).is_file()
    with pytest.raises(FileNotFoundError, match="reinstall"):
        data_path("nothing.npz")


def test_every_bundled_file_is_attributed_in_the_readme():
    readme = (FILES / "README.md").read_text()
    for path in FILES.iterdir():
        if path.suffix in (".npz", ".txt", ".csv"):
            assert f"| {path.name} |" in readme, path.name
    assert "CC BY 4.0" in readme and "public domain" in readme and SHAKESPEARE_SHA256 in readme


def test_tinyshakespeare_checksum_matches_the_readme():
    readme = (FILES / "README.md").read_text()
    listed = re.search(r"tinyshakespeare\.txt .*sha256 ([0-9a-f]{64})", readme).group(1)
    digest = hashlib.sha256((FILES / "tinyshakespeare.txt").read_bytes()).hexdigest()
    assert digest == listed == SHAKESPEARE_SHA256


@pytest.mark.skipif(not SHARED.is_dir(), reason="the shared data folder is not here")
@pytest.mark.parametrize("name", ["digits.npz", "tinyshakespeare.txt", "sunspots_yearly.csv"])
def test_bundled_copies_equal_the_shared_data(name):
    assert (FILES / name).read_bytes() == (SHARED / name).read_bytes()


# ---------------------------------------------------------------------------- digits
@pytest.mark.parametrize("split, n", [(None, 1797), ("train", 1347), ("test", 450)])
def test_digits_dataset(split, n):
    ds = digits(split)
    assert isinstance(ds, TensorDataset) and len(ds) == n
    x, y = ds.tensors
    assert tuple(x.shape) == (n, 64) and x.dtype == nf.float32 and y.dtype == nf.int64
    assert 0 <= x.numpy().min() and x.numpy().max() == 1.0
    assert set(np.unique(y.numpy())) == set(range(10))
    images = digits(split, flatten=False).tensors[0]
    assert tuple(images.shape) == (n, 1, 8, 8)
    np.testing.assert_array_equal(images.numpy().reshape(n, 64), x.numpy())


def test_digits_dataset_agrees_with_digits_split():
    for standardize in (False, True):
        x_tr, y_tr, x_te, y_te = datasets.digits_split(standardize=standardize)
        train, test = digits("train", standardize), digits("test", standardize)
        np.testing.assert_allclose(train.tensors[0].numpy(), x_tr, atol=1e-6)
        np.testing.assert_allclose(test.tensors[0].numpy(), x_te, atol=1e-6)
        np.testing.assert_array_equal(train.tensors[1].numpy(), y_tr)
        np.testing.assert_array_equal(test.tensors[1].numpy(), y_te)
    images, labels = datasets.load_digits()  # split=None keeps the file's order
    np.testing.assert_array_equal(digits().tensors[1].numpy(), labels)
    with pytest.raises(ValueError, match="split"):
        digits("val")
    x, y = next(iter(DataLoader(digits("train"), batch_size=32, shuffle=True)))
    assert tuple(x.shape) == (32, 64) and tuple(y.shape) == (32,)


# ---------------------------------------------------------------------------- tiny shakespeare
def test_tinyshakespeare_text_and_split():
    text = tinyshakespeare()
    assert len(text) == 1_115_394 and len(set(text)) == 65
    assert text.startswith("First Citizen:")
    train, val = tinyshakespeare("train"), tinyshakespeare("val")
    assert train + val == text and len(train) == int(0.9 * len(text))
    with pytest.raises(ValueError, match="split"):
        tinyshakespeare("test")


def test_char_vocab_round_trip_and_errors():
    text = tinyshakespeare()
    vocab = CharVocab(text)
    assert len(vocab) == vocab.vocab_size == 65
    assert vocab.itos == sorted(set(text)) and all(vocab.stoi[c] == i for i, c in enumerate(vocab.itos))
    ids = vocab.encode(text)
    assert ids.dtype == np.int64 and ids.shape == (len(text),) and ids.max() == 64
    assert vocab.decode(ids) == text
    assert vocab.decode(nf.from_numpy(ids[:100])) == text[:100]
    assert vocab.encode("").shape == (0,) and vocab.decode([]) == ""
    with pytest.raises(ValueError, match="'é' at position 2"):
        vocab.encode("abé")
    with pytest.raises(IndexError, match="65"):
        vocab.decode([1, 65])


def test_shakespeare_reference_bits_per_char():
    """The add-one unigram and bigram models of the data README, trained on the
    first 90% and scored on the last 10%: 4.83 and 3.58 bits/char."""
    vocab = CharVocab(tinyshakespeare())
    tr, va = vocab.encode(tinyshakespeare("train")), vocab.encode(tinyshakespeare("val"))
    v = len(vocab)
    unigram = np.bincount(tr, minlength=v) + 1.0
    bits = -np.log2(unigram[va] / unigram.sum()).mean()
    assert round(bits, 2) == 4.83
    pairs = np.bincount(tr[:-1] * v + tr[1:], minlength=v * v).reshape(v, v) + 1.0
    probs = pairs / pairs.sum(1, keepdims=True)
    bits = -np.log2(probs[va[:-1], va[1:]]).mean()
    assert round(bits, 2) == 3.58


# ---------------------------------------------------------------------------- sunspots
def test_sunspots_years_and_values():
    years, values = sunspots()
    assert years.shape == values.shape == (309,)
    assert years.dtype == np.int64 and values.dtype == np.float32
    np.testing.assert_array_equal(years, np.arange(1700, 2009))
    assert values[:3].tolist() == [5.0, 11.0, 16.0] and values[-1] == np.float32(2.9)
    assert values.min() >= 0 and 150 < values.max() < 200  # the 1957 maximum, 190.2
    assert years[values.argmax()] == 1957


def test_windowed_and_the_persistence_baseline():
    _, values = sunspots()
    x, y = windowed(values, window=10)
    assert x.shape == (299, 10) and y.shape == (299, 1) and x.dtype == np.float32
    np.testing.assert_array_equal(x[5], values[5:15])
    np.testing.assert_array_equal(y[:, 0], values[10:])
    # persistence: next year = this year
    mae = np.abs(x[:, -1] - y[:, 0]).mean()
    np.testing.assert_allclose(mae, np.abs(np.diff(values[9:])).mean(), rtol=1e-6)
    assert 10 < mae < 30
    x3, y3 = windowed(values, window=4, horizon=3)
    assert x3.shape == (303, 4) and y3.shape == (303, 3)
    np.testing.assert_array_equal(y3[7], values[11:14])


def test_windowed_tensors_multivariate_and_errors():
    series = nf.arange(12, dtype=nf.float32).reshape(6, 2).requires_grad_()
    x, y = windowed(series, window=2, horizon=2)
    assert tuple(x.shape) == (3, 2, 2) and tuple(y.shape) == (3, 2, 2)
    assert y[0].tolist() == [[4.0, 5.0], [6.0, 7.0]]
    x.sum().backward()  # every window that holds a step adds 1 to its gradient
    assert series.grad[:, 0].tolist() == [1.0, 2.0, 2.0, 1.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="too short"):
        windowed(np.arange(5), window=4, horizon=2)
    with pytest.raises(ValueError, match="window"):
        windowed(np.arange(5), window=0)
