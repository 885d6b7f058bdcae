"""Tokenizers trained on a corpus: text <-> token ids for the language models.

- ``CharTokenizer``: one token per character seen in training (plus ``<unk>``
  for characters that were not).
- ``ByteBPETokenizer``: byte-level byte-pair encoding (Sennrich et al. 2016;
  the byte-level form of GPT-2, Radford et al. 2019). Text is UTF-8 bytes, so
  every string is encodable and there is no unknown token. Training starts
  from the 256 byte values and repeatedly merges the most frequent adjacent
  pair of tokens into a new token, until the vocabulary has ``vocab_size``
  entries. Merges never cross the boundaries of a pre-tokenization that cuts
  text into words with their leading space, digits and punctuation runs, so a
  token never spans two words ("the" and " the" are learned separately).

Both put the special tokens first (default ``<pad>`` = 0, ``<bos>``, ``<eos>``,
``<mask>``, ``<cls>``), so ``pad_id`` can be an embedding's ``padding_idx``.
``encode(text, add_bos=False, add_eos=False)`` returns a list of ids and
``decode(ids, skip_specials=True)`` gives the text back: ``decode(encode(s)) ==
s`` for every string a tokenizer can represent. Special tokens written in the
text (e.g. "<mask>") are read as such only with ``encode(...,
allow_specials=True)``. ``save(path)`` writes JSON (atomically);
``load_tokenizer(path)`` reads either kind.

    >>> tok = ByteBPETokenizer.train("low lower lowest " * 20, vocab_size=270)
    >>> ids = tok.encode("lowest low")
    >>> tok.decode(ids), len(ids) < len(b"lowest low")
    ('lowest low', True)
"""
from __future__ import annotations

import json
import os
import re
from collections import Counter, defaultdict
from typing import Iterable, Sequence

__all__ = ["CharTokenizer", "ByteBPETokenizer", "load_tokenizer", "DEFAULT_SPECIALS"]

DEFAULT_SPECIALS = ("<pad>", "<bos>", "<eos>", "<mask>", "<cls>")

# Pre-tokenization: a word with its leading space, a run of digits, a run of
# other symbols (with a leading space), or whitespace. Merges stay inside one piece.
_PIECES = re.compile(r" ?[^\W\d_]+| ?\d+| ?[^\s\w]+|_+|\s+(?!\S)|\s+")


def _merge_pair(seq: list, pair: tuple, new: int) -> list:
    """``seq`` with every non-overlapping occurrence of ``pair``, left to right,
    replaced by the token ``new``."""
    a, b = pair
    out, i = [], 0
    while i < len(seq):
        if i + 1 < len(seq) and seq[i] == a and seq[i + 1] == b:
            out.append(new)
            i += 2
        else:
            out.append(seq[i])
            i += 1
    return out


