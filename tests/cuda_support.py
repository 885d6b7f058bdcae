"""Shared by the CUDA tests: the skip condition (with its reason), the two
backends, and a comparison of a CUDA result with its CPU twin."""
import numpy as np
import pytest

import nnforge as nf
from nnforge.backend import get_backend


def gpu_skip_reason():
    if not nf.cuda.is_built():
        return "nnforge was built without CUDA"
    if nf.cuda.device_count() == 0:
        return "no CUDA device visible"
    return None


def needs_gpu(test):
    """Decorates a test that needs a GPU: marked `cuda`, skipped with the reason."""
    skip = pytest.mark.skipif(gpu_skip_reason() is not None, reason=gpu_skip_reason() or "")
    return pytest.mark.cuda(skip(test))

cpu = get_backend("cpu")


def gpu():
    return get_backend("cuda")


def dev(a):
    """A numpy array on the GPU."""
    return gpu().from_host(np.asarray(a))


TOL = {np.dtype(np.float16): (2e-3, 2e-3), np.dtype(np.float32): (2e-5, 1e-5),
       np.dtype(np.float64): (1e-12, 1e-12)}


def assert_twin(got, want, rtol=None, atol=None):
    """A CUDA array equals the CPU backend's result: same shape and dtype, values
    within the dtype's tolerance (exact for integers and bool; nan where nan)."""
    host = gpu().to_host(got)
    want = np.asarray(want)
    assert host.shape == want.shape, (host.shape, want.shape)
    assert host.dtype == want.dtype, (host.dtype, want.dtype)
    if want.dtype.kind == "f":
        r, a = TOL.get(want.dtype, (1e-6, 1e-6))
        np.testing.assert_allclose(host, want, rtol=rtol or r, atol=atol or a, equal_nan=True)
    else:
        np.testing.assert_array_equal(host, want)


def random_array(rng, shape, dtype, low=-3.0, high=3.0):
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        lo = 0 if dtype.kind == "u" else int(low) - 2
        return rng.integers(lo, int(high) + 3, size=shape).astype(dtype)
    return rng.uniform(low, high, size=shape).astype(dtype)


def views(a):
    """``a`` itself, and non-contiguous arrays with the same values: a transposed
    copy transposed back, and a slice of a wider array."""
    out = [("contiguous", a)]
    if a.ndim >= 2:
        out.append(("transposed", np.ascontiguousarray(a.swapaxes(-1, -2)).swapaxes(-1, -2)))
    if a.ndim >= 1 and a.size:
        wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        wide[..., ::2] = a
        out.append(("sliced", wide[..., ::2]))
    return out


def dev_view(name, a):
    """The device counterpart of ``views``: the same layout, built on the GPU."""
    be = gpu()
    if name == "contiguous":
        return dev(a)
    if name == "transposed":
        return be.swap_last(dev(np.ascontiguousarray(a.swapaxes(-1, -2))))
    wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    wide[..., ::2] = a
    return be.getitem(dev(wide), (Ellipsis, slice(None, None, 2)))
