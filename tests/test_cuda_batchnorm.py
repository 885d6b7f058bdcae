"""CUDA batch normalization (csrc/cuda/batchnorm.cu through backend/cuda_batchnorm.py)
against its CPU twin (backend/cpu_batchnorm.py): training and evaluation
forward (y, mean, invstd, var), backward in both modes with every `needs`
combination, the running-statistics update in place (float32/float64/float16
buffers, strided), batch_norm_invstd, over the CPU tests' shapes
(tests/test_batchnorm.py) plus shapes on both sides of the planar / column
split (S >= 32 / S < 32) with several chunks per channel, float32 and float64
(float16 / bfloat16 through float32), a large-mean small-spread input,
determinism, argument errors; and the Tensor level: nn.BatchNorm1d/2d on
device="cuda" vs cpu over training steps and in eval, forward, backward and
running buffers. Marked `cuda`; skipped without a GPU (the CPU-only test at
the end runs everywhere)."""
import numpy as np
import pytest

import nnforge as nf
from cuda_support import assert_twin, cpu, dev, gpu, needs_gpu
from nnforge.nn import functional as F

DTYPES = ["float32", "float64"]
# float32: the CPU sums in double, the GPU in float32 (Welford / pairwise), so the
# statistics differ by a few float32 ulps of the mean and spread.
TOL = {"float32": (2e-5, 2e-5), "float64": (1e-11, 1e-12)}

SHAPES = [(5, 3), (4, 3, 6), (2, 3, 4, 5), (1, 2, 3, 3), (3, 4, 1, 1),  # the CPU tests'
          (64, 7), (4096, 3), (300, 2, 31),        # column layout (S < 32), several row chunks
          (3, 5, 40), (2, 3, 33, 35), (2, 2, 5000), (1, 1, 70000)]  # planar, several chunks


def _rand(shape, dtype, seed=0, loc=0.5, scale=2.0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * scale + loc).astype(dtype)


def _twin(got, want, dtype, scale=1.0):
    r, a = TOL[dtype]
    assert_twin(got, want, rtol=r * scale, atol=a * scale)


def _host(a):
    return None if a is None else gpu().to_host(a)


# ---------------------------------------------------------------- forward
@needs_gpu
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_train_forward_and_backward(shape, dtype, affine):
    c = shape[1]
    x = _rand(shape, dtype)
    w = _rand((c,), dtype, seed=1, loc=1.0, scale=0.3) if affine else None
    b = _rand((c,), dtype, seed=2) if affine else None
    g = _rand(shape, dtype, seed=3, loc=0.0, scale=1.0)
    want = cpu.batch_norm_train(x, w, b, 1e-5)
    dw = None if w is None else dev(w)
    got = gpu().batch_norm_train(dev(x), dw, None if b is None else dev(b), 1e-5)
    for gv, wv in zip(got, want):
        _twin(gv, wv, dtype, scale=10.0)
    _, mean, invstd, _ = want
    m = int(np.prod(shape)) // c
    for needs in [(True, affine, affine), (True, False, False), (False, affine, True)]:
        want_g = cpu.batch_norm_backward(g, x, w, mean, invstd, True, needs)
        got_g = gpu().batch_norm_backward(dev(g), dev(x), dw, dev(mean), dev(invstd), True, needs)
        for gv, wv in zip(got_g, want_g):
            assert (gv is None) == (wv is None)
            if wv is not None:  # sums over m values: allow their rounding
                _twin(gv, wv, dtype, scale=10.0 * max(1.0, np.sqrt(m) / 8))


@needs_gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_eval_forward_and_backward(shape, dtype):
    c = shape[1]
    x = _rand(shape, dtype)
    w, b = _rand((c,), dtype, seed=1), _rand((c,), dtype, seed=2)
    rm = _rand((c,), dtype, seed=3)
    rv = np.random.default_rng(4).uniform(0.5, 2.0, c).astype(dtype)
    want = cpu.batch_norm_eval(x, w, b, rm, rv, 1e-3)
    _twin(gpu().batch_norm_eval(dev(x), dev(w), dev(b), dev(rm), dev(rv), 1e-3), want, dtype)
    _twin(gpu().batch_norm_eval(dev(x), None, None, dev(rm), dev(rv), 1e-3),
          cpu.batch_norm_eval(x, None, None, rm, rv, 1e-3), dtype)
    invstd_c = cpu.batch_norm_invstd(rv, 1e-3)
    invstd = gpu().batch_norm_invstd(dev(rv), 1e-3)
    _twin(invstd, invstd_c, dtype)
    g = _rand(shape, dtype, seed=5, loc=0.0, scale=1.0)
    m = int(np.prod(shape)) // c
    for needs in [(True, True, True), (True, False, False), (False, True, False)]:
        want_g = cpu.batch_norm_backward(g, x, w, rm, invstd_c, False, needs)
        got_g = gpu().batch_norm_backward(dev(g), dev(x), dev(w), dev(rm), dev(invstd_c), False,
                                          needs)
        for gv, wv in zip(got_g, want_g):
            assert (gv is None) == (wv is None)
            if wv is not None:
                _twin(gv, wv, dtype, scale=10.0 * max(1.0, np.sqrt(m) / 8))


