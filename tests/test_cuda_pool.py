"""CUDA pooling (csrc/cuda/pool.cu through backend/cuda_pool.py) against its CPU
twin (backend/cpu_pool.py): max pooling (values and indices exactly, ties,
NaN, dilation, ceil-mode windows starting in the padding), average pooling
(count_include_pad, divisor_override, ceil mode), adaptive average / max
pooling, every backward, over the CPU tests' grids (tests/test_pool.py), float32
and float64 (float16 / bfloat16 through float32), non-contiguous inputs, empty
batches, argument errors; and the Tensor level: F.max_pool1d/2d, avg_pool1d/2d,
adaptive pools and the nn modules on device="cuda" against the same on the CPU,
forward and backward. Marked `cuda`; skipped without a GPU (the CPU-only test
at the end runs everywhere)."""
import numpy as np
import pytest

import nnforge as nf
from cuda_support import assert_twin, cpu, dev, dev_view, gpu, needs_gpu, views
from nnforge.nn import functional as F

DTYPES = ["float32", "float64"]
# Sums of a few terms: float32 to a few ulps, float64 tight.
TOL = {"float32": (1e-5, 1e-6), "float64": (1e-12, 1e-13)}

# (shape, kernel, stride, padding, dilation, ceil_mode): tests/test_pool.py's MAX2D
# plus wider planes (several warps per row) and a 1-D-like plane.
MAX2D = [
    ((1, 1, 5, 5), (2, 2), (2, 2), (0, 0), (1, 1), False),
    ((2, 3, 7, 6), (3, 3), (2, 2), (1, 1), (1, 1), False),
    ((1, 2, 7, 7), (3, 3), (2, 2), (1, 1), (1, 1), True),
    ((2, 2, 9, 8), (3, 2), (2, 1), (1, 1), (2, 1), False),
    ((1, 1, 6, 7), (2, 2), (2, 2), (1, 1), (1, 1), True),
    ((1, 2, 8, 9), (3, 3), (1, 1), (1, 1), (2, 2), True),
    ((2, 3, 5, 5), (2, 2), (1, 1), (0, 0), (1, 1), False),
    ((1, 1, 10, 11), (2, 2), (3, 3), (1, 1), (3, 3), True),
    ((1, 2, 6, 5), (1, 3), (1, 2), (0, 1), (1, 1), False),
    ((2, 3, 21, 45), (3, 3), (2, 2), (1, 1), (1, 1), False),
    ((2, 3, 21, 45), (4, 4), (3, 3), (2, 2), (1, 1), True),
    ((3, 4, 1, 37), (1, 3), (1, 2), (0, 1), (1, 2), True),
]

# (shape, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
# tests/test_pool.py's AVG2D plus wide planes.
AVG2D = [
    ((1, 1, 5, 5), (2, 2), (2, 2), (0, 0), False, True, 0),
    ((2, 3, 7, 6), (3, 3), (2, 2), (1, 1), False, True, 0),
    ((2, 3, 7, 6), (3, 3), (2, 2), (1, 1), False, False, 0),
    ((1, 2, 7, 7), (3, 3), (2, 2), (1, 1), True, True, 0),
    ((1, 2, 7, 7), (3, 3), (2, 2), (1, 1), True, False, 0),
    ((1, 1, 6, 7), (2, 2), (2, 2), (1, 1), True, True, 0),
    ((1, 1, 6, 7), (2, 2), (2, 2), (1, 1), True, False, 0),
    ((2, 2, 9, 8), (3, 2), (2, 1), (1, 1), False, False, 0),
    ((2, 3, 5, 5), (2, 2), (1, 1), (0, 0), False, True, 0),
    ((1, 2, 7, 7), (3, 3), (2, 2), (1, 1), True, True, 5),
    ((1, 2, 8, 5), (2, 3), (3, 2), (1, 1), True, False, 2),
    ((2, 3, 21, 45), (4, 4), (3, 3), (2, 2), False, True, 0),
    ((2, 3, 21, 45), (5, 3), (1, 2), (2, 1), True, False, 0),
]

