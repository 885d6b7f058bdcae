"""Data: data sets, samplers, the DataLoader, padding, splits, the real data
bundled with nnforge (``nnforge.data.datasets``) and loaders for the user's
own files (``nnforge.data.files``), vocabularies and tokenizers."""
from . import dates, datasets, files, tokenizers
from .dataset import (ChainDataset, ConcatDataset, Dataset, IterableDataset, Subset,
                      TensorDataset, random_split)
from .dates import date_pairs
from .distributed import DistributedSampler
from .datasets import CharVocab, digits_split, load_digits, windowed
from .loader import DataLoader, WorkerInfo, default_collate, default_convert, get_worker_info
from .padding import PadCollate, pad_sequence, pad_to_length
from .sampler import (BatchSampler, RandomSampler, Sampler, SequentialSampler,
                      SubsetRandomSampler, WeightedRandomSampler)
from .splits import stratified_split, train_val_test_split
from .tokenizers import ByteBPETokenizer, CharTokenizer, load_tokenizer
from .vocab import Vocab

__all__ = ["date_pairs", "Dataset", "TensorDataset", "Subset", "ConcatDataset", "IterableDataset",
           "ChainDataset", "random_split",
           "Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler",
           "WeightedRandomSampler", "BatchSampler", "DistributedSampler",
           "DataLoader", "default_collate", "default_convert", "get_worker_info", "WorkerInfo",
           "pad_sequence", "pad_to_length", "PadCollate",
           "stratified_split", "train_val_test_split",
           "datasets", "files", "load_digits", "digits_split", "CharVocab", "Vocab", "windowed",
           "tokenizers", "CharTokenizer", "ByteBPETokenizer", "load_tokenizer"]
