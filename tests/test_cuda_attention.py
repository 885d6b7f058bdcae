"""CUDA fused attention (csrc/cuda/attention*.cu through backend/cuda_attention.py)
against its CPU twin (backend/cpu_attention.py, run in float64 on the same
rounded inputs): every mask mode (none, causal with L != S, bool key padding,
bool full, additive (L, S) and key padding with -inf), fully masked rows
(O = 0, lse = +inf, zero gradients), grouped-query and multi-query heads,
head dims 64/128 and others (24..256), broadcast batch dims, dropout (the same
keep mask as the CPU's for one seed), the additive mask's gradient, every
dtype (float32, float64, bfloat16, float16), forward and backward, and
argument errors. Marked `cuda`; skipped without a GPU (the CPU-only test at
the end runs everywhere)."""
import zlib

import numpy as np
import pytest

import nnforge as nf
from cuda_support import cpu, dev, gpu, needs_gpu

DTYPES = ["float32", "float64", "bfloat16", "float16"]
# max |got - want| / max |want|, per dtype (fp32: atomics in dQ reorder the sums)
TOL = {"float32": 2e-5, "float64": 1e-10, "bfloat16": 2e-2, "float16": 4e-3}
GRAD_TOL = {"float32": 1e-4, "float64": 1e-9, "bfloat16": 4e-2, "float16": 8e-3}

# (B, Hq, Hk, L, S, E, Ev)
CASES = [
    (2, 4, 4, 64, 64, 64, 64),
    (1, 2, 2, 7, 129, 64, 64),
    (2, 4, 2, 129, 33, 128, 128),  # grouped-query
    (1, 8, 1, 1, 1000, 64, 64),    # multi-query, one query row
    (1, 2, 1, 33, 17, 40, 24),     # odd head dims, Ev != E
    (1, 1, 1, 5, 70, 256, 256),
    (2, 3, 3, 1000, 7, 32, 16),
]
MASKS = ["none", "causal", "bool_pad", "bool_full", "add_ls", "add_pad"]


def _C():
    return nf._C.cuda


def to_dev(a, dtype):
    if dtype == "bfloat16":
        return _C().astype(dev(np.asarray(a, np.float32)), "bfloat16")
    if a.dtype == np.bool_:
        return dev(a)
    return dev(np.asarray(a, dtype))


def host(x):
    if x.dtype_name in ("bfloat16", "float16"):
        x = _C().astype(x, np.float32)
    return gpu().to_host(x).astype(np.float64)


def rounded(a, dtype):
    return host(to_dev(a, dtype))


def make_mask(kind, rng, b, h, l, s):
    """(mask, is_causal): the host mask in float64/bool, or None."""
    if kind == "causal":
        return None, True
    if kind == "bool_pad":
        m = rng.random((b, 1, 1, s)) < 0.8
        m[..., 0] = True
        return m, False
    if kind == "bool_full":
        m = rng.random((b, h, l, s)) < 0.7
        m[0, 0, 0, :] = False  # a fully masked row
        return m, False
    if kind == "add_ls":
        return rng.normal(size=(l, s)), False
    if kind == "add_pad":
        m = np.where(rng.random((b, 1, 1, s)) < 0.8, 0.0, -np.inf)
        m[..., 0] = 0.0
        return m, False
    return None, False


def rel_err(got, want):
    scale = max(np.max(np.abs(want)), 1e-6) if want.size else 1.0
    return np.max(np.abs(got - want)) / scale if want.size else 0.0


