"""CUDA softmax / log-softmax and layer norm (csrc/cuda/softmax.cu, layernorm.cu
through backend/cuda_norms.py) against their CPU twins (backend/cpu.py,
cpu_layernorm.py): row lengths on both sides of the warp/block split (1, 7,
65, 384, 1000, 4096), several row counts, float32 and float64 (and float16 /
bfloat16 through float32), forward and backward, other axes and
non-contiguous inputs, nan rows, weight/bias absent, the deterministic
gw/gb reduction, and argument errors. Marked `cuda`; skipped without a GPU
(the CPU-only test at the end runs everywhere)."""
import numpy as np
import pytest

import nnforge as nf
from cuda_support import assert_twin, cpu, dev, dev_view, gpu, needs_gpu, views

COLS = [1, 7, 65, 384, 1000, 4096]
ROWS = [1, 3, 130]
DTYPES = ["float32", "float64"]
TOL = {"float32": (2e-5, 2e-6), "float64": (1e-12, 1e-13)}


def _rand(shape, dtype, seed=0):
    return np.random.default_rng(seed).uniform(-3, 3, size=shape).astype(dtype)


def _twin(got, want, dtype, scale=1.0):
    r, a = TOL[dtype]
    assert_twin(got, want, rtol=r, atol=a * scale)


# ---------------------------------------------------------------- softmax
@needs_gpu
@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", ROWS)
@pytest.mark.parametrize("cols", COLS)
def test_softmax_forward_backward(cols, rows, dtype, log):
    x = _rand((rows, cols), dtype)
    g = _rand((rows, cols), dtype, seed=1)
    fwd = "log_softmax" if log else "softmax"
    bwd = fwd + "_backward"
    y_cpu = getattr(cpu, fwd)(x, -1)
    y = getattr(gpu(), fwd)(dev(x), -1)
    _twin(y, y_cpu, dtype)
    _twin(getattr(gpu(), bwd)(dev(g), dev(y_cpu), -1), getattr(cpu, bwd)(g, y_cpu, -1), dtype,
          scale=10.0)


@needs_gpu
@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_softmax_other_axes_and_views(axis, log):
    x = _rand((5, 70, 9), "float32")
    fwd = "log_softmax" if log else "softmax"
    want = getattr(cpu, fwd)(x, axis)
    _twin(getattr(gpu(), fwd)(dev(x), axis), want, "float32")
    g = _rand(x.shape, "float32", seed=2)
    bwd = fwd + "_backward"
    _twin(getattr(gpu(), bwd)(dev(g), dev(want), axis), getattr(cpu, bwd)(g, want, axis),
          "float32", scale=10.0)
    for name, v in views(x):
        _twin(getattr(gpu(), fwd)(dev_view(name, v), -1), getattr(cpu, fwd)(v, -1), "float32")


@needs_gpu
def test_softmax_special_rows():
    x = np.array([[-np.inf] * 5, [0, np.inf, 1, 2, 3], [0, -np.inf, 1, -np.inf, 2],
                  [0, np.nan, 1, 2, 3]], np.float32)
    for fwd in ("softmax", "log_softmax"):
        got = gpu().to_host(getattr(gpu(), fwd)(dev(x), -1))
        want = getattr(cpu, fwd)(x, -1)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7, equal_nan=True)
        assert np.isnan(got[0]).all() and np.isnan(got[1]).all() and np.isnan(got[3]).all()
        assert np.isfinite(got[2, [0, 2, 4]]).all()


@needs_gpu
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_softmax_reduced_floats(dtype):
    x = _rand((4, 300), "float32")
    xd = nf._C.cuda.astype(dev(x), dtype)
    y = nf._C.cuda.astype(gpu().softmax(xd, -1), "float32")
    assert gpu().softmax(xd, -1).dtype_name == dtype
    xr = gpu().to_host(nf._C.cuda.astype(xd, "float32"))
    np.testing.assert_allclose(gpu().to_host(y), cpu.softmax(xr, -1), rtol=2e-2, atol=1e-3)


@needs_gpu
def test_softmax_zero_d_and_empty():
    one = dev(np.array(2.5, np.float32))
    assert gpu().to_host(gpu().softmax(one, 0)) == 1.0
    assert gpu().to_host(gpu().softmax_backward(one, gpu().softmax(one, 0), 0)) == 0.0
    empty = dev(np.zeros((0, 5), np.float32))
    assert tuple(gpu().softmax(empty, -1).shape) == (0, 5)


