"""``nnforge.nn``: Module and Parameter, containers, layers, activations, losses,
plus ``nn.functional`` (as F), ``nn.init`` and ``nn.utils``.

>>> import nnforge as nf
>>> from nnforge import nn
>>> model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
>>> logits = model(nf.randn(32, 784))
>>> loss = nn.CrossEntropyLoss()(logits, nf.randint(0, 10, (32,)))
>>> loss.backward()
>>> tuple(model[0].weight.grad.shape)
(256, 784)
"""
from . import functional, init
from .parameter import Parameter
from .module import Module
from .containers import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from .linear import Flatten, Identity, Linear, Unflatten
from .activation import (CELU, ELU, GELU, SELU, Hardshrink, Hardsigmoid, Hardswish, Hardtanh,
                         LeakyReLU, LogSigmoid, LogSoftmax, Mish, PReLU, ReLU, ReLU6, RReLU,
                         Sigmoid, SiLU, Softmax, Softmin, Softplus, Softshrink, Softsign, Tanh,
                         Tanhshrink, Threshold)
from .dropout import Dropout, Dropout1d, Dropout2d
from .upsampling import Upsample
from .sparse import Embedding
from .loss import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, KLDivLoss, L1Loss,
                   MSELoss, NLLLoss, SmoothL1Loss)
from . import parallel, utils
# Convolution, pooling, normalization, recurrent and attention layers: each file lists
# its layers in __all__.
from . import batchnorm as _batchnorm, conv as _conv, pooling as _pooling, rnn as _rnn
from . import normalization as _normalization
from .batchnorm import *  # noqa: F401,F403
from .normalization import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .pooling import *  # noqa: F401,F403
from .rnn import *  # noqa: F401,F403
from . import attention as _attention, positional as _positional, transformer as _transformer
from .attention import *  # noqa: F401,F403
from .positional import *  # noqa: F401,F403
from .transformer import *  # noqa: F401,F403

__all__ = ["functional", "init", "utils", "Parameter", "Module", "Sequential", "ModuleList",
           "ModuleDict", "ParameterList", "ParameterDict", "Identity", "Linear", "Flatten",
           "Unflatten",
           # activations
           "ReLU", "ReLU6", "LeakyReLU", "PReLU", "RReLU", "ELU", "SELU", "CELU", "GELU",
           "SiLU", "Mish", "Softplus", "Hardswish", "Hardsigmoid", "Hardtanh", "Threshold",
           "Sigmoid", "LogSigmoid", "Tanh", "Softsign", "Tanhshrink", "Softshrink",
           "Hardshrink", "Softmax", "LogSoftmax", "Softmin",
           "Dropout", "Dropout1d", "Dropout2d", "Upsample", "Embedding",
           # losses
           "MSELoss", "L1Loss", "HuberLoss", "SmoothL1Loss", "BCELoss", "BCEWithLogitsLoss",
           "KLDivLoss", "NLLLoss", "CrossEntropyLoss"]
__all__ += _conv.__all__ + _pooling.__all__ + _batchnorm.__all__ + _rnn.__all__
__all__ += _normalization.__all__ + _attention.__all__ + _transformer.__all__
__all__ += _positional.__all__