def run_both(dtype, q, k, v, mask, causal, scale, dropout_p=0.0, seed=0, g=None,
             mask_grad=False):
    """Forward (and backward when g is given) on the GPU in `dtype` and on the CPU in
    float64 on the rounded inputs; returns (gpu results, cpu results) as float64."""
    from nnforge.backend import cuda_attention
    rq, rk, rv = (rounded(x, dtype) for x in (q, k, v))
    is_add = mask is not None and mask.dtype != np.bool_
    rmask = rounded(mask, dtype) if is_add else mask
    dq_, dk_, dv_ = to_dev(q, dtype), to_dev(k, dtype), to_dev(v, dtype)
    dmask = None if mask is None else to_dev(mask, dtype)
    out, lse = cuda_attention.sdpa_forward(dq_, dk_, dv_, dmask, dropout_p, causal, scale, seed)
    c_out, c_lse = cpu.sdpa_forward(rq, rk, rv, rmask, dropout_p, causal, scale, seed)
    got = [host(out), host(lse)]
    want = [np.asarray(c_out), np.asarray(c_lse).reshape(got[1].shape)]
    if g is not None:
        rg = rounded(g, dtype)
        grads = cuda_attention.sdpa_backward(to_dev(g, dtype), dq_, dk_, dv_, dmask, out, lse,
                                             dropout_p, causal, scale, seed, mask_grad)
        c_out64 = np.asarray(c_out, np.float64)
        c_grads = cpu.sdpa_backward(rg, rq, rk, rv, rmask, c_out64, c_lse, dropout_p, causal,
                                    scale, seed, mask_grad)
        for a, b in zip(grads, c_grads):
            if a is None:
                assert b is None
                continue
            got.append(host(a))
            want.append(np.asarray(b, np.float64))
    return got, want


def compare(got, want, dtype, grads=False):
    names = ["out", "lse", "dq", "dk", "dv", "dmask"]
    for i, (a, b) in enumerate(zip(got, want)):
        assert a.shape == b.shape, (names[i], a.shape, b.shape)
        if names[i] == "lse":  # +inf on fully masked rows, on both devices
            assert np.array_equal(np.isinf(a), np.isinf(b)), "lse inf pattern"
            a, b = np.where(np.isinf(a), 0, a), np.where(np.isinf(b), 0, b)
        tol = (GRAD_TOL if i >= 2 else TOL)[dtype]
        assert rel_err(a, b) <= tol, (names[i], rel_err(a, b), tol)


@needs_gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mask_kind", MASKS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c)))
def test_forward_backward_match_cpu(dtype, mask_kind, case):
    b, hq, hk, l, s, e, ev = case
    if dtype == "float64" and max(e, ev) > 128:
        pytest.skip("float64 takes head dims <= 128 (shared memory)")
    rng = np.random.default_rng(zlib.crc32(repr((dtype, mask_kind, case)).encode()))
    q, k, v = rng.normal(size=(b, hq, l, e)), rng.normal(size=(b, hk, s, e)), \
        rng.normal(size=(b, hk, s, ev))
    g = rng.normal(size=(b, hq, l, ev))
    mask, causal = make_mask(mask_kind, rng, b, hq, l, s)
    got, want = run_both(dtype, q, k, v, mask, causal, 1.0 / np.sqrt(e), g=g)
    compare(got, want, dtype)


@needs_gpu
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("mask_shape", [(7, 9), (1, 1, 7, 9), (2, 1, 1, 9), (2, 3, 7, 9),
                                        (3, 1, 9), (7, 1)])
def test_additive_mask_gradient(dtype, mask_shape):
    rng = np.random.default_rng(1)
    q, k, v = rng.normal(size=(2, 3, 7, 16)), rng.normal(size=(2, 3, 9, 16)), \
        rng.normal(size=(2, 3, 9, 8))
    mask, g = rng.normal(size=mask_shape), rng.normal(size=(2, 3, 7, 8))
    got, want = run_both(dtype, q, k, v, mask, False, 0.25, g=g, mask_grad=True)
    assert len(got) == 6
    compare(got, want, dtype)


@needs_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
@pytest.mark.parametrize("causal", [False, True])
def test_dropout_drops_what_the_cpu_drops(dtype, causal):
    rng = np.random.default_rng(2)
    q, k, v = rng.normal(size=(2, 2, 40, 32)), rng.normal(size=(2, 2, 50, 32)), \
        rng.normal(size=(2, 2, 50, 32))
    g = rng.normal(size=(2, 2, 40, 32))
    got, want = run_both(dtype, q, k, v, None, causal, 0.2, dropout_p=0.3, seed=1234, g=g)
    compare(got, want, dtype)


