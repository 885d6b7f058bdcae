"""Checkpoints in the safetensors format, written atomically, never pickled.

``save``/``load`` store whole training checkpoints (nested dicts of tensors and
plain values); ``save_file``/``load_file`` read and write flat name -> tensor
safetensors files, interchangeable with the ``safetensors`` package's.
"""
from .checkpoint import STRUCTURE_KEY, load, save
from .safetensors import (CheckpointError, load_file, load_metadata, load_numpy, read_numpy,
                          save_file, save_numpy)

__all__ = ["save", "load", "save_file", "load_file", "save_numpy", "load_numpy", "read_numpy",
           "load_metadata", "CheckpointError", "STRUCTURE_KEY"]
