"""Layer norm (csrc/cpu/layernorm.cpp, ops/normalization.py, nn/normalization.py):
the kernels against a float64 numpy reference (every ISA build, in fresh
processes), thread-count invariance, F.layer_norm / nn.LayerNorm against
PyTorch (normalized_shape of 1-3 dims, with and without affine, bias=False;
outputs and every gradient), float64 gradcheck, RMSNorm, and errors."""
import numpy as np
import pytest

import nnforge as nf
from nnforge import nn
from nnforge._C import cpu as C
from nnforge.nn import functional as F

from helpers import (assert_close, check_op, requires_torch, run_gradcheck, run_isa_script,
                     torch)


def np_layer_norm(x, k, w=None, b=None, eps=1e-5):
    """(y, mean, rstd) in float64 over the last k dims."""
    axes = tuple(range(x.ndim - k, x.ndim))
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=axes, keepdims=True)
    rstd = 1.0 / np.sqrt(x64.var(axis=axes, keepdims=True) + eps)
    y = (x64 - mean) * rstd
    if w is not None:
        y = y * w
    if b is not None:
        y = y + b
    return y, mean.reshape(-1), rstd.reshape(-1)


def np_layer_norm_backward(g, x, w, eps=1e-5):
    """(gx, gw, gb) in float64 for x of shape (R, N)."""
    g, x = g.astype(np.float64), x.astype(np.float64)
    mean = x.mean(1, keepdims=True)
    rstd = 1.0 / np.sqrt(x.var(1, keepdims=True) + eps)
    xhat = (x - mean) * rstd
    wg = g * (1.0 if w is None else w)
    gx = rstd * (wg - wg.mean(1, keepdims=True) - xhat * (wg * xhat).mean(1, keepdims=True))
    return gx, (g * xhat).sum(0), g.sum(0)


