"""Real data sets bundled with nnforge (see files/README.md for sources and licences)."""
from __future__ import annotations

import os

import numpy as np

_FILES = os.path.join(os.path.dirname(__file__), "files")


def data_path(name: str) -> str:
    """Path of a bundled data file, with a clear error when it is missing."""
    path = os.path.join(_FILES, name)
    if not os.path.exists(path):
        raise FileNotFoundError(f"bundled data file {name!r} not found at {path}; "
                                "reinstall nnforge")
    return path


def load_digits():
    """The UCI handwritten digits: images (1797, 8, 8) uint8 in 0..16, labels (1797,) uint8."""
    with np.load(data_path("digits.npz")) as d:
        return d["images"].copy(), d["labels"].copy()


def stratified_split(labels, test_fraction: float = 0.25, seed: int = 0):
    """Indices (train, test) with each class split in the same proportion.

    Per class, ``round(n_c * test_fraction)`` samples (chosen by a seeded
    permutation) go to the test set, so class balance is kept in both parts.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"stratified_split: test_fraction must be in (0, 1), got {test_fraction}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test = int(round(len(idx) * test_fraction))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


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
