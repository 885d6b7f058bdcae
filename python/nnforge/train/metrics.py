"""Metrics for ``fit``: functions ``(outputs, targets) -> float`` over one batch.

``fit`` averages a metric over an epoch weighting each batch by its number of
samples, which is exact for the metrics here (each is a mean over samples).
A metric is given to ``fit`` as one of these functions, any callable of the
same form (its ``__name__`` names it in the history), or a name:

    "accuracy" (or "acc")            accuracy
    "top5_accuracy" (any k)          top_k_accuracy with that k
    "binary_accuracy"                binary_accuracy (threshold 0.5)
    "mae", "mean_absolute_error"     mean_absolute_error

>>> import nnforge as nf
>>> logits = nf.tensor([[2.0, 0.1, 0.3], [0.2, 0.1, 3.0]])
>>> accuracy(logits, nf.tensor([0, 1]))
0.5
>>> top_k_accuracy(logits, nf.tensor([0, 1]), k=2)
0.5
"""
from __future__ import annotations

import re
from typing import Callable

import numpy as np

from ..tensor import Tensor

__all__ = ["accuracy", "confusion_matrix", "top_k_accuracy", "binary_accuracy", "mean_absolute_error", "TopKAccuracy",
           "get_metric", "metric_name"]


def _numpy(x, op: str, arg: str) -> np.ndarray:
    if isinstance(x, Tensor):
        return x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, (list, tuple)) and x and isinstance(x[0], (Tensor, np.ndarray)):
        raise TypeError(f"{op}: {arg} is a {type(x).__name__} of tensors; a model with several "
                        "outputs needs a metric of its own that picks the one to score")
    return np.asarray(x)


def _class_scores(outputs, targets, op: str):
    """(scores (N, C, ...), class indices (N, ...)) from class scores and targets given as
    indices or as per-class probabilities of the scores' shape."""
    out = _numpy(outputs, op, "outputs")
    tgt = _numpy(targets, op, "targets")
    if out.ndim < 2:
        raise ValueError(f"{op}: outputs must hold class scores of shape (N, C, ...), got shape "
                         f"{out.shape}; use binary_accuracy for one score per sample")
    if tgt.shape == out.shape and tgt.dtype.kind == "f":
        tgt = tgt.argmax(axis=1)  # probabilities or one-hot targets
    elif tgt.shape != out.shape[:1] + out.shape[2:]:
        raise ValueError(f"{op}: targets of shape {tgt.shape} do not match outputs of shape "
                         f"{out.shape}; expected class indices of shape "
                         f"{out.shape[:1] + out.shape[2:]} or probabilities of shape {out.shape}")
    elif tgt.dtype.kind not in "iub":
        raise TypeError(f"{op}: class-index targets must be integers, got dtype {tgt.dtype}")
    return out, tgt


def accuracy(outputs, targets) -> float:
    """Fraction of samples whose highest score (dim 1 of ``outputs``, shape
    (N, C, ...)) is the target class. ``targets`` are class indices (N, ...) or
    probabilities / one-hot vectors shaped like ``outputs``."""
    out, tgt = _class_scores(outputs, targets, "accuracy")
    if tgt.size == 0:
        return 0.0
    return float(np.mean(out.argmax(axis=1) == tgt))


def confusion_matrix(outputs, targets, num_classes: int | None = None) -> np.ndarray:
    """Counts (C, C) int64: entry [i, j] is how many samples of true class i were
    predicted as j (rows true, columns predicted, as scikit-learn). ``outputs``
    are class scores (N, C, ...) or predicted indices (N, ...); ``num_classes``
    defaults to C of the scores, else to the largest index seen + 1.

    >>> import nnforge as nf
    >>> confusion_matrix(nf.tensor([0, 1, 1, 2]), nf.tensor([0, 1, 2, 2]))
    array([[1, 0, 0],
           [0, 1, 0],
           [0, 1, 1]])
    """
    out = _numpy(outputs, "confusion_matrix", "outputs")
    tgt = _numpy(targets, "confusion_matrix", "targets")
    if out.ndim == tgt.ndim + 1:
        out, tgt = _class_scores(out, tgt, "confusion_matrix")
        pred = out.argmax(axis=1)
        n = out.shape[1] if num_classes is None else int(num_classes)
    elif out.shape == tgt.shape:
        if out.dtype.kind not in "iub" or tgt.dtype.kind not in "iub":
            raise TypeError(f"confusion_matrix: predicted and true classes must be integers, "
                            f"got dtypes {out.dtype} and {tgt.dtype}")
        pred = out
        seen = max(int(pred.max(initial=-1)), int(tgt.max(initial=-1))) + 1
        n = seen if num_classes is None else int(num_classes)
    else:
        raise ValueError(f"confusion_matrix: outputs of shape {out.shape} do not match targets "
                         f"of shape {tgt.shape}; give class scores (N, C, ...) or predicted "
                         "indices shaped like the targets")
    pred, tgt = pred.reshape(-1).astype(np.int64), tgt.reshape(-1).astype(np.int64)
    bad = (pred < 0) | (pred >= n) | (tgt < 0) | (tgt >= n)
    if bad.any():
        raise ValueError(f"confusion_matrix: class indices must be in [0, {n}), got "
                         f"predicted {pred[bad][:3].tolist()} / true {tgt[bad][:3].tolist()}")
    return np.bincount(tgt * n + pred, minlength=n * n).reshape(n, n)


