"""Ready architectures, built from ``nnforge.nn`` only."""
from .mlp import MLP

__all__ = ["MLP"]
