"""Shared pytest setup: every test starts from the same random state."""
import sys
from pathlib import Path

import numpy as np
import pytest

import nnforge as nf

# Makes ``from helpers import check_op`` work from any test module.
sys.path.insert(0, str(Path(__file__).parent))


def pytest_configure(config):
    config.addinivalue_line("markers", "cuda: needs a CUDA device (skipped where none is visible)")
    config.addinivalue_line("markers", "slow: a longer test")


@pytest.fixture(autouse=True)
def _seed_everything():
    """Seeds nnforge's default generator, numpy's global one and torch's (when
    installed) before each test, and restores grad mode and the default dtype after."""
    nf.manual_seed(0)
    np.random.seed(0)
    try:
        import torch
        torch.manual_seed(0)
    except ImportError:
        pass
    default = nf.get_default_dtype()
    yield
    nf.set_default_dtype(default)
    nf.set_grad_enabled(True)


@pytest.fixture
def rng():
    """A seeded numpy Generator for building test inputs."""
    return np.random.default_rng(0)