@needs_gpu
def test_broadcast_gradient_and_non_contiguous_input():
    x = _rand((4, 3, 5, 6), "float32")
    xt = np.ascontiguousarray(x.swapaxes(-1, -2))
    xd = gpu().swap_last(dev(xt))  # same values as x, non-contiguous
    want = cpu.batch_norm_train(x, None, None, 1e-5)
    got = gpu().batch_norm_train(xd, None, None, 1e-5)
    for gv, wv in zip(got, want):
        _twin(gv, wv, "float32", scale=10.0)
    _, mean, invstd, _ = want
    g = np.float32(1.5)  # a broadcast upstream gradient (sum().backward())
    want_g = cpu.batch_norm_backward(np.broadcast_to(g, x.shape), x, None, mean, invstd, True,
                                     (True, True, True))
    got_g = gpu().batch_norm_backward(dev(np.asarray(g)), xd, None, dev(mean), dev(invstd), True,
                                      (True, True, True))
    for gv, wv in zip(got_g, want_g):
        _twin(gv, wv, "float32", scale=100.0)


@needs_gpu
def test_numerically_stable_variance():
    # A large mean and a small spread: E[x^2] - E[x]^2 in float32 would lose every digit.
    rng = np.random.default_rng(3)
    x = (1e4 + rng.standard_normal((16, 2, 32, 32)) * 1e-2).astype(np.float32)
    y, mean, invstd, var = gpu().batch_norm_train(dev(x), None, None, 0.0)
    x64 = x.astype(np.float64)
    ref_var = x64.var(axis=(0, 2, 3))
    np.testing.assert_allclose(_host(var), ref_var, rtol=1e-3)
    np.testing.assert_allclose(_host(mean), x64.mean(axis=(0, 2, 3)), rtol=1e-7)
    yh = _host(y)
    assert abs(yh.std() - 1.0) < 1e-2


@needs_gpu
def test_statistics_and_grads_deterministic():
    for shape in [(8, 16, 20, 20), (4096, 96), (64, 3, 7)]:
        x = _rand(shape, "float32")
        g = _rand(shape, "float32", seed=1)
        runs = []
        for _ in range(3):
            y, mean, invstd, var = gpu().batch_norm_train(dev(x), None, None, 1e-5)
            grads = gpu().batch_norm_backward(dev(g), dev(x), None, mean, invstd, True,
                                              (True, True, True))
            runs.append([_host(a) for a in (y, mean, invstd, var) + tuple(grads)])
        for other in runs[1:]:
            for a, b in zip(runs[0], other):
                np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- running statistics
