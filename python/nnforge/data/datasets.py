"""Real data sets bundled with nnforge (see files/README.md for sources and licences).

What each loader returns:

- ``digits(split=...)``: a ``TensorDataset`` of (float32 pixels, int64
  labels), ready for a ``DataLoader``; ``load_digits()`` gives the raw uint8
  arrays and ``digits_split()`` the four numpy arrays of the stratified split.
- ``tinyshakespeare(split=...)``: the text as one ``str``; ``CharVocab`` maps
  characters to int64 ids and back.
- ``sunspots()``: numpy arrays ``(years, values)``; ``windowed`` turns a
  series into (inputs, targets) pairs for forecasting.

``names()`` lists the bundled data sets.
"""
from __future__ import annotations

import os
from typing import Iterable

import numpy as np

from ..tensor import Tensor
from .dataset import TensorDataset
from .splits import stratified_split, train_val_test_split  # noqa: F401 (public here too)

_FILES = os.path.join(os.path.dirname(__file__), "files")

_BUNDLED = {
    "digits": "digits.npz",
    "sunspots": "sunspots_yearly.csv",
    "tinyshakespeare": "tinyshakespeare.txt",
}

# tiny shakespeare's train / validation convention: the last 10% is validation.
SHAKESPEARE_VAL_FRACTION = 0.1


def names() -> list:
    """The names of the bundled data sets, sorted."""
    return sorted(_BUNDLED)


def data_path(name: str) -> str:
    """Path of a bundled data file (a file name such as ``"digits.npz"`` or a
    data set name from ``names()``), with a clear error when it is missing."""
    path = os.path.join(_FILES, _BUNDLED.get(name, name))
    if not os.path.exists(path):
        raise FileNotFoundError(f"bundled data file {name!r} not found at {path}; "
                                "reinstall nnforge")
    return path


# --------------------------------------------------------------------------- digits
def load_digits():
    """The UCI handwritten digits: images (1797, 8, 8) uint8 in 0..16, labels (1797,) uint8."""
    with np.load(data_path("digits.npz"), allow_pickle=False) as d:
        return d["images"].copy(), d["labels"].copy()


def digits_split(test_fraction: float = 0.25, seed: int = 0, standardize: bool = False):
    """Digits as float32 features (N, 64) and int64 labels, split into
    (x_train, y_train, x_test, y_test) by ``stratified_split``.

    Pixels are scaled to [0, 1]; with ``standardize`` each pixel is instead
    centred and scaled by the training set's mean and standard deviation
    (pixels constant over the training set are only centred)."""
    images, labels = load_digits()
    x = images.reshape(len(images), -1).astype(np.float32) / 16.0
    y = labels.astype(np.int64)
    tr, te = stratified_split(y, test_fraction, seed)
    x_tr, x_te = x[tr], x[te]
    if standardize:
        mean, std = x_tr.mean(0), x_tr.std(0)
        std[std == 0] = 1.0
        x_tr, x_te = (x_tr - mean) / std, (x_te - mean) / std
    return x_tr, y[tr], x_te, y[te]


def digits(split: str | None = None, standardize: bool = False, *, test_fraction: float = 0.25,
           seed: int = 0, flatten: bool = True) -> TensorDataset:
    """The UCI digits as a ``TensorDataset`` of ``(x, y)``: x float32, y int64.

    - ``split``: None (all 1797 images, in file order), ``"train"`` or
      ``"test"`` (the stratified hold-out of ``test_fraction``, chosen with
      ``seed``; 1347 / 450 images by default);
    - pixels are in [0, 1]; with ``standardize`` they are centred and scaled
      per pixel by the *training* part's statistics, whatever ``split`` is;
    - ``flatten``: x is (N, 64); otherwise (N, 1, 8, 8), for convolutions.

    >>> ds = digits("test")
    >>> len(ds), tuple(ds[0][0].shape)
    (450, (64,))
    """
    from ..ops.creation import from_numpy
    if split not in (None, "train", "test"):
        raise ValueError(f"digits: split must be None, 'train' or 'test', got {split!r}")
    images, labels = load_digits()
    x = images.reshape(len(images), -1).astype(np.float32) / 16.0
    y = labels.astype(np.int64)
    tr, te = stratified_split(y, test_fraction, seed)
    if standardize:
        mean, std = x[tr].mean(0), x[tr].std(0)
        std[std == 0] = 1.0
        x = ((x - mean) / std).astype(np.float32)
    if split is not None:
        keep = tr if split == "train" else te
        x, y = x[keep], y[keep]
    if not flatten:
        x = x.reshape(len(x), 1, 8, 8)
    return TensorDataset(from_numpy(np.ascontiguousarray(x)), from_numpy(y))


