"""Token vocabularies: the mapping between tokens (words, subwords, any
hashable string) and the integer ids an ``nn.Embedding`` reads.

``Vocab`` numbers the special tokens first (``<pad>`` = 0 by default, so it
doubles as ``padding_idx``), then the corpus tokens by falling frequency
(ties in alphabetical order, so a vocabulary is the same on every run),
dropping those seen fewer than ``min_freq`` times or beyond ``max_size``.
Unknown tokens map to ``<unk>`` when the vocabulary has one, else raise.

    >>> v = Vocab.build([["the", "cat"], ["the", "dog"]])
    >>> v.itos
    ['<pad>', '<unk>', 'the', 'cat', 'dog']
    >>> v.encode(["the", "bird"]).tolist(), v.decode([2, 4])
    ([2, 1], ['the', 'dog'])

``CharVocab`` (nnforge.data.datasets) is the fixed character table the
character-level models use; tokenizers that learn subwords are in
nnforge.data.tokenizers.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from typing import Iterable, Sequence

import numpy as np

__all__ = ["Vocab"]


class Vocab:
    """``Vocab(tokens, specials=("<pad>", "<unk>"), unk_token="<unk>")``: ids in
    the order given (specials first). Use ``Vocab.build`` to count a corpus."""

    def __init__(self, tokens: Sequence[str], specials: Sequence[str] = ("<pad>", "<unk>"),
                 unk_token: str | None = "<unk>"):
        itos = list(specials) + [t for t in tokens if t not in set(specials)]
        if len(set(itos)) != len(itos):
            seen, dup = set(), None
            for t in itos:
                if t in seen:
                    dup = t
                    break
                seen.add(t)
            raise ValueError(f"Vocab: token {dup!r} appears twice")
        if unk_token is not None and unk_token not in itos:
            raise ValueError(f"Vocab: unk_token {unk_token!r} is not among the tokens or "
                             f"specials {list(specials)}")
        self.itos: list = itos
        self.stoi: dict = {t: i for i, t in enumerate(itos)}
        self.specials: list = list(specials)
        self.unk_token = unk_token

    @classmethod
    def build(cls, corpus: Iterable, min_freq: int = 1, max_size: int | None = None,
              specials: Sequence[str] = ("<pad>", "<unk>"),
              unk_token: str | None = "<unk>") -> "Vocab":
        """Counts the tokens of ``corpus`` (an iterable of token sequences, or a
        ``Counter``) and keeps those seen ``min_freq`` times or more, the most
        frequent first, at most ``max_size`` of them besides the specials."""
        if min_freq < 1:
            raise ValueError(f"Vocab.build: min_freq must be >= 1, got {min_freq}")
        if max_size is not None and max_size < 0:
            raise ValueError(f"Vocab.build: max_size must be >= 0 or None, got {max_size}")
        if isinstance(corpus, Counter):
            counts = corpus
        else:
            counts = Counter()
            for seq in corpus:
                if isinstance(seq, str):
                    raise TypeError("Vocab.build: corpus must hold token sequences (lists of "
                                    "strings), got a string; split it into tokens first")
                counts.update(seq)
        ranked = sorted((t for t, n in counts.items() if n >= min_freq and t not in specials),
                        key=lambda t: (-counts[t], t))
        if max_size is not None:
            ranked = ranked[:max_size]
        return cls(ranked, specials, unk_token)

    # ---- lookups
    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token) -> bool:
        return token in self.stoi

    def __getitem__(self, token: str) -> int:
        """The id of ``token`` (of ``unk_token`` when unknown and there is one)."""
        i = self.stoi.get(token)
        if i is not None:
            return i
        if self.unk_token is None:
            raise KeyError(f"Vocab: token {token!r} is not in the vocabulary of {len(self)} "
                           "tokens (and it has no unk_token)")
        return self.stoi[self.unk_token]

    def id_of(self, special: str) -> int:
        """The id of a token that must be present, e.g. ``vocab.id_of('<pad>')``."""
        if special not in self.stoi:
            raise KeyError(f"Vocab: {special!r} is not in the vocabulary")
        return self.stoi[special]

    @property
    def pad_id(self) -> int | None:
        return self.stoi.get("<pad>")

    @property
    def unk_id(self) -> int | None:
        return None if self.unk_token is None else self.stoi[self.unk_token]

    def encode(self, tokens: Iterable[str]) -> np.ndarray:
        """The ids of ``tokens``, an int64 numpy array."""
        if isinstance(tokens, str):
            raise TypeError("Vocab.encode: expected a sequence of tokens, got a string")
        return np.array([self[t] for t in tokens], dtype=np.int64)

    def decode(self, ids, skip_specials: bool = False) -> list:
        """The tokens of ``ids`` (ints, an array or a tensor of them)."""
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        out = []
        for i in ids:
            if not 0 <= int(i) < len(self.itos):
                raise IndexError(f"Vocab.decode: id {int(i)} is out of range for a vocabulary "
                                 f"of {len(self)} tokens")
            t = self.itos[int(i)]
            if not (skip_specials and t in self.specials):
                out.append(t)
        return out

    # ---- files
    def save(self, path) -> None:
        """Writes the vocabulary as JSON (atomically: a temporary file, then a rename)."""
        data = {"itos": self.itos, "specials": self.specials, "unk_token": self.unk_token}
        tmp = f"{os.fspath(path)}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path) -> "Vocab":
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if not isinstance(data, dict) or "itos" not in data:
            raise ValueError(f"Vocab.load: {path} is not a saved Vocab (no 'itos')")
        n = len(data.get("specials", []))
        return cls(data["itos"][n:], data.get("specials", []), data.get("unk_token"))

    def __repr__(self) -> str:
        return f"Vocab({len(self)} tokens, specials={self.specials})"