# ---------------------------------------------------------------- kernels vs numpy
KERNEL_SHAPES = [(1, 1), (3, 1), (1, 7), (5, 17), (37, 65), (64, 384), (9, 1000), (0, 8)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", KERNEL_SHAPES, ids=str)
@pytest.mark.parametrize("affine", ["both", "weight", "bias", "none"])
def test_kernels_vs_numpy(shape, dtype, affine):
    rng = np.random.default_rng(sum(shape))
    r, n = shape
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal(n).astype(dtype) if affine in ("both", "weight") else None
    b = rng.standard_normal(n).astype(dtype) if affine in ("both", "bias") else None
    tol = 2e-5 if dtype == "float32" else 1e-12
    y, mean, rstd = C.layer_norm_forward(x, w, b, 1e-5)
    ry, rmean, rrstd = np_layer_norm(x, 1, w, b)
    assert y.dtype == x.dtype and mean.shape == (r,) and rstd.shape == (r,)
    assert_close(y, ry, tol, tol)
    assert_close(mean, rmean, tol, tol)
    assert_close(rstd, rrstd, tol, tol)
    gx, gw, gb = C.layer_norm_backward(g, x, mean, rstd, w, True, True, True)
    rgx, rgw, rgb = np_layer_norm_backward(g, x, w)
    assert_close(gx, rgx, 10 * tol, 10 * tol)
    assert_close(gw, rgw, 10 * tol, 10 * tol)
    assert_close(gb, rgb, 10 * tol, 10 * tol)


def test_kernel_outputs_only_what_is_asked():
    x = np.random.default_rng(0).standard_normal((6, 5)).astype(np.float32)
    y, mean, rstd = C.layer_norm_forward(x, None, None, 1e-5)
    full = C.layer_norm_backward(x, x, mean, rstd, None, True, True, True)
    for needs in [(True, False, False), (False, True, False), (False, False, True),
                  (False, True, True), (False, False, False)]:
        out = C.layer_norm_backward(x, x, mean, rstd, None, *needs)
        for want, got, ref in zip(needs, out, full):
            if want:
                np.testing.assert_array_equal(got, ref)
            else:
                assert got is None


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_kernel_stable_for_large_offsets(dtype):
    """x = 1e4 + small noise: the two-pass variance keeps the noise (E[x^2] - E[x]^2 would not)."""
    rng = np.random.default_rng(1)
    x = (1e4 + rng.standard_normal((8, 256))).astype(dtype)
    y, _, _ = C.layer_norm_forward(x, None, None, 1e-5)
    ref, _, _ = np_layer_norm(x, 1)
    assert_close(y, ref, 2e-3 if dtype == "float32" else 1e-9, 1e-3)


ISA_SCRIPT = """
import numpy as np, nnforge._C as C
assert C.selected_isa() == {isa!r}, C.selected_isa()
rng = np.random.default_rng(0)
for dt, tol in ((np.float32, 3e-5), (np.float64, 1e-11)):
    for r, n in ((7, 1), (13, 37), (40, 384), (3, 1001)):
        x = (rng.standard_normal((r, n)) * 2 + 1).astype(dt)
        g = rng.standard_normal((r, n)).astype(dt)
        w = rng.standard_normal(n).astype(dt)
        b = rng.standard_normal(n).astype(dt)
        x64, g64 = x.astype(np.float64), g.astype(np.float64)
        mu = x64.mean(1, keepdims=True)
        rs = 1 / np.sqrt(x64.var(1, keepdims=True) + 1e-5)
        xh = (x64 - mu) * rs
        y, m, s = C.cpu.layer_norm_forward(x, w, b, 1e-5)
        assert np.abs(y - (xh * w + b)).max() < tol * 10, (dt, r, n)
        gx, gw, gb = C.cpu.layer_norm_backward(g, x, m, s, w, True, True, True)
        wg = g64 * w
        rgx = rs * (wg - wg.mean(1, keepdims=True) - xh * (wg * xh).mean(1, keepdims=True))
        assert np.abs(gx - rgx).max() < tol * 100, (dt, r, n)
        assert np.abs(gw - (g64 * xh).sum(0)).max() < tol * 100 * r, (dt, r, n)
        assert np.abs(gb - g64.sum(0)).max() < tol * 10 * r, (dt, r, n)
print("ok")
"""


@pytest.mark.parametrize("isa", ["scalar", "avx2", "avx512"])
def test_kernels_every_isa(isa):
    """Each ISA build against float64 numpy, in a fresh process with NNFORGE_ISA set."""
    run_isa_script(ISA_SCRIPT.format(isa=isa), isa)


# ---------------------------------------------------------------- threads
@pytest.mark.parametrize("shape", [(4096, 96), (300, 777), (37, 2000)], ids=str)
def test_thread_counts_give_identical_results(shape):
    rng = np.random.default_rng(5)
    x = rng.standard_normal(shape).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal(shape[1]).astype(np.float32)
    b = rng.standard_normal(shape[1]).astype(np.float32)
    results = []
    old = nf.get_num_threads()
    try:
        for threads in (1, 2, 3):
            nf.set_num_threads(threads)
            y, m, s = C.layer_norm_forward(x, w, b, 1e-5)
            results.append((y, m, s) + C.layer_norm_backward(g, x, m, s, w, True, True, True))
    finally:
        nf.set_num_threads(old)
    for other in results[1:]:
        for a, b_ in zip(results[0], other):
            np.testing.assert_array_equal(a, b_)


# ---------------------------------------------------------------- F.layer_norm vs PyTorch
def tf():
    return torch.nn.functional


# (input shape, normalized_shape)
CASES = [((4, 6), (6,)), ((2, 3, 5), (5,)), ((2, 3, 4), (3, 4)), ((2, 2, 3, 4), (2, 3, 4)),
         ((7,), (7,)), ((3, 1), (1,))]


@requires_torch
@pytest.mark.parametrize("shape,nshape", CASES, ids=str)
def test_layer_norm_affine_vs_torch(shape, nshape):
    k = len(nshape)
    check_op(lambda x, w, b: F.layer_norm(x, nshape, w, b),
             lambda x, w, b: tf().layer_norm(x, nshape, w, b),
             lambda x, w, b: np_layer_norm(x, k, w, b)[0], shapes=[shape, nshape, nshape],
             grad_atol=1e-4, grad_rtol=1e-3)


@requires_torch
@pytest.mark.parametrize("shape,nshape", CASES[:4], ids=str)
def test_layer_norm_without_affine_vs_torch(shape, nshape):
    check_op(lambda x: F.layer_norm(x, nshape, eps=1e-3),
             lambda x: tf().layer_norm(x, nshape, eps=1e-3),
             lambda x: np_layer_norm(x, len(nshape), eps=1e-3)[0], shapes=[shape],
             grad_atol=1e-4, grad_rtol=1e-3)


@requires_torch
@pytest.mark.parametrize("shape,nshape", CASES[1:3], ids=str)
def test_layer_norm_weight_only_and_bias_only_vs_torch(shape, nshape):
    check_op(lambda x, w: F.layer_norm(x, nshape, weight=w),
             lambda x, w: tf().layer_norm(x, nshape, weight=w), shapes=[shape, nshape],
             grad_atol=1e-4, grad_rtol=1e-3)
    check_op(lambda x, b: F.layer_norm(x, nshape, bias=b),
             lambda x, b: tf().layer_norm(x, nshape, bias=b), shapes=[shape, nshape],
             grad_atol=1e-4, grad_rtol=1e-3)


def test_layer_norm_gradcheck_float64():
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal(s) for s in ((3, 2, 5), (2, 5), (2, 5))]
    run_gradcheck(lambda x, w, b: F.layer_norm(x, (2, 5), w, b), arrays)
    run_gradcheck(lambda x: F.layer_norm(x, 5, eps=0.1), arrays[:1])