# --------------------------------------------------------------------------- tiny shakespeare
def tinyshakespeare(split: str | None = None) -> str:
    """The tiny shakespeare corpus (1,115,394 characters) as one string.

    ``split="train"`` gives the first 90%, ``split="val"`` the last 10%
    (``int(0.9 * n)`` characters go to training), the convention under which
    the reference numbers in files/README.md were measured.
    """
    if split not in (None, "train", "val"):
        raise ValueError(f"tinyshakespeare: split must be None, 'train' or 'val', got {split!r}")
    with open(data_path("tinyshakespeare.txt"), encoding="utf-8") as f:
        text = f.read()
    if split is None:
        return text
    n_train = int(len(text) * (1 - SHAKESPEARE_VAL_FRACTION))
    return text[:n_train] if split == "train" else text[n_train:]


class CharVocab:
    """A character vocabulary: id ``i`` is the i-th distinct character in
    sorted order. ``stoi`` maps characters to ids, ``itos`` ids to characters.

    >>> v = CharVocab("hello")
    >>> v.itos, v.encode("hole").tolist(), v.decode([3, 1])
    (['e', 'h', 'l', 'o'], [1, 3, 2, 0], 'oh')
    """

    def __init__(self, text: str | Iterable[str]):
        chars = sorted(set(text))
        if any(len(c) != 1 for c in chars):
            raise ValueError("CharVocab: expects single characters")
        self.itos: list = chars
        self.stoi: dict = {c: i for i, c in enumerate(chars)}
        codes = np.array([ord(c) for c in chars], dtype=np.int64)
        self._table = np.full(int(codes.max()) + 1 if len(codes) else 0, -1, dtype=np.int64)
        self._table[codes] = np.arange(len(chars))

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, char) -> bool:
        return char in self.stoi

    def encode(self, text: str) -> np.ndarray:
        """The ids of ``text``'s characters, an int64 numpy array (use
        ``nf.from_numpy`` for a tensor). Unknown characters raise ``ValueError``."""
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        ids = np.full(len(codes), -1, dtype=np.int64)
        known = codes < len(self._table)
        ids[known] = self._table[codes[known]]
        if np.any(ids < 0):
            pos = int(np.argmax(ids < 0))
            raise ValueError(f"CharVocab.encode: character {text[pos]!r} at position {pos} is "
                             f"not in the vocabulary of {len(self)} characters")
        return ids

    def decode(self, ids) -> str:
        """The text of a sequence of ids (list, numpy array or 1-D tensor)."""
        if isinstance(ids, Tensor):
            ids = ids.tolist()
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            bad = ids[(ids < 0) | (ids >= len(self))][0]
            raise IndexError(f"CharVocab.decode: id {bad} is out of range for a vocabulary of "
                             f"{len(self)} characters")
        return "".join(self.itos[i] for i in ids.tolist())

    def __repr__(self) -> str:
        return f"CharVocab({len(self)} characters)"


# --------------------------------------------------------------------------- sunspots
def sunspots():
    """Yearly mean sunspot numbers 1700-2008: ``(years, values)``, numpy arrays
    of 309 entries, years int64 and values float32."""
    from .user_files import load_csv
    table = load_csv(data_path("sunspots_yearly.csv"), header=True, dtype=np.float64)
    return table[:, 0].astype(np.int64), table[:, 1].astype(np.float32)


def windowed(series, window: int, horizon: int = 1):
    """(inputs, targets) for forecasting from a series of shape (T, *).

    Sample i is ``inputs[i] = series[i : i + window]`` and ``targets[i] =
    series[i + window : i + window + horizon]``, for the ``T - window - horizon
    + 1`` positions that fit: inputs (N, window, *), targets (N, horizon, *).
    A numpy series gives numpy arrays (copies), a Tensor gives tensors
    (differentiable gathers).

    >>> x, y = windowed(np.arange(6), window=3)
    >>> x.tolist(), y.tolist()
    ([[0, 1, 2], [1, 2, 3], [2, 3, 4]], [[3], [4], [5]])
    """
    for name, v in (("window", window), ("horizon", horizon)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"windowed: {name} must be a positive int, got {v!r}")
    is_tensor = isinstance(series, Tensor)
    if not is_tensor:
        series = np.asarray(series)
    if series.ndim == 0:
        raise ValueError("windowed: series must have at least one dimension (time)")
    n = series.shape[0] - window - horizon + 1
    if n < 1:
        raise ValueError(f"windowed: a series of length {series.shape[0]} is too short for "
                         f"window {window} + horizon {horizon}")
    start = np.arange(n)[:, None]
    x_idx = start + np.arange(window)
    y_idx = start + window + np.arange(horizon)
    return series[x_idx], series[y_idx]


__all__ = ["names", "data_path", "load_digits", "digits_split", "digits", "stratified_split",
           "train_val_test_split", "tinyshakespeare", "CharVocab", "sunspots", "windowed",
           "SHAKESPEARE_VAL_FRACTION"]