ADAPTIVE = [((2, 3, 7, 9), (3, 4)), ((1, 2, 5, 5), (1, 1)), ((1, 1, 4, 6), (6, 7)),
            ((2, 2, 8, 8), (8, 3)), ((1, 3, 5, 6), (2, 2)), ((2, 3, 1, 10), (1, 4)),
            ((1, 2, 1, 5), (1, 1)), ((1, 1, 3, 7), (1, 9)), ((2, 4, 33, 65), (7, 5))]


def _rand(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _exact(got, want):
    """Bit-equal (maxima are exact): same shape and dtype, NaN where NaN."""
    host = gpu().to_host(got)
    assert host.shape == want.shape and host.dtype == want.dtype, (host.shape, want.shape)
    np.testing.assert_array_equal(host, want)


def _twin(got, want, dtype, scale=1.0):
    r, a = TOL[dtype]
    assert_twin(got, want, rtol=r, atol=a * scale)


# ---------------------------------------------------------------- max pooling
@needs_gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,k,s,p,d,ceil_mode", MAX2D, ids=str)
def test_max_pool2d_forward_backward(shape, k, s, p, d, ceil_mode, dtype):
    x = _rand(shape, dtype)
    y_c, i_c = cpu.max_pool2d(x, k, s, p, d, ceil_mode, True)
    y, i = gpu().max_pool2d(dev(x), k, s, p, d, ceil_mode, True)
    _exact(y, y_c)
    assert_twin(i, i_c)
    y2, none = gpu().max_pool2d(dev(x), k, s, p, d, ceil_mode, False)
    assert none is None
    _exact(y2, y_c)
    g = _rand(y_c.shape, dtype, seed=1)
    want = cpu.max_pool2d_backward(g, i_c, shape[2:])
    _twin(gpu().max_pool2d_backward(dev(g), dev(i_c), shape[2:]), want, dtype)


@needs_gpu
@pytest.mark.parametrize("k,s,p,d", [((2, 2), (2, 2), (0, 0), (1, 1)),
                                     ((3, 3), (2, 2), (1, 1), (1, 1)),
                                     ((3, 3), (1, 1), (1, 1), (2, 2))])
def test_max_pool_ties_and_nan(k, s, p, d):
    x = np.random.default_rng(3).integers(0, 3, (2, 2, 9, 10)).astype(np.float32)
    x[0, 0] = 1.0  # a whole plane of one value: the first tap wins everywhere
    x[1, 1, 4, 5] = np.nan
    x[1, 0, 2, 2] = x[1, 0, 2, 3] = np.nan  # two NaNs in a window: the last wins
    x[0, 1, 3, 3] = -np.inf
    y_c, i_c = cpu.max_pool2d(x, k, s, p, d, False, True)
    y, i = gpu().max_pool2d(dev(x), k, s, p, d, False, True)
    np.testing.assert_array_equal(gpu().to_host(y), y_c)  # NaN == NaN here
    np.testing.assert_array_equal(gpu().to_host(i), i_c)
    assert np.isnan(y_c).any()


@needs_gpu
def test_max_pool_all_minus_inf_window_gives_first_tap():
    x = np.full((1, 1, 4, 4), -np.inf, np.float64)
    y_c, i_c = cpu.max_pool2d(x, (3, 3), (2, 2), (1, 1), (1, 1), True, True)
    y, i = gpu().max_pool2d(dev(x), (3, 3), (2, 2), (1, 1), (1, 1), True, True)
    np.testing.assert_array_equal(gpu().to_host(y), y_c)
    np.testing.assert_array_equal(gpu().to_host(i), i_c)


@needs_gpu
@pytest.mark.parametrize("name", ["contiguous", "transposed", "sliced"])
def test_max_and_avg_pool_non_contiguous_inputs(name):
    x = _rand((2, 3, 11, 12), "float32")
    for vname, v in views(x):
        if vname != name:
            continue
        xd = dev_view(name, v)
        y_c, i_c = cpu.max_pool2d(v, (3, 3), (2, 2), (1, 1), (1, 1), True, True)
        y, i = gpu().max_pool2d(xd, (3, 3), (2, 2), (1, 1), (1, 1), True, True)
        _exact(y, y_c)
        assert_twin(i, i_c)
        _twin(gpu().avg_pool2d(xd, (3, 2), (2, 1), (1, 1), False, False, 0),
              cpu.avg_pool2d(v, (3, 2), (2, 1), (1, 1), False, False, 0), "float32")
        _twin(gpu().adaptive_avg_pool2d(xd, (4, 5)), cpu.adaptive_avg_pool2d(v, (4, 5)),
              "float32")
        g = _rand(y_c.shape, "float32", seed=2)
        gd = dev_view(name, g) if name != "sliced" else dev(g)
        _twin(gpu().max_pool2d_backward(gd, i, (11, 12)),
              cpu.max_pool2d_backward(g, i_c, (11, 12)), "float32")


@needs_gpu
def test_max_backward_scatter_repeats_and_bad_indices():
    gy = np.arange(8, dtype=np.float64).reshape(1, 2, 2, 2)
    idx = np.array([0, 0, 5, 15, 1, 1, 1, 1], np.int64).reshape(1, 2, 2, 2)
    gx = gpu().to_host(gpu().max_pool2d_backward(dev(gy), dev(idx), (4, 4)))
    np.testing.assert_array_equal(gx, cpu.max_pool2d_backward(gy, idx, (4, 4)))
    assert gx[0, 1].ravel()[1] == 4 + 5 + 6 + 7
    skip = idx.copy()
    skip[0, 0, 0, 0] = -1  # -1 (a window with no tap) is skipped, not an error
    np.testing.assert_array_equal(
        gpu().to_host(gpu().max_pool2d_backward(dev(gy), dev(skip), (4, 4))),
        cpu.max_pool2d_backward(gy, skip, (4, 4)))
    with pytest.raises(IndexError, match="outside"):
        gpu().max_pool2d_backward(dev(gy), dev(np.full((1, 2, 2, 2), 16, np.int64)), (4, 4))
    with pytest.raises(ValueError, match="indices"):
        nf._C.cuda.max_pool2d_backward(dev(gy), dev(np.zeros((1, 2, 2, 3), np.int64)), (4, 4))
    with pytest.raises(TypeError, match="int64"):
        nf._C.cuda.max_pool2d_backward(dev(gy), dev(np.zeros((1, 2, 2, 2), np.int32)), (4, 4))


@needs_gpu
def test_max_backward_overlapping_windows_sum():
    # 3x3 windows with stride 1 on a constant plane: every output picks its first
    # tap, so some inputs receive up to 4 gradients (atomicAdd order may vary: compare
    # with a tolerance, and check the total).
    x = np.ones((2, 3, 17, 19), np.float32)
    g = _rand((2, 3, 17, 19), "float32", seed=4)
    _, i_c = cpu.max_pool2d(x, (3, 3), (1, 1), (1, 1), (1, 1), False, True)
    got = gpu().to_host(gpu().max_pool2d_backward(dev(g), dev(i_c), (17, 19)))
    want = cpu.max_pool2d_backward(g, i_c, (17, 19))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.sum(), g.sum(), rtol=1e-4)