@needs_gpu
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("hd", [64, 128])
@pytest.mark.parametrize("mask_kind", ["none", "causal", "bool_full", "add_ls"])
@pytest.mark.parametrize("lengths", [(64, 64), (1, 200), (130, 70), (257, 129)])
def test_tensor_core_forward_matches_simt(dtype, hd, mask_kind, lengths):
    """The mma.sync forward (auto for bf16/fp16 at head dims 64/128) against the SIMT one
    on the same device arrays: P is rounded to 16 bits before P V there, so the outputs
    agree to the dtype's tolerance and lse to fp32's."""
    rng = np.random.default_rng(zlib.crc32(repr((dtype, hd, mask_kind, lengths)).encode()))
    l, s = lengths
    q, k, v = (to_dev(rng.normal(size=shape), dtype)
               for shape in ((2, 4, l, hd), (2, 2, s, hd), (2, 2, s, hd)))
    mask, causal = make_mask(mask_kind, rng, 2, 4, l, s)
    if mask is not None and mask.ndim == 2:  # the kernel binding takes 4-D masks
        mask = mask[None, None]
    dmask = None if mask is None else to_dev(mask, dtype)
    scale = 1.0 / np.sqrt(hd)
    out_tc, lse_tc = _C().sdpa_forward(q, k, v, dmask, causal, scale, 0.0, 0)
    out_s, lse_s = _C().sdpa_forward(q, k, v, dmask, causal, scale, 0.0, 0, kernel="simt")
    a, b = host(out_tc), host(out_s)
    assert rel_err(a, b) <= TOL[dtype], rel_err(a, b)
    la, lb = host(lse_tc), host(lse_s)
    assert np.array_equal(np.isinf(la), np.isinf(lb))
    np.testing.assert_allclose(np.where(np.isinf(la), 0, la), np.where(np.isinf(lb), 0, lb),
                               rtol=1e-4, atol=1e-4)


@needs_gpu
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("hd", [64, 128])
@pytest.mark.parametrize("mask_kind", ["none", "causal", "bool_pad", "add_ls"])
@pytest.mark.parametrize("lengths", [(64, 64), (1, 200), (130, 70), (257, 129)])
def test_tensor_core_backward_matches_simt(dtype, hd, mask_kind, lengths):
    """The mma.sync backward (auto for bf16/fp16 at head dims 64/128 without dropout or a
    mask gradient) against the SIMT backward, from one forward's out and lse, GQA heads."""
    rng = np.random.default_rng(zlib.crc32(repr(("bwd", dtype, hd, mask_kind, lengths)).encode()))
    l, s = lengths
    q, k, v, g = (to_dev(rng.normal(size=shape), dtype)
                  for shape in ((2, 4, l, hd), (2, 2, s, hd), (2, 2, s, hd), (2, 4, l, hd)))
    mask, causal = make_mask(mask_kind, rng, 2, 4, l, s)
    if mask is not None and mask.ndim == 2:
        mask = mask[None, None]
    dmask = None if mask is None else to_dev(mask, dtype)
    scale = 1.0 / np.sqrt(hd)
    out, lse = _C().sdpa_forward(q, k, v, dmask, causal, scale, 0.0, 0, kernel="simt")
    tc = _C().sdpa_backward(q, k, v, dmask, out, g, lse, causal, scale, 0.0, 0)
    ref = _C().sdpa_backward(q, k, v, dmask, out, g, lse, causal, scale, 0.0, 0, kernel="simt")
    for name, a, b in zip(("dq", "dk", "dv"), tc[:3], ref[:3]):
        assert rel_err(host(a), host(b)) <= GRAD_TOL[dtype], (name, rel_err(host(a), host(b)))


@needs_gpu
def test_fully_masked_rows_give_zeros_and_inf_lse():
    from nnforge.backend import cuda_attention
    rng = np.random.default_rng(3)
    q, k, v = (dev(rng.normal(size=(1, 2, 5, 8)).astype(np.float32)) for _ in range(3))
    mask = np.ones((1, 2, 5, 5), bool)
    mask[0, 1, 2] = False
    out, lse = cuda_attention.sdpa_forward(q, k, v, dev(mask), 0.0, False, 0.5, 0)
    o, lse = gpu().to_host(out), gpu().to_host(lse)
    assert np.all(o[0, 1, 2] == 0) and np.isinf(lse[0, 1, 2]) and lse[0, 1, 2] > 0
    assert np.all(np.isfinite(np.delete(lse.reshape(-1), 1 * 5 + 2)))
    g = dev(np.ones((1, 2, 5, 8), np.float32))
    dq, dk, dv, _ = cuda_attention.sdpa_backward(g, q, k, v, dev(mask), out, dev(lse), 0.0,
                                                 False, 0.5, 0)
    assert np.all(gpu().to_host(dq)[0, 1, 2] == 0)


