"""``nnforge.data.files``: loaders for the user's own data files.

This folder also holds the data files bundled with nnforge (see README.md
here); the loaders themselves live in ``nnforge/data/user_files.py``.
"""
from ..user_files import load_array, load_csv, load_text

__all__ = ["load_array", "load_csv", "load_text"]