# ---------------------------------------------------------------- average pooling
@needs_gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,k,s,p,ceil_mode,cip,div", AVG2D, ids=str)
def test_avg_pool2d_forward_backward(shape, k, s, p, ceil_mode, cip, div, dtype):
    x = _rand(shape, dtype)
    want = cpu.avg_pool2d(x, k, s, p, ceil_mode, cip, div or None)
    _twin(gpu().avg_pool2d(dev(x), k, s, p, ceil_mode, cip, div or None), want, dtype)
    g = _rand(want.shape, dtype, seed=1)
    want_g = cpu.avg_pool2d_backward(g, shape[2:], k, s, p, ceil_mode, cip, div or None)
    got_g = gpu().avg_pool2d_backward(dev(g), shape[2:], k, s, p, ceil_mode, cip, div or None)
    _twin(got_g, want_g, dtype)


@needs_gpu
def test_avg_backward_is_deterministic():
    g = _rand((4, 8, 40, 40), "float32", seed=5)
    runs = [gpu().to_host(gpu().avg_pool2d_backward(dev(g), (81, 81), (5, 5), (2, 2), (2, 2),
                                                    True, False, 0)) for _ in range(3)]
    for r in runs[1:]:
        np.testing.assert_array_equal(r, runs[0])


# ---------------------------------------------------------------- adaptive pooling
@needs_gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,out", ADAPTIVE, ids=str)
def test_adaptive_pools_forward_backward(shape, out, dtype):
    x = _rand(shape, dtype)
    want = cpu.adaptive_avg_pool2d(x, out)
    _twin(gpu().adaptive_avg_pool2d(dev(x), out), want, dtype)
    g = _rand(want.shape, dtype, seed=1)
    _twin(gpu().adaptive_avg_pool2d_backward(dev(g), shape[2:]),
          cpu.adaptive_avg_pool2d_backward(g, shape[2:]), dtype)
    xt = np.random.default_rng(6).integers(0, 4, shape).astype(dtype)  # ties
    for xx in (x, xt):
        y_c, i_c = cpu.adaptive_max_pool2d(xx, out, True)
        y, i = gpu().adaptive_max_pool2d(dev(xx), out, True)
        _exact(y, y_c)
        assert_twin(i, i_c)
        _twin(gpu().max_pool2d_backward(dev(g), i, shape[2:]),
              cpu.max_pool2d_backward(g, i_c, shape[2:]), dtype)


