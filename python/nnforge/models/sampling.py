"""Choosing the next token from a language model's logits: greedy,
temperature, top-k and top-p (nucleus, Holtzman et al. 2020) sampling.

    p_i  proportional to  exp(z_i / temperature)      over the kept tokens, where
    top-k keeps the k largest z_i, and top-p the smallest set of most likely
    tokens whose probabilities add up to at least p.

Temperature 0 is greedy (argmax). Draws come from an nnforge ``Generator``
(or the default one), so a seeded generation repeats exactly.
"""
from __future__ import annotations

import math

import numpy as np

from ..random import _rng

__all__ = ["sample_next", "check_sampling"]


def check_sampling(op: str, temperature: float, top_k, top_p) -> None:
    if temperature < 0:
        raise ValueError(f"{op}: temperature must be >= 0, got {temperature}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"{op}: top_k must be a positive int or None, got {top_k!r}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"{op}: top_p must be in (0, 1] or None, got {top_p!r}")


def sample_next(logits, temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None, generator=None) -> int:
    """One token id from a 1-D array of logits."""
    z = np.asarray(logits, dtype=np.float64)
    if temperature == 0:
        return int(z.argmax())
    z = z / temperature
    if top_k is not None and top_k < len(z):
        cut = np.partition(z, -top_k)[-top_k]
        z = np.where(z >= cut, z, -math.inf)
    p = np.exp(z - z.max())
    p /= p.sum()
    if top_p is not None and top_p < 1.0:
        order = np.argsort(-p, kind="stable")
        before = np.cumsum(p[order]) - p[order]     # mass of the more likely tokens
        drop = order[before >= top_p]                # keep until the mass reaches top_p
        p[drop] = 0.0
        p /= p.sum()
    return int(_rng(generator).choice(len(p), p=p))
