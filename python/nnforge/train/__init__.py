"""Training: ``fit`` with metrics, callbacks and a progress bar, checkpoints that
resume bit for bit, and the recipes that ``nnforge train`` runs.

>>> import nnforge as nf
>>> nf.train.metrics.get_metric("acc")[0]
'accuracy'
"""
from . import callbacks, metrics
from .callbacks import (Callback, EarlyStopping, GradientClipping, LRSchedulerCallback,
                        ModelCheckpoint, ProgressBar)
from .checkpoint import Resumed, load_weights, read_weights, resume, training_state
from .fit import FitLoop, History, evaluate, fit
from .loop import fit_classifier, train_epoch
from .report import training_summary, write_run_outputs
from .tbptt import TBPTTResult, detach_state, truncated_bptt

__all__ = ["fit", "evaluate", "History", "FitLoop", "resume", "Resumed", "load_weights",
           "read_weights", "training_state", "Callback", "ProgressBar", "EarlyStopping",
           "ModelCheckpoint", "LRSchedulerCallback", "GradientClipping", "metrics", "callbacks",
           "write_run_outputs", "training_summary", "train_epoch", "fit_classifier",
           "truncated_bptt", "detach_state", "TBPTTResult"]
