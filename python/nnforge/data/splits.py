"""Index splits of a data set into train / (validation /) test parts.

These return numpy index arrays (sorted), for data held as arrays; for a
``Dataset`` object, ``random_split`` (in dataset.py) returns ``Subset``s.
Stratified splits take each class's share separately, so every part keeps
the class balance of the whole.
"""
from __future__ import annotations

import numpy as np


def _check_fraction(value, name: str, op: str, allow_zero: bool) -> float:
    lo_ok = value >= 0 if allow_zero else value > 0
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not (lo_ok and value < 1):
        interval = "[0, 1)" if allow_zero else "(0, 1)"
        raise ValueError(f"{op}: {name} must be in {interval}, got {value!r}")
    return float(value)


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


def train_val_test_split(labels_or_n, val_fraction: float, test_fraction: float,
                         stratify: bool = True, seed: int = 0):
    """Indices ``(train, val, test)``: three disjoint sorted int64 arrays that
    together cover ``range(n)``.

    ``labels_or_n`` is either the labels (then, with ``stratify``, each class
    c gives ``round(n_c * test_fraction)`` test and ``round(n_c *
    val_fraction)`` validation samples) or the number of samples ``n`` (a
    plain random split with ``round(n * fraction)`` samples per part). The
    samples are chosen by a permutation seeded with ``seed``; the test part
    is the same as ``stratified_split(labels, test_fraction, seed)`` gives.

    >>> tr, va, te = train_val_test_split(10, 0.2, 0.3)
    >>> len(tr), len(va), len(te)
    (5, 2, 3)
    """
    op = "train_val_test_split"
    val_fraction = _check_fraction(val_fraction, "val_fraction", op, allow_zero=True)
    test_fraction = _check_fraction(test_fraction, "test_fraction", op, allow_zero=True)
    if val_fraction + test_fraction >= 1:
        raise ValueError(f"{op}: val_fraction + test_fraction must be < 1 so that some samples "
                         f"are left to train on, got {val_fraction} + {test_fraction}")
    if isinstance(labels_or_n, (int, np.integer)) and not isinstance(labels_or_n, bool):
        if labels_or_n < 0:
            raise ValueError(f"{op}: the number of samples must be non-negative, got {labels_or_n}")
        groups = [np.arange(int(labels_or_n))]
    else:
        labels = np.asarray(labels_or_n)
        if labels.ndim != 1:
            raise ValueError(f"{op}: labels must be 1-D, got shape {labels.shape}")
        if stratify:
            groups = [np.flatnonzero(labels == c) for c in np.unique(labels)]
        else:
            groups = [np.arange(len(labels))]
    rng = np.random.default_rng(seed)
    parts: tuple = ([], [], [])
    for members in groups:
        idx = rng.permutation(members)
        n_test = int(round(len(idx) * test_fraction))
        n_val = int(round(len(idx) * val_fraction))
        parts[2].append(idx[:n_test])
        parts[1].append(idx[n_test:n_test + n_val])
        parts[0].append(idx[n_test + n_val:])
    return tuple(np.sort(np.concatenate(p + [np.zeros(0, np.int64)])).astype(np.int64)
                 for p in parts)
