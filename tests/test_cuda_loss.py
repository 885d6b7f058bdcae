"""CUDA fused cross entropy and logsumexp (csrc/cuda/cross_entropy.cu through
backend/cuda_loss.py) against their CPU twins (backend/cpu.py): the CPU
kernel tests' shape grid ((N, C) on both sides of the warp/block split, a
single class, no samples, (N, C, D) with D across many positions, one large
case), class weights, ignore_index, label smoothing, float32/float64 (and
float16/bfloat16 through float32), non-contiguous logits, special values,
out-of-range targets (IndexError from the device-side flag), and Tensor-level
F.cross_entropy / logsumexp on device="cuda" vs cpu, forward and backward.
Marked `cuda`; skipped without a GPU."""
import numpy as np
import pytest

import nnforge as nf
import nnforge.nn.functional as F
from cuda_support import assert_twin, cpu, dev, dev_view, gpu, needs_gpu, views

SHAPES = [(5, 7), (1, 1), (3, 1), (0, 4), (2, 3, 1), (2, 4, 300), (3, 5, 2, 7), (70, 40, 50),
          (4, 1500), (3, 2100, 2)]
TOL = {"float32": (2e-5, 2e-6), "float64": (1e-12, 1e-13)}
OPTIONS = [(False, 0.0), (True, 0.0), (False, 0.2), (True, 0.3)]


def _case(shape, dtype, weighted, seed=0, ignore=-1):
    rng = np.random.default_rng(seed)
    z = (rng.standard_normal(shape) * 4).astype(dtype)
    t = rng.integers(0, shape[1], (shape[0],) + shape[2:]) if shape[1] else \
        np.full((shape[0],) + shape[2:], ignore)
    t.reshape(-1)[::5] = ignore
    w = rng.uniform(0.5, 2.0, shape[1]).astype(dtype) if weighted else None
    return z, t, w


def _twin(got, want, dtype, scale=1.0):
    r, a = TOL[str(np.dtype(dtype))]
    assert_twin(got, want, rtol=r * scale, atol=a * scale)


def _dw(w):
    return None if w is None else dev(w)