@needs_gpu
def test_adaptive_zero_output_and_empty_batch():
    x = _rand((2, 3, 5, 6), "float32")
    y = gpu().adaptive_avg_pool2d(dev(x), (0, 3))
    assert tuple(y.shape) == (2, 3, 0, 3)
    gx = gpu().adaptive_avg_pool2d_backward(dev(np.zeros((2, 3, 0, 3), np.float32)), (5, 6))
    np.testing.assert_array_equal(gpu().to_host(gx), np.zeros((2, 3, 5, 6), np.float32))
    e = dev(np.zeros((0, 3, 8, 8), np.float32))
    y, i = gpu().max_pool2d(e, (2, 2), (2, 2), (0, 0), (1, 1), False, True)
    assert tuple(y.shape) == (0, 3, 4, 4) and tuple(i.shape) == (0, 3, 4, 4)
    assert tuple(gpu().avg_pool2d(e, (2, 2), (2, 2), (0, 0), False, True, None).shape) == \
        (0, 3, 4, 4)
    assert tuple(gpu().max_pool2d_backward(y, i, (8, 8)).shape) == (0, 3, 8, 8)


# ---------------------------------------------------------------- reduced floats
@needs_gpu
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_reduced_floats_compute_in_float32(dtype):
    x32 = _rand((2, 3, 9, 10), "float32")
    xd = nf._C.cuda.astype(dev(x32), dtype)
    xr = gpu().to_host(nf._C.cuda.astype(xd, "float32"))  # the rounded input
    y, i = gpu().max_pool2d(xd, (3, 3), (2, 2), (1, 1), (1, 1), False, True)
    assert y.dtype_name == dtype
    y_c, i_c = cpu.max_pool2d(xr, (3, 3), (2, 2), (1, 1), (1, 1), False, True)
    np.testing.assert_array_equal(gpu().to_host(nf._C.cuda.astype(y, "float32")), y_c)
    np.testing.assert_array_equal(gpu().to_host(i), i_c)
    a = gpu().avg_pool2d(xd, (2, 2), (2, 2), (0, 0), False, True, None)
    assert a.dtype_name == dtype
    np.testing.assert_allclose(gpu().to_host(nf._C.cuda.astype(a, "float32")),
                               cpu.avg_pool2d(xr, (2, 2), (2, 2), (0, 0), False, True, None),
                               rtol=1e-2, atol=1e-2)  # one rounding to 8 (bf16) / 11 bits
    gd = nf._C.cuda.astype(dev(np.ones(tuple(y.shape), np.float32)), dtype)
    gx = gpu().max_pool2d_backward(gd, i, (9, 10))
    assert gx.dtype_name == dtype
    np.testing.assert_array_equal(gpu().to_host(nf._C.cuda.astype(gx, "float32")),
                                  cpu.max_pool2d_backward(np.ones(y_c.shape, np.float32), i_c,
                                                          (9, 10)))