@needs_gpu
@pytest.mark.parametrize("buf_dtype", ["float32", "float64", "float16"])
@pytest.mark.parametrize("momentum", [0.1, 0.5])
def test_update_stats_in_place(buf_dtype, momentum):
    c = 6
    x = _rand((5, c, 3), "float32")
    _, mean, _, var = cpu.batch_norm_train(x, None, None, 1e-5)
    rm_c = _rand((c,), buf_dtype, seed=1)
    rv_c = np.random.default_rng(2).uniform(0.5, 2.0, c).astype(buf_dtype)
    rm_g, rv_g = dev(rm_c), dev(rv_c)
    cpu.batch_norm_update_stats_(rm_c, rv_c, mean, var, momentum, 15)
    assert gpu().batch_norm_update_stats_(rm_g, rv_g, dev(mean), dev(var), momentum, 15) is None
    if buf_dtype == "float16":
        # numpy rounds the decay 1 - momentum to float16 (NEP 50: 0.9 -> 0.8999) and each
        # product / sum once to float16, as the kernel does: bit for bit (momentum 0.1
        # caught a kernel that multiplied by the unrounded decay in float32).
        np.testing.assert_array_equal(_host(rm_g), rm_c)
        np.testing.assert_array_equal(_host(rv_g), rv_c)
    else:
        np.testing.assert_allclose(_host(rm_g), rm_c, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(_host(rv_g), rv_c, rtol=1e-6, atol=1e-6)
    assert _host(rm_g).dtype == np.dtype(buf_dtype)
    # only one buffer, and a strided one (every other element of a wider array)
    wide = np.zeros(2 * c, np.float32)
    wide_d = dev(wide)
    view = gpu().getitem(wide_d, (slice(None, None, 2),))
    gpu().batch_norm_update_stats_(None, view, dev(mean), dev(var), momentum, 15)
    want = np.zeros(c, np.float32)
    cpu.batch_norm_update_stats_(None, want, mean, var, momentum, 15)
    host = _host(wide_d)
    np.testing.assert_allclose(host[::2], want, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(host[1::2], 0.0)


# ---------------------------------------------------------------- reduced floats
@needs_gpu
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_reduced_floats_compute_in_float32(dtype):
    x32 = _rand((6, 4, 9), "float32")
    xd = nf._C.cuda.astype(dev(x32), dtype)
    wd = nf._C.cuda.astype(dev(np.linspace(0.5, 1.5, 4, dtype=np.float32)), dtype)
    xr = _host(nf._C.cuda.astype(xd, "float32"))
    wr = _host(nf._C.cuda.astype(wd, "float32"))
    y, mean, invstd, var = gpu().batch_norm_train(xd, wd, None, 1e-5)
    assert y.dtype_name == dtype and mean.dtype_name == "float32"
    y_c, m_c, i_c, v_c = cpu.batch_norm_train(xr, wr, None, 1e-5)
    np.testing.assert_allclose(_host(nf._C.cuda.astype(y, "float32")), y_c, rtol=2e-2,
                               atol=2e-2)  # one rounding to 8 (bf16) / 11 bits
    np.testing.assert_allclose(_host(mean), m_c, rtol=1e-5, atol=1e-6)
    gd = nf._C.cuda.astype(dev(_rand((6, 4, 9), "float32", seed=3)), dtype)
    gx, gw, gb = gpu().batch_norm_backward(gd, xd, wd, mean, invstd, True, (True, True, True))
    assert gx.dtype_name == dtype and gw.dtype_name == dtype and gb.dtype_name == dtype
    gr = _host(nf._C.cuda.astype(gd, "float32"))
    want = cpu.batch_norm_backward(gr, xr, wr, m_c, i_c, True, (True, True, True))
    for got, w in zip((gx, gw, gb), want):
        np.testing.assert_allclose(_host(nf._C.cuda.astype(got, "float32")), w, rtol=3e-2,
                                   atol=3e-2)


# ---------------------------------------------------------------- errors
@needs_gpu
def test_batchnorm_argument_errors():
    C = nf._C.cuda
    x = dev(np.zeros((4, 3, 5), np.float32))
    with pytest.raises(ValueError, match="3-D"):
        C.batch_norm_forward_train(dev(np.zeros((3, 5), np.float32)), None, None, 1e-5)
    with pytest.raises(TypeError, match="float32 or float64"):
        C.batch_norm_forward_train(dev(np.zeros((4, 3, 5), np.int64)), None, None, 1e-5)
    with pytest.raises(ValueError, match="contiguous"):
        C.batch_norm_forward_train(gpu().swap_last(dev(np.zeros((4, 5, 3), np.float32))), None,
                                   None, 1e-5)
    with pytest.raises(ValueError, match="weight"):
        C.batch_norm_forward_train(x, dev(np.ones(4, np.float32)), None, 1e-5)
    with pytest.raises(ValueError, match="weight"):
        C.batch_norm_forward_train(x, dev(np.ones(3, np.float64)), None, 1e-5)
    for bad_eps in (-1e-5, float("nan")):
        with pytest.raises(ValueError, match="eps"):
            C.batch_norm_forward_train(x, None, None, bad_eps)
        with pytest.raises(ValueError, match="eps"):
            C.batch_norm_forward_eval(x, None, None, dev(np.zeros(3, np.float32)),
                                      dev(np.ones(3, np.float32)), bad_eps)
    with pytest.raises(ValueError, match="no values per channel"):
        C.batch_norm_forward_train(dev(np.zeros((0, 3, 5), np.float32)), None, None, 1e-5)
    with pytest.raises(ValueError, match="does not match"):
        C.batch_norm_backward(dev(np.zeros((4, 3, 6), np.float32)), x, None,
                              dev(np.zeros(3, np.float32)), dev(np.ones(3, np.float32)), True,
                              True, False, False)
    with pytest.raises(ValueError, match="stat"):
        C.batch_norm_update_running_(dev(np.zeros(3, np.float32)), dev(np.zeros(4, np.float32)),
                                     0.1, 1.0)
    with pytest.raises(TypeError, match="batch_norm_train"):
        gpu().batch_norm_train(dev(np.zeros((4, 3), np.int64)), None, None, 1e-5)


# ---------------------------------------------------------------- Tensor level
def _pair(cls, c, dtype, **kw):
    """The same module (same weights) on the CPU and on the GPU."""
    m_cpu = getattr(nf.nn, cls)(c, dtype=dtype, **kw)
    if m_cpu.affine:
        rng = np.random.default_rng(9)
        with nf.no_grad():
            m_cpu.weight.copy_(nf.tensor(rng.uniform(0.5, 1.5, c), dtype=dtype))
            if m_cpu.bias is not None:
                m_cpu.bias.copy_(nf.tensor(rng.uniform(-0.5, 0.5, c), dtype=dtype))
    m_gpu = getattr(nf.nn, cls)(c, dtype=dtype, **kw)
    m_gpu.load_state_dict({k: np.array(v) for k, v in m_cpu.state_dict().items()})
    m_gpu.to("cuda")
    return m_cpu, m_gpu


@needs_gpu
@pytest.mark.parametrize("dtype", [nf.float32, nf.float64])
@pytest.mark.parametrize("cls,shape", [("BatchNorm1d", (8, 4)), ("BatchNorm1d", (4, 4, 7)),
                                       ("BatchNorm2d", (3, 4, 5, 6)),
                                       ("BatchNorm2d", (2, 4, 9, 10))], ids=str)
@pytest.mark.parametrize("kw", [{}, {"momentum": None}, {"affine": False},
                                {"track_running_stats": False}, {"momentum": 0.3, "eps": 1e-3}],
                         ids=str)
def test_modules_cuda_vs_cpu(cls, shape, kw, dtype):
    m_cpu, m_gpu = _pair(cls, 4, dtype, **kw)
    rtol, atol = (1e-4, 1e-4) if dtype == nf.float32 else (1e-10, 1e-11)
    rng = np.random.default_rng(4)
    for step in range(3):
        x = rng.standard_normal(shape) * 2 + 0.5
        g = rng.standard_normal(shape)
        res = []
        for device, m in (("cpu", m_cpu), ("cuda", m_gpu)):
            xt = nf.tensor(x, dtype=dtype, device=device, requires_grad=True)
            y = m(xt)
            y.backward(nf.tensor(g, dtype=dtype, device=device))
            grads = [p.grad.cpu().numpy() for p in m.parameters()]
            res.append((y.detach().cpu().numpy(), xt.grad.cpu().numpy(), grads))
            m.zero_grad()
        (y_c, gx_c, p_c), (y_g, gx_g, p_g) = res
        np.testing.assert_allclose(y_g, y_c, rtol=rtol, atol=atol, err_msg=f"y step {step}")
        np.testing.assert_allclose(gx_g, gx_c, rtol=rtol, atol=atol, err_msg="input grad")
        for a, b in zip(p_g, p_c):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg="param grad")
    for (name, b_c), (_, b_g) in zip(m_cpu.named_buffers(), m_gpu.named_buffers()):
        np.testing.assert_allclose(b_g.cpu().numpy(), b_c.numpy(), rtol=rtol, atol=atol,
                                   err_msg=name)
    m_cpu.eval()
    m_gpu.eval()
    x = rng.standard_normal(shape)
    res = []
    for device, m in (("cpu", m_cpu), ("cuda", m_gpu)):
        xt = nf.tensor(x, dtype=dtype, device=device, requires_grad=True)
        y = m(xt)
        y.sum().backward()
        res.append((y.detach().cpu().numpy(), xt.grad.cpu().numpy()))
    np.testing.assert_allclose(res[1][0], res[0][0], rtol=rtol, atol=atol, err_msg="eval")
    np.testing.assert_allclose(res[1][1], res[0][1], rtol=rtol, atol=atol, err_msg="eval grad")


@needs_gpu
def test_functional_batch_norm_cuda_vs_cpu():
    x = _rand((6, 3, 4, 4), "float64")
    outs = []
    for device in ("cpu", "cuda"):
        rm = nf.zeros(3, dtype=nf.float64, device=device)
        rv = nf.ones(3, dtype=nf.float64, device=device)
        xt = nf.tensor(x, device=device, requires_grad=True)
        y = F.batch_norm(xt, rm, rv, training=True, momentum=0.2)
        (y * y).sum().backward()
        outs.append([y.detach().cpu().numpy(), xt.grad.cpu().numpy(), rm.cpu().numpy(),
                     rv.cpu().numpy()])
    for a, b in zip(outs[1], outs[0]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-11)


# ---------------------------------------------------------------- everywhere
def test_batchnorm_names_implemented_in_cuda_backend():
    """Runs without a GPU: the CUDA backend defines these names itself (none of them
    falls back to the NotImplementedError stand-in)."""
    from nnforge.backend import cuda as cuda_be
    for name in ("batch_norm_train", "batch_norm_eval", "batch_norm_invstd",
                 "batch_norm_backward", "batch_norm_update_stats_"):
        assert name not in cuda_be.NOT_IMPLEMENTED
        assert getattr(cuda_be, name).__module__ == "nnforge.backend.cuda_batchnorm"