def test_layer_norm_float16_computes_in_float32():
    x = np.random.default_rng(2).standard_normal((4, 8)).astype(np.float16)
    y = F.layer_norm(nf.from_numpy(x), (8,))
    assert y.dtype == nf.float16
    assert_close(y, np_layer_norm(x.astype(np.float32), 1)[0], 5e-3, 5e-3)


# ---------------------------------------------------------------- nn.LayerNorm vs PyTorch
@requires_torch
@pytest.mark.parametrize("kwargs", [{}, {"elementwise_affine": False}, {"bias": False},
                                    {"eps": 1e-2}], ids=str)
@pytest.mark.parametrize("shape,nshape", [((3, 5, 8), 8), ((2, 3, 4, 5), (4, 5)),
                                          ((2, 3, 4, 5), [3, 4, 5])], ids=str)
def test_module_vs_torch(shape, nshape, kwargs):
    ours = nn.LayerNorm(nshape, **kwargs)
    ref = torch.nn.LayerNorm(nshape, **kwargs)
    assert repr(ours) == repr(ref)
    assert list(ours.state_dict()) == list(ref.state_dict())
    rng = np.random.default_rng(4)
    with torch.no_grad():  # non-trivial affine parameters, copied over
        for p in ref.parameters():
            p.copy_(torch.from_numpy(rng.standard_normal(tuple(p.shape)).astype(np.float32)))
    ours.load_state_dict({k: nf.from_numpy(v.numpy().copy()) for k, v in ref.state_dict().items()})
    x = rng.standard_normal(shape).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    xo, xr = nf.from_numpy(x).requires_grad_(), torch.from_numpy(x).requires_grad_()
    yo, yr = ours(xo), ref(xr)
    assert_close(yo, yr.detach(), 1e-5, 1e-4)
    yo.backward(nf.from_numpy(g))
    yr.backward(torch.from_numpy(g))
    assert_close(xo.grad, xr.grad, 1e-4, 1e-3)
    for (name, p), (_, q) in zip(ours.named_parameters(), ref.named_parameters()):
        assert_close(p.grad, q.grad, 1e-4, 1e-3, msg=name)


def test_module_reset_parameters_and_dtype():
    ln = nn.LayerNorm((2, 3), dtype=nf.float64)
    assert ln.weight.dtype == nf.float64 and tuple(ln.weight.shape) == (2, 3)
    with nf.no_grad():
        ln.weight.fill_(3.0)
        ln.bias.fill_(1.0)
    ln.reset_parameters()
    np.testing.assert_array_equal(ln.weight.detach().numpy(), np.ones((2, 3)))
    np.testing.assert_array_equal(ln.bias.detach().numpy(), np.zeros((2, 3)))
    assert ln.normalized_shape == (2, 3)
    assert nn.LayerNorm(4, bias=False).bias is None


