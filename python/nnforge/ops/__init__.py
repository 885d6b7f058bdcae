"""Tensor operations, one module per topic; all differentiable ones are
``Function`` subclasses written against the backend interface."""
from . import convert, creation, indexing, linalg, pointwise, reduction, shape  # noqa: F401
