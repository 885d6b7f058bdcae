"""Tensor operations, one module per topic; all differentiable ones are
``Function`` subclasses written against the backend interface."""
from . import (convert, conv, creation, indexing, linalg, normalization, pointwise,  # noqa: F401
               pool, reduction, shape)