# ---------------------------------------------------------------- RMSNorm
@requires_torch
@pytest.mark.parametrize("eps", [None, 1e-3])
def test_rms_norm_vs_torch(eps):
    check_op(lambda x, w: F.rms_norm(x, (3, 4), w, eps),
             lambda x, w: tf().rms_norm(x, (3, 4), w, eps), shapes=[(2, 3, 4), (3, 4)])
    ours, ref = nn.RMSNorm([4], eps=eps), torch.nn.RMSNorm([4], eps=eps)
    assert repr(ours) == repr(ref)
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    assert_close(ours(nf.from_numpy(x)), ref(torch.from_numpy(x)).detach(), 1e-5, 1e-4)


# ---------------------------------------------------------------- errors
def test_errors():
    x = nf.randn(2, 3, 4)
    with pytest.raises(ValueError, match=r"layer_norm: given normalized_shape=\[3\].*\(2, 3, 4\)"):
        F.layer_norm(x, (3,))
    with pytest.raises(ValueError, match="layer_norm: normalized_shape"):
        F.layer_norm(x, ())
    with pytest.raises(ValueError, match=r"weight of the normalized shape \(4,\).*\(3,\)"):
        F.layer_norm(x, 4, nf.ones(3))
    with pytest.raises(TypeError, match="layer_norm: bias has dtype"):
        F.layer_norm(x, 4, None, nf.zeros(4, dtype=nf.float64))
    with pytest.raises(TypeError, match="floating-point"):
        F.layer_norm(nf.tensor([[1, 2]]), 2)
    with pytest.raises(TypeError, match="must be a Tensor"):
        F.layer_norm(np.zeros((2, 2)), 2)
    with pytest.raises(TypeError, match="normalized_shape"):
        nn.LayerNorm(4.5)


def test_binding_errors():
    x = np.zeros((3, 4), np.float32)
    m = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match=r"layer_norm_forward: x must be 2-D.*\(3, 4, 1\)"):
        C.layer_norm_forward(x.reshape(3, 4, 1), None, None, 1e-5)
    with pytest.raises(ValueError, match="x must be C-contiguous"):
        C.layer_norm_forward(x.T, None, None, 1e-5)
    with pytest.raises(ValueError, match="x has dtype int64"):
        C.layer_norm_forward(np.zeros((3, 4), np.int64), None, None, 1e-5)
    with pytest.raises(ValueError, match=r"weight has shape \(3,\), expected \(4,\)"):
        C.layer_norm_forward(x, np.ones(3, np.float32), None, 1e-5)
    with pytest.raises(ValueError, match="bias has dtype float64, expected float32"):
        C.layer_norm_forward(x, None, np.ones(4), 1e-5)
    with pytest.raises(ValueError, match="eps must be >= 0"):
        C.layer_norm_forward(x, None, None, -1.0)
    with pytest.raises(TypeError, match="x must be a numpy array, got list"):
        C.layer_norm_forward([[1.0]], None, None, 1e-5)
    with pytest.raises(ValueError, match=r"layer_norm_backward: gy of shape \(3, 5\)"):
        C.layer_norm_backward(np.zeros((3, 5), np.float32), x, m, m, None, True, True, True)
    with pytest.raises(ValueError, match=r"rstd has shape \(4,\), expected \(3,\)"):
        C.layer_norm_backward(x, x, m, np.zeros(4, np.float32), None, True, True, True)
    with pytest.raises(ValueError, match="mean must not be None"):
        C.layer_norm_backward(x, x, None, m, None, True, True, True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 7, 65, 384, 1000, 4099])
def test_forward_rows_in_pairs_equal_rows_alone(dtype, n):
    """The forward computes two rows' statistics in one loop; each row must get the
    same bits as when it is computed alone (else results would depend on how the
    rows split over threads)."""
    rng = np.random.default_rng(n)
    x = (rng.standard_normal((9, n)) * 3 + 5).astype(dtype)
    w, b = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    y, mean, rstd = C.layer_norm_forward(x, w, b, 1e-5)
    for r in range(9):
        y1, m1, s1 = C.layer_norm_forward(x[r:r + 1].copy(), w, b, 1e-5)
        assert np.array_equal(y[r], y1[0]) and mean[r] == m1[0] and rstd[r] == s1[0]
