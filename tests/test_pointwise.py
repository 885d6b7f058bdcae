"""Elementwise ops against numpy and PyTorch: forward, gradients, gradcheck."""
import numpy as np
import pytest

import nnforge as nf

pytestmark = pytest.mark.filterwarnings("error")


def test_backend_errstate_is_reentrant():
    # numpy 2 refuses to enter one np.errstate object twice; every call must work.
    x = nf.tensor([1.0, 0.0])
    for _ in range(3):
        np.testing.assert_array_equal(nf.div(x, x).isnan().numpy(), [False, True])
        nf.log(x), nf.sqrt(x)