@needs_gpu
@pytest.mark.parametrize("weighted,smoothing", OPTIONS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_cross_entropy_forward_backward(shape, dtype, weighted, smoothing):
    z, t, w = _case(shape, dtype, weighted)
    want = cpu.cross_entropy_forward(z, t, w, -1, smoothing)
    got = gpu().cross_entropy_forward(dev(z), dev(t), _dw(w), -1, smoothing)
    for gv, wv in zip(got, want):
        _twin(gv, wv, dtype, scale=10.0)
    loss_c, lse_c, wy_c = want
    g = np.random.default_rng(1).uniform(0.5, 1.5, t.shape).astype(dtype)
    gz_c = cpu.cross_entropy_backward(z, t, w, lse_c, wy_c, g, -1, smoothing)
    gz = gpu().cross_entropy_backward(dev(z), dev(t), _dw(w), dev(lse_c), dev(wy_c), dev(g), -1,
                                      smoothing)
    _twin(gz, gz_c, dtype, scale=10.0)
    # a 0-d upstream gradient broadcasts over the positions ('sum' / 'mean')
    g0 = np.asarray(0.25, dtype)
    _twin(gpu().cross_entropy_backward(dev(z), dev(t), _dw(w), dev(lse_c), dev(wy_c), dev(g0), -1,
                                       smoothing),
          cpu.cross_entropy_backward(z, t, w, lse_c, wy_c, g0, -1, smoothing), dtype, scale=10.0)


@needs_gpu
def test_cross_entropy_ignore_index_default_and_all_ignored():
    z, t, w = _case((6, 9, 5), "float32", True, ignore=-100)
    t[...] = -100
    got = gpu().cross_entropy_forward(dev(z), dev(t), dev(w), -100, 0.1)
    assert not gpu().to_host(got[0]).any() and not gpu().to_host(got[2]).any()
    g = np.ones(t.shape, np.float32)
    gz = gpu().cross_entropy_backward(dev(z), dev(t), dev(w), got[1], got[2], dev(g), -100, 0.1)
    np.testing.assert_array_equal(gpu().to_host(gz), np.zeros(z.shape, np.float32))


@needs_gpu
def test_cross_entropy_views_reduced_floats_and_special_values():
    rng = np.random.default_rng(1)
    base = rng.standard_normal((4, 6, 10))
    t = rng.integers(0, 6, (4, 5))
    for name, v in views(base[:, :, ::2].copy()):
        want = cpu.cross_entropy_forward(v, t, None, -100, 0.0)
        got = gpu().cross_entropy_forward(dev_view(name, v), dev(t), None, -100, 0.0)
        _twin(got[0], want[0], "float64")
        gz = gpu().cross_entropy_backward(dev_view(name, v), dev(t), None, dev(want[1]),
                                          dev(want[2]), dev(np.ones(t.shape)), -100, 0.0)
        _twin(gz, cpu.cross_entropy_backward(v, t, None, want[1], want[2], np.ones(t.shape),
                                             -100, 0.0), "float64")
    z32 = base.astype(np.float32)
    t3 = rng.integers(0, 6, (4, 10))
    want = cpu.cross_entropy_forward(z32, t3, None, -100, 0.1)[0]
    for name in ("float16", "bfloat16"):
        zd = nf._C.cuda.astype(dev(z32), name)
        zr = gpu().to_host(nf._C.cuda.astype(zd, "float32"))  # the rounded logits
        loss = gpu().cross_entropy_forward(zd, dev(t3), None, -100, 0.1)[0]
        assert loss.dtype_name == name
        got = gpu().to_host(nf._C.cuda.astype(loss, "float32"))
        # the loss itself is rounded to 8 (bf16) / 11 (f16) bits
        np.testing.assert_allclose(got, cpu.cross_entropy_forward(zr, t3, None, -100, 0.1)[0],
                                   rtol=1e-2, atol=1e-2)
        assert np.abs(got - want).max() < 0.1
    # -inf logits are probability 0; nan makes its row nan; huge logits stay finite
    z = np.array([[0.0, -np.inf, 1.0], [np.nan, 0.0, 1.0], [1e4, -1e4, 0.0]], np.float32)
    tt = np.array([0, 1, 1])
    loss, lse, wy = gpu().cross_entropy_forward(dev(z), dev(tt), None, -100, 0.0)
    loss = gpu().to_host(loss)
    assert loss[0] == pytest.approx(np.log1p(np.e), rel=1e-6)
    assert np.isnan(loss[1]) and loss[2] == 2e4
    grad = gpu().to_host(gpu().cross_entropy_backward(dev(z), dev(tt), None, lse, wy,
                                                      dev(np.ones(3, np.float32)), -100, 0.0))
    assert grad[0, 1] == 0.0 and np.isnan(grad[1]).all() and np.isfinite(grad[2]).all()


@needs_gpu
@pytest.mark.parametrize("shape", [(8, 3), (2, 3, 5), (6, 2000)], ids=str)
def test_cross_entropy_bad_target_raises_index_error(shape):
    z, t, _ = _case(shape, "float32", False, ignore=-100)
    t.reshape(-1)[3] = shape[1] + 2
    t.reshape(-1)[5] = -7
    with pytest.raises(IndexError, match=rf"target {shape[1] + 2} is out of bounds for "
                                         rf"{shape[1]} classes \(valid: 0 to {shape[1] - 1}, "
                                         r"or ignore_index=-100\)"):
        gpu().cross_entropy_forward(dev(z), dev(t), None, -100, 0.0)
    bad = gpu().cross_entropy_forward
    t.reshape(-1)[3] = 0
    with pytest.raises(IndexError, match="target -7 is out of bounds"):
        bad(dev(z), dev(t), None, -100, 0.0)
    t.reshape(-1)[5] = 1
    bad(dev(z), dev(t), None, -100, 0.0)  # good again: the flag is per call


@needs_gpu
def test_cross_entropy_argument_errors():
    z = dev(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"target of shape \(3,\) does not match logits"):
        gpu().cross_entropy_forward(z, dev(np.zeros(3, np.int64)), None, -100, 0.0)
    with pytest.raises(ValueError, match=r"weight must be a C-contiguous float32 array of "
                                         r"shape \(3\)"):
        gpu().cross_entropy_forward(z, dev(np.zeros(2, np.int64)),
                                    dev(np.ones(4, np.float32)), -100, 0.0)
    with pytest.raises(TypeError, match="expected a floating-point array"):
        gpu().cross_entropy_forward(dev(np.zeros((2, 3), np.int64)),
                                    dev(np.zeros(2, np.int64)), None, -100, 0.0)
    with pytest.raises(TypeError, match="target must be int64"):
        nf._C.cuda.cross_entropy_forward(dev(np.zeros((2, 3, 1), np.float32)),
                                         dev(np.zeros((2, 1), np.int32)), None, -100, 0.0)


# ---------------------------------------------------------------- logsumexp
@needs_gpu
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("shape,axis", [((7,), 0), ((3, 5), 1), ((3, 5), 0), ((2, 3, 4), (0, 2)),
                                        ((2, 3, 4), None), ((4, 2000), -1), ((0, 3), 1),
                                        ((3, 0), 1), ((), None), ((), ())])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_logsumexp(shape, axis, keepdims, dtype):
    x = (np.random.default_rng(0).standard_normal(shape) * 3).astype(dtype)
    want = cpu.logsumexp(x, axis, keepdims=keepdims)
    _twin(gpu().logsumexp(dev(x), axis, keepdims=keepdims), np.asarray(want), dtype, scale=5.0)
    if x.ndim >= 2:
        for name, v in views(x):
            _twin(gpu().logsumexp(dev_view(name, v), axis, keepdims=keepdims),
                  np.asarray(cpu.logsumexp(v, axis, keepdims=keepdims)), dtype, scale=5.0)


@needs_gpu
def test_logsumexp_special_rows():
    x = np.array([[-np.inf, -np.inf, -np.inf], [1.0, 2.0, -np.inf], [np.inf, 1.0, 0.0],
                  [1000.0, 1000.0, -1000.0], [np.nan, 0.0, 1.0]])
    got = gpu().to_host(gpu().logsumexp(dev(x), 1))
    np.testing.assert_allclose(got, cpu.logsumexp(x, 1), rtol=1e-14, equal_nan=True)
    assert got[0] == -np.inf and got[2] == np.inf and np.isnan(got[4])
    ints = np.arange(6).reshape(2, 3)
    assert_twin(gpu().logsumexp(dev(ints), 1), cpu.logsumexp(ints, 1))


# ---------------------------------------------------------------- Tensor level
def _both(x):
    return nf.tensor(x, requires_grad=True), nf.tensor(x, device="cuda", requires_grad=True)


@needs_gpu
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("shape", [(6, 5), (3, 4, 2, 3), (8, 1200)], ids=str)
@pytest.mark.parametrize("weighted,smoothing", OPTIONS)
def test_tensor_cross_entropy_cuda_vs_cpu(shape, weighted, smoothing, reduction):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    t = rng.integers(0, shape[1], (shape[0],) + shape[2:])
    t.reshape(-1)[::4] = 2  # ignored
    w = rng.uniform(0.5, 2.0, shape[1]).astype(np.float32) if weighted else None
    outs = []
    for device, xt in zip(("cpu", "cuda"), _both(x)):
        wt = None if w is None else nf.tensor(w, device=device)
        loss = F.cross_entropy(xt, nf.tensor(t, device=device), weight=wt, ignore_index=2,
                               reduction=reduction, label_smoothing=smoothing)
        up = np.random.default_rng(2).uniform(0.5, 1.5, tuple(loss.shape)).astype(np.float32)
        loss.backward(nf.tensor(up, device=device))
        outs.append((loss.numpy(force=True), xt.grad.numpy(force=True)))
    np.testing.assert_allclose(outs[1][0], outs[0][0], rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(outs[1][1], outs[0][1], rtol=2e-5, atol=2e-6)


@needs_gpu
def test_tensor_cross_entropy_bad_target_and_module():
    x = nf.randn(3, 4, device="cuda")
    with pytest.raises(IndexError, match="cross_entropy: target 9 is out of bounds for 4"):
        F.cross_entropy(x, nf.tensor([0, 9, 1], device="cuda"))
    xc = x.cpu()
    t = nf.tensor([0, 3, 1])
    got = nf.nn.CrossEntropyLoss(label_smoothing=0.1)(x, t.to("cuda"))
    want = nf.nn.CrossEntropyLoss(label_smoothing=0.1)(xc, t)
    assert got.item() == pytest.approx(want.item(), rel=1e-5)


@needs_gpu
@pytest.mark.parametrize("dim", [1, (0, 2), -1])
def test_tensor_logsumexp_cuda_vs_cpu(dim):
    x = np.random.default_rng(4).standard_normal((3, 50, 4))
    a, b = _both(x)
    ya, yb = a.logsumexp(dim), b.logsumexp(dim)
    np.testing.assert_allclose(yb.numpy(force=True), ya.numpy(force=True), rtol=1e-12)
    ya.sum().backward()
    yb.sum().backward()
    np.testing.assert_allclose(b.grad.numpy(force=True), a.grad.numpy(), rtol=1e-12, atol=1e-14)