# ---------------------------------------------------------------- errors
@needs_gpu
def test_pool_argument_errors():
    x = dev(np.zeros((1, 2, 4, 4), np.float32))
    C = nf._C.cuda
    with pytest.raises(TypeError, match="float32 or float64"):
        C.max_pool2d_forward(dev(np.zeros((1, 2, 4, 4), np.int32)), (2, 2), (2, 2), (0, 0),
                             (1, 1), False, False)
    with pytest.raises(ValueError, match="4-D"):
        C.max_pool2d_forward(dev(np.zeros((2, 4, 4), np.float32)), (2, 2), (2, 2), (0, 0),
                             (1, 1), False, False)
    with pytest.raises(ValueError, match="contiguous"):
        C.avg_pool2d_forward(gpu().swap_last(x), (2, 2), (2, 2), (0, 0), False, True, 0)
    with pytest.raises(ValueError, match="at most half"):
        C.max_pool2d_forward(x, (2, 2), (2, 2), (2, 0), (1, 1), False, False)
    with pytest.raises(ValueError, match="kernel_size"):
        C.max_pool2d_forward(x, (-1, 2), (2, 2), (0, 0), (1, 1), False, False)
    with pytest.raises(ValueError, match="too small"):
        C.avg_pool2d_forward(x, (5, 5), (1, 1), (0, 0), False, True, 0)
    with pytest.raises(ValueError, match="divisor_override"):
        C.avg_pool2d_forward(x, (2, 2), (2, 2), (0, 0), False, True, -3)
    with pytest.raises(ValueError, match="expected output size"):
        C.avg_pool2d_backward(dev(np.ones((1, 2, 2, 2), np.float32)), (6, 6), (2, 2), (2, 2),
                              (0, 0), False, True, 0)
    with pytest.raises(ValueError, match="empty"):
        C.adaptive_avg_pool2d_forward(dev(np.zeros((1, 1, 0, 3), np.float32)), (2, 2))
    with pytest.raises(ValueError, match="output_size"):
        C.adaptive_max_pool2d_forward(x, (-1, 2), False)
    with pytest.raises(TypeError, match="max_pool2d"):
        gpu().max_pool2d(np.zeros((1, 2, 4, 4), np.float32), (2, 2), (2, 2), (0, 0), (1, 1),
                         False, False)


# ---------------------------------------------------------------- Tensor level
def _both(x, device):
    return nf.tensor(x, device=device, requires_grad=True)


def _run(fn, x, seed=7):
    """fn on cpu and cuda; (outputs, input grads) per device, with backward of sum(out u)."""
    results = []
    for device in ("cpu", "cuda"):
        xt = _both(x, device)
        out = fn(xt)
        y = out[0] if isinstance(out, tuple) else out
        u = nf.tensor(np.random.default_rng(seed).standard_normal(tuple(y.shape)),
                      dtype=y.dtype, device=device)
        (y * u).sum().backward()
        extra = [o.cpu().numpy() for o in out[1:]] if isinstance(out, tuple) else []
        results.append((y.detach().cpu().numpy(), xt.grad.cpu().numpy(), extra))
    return results