def top_k_accuracy(outputs, targets, k: int = 5) -> float:
    """Fraction of samples whose target class is among the ``k`` highest scores
    (ties at the k-th score count as hits)."""
    out, tgt = _class_scores(outputs, targets, "top_k_accuracy")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"top_k_accuracy: k must be a positive integer, got {k!r}")
    if tgt.size == 0:
        return 0.0
    scores = np.moveaxis(out, 1, -1)  # (N, ..., C)
    target_score = np.take_along_axis(scores, tgt[..., None].astype(np.int64), axis=-1)
    # The target is in the top k when fewer than k classes score strictly higher.
    higher = (scores > target_score).sum(axis=-1)
    return float(np.mean(higher < k))


class TopKAccuracy:
    """``top_k_accuracy`` with a fixed ``k``, named ``top{k}_accuracy`` in the history."""

    def __init__(self, k: int = 5):
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"TopKAccuracy: k must be a positive integer, got {k!r}")
        self.k = k
        self.__name__ = f"top{k}_accuracy"

    def __call__(self, outputs, targets) -> float:
        return top_k_accuracy(outputs, targets, self.k)

    def __repr__(self) -> str:
        return f"TopKAccuracy(k={self.k})"


def binary_accuracy(outputs, targets, threshold: float = 0.5) -> float:
    """Fraction of elements where ``outputs > threshold`` equals ``targets > 0.5``
    (outputs are probabilities; for logits use ``threshold=0``)."""
    out = _numpy(outputs, "binary_accuracy", "outputs")
    tgt = _numpy(targets, "binary_accuracy", "targets")
    if out.size != tgt.size:
        raise ValueError(f"binary_accuracy: outputs of shape {out.shape} and targets of shape "
                         f"{tgt.shape} have different numbers of elements")
    if out.size == 0:
        return 0.0
    return float(np.mean((out.reshape(-1) > threshold) == (tgt.reshape(-1) > 0.5)))


def mean_absolute_error(outputs, targets) -> float:
    """Mean of |outputs - targets| over all elements (shapes broadcast)."""
    out = _numpy(outputs, "mean_absolute_error", "outputs")
    tgt = _numpy(targets, "mean_absolute_error", "targets")
    try:
        diff = np.abs(out.astype(np.float64) - tgt.astype(np.float64))
    except ValueError:
        raise ValueError(f"mean_absolute_error: outputs of shape {out.shape} and targets of "
                         f"shape {tgt.shape} do not broadcast") from None
    return float(diff.mean()) if diff.size else 0.0


_NAMED = {
    "accuracy": accuracy,
    "acc": accuracy,
    "binary_accuracy": binary_accuracy,
    "mae": mean_absolute_error,
    "mean_absolute_error": mean_absolute_error,
}
_CANONICAL = {"acc": "accuracy", "mean_absolute_error": "mae"}


def get_metric(metric) -> tuple:
    """``(name, fn)`` for a metric given by name or as a callable."""
    if isinstance(metric, str):
        match = re.fullmatch(r"top_?(\d+)_acc(uracy)?", metric)
        if match:
            return f"top{int(match.group(1))}_accuracy", TopKAccuracy(int(match.group(1)))
        if metric not in _NAMED:
            raise ValueError(f"unknown metric {metric!r}; known names: "
                             f"{', '.join(sorted(_NAMED))}, top<k>_accuracy, or pass a callable "
                             "(outputs, targets) -> float")
        return _CANONICAL.get(metric, metric), _NAMED[metric]
    if callable(metric):
        return metric_name(metric), metric
    raise TypeError(f"a metric must be a name or a callable (outputs, targets) -> float, got "
                    f"{type(metric).__name__}")


def metric_name(fn: Callable) -> str:
    """The history key of a metric callable: its ``__name__`` (``mae`` for
    mean_absolute_error), else its class name in lower case."""
    name = getattr(fn, "__name__", None) or type(fn).__name__.lower()
    return _CANONICAL.get(name, name)