@needs_gpu
def test_broadcast_batch_dims_and_single_head_query():
    """q (2, 3, 1, L, E) against k, v (3, 4, S, E): batch dims broadcast, q's one head
    broadcast to k's four; gradients summed back to each input's shape."""
    rng = np.random.default_rng(4)
    q, k, v = rng.normal(size=(2, 3, 1, 6, 16)), rng.normal(size=(3, 4, 11, 16)), \
        rng.normal(size=(3, 4, 11, 16))
    g = rng.normal(size=(2, 3, 4, 6, 16))
    got, want = run_both("float32", q, k, v, None, True, 0.25, g=g)
    assert got[0].shape == (2, 3, 4, 6, 16) and got[2].shape == q.shape
    compare(got, want, "float32")


@needs_gpu
def test_no_keys_and_no_queries():
    from nnforge.backend import cuda_attention
    z = np.zeros
    out, lse = cuda_attention.sdpa_forward(dev(z((1, 2, 3, 8), np.float32)),
                                           dev(z((1, 2, 0, 8), np.float32)),
                                           dev(z((1, 2, 0, 8), np.float32)), None, 0.0, False,
                                           1.0, 0)
    assert np.all(gpu().to_host(out) == 0) and np.all(np.isinf(gpu().to_host(lse)))
    out, lse = cuda_attention.sdpa_forward(dev(z((1, 2, 0, 8), np.float32)),
                                           dev(z((1, 2, 4, 8), np.float32)),
                                           dev(z((1, 2, 4, 8), np.float32)), None, 0.0, False,
                                           1.0, 0)
    assert out.shape == (1, 2, 0, 8)


@needs_gpu
def test_errors_name_the_op_and_shapes():
    C = _C()
    q = dev(np.zeros((1, 4, 5, 8), np.float32))
    k = dev(np.zeros((1, 3, 6, 8), np.float32))
    with pytest.raises(ValueError, match=r"sdpa_forward: q's heads \(4\) must be a multiple"):
        C.sdpa_forward(q, k, k, None, False, 1.0, 0.0, 0)
    k2 = dev(np.zeros((1, 2, 6, 7), np.float32))
    with pytest.raises(ValueError, match=r"q of shape \(1, 4, 5, 8\), k of shape \(1, 2, 6, 7\)"):
        C.sdpa_forward(q, k2, k2, None, False, 1.0, 0.0, 0)
    with pytest.raises(TypeError, match="q, k, v must share"):
        C.sdpa_forward(q, dev(np.zeros((1, 2, 6, 8))), dev(np.zeros((1, 2, 6, 8))), None,
                       False, 1.0, 0.0, 0)
    k4 = dev(np.zeros((1, 2, 6, 8), np.float32))
    with pytest.raises(ValueError, match="does not broadcast"):
        C.sdpa_forward(q, k4, k4, dev(np.ones((1, 3, 5, 6), bool)), False, 1.0, 0.0, 0)
    with pytest.raises(ValueError, match="dropout_p must be in"):
        C.sdpa_forward(q, k4, k4, None, False, 1.0, 1.5, 0)
    big = dev(np.zeros((1, 1, 2, 300), np.float32))
    with pytest.raises(ValueError, match="head dims must be in"):
        C.sdpa_forward(big, big, big, None, False, 1.0, 0.0, 0)
    out, lse = C.sdpa_forward(q, k4, k4, None, False, 1.0, 0.0, 0)
    with pytest.raises(ValueError, match="mask_grad needs an additive"):
        C.sdpa_backward(q, k4, k4, None, out, out, lse, False, 1.0, 0.0, 0, True)


def test_bindings_exist_exactly_in_cuda_builds():
    """Runs everywhere: a CPU-only build binds no attention kernels."""
    assert hasattr(nf._C.cuda, "sdpa_forward") == nf._C.cuda.is_built()
    assert hasattr(nf._C.cuda, "sdpa_backward") == nf._C.cuda.is_built()
    from nnforge.backend import cuda_attention
    with pytest.raises(TypeError, match="sdpa_forward: expected a CUDA DeviceArray"):
        cuda_attention.sdpa_forward(np.zeros((1, 1, 2, 4)), np.zeros((1, 1, 2, 4)),
                                    np.zeros((1, 1, 2, 4)), None, 0.0, False, 1.0, 0)