MODULES = [
    ("MaxPool2d", dict(kernel_size=2), (2, 3, 9, 10)),
    ("MaxPool2d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), (2, 3, 9, 10)),
    ("MaxPool2d", dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2)),
     (2, 3, 9, 10)),
    ("MaxPool2d", dict(kernel_size=3, stride=2, return_indices=True), (3, 9, 10)),
    ("MaxPool1d", dict(kernel_size=3, stride=2, padding=1), (2, 3, 11)),
    ("AvgPool2d", dict(kernel_size=3, stride=2, padding=1), (2, 3, 9, 10)),
    ("AvgPool2d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                       count_include_pad=False, divisor_override=4), (2, 3, 9, 10)),
    ("AvgPool1d", dict(kernel_size=3, stride=2, padding=1), (2, 3, 11)),
    ("AdaptiveAvgPool2d", dict(output_size=(3, 4)), (2, 3, 9, 10)),
    ("AdaptiveAvgPool2d", dict(output_size=1), (2, 3, 9, 10)),
    ("AdaptiveAvgPool1d", dict(output_size=3), (2, 3, 11)),
    ("AdaptiveMaxPool2d", dict(output_size=(2, 3)), (2, 3, 9, 10)),
    ("AdaptiveMaxPool2d", dict(output_size=(4, 4), return_indices=True), (3, 9, 10)),
    ("AdaptiveMaxPool1d", dict(output_size=3), (2, 3, 11)),
]


@needs_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cls,kw,shape", MODULES, ids=str)
def test_modules_cuda_vs_cpu(cls, kw, shape, dtype):
    x = _rand(shape, dtype, seed=8)
    mod = getattr(nf.nn, cls)(**kw)
    (y_c, g_c, e_c), (y_g, g_g, e_g) = _run(mod, x)
    r, a = TOL[dtype]
    np.testing.assert_allclose(y_g, y_c, rtol=r, atol=a)
    np.testing.assert_allclose(g_g, g_c, rtol=r, atol=a)
    for got, want in zip(e_g, e_c):  # the indices
        np.testing.assert_array_equal(got, want)


@needs_gpu
def test_functional_pools_cuda_vs_cpu():
    x = _rand((2, 4, 13, 12), "float64", seed=9)
    fns = [lambda t: F.max_pool2d(t, 3, 2, 1, 1, True),
           lambda t: F.max_pool2d(t, 2, return_indices=True),
           lambda t: F.avg_pool2d(t, (2, 3), (1, 2), (1, 1), True, False),
           lambda t: F.avg_pool2d(t, 3, 3, 1, divisor_override=2),
           lambda t: F.adaptive_avg_pool2d(t, (None, 5)),
           lambda t: F.adaptive_max_pool2d(t, (5, 3), return_indices=True),
           lambda t: F.max_pool1d(t.reshape(2, 4, 156), 4, 3, 2, 2, True),
           lambda t: F.avg_pool1d(t.reshape(2, 4, 156), 5, 2, 2, True, False),
           lambda t: F.adaptive_max_pool1d(t.reshape(2, 4, 156), 10)]
    for fn in fns:
        (y_c, g_c, e_c), (y_g, g_g, e_g) = _run(fn, x)
        np.testing.assert_allclose(y_g, y_c, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(g_g, g_c, rtol=1e-12, atol=1e-13)
        for got, want in zip(e_g, e_c):
            np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------- everywhere
def test_pool_names_implemented_in_cuda_backend():
    """Runs without a GPU: the CUDA backend defines these names itself (none of them
    falls back to the NotImplementedError stand-in)."""
    from nnforge.backend import cuda as cuda_be
    for name in ("max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
                 "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward", "adaptive_max_pool2d"):
        assert name not in cuda_be.NOT_IMPLEMENTED
        assert getattr(cuda_be, name).__module__ == "nnforge.backend.cuda_pool"
