"""The fused softmax / log-softmax kernels (csrc/cpu/softmax.cpp) behind the CPU
backend's softmax, log_softmax and their backward: against a float64 numpy
reference over every dim (every ISA build, in fresh processes), thread-count
invariance, F.softmax / F.log_softmax against PyTorch (forward, gradients,
non-contiguous inputs, gradcheck), -inf / +inf / nan / large rows as PyTorch
gives them, and errors."""
import numpy as np
import pytest

import nnforge as nf
from nnforge._C import cpu as C
from nnforge.backend import cpu as backend
from nnforge.nn import functional as F

from helpers import assert_close, check_op, requires_torch, run_isa_script, torch


def np_softmax(x, dim, log=False):
    x = x.astype(np.float64)
    z = x - x.max(axis=dim, keepdims=True, initial=-np.inf)
    with np.errstate(divide="ignore"):  # an empty dim: log 0
        lse = np.log(np.exp(z).sum(axis=dim, keepdims=True))
    return z - lse if log else np.exp(z - lse)


def np_softmax_backward(g, y, dim, log=False):
    g, y = g.astype(np.float64), y.astype(np.float64)
    if log:
        return g - np.exp(y) * g.sum(axis=dim, keepdims=True)
    return y * (g - (g * y).sum(axis=dim, keepdims=True))


# (shape, dim): last dim (rows), middle and first dims (tiles over the inner positions)
KERNEL_CASES = [((1,), 0), ((7,), -1), ((5, 1), 1), ((37, 65), -1), ((64, 256), 1),
                ((3, 1000), 1), ((3, 7, 300), 1), ((5, 4), 0), ((2, 3, 4, 5), 2),
                ((2, 9, 513), 1), ((0, 5), 1), ((4, 0, 3), 1), ((4, 0), 0)]


@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape,dim", KERNEL_CASES, ids=str)
def test_kernels_vs_numpy(shape, dim, dtype, log):
    rng = np.random.default_rng(len(shape) + sum(shape))
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    tol = 1e-6 if dtype == "float32" else 1e-13
    y = C.softmax_forward(x, dim, log)
    assert y.dtype == x.dtype and y.shape == x.shape
    assert_close(y, np_softmax(x, dim, log), 4 * tol, 4 * tol)
    gx = C.softmax_backward(g, y, dim, log)
    assert_close(gx, np_softmax_backward(g, y, dim, log), 10 * tol, 10 * tol)


ISA_SCRIPT = """
import numpy as np, nnforge._C as C
assert C.selected_isa() == {isa!r}, C.selected_isa()
rng = np.random.default_rng(0)
for dt, tol in ((np.float32, 2e-6), (np.float64, 1e-13)):
    for shape, dim in (((9, 65), 1), ((4, 300), 1), ((3, 17, 33), 1), ((2, 5, 600), 1)):
        x = (rng.standard_normal(shape) * 5).astype(dt)
        g = rng.standard_normal(shape).astype(dt)
        x64 = x.astype(np.float64)
        z = x64 - x64.max(dim, keepdims=True)
        lp = z - np.log(np.exp(z).sum(dim, keepdims=True))
        p = np.exp(lp)
        y = C.cpu.softmax_forward(x, dim, False)
        assert np.abs(y - p).max() < tol, (dt, shape)
        ly = C.cpu.softmax_forward(x, dim, True)
        assert np.abs(ly - lp).max() < 4 * tol, (dt, shape)
        gx = C.cpu.softmax_backward(g, y, dim, False)
        assert np.abs(gx - p * (g - (g * p).sum(dim, keepdims=True))).max() < 10 * tol
        gx = C.cpu.softmax_backward(g, ly, dim, True)
        assert np.abs(gx - (g - p * g.sum(dim, keepdims=True))).max() < 20 * tol
print("ok")
"""


@pytest.mark.parametrize("isa", ["scalar", "avx2", "avx512"])
def test_kernels_every_isa(isa):
    """Each ISA build against float64 numpy, in a fresh process with NNFORGE_ISA set."""
    run_isa_script(ISA_SCRIPT.format(isa=isa), isa)


@pytest.mark.parametrize("shape,dim", [((2048, 65), 1), ((8, 64, 300), 1)], ids=str)
def test_thread_counts_give_identical_results(shape, dim):
    rng = np.random.default_rng(5)
    x = rng.standard_normal(shape).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    results = []
    old = nf.get_num_threads()
    try:
        for threads in (1, 2, 3):
            nf.set_num_threads(threads)
            out = []
            for log in (False, True):
                y = C.softmax_forward(x, dim, log)
                out += [y, C.softmax_backward(g, y, dim, log)]
            results.append(out)
    finally:
        nf.set_num_threads(old)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- the backend and F