class _Tokenizer:
    """What both tokenizers share: special tokens and their ids, batching, files."""

    kind = ""

    def __init__(self, specials: Sequence[str]):
        specials = list(specials)
        if len(set(specials)) != len(specials):
            raise ValueError(f"{type(self).__name__}: special tokens repeat: {specials}")
        self.specials = specials
        self._special_ids = {s: i for i, s in enumerate(specials)}
        self._special_re = (re.compile("(" + "|".join(re.escape(s) for s in
                                                      sorted(specials, key=len, reverse=True))
                                       + ")") if specials else None)

    def special_id(self, token: str) -> int:
        if token not in self._special_ids:
            raise KeyError(f"{type(self).__name__}: {token!r} is not one of the special tokens "
                           f"{self.specials}")
        return self._special_ids[token]

    def _maybe(self, token):
        return self._special_ids.get(token)

    @property
    def pad_id(self):
        return self._maybe("<pad>")

    @property
    def bos_id(self):
        return self._maybe("<bos>")

    @property
    def eos_id(self):
        return self._maybe("<eos>")

    @property
    def mask_id(self):
        return self._maybe("<mask>")

    @property
    def cls_id(self):
        return self._maybe("<cls>")

    def __len__(self) -> int:
        return self.vocab_size

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False,
               allow_specials: bool = False) -> list:
        """The ids of ``text`` (with ``<bos>``/``<eos>`` around it when asked)."""
        if not isinstance(text, str):
            raise TypeError(f"{type(self).__name__}.encode: expected a str, got "
                            f"{type(text).__name__}")
        ids = [self.special_id("<bos>")] if add_bos else []
        if allow_specials and self._special_re is not None:
            for i, part in enumerate(self._special_re.split(text)):
                if i % 2:
                    ids.append(self._special_ids[part])
                elif part:
                    ids.extend(self._encode_plain(part))
        else:
            ids.extend(self._encode_plain(text))
        if add_eos:
            ids.append(self.special_id("<eos>"))
        return ids

    def encode_batch(self, texts: Iterable[str], **kwargs) -> list:
        return [self.encode(t, **kwargs) for t in texts]

    def decode(self, ids, skip_specials: bool = True) -> str:
        """The text of ``ids`` (ints, a list, an array or a tensor)."""
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        n_special, size = len(self.specials), self.vocab_size
        parts, plain = [], []
        for i in ids:
            i = int(i)
            if not 0 <= i < size:
                raise IndexError(f"{type(self).__name__}.decode: id {i} is out of range for a "
                                 f"vocabulary of {size}")
            if i < n_special:
                if plain:
                    parts.append(self._decode_plain(plain))
                    plain = []
                if not skip_specials:
                    parts.append(self.specials[i])
            else:
                plain.append(i)
        if plain:
            parts.append(self._decode_plain(plain))
        return "".join(parts)

    def save(self, path) -> None:
        """Writes the tokenizer as JSON (a temporary file, then a rename)."""
        data = {"type": self.kind, "specials": self.specials, **self._state()}
        tmp = f"{os.fspath(path)}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False)
        os.replace(tmp, path)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size}, specials={self.specials})"


class CharTokenizer(_Tokenizer):
    """One id per character: specials, ``<unk>``, then the training characters sorted."""

    kind = "char"

    def __init__(self, chars: Sequence[str], specials: Sequence[str] = DEFAULT_SPECIALS):
        specials = list(specials) + (["<unk>"] if "<unk>" not in specials else [])
        super().__init__(specials)
        chars = list(chars)
        if any(not isinstance(c, str) or len(c) != 1 for c in chars):
            raise ValueError("CharTokenizer: chars must be single characters")
        if len(set(chars)) != len(chars):
            raise ValueError("CharTokenizer: chars repeat")
        self.chars = chars
        self._ids = {c: len(specials) + i for i, c in enumerate(chars)}
        self._unk = self._special_ids["<unk>"]

    @classmethod
    def train(cls, text: str, specials: Sequence[str] = DEFAULT_SPECIALS) -> "CharTokenizer":
        return cls(sorted(set(text)), specials)

    @property
    def vocab_size(self) -> int:
        return len(self.specials) + len(self.chars)

    def _encode_plain(self, text: str) -> list:
        get, unk = self._ids.get, self._unk
        return [get(c, unk) for c in text]

    def _decode_plain(self, ids: list) -> str:
        n = len(self.specials)
        return "".join(self.chars[i - n] for i in ids)

    def _state(self) -> dict:
        return {"chars": self.chars}


