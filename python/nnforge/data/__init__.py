"""Data: data sets, loaders and the real data bundled with nnforge."""
from .dataset import Dataset, TensorDataset
from .datasets import digits_split, load_digits, stratified_split
from .loader import DataLoader, default_collate

__all__ = ["Dataset", "TensorDataset", "DataLoader", "default_collate", "load_digits",
           "digits_split", "stratified_split"]