def test_backend_routes_float_arrays_to_the_kernel():
    x = np.random.default_rng(0).standard_normal((3, 4, 5)).astype(np.float32)
    for dim in (0, 1, 2, -1):
        np.testing.assert_array_equal(backend.softmax(x, dim), C.softmax_forward(x, dim, False))
        np.testing.assert_array_equal(backend.log_softmax(x, dim), C.softmax_forward(x, dim, True))
    # a non-contiguous view: one copy, same values
    xt = x.transpose(2, 0, 1)
    np.testing.assert_array_equal(backend.softmax(xt, 1),
                                  C.softmax_forward(np.ascontiguousarray(xt), 1, False))
    # float16 computes in float32 and rounds back
    h = backend.softmax(x.astype(np.float16), -1)
    assert h.dtype == np.float16
    assert_close(h, np_softmax(x.astype(np.float16), -1), 1e-3, 1e-2)
    # a broadcast (stride-0) upstream gradient, as from sum().backward()
    y = backend.softmax(x, 1)
    g = np.broadcast_to(np.float32(1.0), x.shape)
    assert_close(backend.softmax_backward(g, y, 1), np.zeros(x.shape), 1e-6, 0)


@requires_torch
@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("shape,dim", [((4, 7), -1), ((4, 7), 0), ((2, 3, 5), 1),
                                       ((3, 2, 2, 4), 1), ((6,), 0), ((2, 3, 4), -3)], ids=str)
def test_functional_vs_torch(shape, dim, log):
    ours = F.log_softmax if log else F.softmax
    ref = torch.log_softmax if log else torch.softmax
    check_op(lambda x: ours(x, dim), lambda x: ref(x, dim),
             lambda x: np_softmax(x, dim, log), shapes=[shape], low=-5, high=5)


@requires_torch
@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
def test_special_rows_match_torch(log):
    inf, nan = float("inf"), float("nan")
    rows = [[-inf, -inf, -inf], [1.0, -inf, 2.0], [inf, 1.0, 2.0], [1e4, 1e4 - 1, 0.0],
            [nan, 1.0, 2.0], [-1e30, 0.0, 1e30], [3.0, 3.0, 3.0]]
    ours = F.log_softmax if log else F.softmax
    ref = torch.log_softmax if log else torch.softmax
    for dtype in (nf.float32, nf.float64):
        x = nf.tensor(rows, dtype=dtype, requires_grad=True)
        t = torch.tensor(rows, dtype=getattr(torch, dtype.name), requires_grad=True)
        y, yt = ours(x, -1), ref(t, -1)
        assert_close(y, yt.detach(), 1e-6, 1e-6)
        # the same rows along dim 0 (the tile path)
        assert_close(ours(nf.tensor(rows, dtype=dtype).T, 0), ref(t.detach().T, 0), 1e-6, 1e-6)
        g = np.random.default_rng(0).standard_normal((len(rows), 3))
        y.backward(nf.tensor(g, dtype=dtype))
        yt.backward(torch.tensor(g, dtype=t.dtype))
        assert_close(x.grad, t.grad, 1e-5, 1e-5)


def test_large_inputs_are_stable():
    x = np.array([[1000.0, 1001.0, 1002.0], [-1000.0, -1001.0, -1002.0]], np.float32)
    for log in (False, True):
        assert_close(C.softmax_forward(x, 1, log), np_softmax(x, 1, log), 1e-5, 1e-5)


# ---------------------------------------------------------------- errors
def test_binding_errors():
    x = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"softmax_forward: dim 2 is out of range for x of "
                                         r"shape \(3, 4\)"):
        C.softmax_forward(x, 2)
    with pytest.raises(ValueError, match=r"dim -3 is out of range"):
        C.softmax_forward(x, -3)
    with pytest.raises(ValueError, match=r"x must have at least 1 dim"):
        C.softmax_forward(np.ones((), np.float32), 0)
    with pytest.raises(ValueError, match="x must be C-contiguous"):
        C.softmax_forward(x.T, 0)
    with pytest.raises(ValueError, match="x has dtype int32, expected float32 or float64"):
        C.softmax_forward(np.zeros((3, 4), np.int32), 0)
    with pytest.raises(TypeError, match="x must be a numpy array"):
        C.softmax_forward([1.0, 2.0], 0)
    with pytest.raises(ValueError, match=r"softmax_backward: gy of shape \(3, 5\) and dtype "
                                         r"float32 does not match y of shape \(3, 4\)"):
        C.softmax_backward(np.zeros((3, 5), np.float32), x, 1)
    with pytest.raises(ValueError, match="gy of shape .* dtype float64 does not match"):
        C.softmax_backward(np.zeros((3, 4)), x, 1, True)
