"""Training: loops and recipes that the ``nnforge train`` command runs."""
from .loop import evaluate, fit_classifier, train_epoch

__all__ = ["train_epoch", "evaluate", "fit_classifier"]
