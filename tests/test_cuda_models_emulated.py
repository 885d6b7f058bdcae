"""Every model family with ``model.to("cuda")`` on the EMULATED cuda device of
tests/emulated_cuda.py: the CPU backend behind opaque device arrays. This checks
that the Python layer (ops, nn, optim, models, train, io, peft) reaches device
data only through the backend and keeps every tensor on the model's device. It
does not test the CUDA kernels (tests/test_cuda_models.py does, on a GPU).

The emulated run computes with the same CPU functions, so the loss curves must
agree to float32 round-off (rtol 1e-6: contiguity after a device copy can change
numpy's summation blocking, nothing else differs).
"""
import numpy as np
import pytest

import nnforge as nf
import nnforge.nn.functional as F
from cuda_model_cases import CASES, CHECKS, STEPS, T, compare, host_state
from emulated_cuda import EmulatedDeviceArray, emulated_cuda  # noqa: F401 (fixture)

RTOL, ATOL = 1e-6, 1e-7


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__)
def test_model_family_trains_like_cpu(emulated_cuda, case):  # noqa: F811
    compare(case, "cuda", RTOL, ATOL)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_beyond_training(emulated_cuda, check, tmp_path):  # noqa: F811
    kwargs = {"tmp_path": tmp_path} if "tmp_path" in check.__code__.co_varnames else {}
    check("cuda", (RTOL, ATOL), **kwargs)