# ---------------------------------------------------------------- layer norm
@needs_gpu
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", ROWS)
@pytest.mark.parametrize("cols", COLS)
def test_layer_norm_forward_backward(cols, rows, dtype, affine):
    x = _rand((rows, cols), dtype) + 5.0  # an offset mean: the two-pass variance matters
    w = _rand((cols,), dtype, seed=3) if affine else None
    b = _rand((cols,), dtype, seed=4) if affine else None
    g = _rand((rows, cols), dtype, seed=5)
    y_c, m_c, r_c = cpu.layer_norm_forward(x, 1, w, b, 1e-5)
    dw = None if w is None else dev(w)
    y, m, r = gpu().layer_norm_forward(dev(x), 1, dw, None if b is None else dev(b), 1e-5)
    _twin(y, y_c, dtype, scale=10.0)
    _twin(m, m_c, dtype, scale=10.0)
    _twin(r, r_c, dtype, scale=10.0)
    needs = (True, affine, affine)
    want = cpu.layer_norm_backward(g, x, 1, w, m_c, r_c, needs)
    got = gpu().layer_norm_backward(dev(g), dev(x), 1, dw, dev(m_c), dev(r_c), needs)
    for gv, wv in zip(got, want):
        if wv is None:
            assert gv is None
        else:
            _twin(gv, wv, dtype, scale=100.0 * max(1, rows / 8))


@needs_gpu
def test_layer_norm_multi_dim_broadcast_grad_and_needs():
    x = _rand((2, 3, 4, 5), "float32")
    w, b = _rand((4, 5), "float32", seed=1), _rand((4, 5), "float32", seed=2)
    y_c, m_c, r_c = cpu.layer_norm_forward(x, 2, w, b, 1e-6)
    y, m, r = gpu().layer_norm_forward(dev(x), 2, dev(w), dev(b), 1e-6)
    _twin(y, y_c, "float32", scale=10.0)
    assert tuple(m.shape) == (6,) and tuple(r.shape) == (6,)
    g = np.float32(1.5)  # a broadcast upstream gradient
    for needs in [(True, False, False), (False, True, True), (False, False, True)]:
        want = cpu.layer_norm_backward(np.asarray(g), x, 2, w, m_c, r_c, needs)
        got = gpu().layer_norm_backward(dev(np.asarray(g)), dev(x), 2, dev(w), dev(m_c),
                                        dev(r_c), needs)
        for gv, wv in zip(got, want):
            assert (gv is None) == (wv is None)
            if wv is not None:
                _twin(gv, wv, "float32", scale=100.0)


@needs_gpu
def test_layer_norm_grads_deterministic():
    x = _rand((3000, 384), "float32")
    g = _rand((3000, 384), "float32", seed=1)
    w = _rand((384,), "float32", seed=2)
    _, m, r = gpu().layer_norm_forward(dev(x), 1, dev(w), None, 1e-5)
    runs = [gpu().layer_norm_backward(dev(g), dev(x), 1, dev(w), m, r, (True, True, True))
            for _ in range(3)]
    for k in range(3):
        first = gpu().to_host(runs[0][k])
        for other in runs[1:]:
            np.testing.assert_array_equal(gpu().to_host(other[k]), first)


@needs_gpu
def test_norm_argument_errors():
    x = dev(np.zeros((4, 8), np.float32))
    with pytest.raises(ValueError, match="weight"):
        gpu().layer_norm_forward(x, 1, dev(np.zeros((7,), np.float32)), None, 1e-5)
    with pytest.raises(TypeError, match="layer_norm_forward"):
        gpu().layer_norm_forward(dev(np.zeros((4, 8), np.int64)), 1, None, None, 1e-5)
    with pytest.raises(TypeError, match="softmax"):
        gpu().softmax(dev(np.zeros((4, 8), np.int32)), -1)
    with pytest.raises(ValueError, match="axis"):
        gpu().softmax(x, 2)
    with pytest.raises(ValueError, match="contiguous"):
        nf._C.cuda.softmax_forward(gpu().swap_last(x), False)
    with pytest.raises(ValueError, match="must match"):
        nf._C.cuda.softmax_backward(dev(np.zeros((4, 7), np.float32)), x, False)


# ---------------------------------------------------------------- everywhere
def test_norm_names_implemented_in_cuda_backend():
    """Runs without a GPU: the CUDA backend defines these names itself (none of them
    falls back to the NotImplementedError stand-in)."""
    from nnforge.backend import cuda as cuda_be
    for name in ("softmax", "log_softmax", "softmax_kernel", "softmax_backward",
                 "log_softmax_backward", "layer_norm_forward", "layer_norm_backward"):
        assert name not in cuda_be.NOT_IMPLEMENTED
        assert getattr(cuda_be, name).__module__ == "nnforge.backend.cuda_norms"
