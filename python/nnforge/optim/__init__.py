"""Optimizers (``nf.optim``) and learning-rate schedules (``nf.optim.lr_scheduler``).

Each optimizer keeps PyTorch's signature, defaults and state names; the update
arithmetic runs in one fused kernel per parameter (``backend.<name>_update_``).
"""
from . import lr_scheduler
from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "lr_scheduler"]
