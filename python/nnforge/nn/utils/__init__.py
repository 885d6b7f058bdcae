"""``nnforge.nn.utils``: gradient clipping, weight penalties, parameter vectors
and a model summary, as in ``torch.nn.utils`` (plus ``l1_penalty``/``l2_penalty``
and ``summary``, our extras).

>>> import nnforge as nf
>>> model = nf.nn.Linear(3, 2)
>>> loss = model(nf.randn(4, 3)).pow(2).mean() + nf.nn.utils.l2_penalty(model, 1e-4)
>>> loss.backward()
>>> norm = nf.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
>>> float(norm) >= 0
True
"""
from .clip_grad import clip_grad_norm_, clip_grad_value_, clip_grads_with_norm_, get_total_norm
from .convert_parameters import parameters_to_vector, vector_to_parameters
from .regularization import l1_penalty, l2_penalty
from .summary import FLOP_COUNTERS, summary
from . import rnn

__all__ = ["clip_grad_norm_", "clip_grad_value_", "clip_grads_with_norm_", "get_total_norm",
           "parameters_to_vector", "vector_to_parameters", "l1_penalty", "l2_penalty",
           "summary", "FLOP_COUNTERS", "rnn"]