class ByteBPETokenizer(_Tokenizer):
    """Byte-level BPE: ids are the specials, then the 256 bytes, then one id per
    merge in the order learned (a merge's id is its rank: lower merges first)."""

    kind = "byte_bpe"

    def __init__(self, merges: Sequence[Sequence[int]],
                 specials: Sequence[str] = DEFAULT_SPECIALS):
        super().__init__(specials)
        self.offset = len(self.specials)
        base = self.offset + 256
        # token bytes for decoding; merge ranks for encoding
        self._bytes = {self.offset + b: bytes([b]) for b in range(256)}
        self.merges: list = []
        self._rank: dict = {}
        for r, pair in enumerate(merges):
            a, b = int(pair[0]), int(pair[1])
            new = base + r
            if a not in self._bytes or b not in self._bytes:
                raise ValueError(f"ByteBPETokenizer: merge {r} ({a}, {b}) uses an id that no "
                                 "earlier token has")
            self._bytes[new] = self._bytes[a] + self._bytes[b]
            self._rank[(a, b)] = new
            self.merges.append((a, b))
        self._cache: dict = {}

    @property
    def vocab_size(self) -> int:
        return self.offset + 256 + len(self.merges)

    def token_bytes(self, i: int) -> bytes:
        return self._bytes[i]

    @classmethod
    def train(cls, text: str, vocab_size: int, specials: Sequence[str] = DEFAULT_SPECIALS,
              min_frequency: int = 2) -> "ByteBPETokenizer":
        """Learns merges on ``text`` until ``vocab_size`` tokens (specials and the 256
        bytes included) or until no pair occurs ``min_frequency`` times."""
        offset = len(specials)
        if vocab_size < offset + 256:
            raise ValueError(f"ByteBPETokenizer.train: vocab_size {vocab_size} is below the "
                             f"{offset + 256} of the specials and the 256 bytes")
        words = Counter(_PIECES.findall(text))
        seqs = [[offset + b for b in w.encode("utf-8")] for w in words]
        freq = list(words.values())
        # pair -> total count, and pair -> the words it occurs in (updated per merge)
        counts: Counter = Counter()
        where = defaultdict(set)
        for wi, s in enumerate(seqs):
            for pair in zip(s, s[1:]):
                counts[pair] += freq[wi]
                where[pair].add(wi)
        merges = []
        new = offset + 256
        while new < vocab_size and counts:
            # most frequent pair; ties to the smallest ids, so training is deterministic
            pair, n = max(counts.items(), key=lambda kv: (kv[1], -kv[0][0], -kv[0][1]))
            if n < min_frequency:
                break
            merges.append(pair)
            for wi in list(where[pair]):
                s, f = seqs[wi], freq[wi]
                for p in zip(s, s[1:]):          # take the word's pairs out...
                    counts[p] -= f
                    if counts[p] <= 0:
                        del counts[p]
                    where[p].discard(wi)
                merged = _merge_pair(s, pair, new)
                seqs[wi] = merged
                for p in zip(merged, merged[1:]):   # ...and its new pairs back in
                    counts[p] += f
                    where[p].add(wi)
            where.pop(pair, None)
            new += 1
        return cls(merges, specials)

    def _encode_piece(self, piece: str) -> list:
        ids = self._cache.get(piece)
        if ids is not None:
            return ids
        s = [self.offset + b for b in piece.encode("utf-8")]
        rank = self._rank
        while len(s) > 1:
            # apply the earliest-learned merge present, everywhere in the piece
            best = min((rank.get(p, 1 << 62), p) for p in zip(s, s[1:]))
            if best[0] == 1 << 62:
                break
            s = _merge_pair(s, best[1], best[0])
        if len(self._cache) < 100_000:
            self._cache[piece] = s
        return s

    def _encode_plain(self, text: str) -> list:
        out = []
        for piece in _PIECES.findall(text):
            out.extend(self._encode_piece(piece))
        return out

    def _decode_plain(self, ids: list) -> str:
        return b"".join(self._bytes[i] for i in ids).decode("utf-8", errors="replace")

    def _state(self) -> dict:
        return {"merges": [list(m) for m in self.merges]}


def load_tokenizer(path):
    """A tokenizer saved with ``save``: CharTokenizer or ByteBPETokenizer."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    kind = data.get("type") if isinstance(data, dict) else None
    if kind == "char":
        return CharTokenizer(data["chars"], data["specials"])
    if kind == "byte_bpe":
        return ByteBPETokenizer(data["merges"], data["specials"])
    raise ValueError(f"load_tokenizer: {path} holds no saved tokenizer (type {kind!r})")
