"""Random number generators: ``nf.Generator``, ``nf.manual_seed``.

Each ``Generator`` wraps a counter-free PCG64 stream. The default generator is
used whenever an op takes ``generator=None``. Streams differ from PyTorch's;
seeding makes nnforge runs repeatable, not identical to PyTorch's.
"""
from __future__ import annotations

import numpy as np


class Generator:
    """A seeded source of random numbers, as ``torch.Generator``.

    >>> g = Generator().manual_seed(0)
    >>> import nnforge as nf
    >>> tuple(nf.rand(2, generator=g).shape)
    (2,)
    """

    def __init__(self, device="cpu"):
        self.device = device
        self._seed = int(np.random.SeedSequence().entropy % (2 ** 63))
        self._rng = np.random.Generator(np.random.PCG64(self._seed))

    def manual_seed(self, seed: int) -> "Generator":
        seed = int(seed)
        if seed < 0:
            seed = seed % (2 ** 64)
        self._seed = seed
        self._rng = np.random.Generator(np.random.PCG64(seed))
        return self

    def seed(self) -> int:
        """Re-seeds from fresh entropy and returns the new seed."""
        return self.manual_seed(int(np.random.SeedSequence().entropy % (2 ** 63)))._seed

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self) -> dict:
        return self._rng.bit_generator.state

    def set_state(self, state: dict) -> "Generator":
        self._rng.bit_generator.state = state
        return self

    @property
    def numpy(self) -> np.random.Generator:
        """The numpy generator behind this one (for data loaders and init)."""
        return self._rng


default_generator = Generator()


def manual_seed(seed: int) -> Generator:
    """Seeds the default generator (and returns it) and the GPU random stream
    (``nf.cuda.manual_seed``), as ``torch.manual_seed`` seeds both."""
    from . import cuda  # pure Python state: no GPU needed
    cuda.manual_seed(seed)
    return default_generator.manual_seed(seed)


def seed() -> int:
    return default_generator.seed()


def initial_seed() -> int:
    return default_generator.initial_seed()


def get_rng_state() -> dict:
    return default_generator.get_state()


def set_rng_state(state: dict) -> None:
    default_generator.set_state(state)


def uniform_array(rng: np.random.Generator, low: float, high: float, shape, np_dtype) -> np.ndarray:
    """Samples on [low, high) in ``np_dtype``. Drawing in float64 and rounding
    down to float32/float16 would sometimes give ``high`` itself, so the unit
    sample is drawn on the dtype's own grid and the result capped below ``high``."""
    np_dtype = np.dtype(np_dtype)
    bits = {"float16": 11, "bfloat16": 8, "float32": 24}.get(np_dtype.name, 53)  # significand bits
    u = rng.random(shape)
    if bits < 53:
        u = np.floor(u * 2.0 ** bits) * 2.0 ** -bits
    out = np.asarray(low + (high - low) * u).astype(np_dtype)
    if high > low:
        np.minimum(out, np.nextafter(np_dtype.type(high), np_dtype.type(low)), out=out)
    return out


def _rng(generator: Generator | None) -> np.random.Generator:
    if generator is None:
        return default_generator._rng
    if not isinstance(generator, Generator):
        raise TypeError(f"expected generator to be an nnforge.Generator, got {type(generator).__name__}")
    return generator._rng
