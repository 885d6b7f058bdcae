"""F.scaled_dot_product_attention (ops/attention.py over csrc/cpu/attention*.cpp):
a plain numpy reference and PyTorch for every mask mode, causal with L != S,
grouped-query heads, odd lengths, head dims 8..128, forward and gradients
(an additive mask's too, for each way it broadcasts),
float64 gradcheck, fully masked rows, dropout (the mask regenerated in the
backward), errors, thread-count determinism, every ISA build, and the
forward's memory at T = 8192."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import nnforge as nf
from helpers import assert_close, check_op, requires_torch, run_gradcheck, torch

F = nf.nn.functional
from nnforge.backend import cpu as cpu_backend  # noqa: E402


def np_sdpa(q, k, v, mask=None, causal=False, scale=None, keep=None, p=0.0):
    """The textbook formula in float64: softmax(scale q k^T + mask) v, GQA by
    repeating k/v heads, fully masked rows -> 0, dropout by an explicit keep mask."""
    q, k, v = (np.asarray(x, np.float64) for x in (q, k, v))
    if q.ndim >= 3 and k.shape[-3] != q.shape[-3] and k.shape[-3] != 1:
        g = q.shape[-3] // k.shape[-3]
        k, v = np.repeat(k, g, axis=-3), np.repeat(v, g, axis=-3)
    scale = 1.0 / np.sqrt(q.shape[-1]) if scale is None else scale
    s = scale * q @ np.swapaxes(k, -1, -2)
    allowed = np.ones(s.shape, bool)
    if causal:
        allowed &= np.tril(np.ones(s.shape[-2:], bool))
    if mask is not None and mask.dtype == bool:
        allowed = allowed & mask
    elif mask is not None:
        s = s + mask
    s = np.where(allowed, s, -np.inf)
    m = s.max(-1, keepdims=True)
    e = np.exp(s - np.where(np.isfinite(m), m, 0.0))
    w = e / np.maximum(e.sum(-1, keepdims=True), 1e-300)
    if keep is not None:
        w = w * keep / (1.0 - p)
    return w @ v


def th_sdpa(mask=None, **kw):
    def fn(q, k, v):
        m = None if mask is None else torch.from_numpy(mask)
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=m, **kw)
    return fn


def nf_sdpa(mask=None, **kw):
    def fn(q, k, v):
        m = None if mask is None else nf.from_numpy(mask.copy())
        return F.scaled_dot_product_attention(q, k, v, attn_mask=m, **kw)
    return fn


def _mask(kind, b, h, l, s, dtype="float32", seed=1):
    rng = np.random.default_rng(seed)
    if kind is None:
        return None
    if kind == "bool":
        m = rng.random((l, s)) < 0.7
        m[:, 0] = True
        return m
    if kind == "key_padding":  # (B, 1, 1, S): last keys of each sequence padded
        m = np.ones((b, 1, 1, s), bool)
        for i in range(b):
            m[i, ..., s - 1 - i:] = i == 0
        return m
    if kind == "bool_full":
        m = rng.random((b, h, l, s)) < 0.6
        m[..., 0] = True
        return m
    if kind == "additive":
        return rng.uniform(-2, 1, (b, h, l, s)).astype(dtype)
    if kind == "additive_bcast":
        m = rng.uniform(-1, 1, (l, s)).astype(dtype)
        m[:, -1] = -np.inf
        return m
    raise ValueError(kind)


MASKS = [None, "bool", "key_padding", "bool_full", "additive", "additive_bcast"]


# ---------------------------------------------------------------- forward + gradients
@requires_torch
@pytest.mark.parametrize("kind", MASKS)
@pytest.mark.parametrize("b,h,l,s,e,ev", [(2, 2, 7, 9, 8, 5), (1, 2, 129, 70, 16, 16)])
def test_masks_match_numpy_and_torch(kind, b, h, l, s, e, ev):
    mask = _mask(kind, b, h, l, s)
    small = l * e <= 60
    check_op(nf_sdpa(mask), th_sdpa(mask), lambda q, k, v: np_sdpa(q, k, v, mask),
             shapes=[(b, h, l, e), (b, h, s, e), (b, h, s, ev)], gradcheck=False,
             noncontig=small, atol=2e-5, grad_atol=2e-4)


@requires_torch
@pytest.mark.parametrize("l,s", [(1, 1), (7, 7), (5, 9), (9, 5), (129, 129), (130, 64),
                                 (64, 130)])
def test_causal_any_lengths(l, s):
    check_op(nf_sdpa(is_causal=True), th_sdpa(is_causal=True),
             lambda q, k, v: np_sdpa(q, k, v, causal=True),
             shapes=[(2, 2, l, 8), (2, 2, s, 8), (2, 2, s, 8)], gradcheck=False,
             noncontig=l <= 9, atol=2e-5, grad_atol=2e-4)


@requires_torch
@pytest.mark.parametrize("e", [8, 24, 64, 100, 128])
@pytest.mark.parametrize("causal", [False, True])
def test_head_dims(e, causal):
    ev = e if e != 100 else 40
    check_op(nf_sdpa(is_causal=causal), th_sdpa(is_causal=causal),
             lambda q, k, v: np_sdpa(q, k, v, causal=causal),
             shapes=[(1, 2, 67, e), (1, 2, 80, e), (1, 2, 80, ev)], gradcheck=False,
             noncontig=False, atol=3e-5, grad_atol=3e-4, grad_rtol=2e-3)


@requires_torch
@pytest.mark.parametrize("kind", [None, "key_padding", "additive"])
@pytest.mark.parametrize("causal", [False, True])
def test_grouped_query_heads(kind, causal):
    if kind is not None and causal:
        pytest.skip("PyTorch rejects attn_mask with is_causal")
    mask = _mask(kind, 2, 6, 13, 11)
    check_op(nf_sdpa(mask, is_causal=causal, enable_gqa=True),
             th_sdpa(mask, is_causal=causal, enable_gqa=True),
             lambda q, k, v: np_sdpa(q, k, v, mask, causal=causal),
             shapes=[(2, 6, 13, 8), (2, 2, 11, 8), (2, 2, 11, 4)], gradcheck=False,
             atol=2e-5, grad_atol=2e-4)


@requires_torch
def test_custom_scale_broadcast_batch_and_ranks():
    # batch dims broadcast (k/v shared over the batch), one key/value head, 3-D and 2-D inputs
    check_op(nf_sdpa(scale=0.7), th_sdpa(scale=0.7),
             shapes=[(3, 4, 5, 8), (1, 1, 6, 8), (1, 1, 6, 3)], gradcheck=False)
    check_op(nf_sdpa(), th_sdpa(), lambda q, k, v: np_sdpa(q, k, v),
             shapes=[(3, 5, 8), (3, 6, 8), (3, 6, 2)], gradcheck=False)
    check_op(nf_sdpa(is_causal=True), th_sdpa(is_causal=True),
             lambda q, k, v: np_sdpa(q, k, v, causal=True), shapes=[(5, 4), (6, 4), (6, 3)],
             gradcheck=False)


@pytest.mark.parametrize("kind", [None, "causal", "bool", "additive", "gqa"])
def test_gradcheck_float64(kind):
    mask = _mask(kind, 1, 2, 3, 4, "float64") if kind in ("bool", "additive") else None
    heads_kv = 1 if kind == "gqa" else 2
    fn = nf_sdpa(mask, is_causal=kind == "causal", enable_gqa=kind == "gqa")
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal(s) for s in [(1, 2, 3, 5), (1, heads_kv, 4, 5),
                                               (1, heads_kv, 4, 3)]]
    run_gradcheck(fn, arrays)


# ---------------------------------------------------------------- additive mask gradient
def _with_mask(lib, **kw):
    """fn(q, k, v, mask) for check_op: the mask is an input (and gets a gradient)."""
    if lib == "torch":
        return lambda q, k, v, m: torch.nn.functional.scaled_dot_product_attention(
            q, k, v, attn_mask=m, **kw)
    return lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m, **kw)


# (L, S), (1, 1, L, S), (B, 1, 1, S), (B, H, L, S) and a few more broadcasts: (H, L, S),
# (B, H, 1, S), (L, 1) (broadcast along the keys)
MASK_GRAD_SHAPES = ["LS", "11LS", "B11S", "BHLS", "HLS", "BH1S", "L1"]


def _mask_shape(code, b, h, l, s):
    sizes = {"B": b, "H": h, "L": l, "S": s, "1": 1}
    return tuple(sizes[c] for c in code)


@requires_torch
@pytest.mark.parametrize("code", MASK_GRAD_SHAPES)
@pytest.mark.parametrize("b,h,l,s,e,ev", [(2, 3, 9, 11, 8, 5), (2, 2, 130, 70, 16, 16)])
def test_additive_mask_gradient(code, b, h, l, s, e, ev):
    rng = np.random.default_rng(4)
    shapes = [(b, h, l, e), (b, h, s, e), (b, h, s, ev)]
    arrays = [rng.uniform(-2, 2, x).astype(np.float32) for x in shapes]
    mask = rng.uniform(-2, 1, _mask_shape(code, b, h, l, s)).astype(np.float32)
    check_op(_with_mask("nf"), _with_mask("torch"), np_sdpa, inputs=arrays + [mask],
             gradcheck=False, noncontig=l < 100, atol=2e-5, grad_atol=3e-4)


@requires_torch
@pytest.mark.parametrize("code", ["11LS", "B11S", "BHLS", "HLS"])
def test_additive_mask_gradient_grouped_query_heads(code):
    rng = np.random.default_rng(5)
    b, hq, hk, l, s = 2, 6, 2, 13, 11
    arrays = [rng.uniform(-2, 2, x).astype(np.float32) for x in
              [(b, hq, l, 8), (b, hk, s, 8), (b, hk, s, 4)]]
    mask = rng.uniform(-2, 1, _mask_shape(code, b, hq, l, s)).astype(np.float32)
    check_op(_with_mask("nf", enable_gqa=True), _with_mask("torch", enable_gqa=True),
             np_sdpa, inputs=arrays + [mask], gradcheck=False, atol=2e-5, grad_atol=3e-4)


@pytest.mark.parametrize("code", MASK_GRAD_SHAPES + ["gqa", "dropout"])
def test_additive_mask_gradcheck_float64(code):
    rng = np.random.default_rng(6)
    b, h, l, s = 2, 2, 3, 4
    hk = 1 if code == "gqa" else h
    arrays = [rng.standard_normal(x) for x in [(b, h, l, 3), (b, hk, s, 3), (b, hk, s, 2)]]
    mask = rng.standard_normal(_mask_shape("BHLS" if code in ("gqa", "dropout") else code,
                                           b, h, l, s))
    kw = {"enable_gqa": True} if code == "gqa" else {}

    def fn(q, k, v, m):  # dropout: a fixed seed per call keeps the function deterministic
        if code == "dropout":
            kw.update(dropout_p=0.3, generator=nf.Generator().manual_seed(2))
        return F.scaled_dot_product_attention(q, k, v, attn_mask=m, **kw)
    run_gradcheck(fn, arrays + [mask])


def test_additive_mask_gradient_with_masked_entries_and_rows():
    # -inf entries and a fully masked row: zero gradient there, finite everywhere
    rng = np.random.default_rng(7)
    q, k, v = (rng.standard_normal(x) for x in [(1, 2, 4, 8), (1, 2, 5, 8), (1, 2, 5, 3)])
    mask = rng.standard_normal((4, 5))
    mask[1] = -np.inf
    mask[2, 3] = -np.inf
    ts = [nf.from_numpy(x.copy()).requires_grad_() for x in (q, k, v, mask)]
    out = F.scaled_dot_product_attention(*ts[:3], attn_mask=ts[3])
    out.backward(nf.from_numpy(rng.standard_normal(out.shape)))
    dm = ts[3].grad.numpy()
    assert np.isfinite(dm).all() and not dm[1].any() and dm[2, 3] == 0 and dm[0].any()


def test_kernel_mask_grad_needs_an_additive_mask():
    cpu = nf._C.cpu
    q, k, v = (np.zeros(s, np.float32) for s in [(1, 2, 3, 4), (1, 2, 5, 4), (1, 2, 5, 3)])
    out, lse = cpu.sdpa_forward(q, k, v, None, False, 1.0, 0.0, 0)
    for mask in (None, np.ones((1, 1, 3, 5), bool)):
        with pytest.raises(ValueError, match="sdpa_backward: mask_grad needs an additive"):
            cpu.sdpa_backward(q, k, v, mask, out, np.zeros_like(out), lse, False, 1.0, 0.0, 0,
                              mask_grad=True)
    *_, dm = cpu.sdpa_backward(q, k, v, np.zeros((1, 1, 3, 5), np.float32), out,
                               np.ones_like(out), lse, False, 1.0, 0.0, 0, mask_grad=True)
    assert dm.shape == (1, 1, 3, 5)


# ---------------------------------------------------------------- fully masked rows
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", ["bool", "additive"])
def test_fully_masked_rows_give_zeros(kind, dtype):
    rng = np.random.default_rng(0)
    shapes = [(2, 2, 5, 8), (2, 2, 6, 8), (2, 2, 6, 4)]
    q, k, v = (rng.standard_normal(s).astype(dtype) for s in shapes)
    mask = np.ones((2, 1, 5, 6), bool)
    mask[:, :, 1] = False  # row 1 sees nothing
    mask[1, :, 3, 2:] = False
    if kind == "additive":
        mask = np.where(mask, 0.0, -np.inf).astype(dtype)
    ts = [nf.from_numpy(x).requires_grad_() for x in (q, k, v)]
    out = F.scaled_dot_product_attention(*ts, attn_mask=nf.from_numpy(mask))
    y = out.detach().numpy()
    assert np.isfinite(y).all()
    assert (y[:, :, 1] == 0).all()
    assert_close(out, np_sdpa(q, k, v, mask), 1e-5, 1e-4)
    out.backward(nf.ones_like(out))
    assert np.isfinite(ts[0].grad.numpy()).all() and np.isfinite(ts[1].grad.numpy()).all()
    assert (ts[0].grad.numpy()[:, :, 1] == 0).all()
    if torch is not None:  # PyTorch's CPU kernel also returns zeros there
        tt = [torch.from_numpy(x).requires_grad_() for x in (q, k, v)]
        r = torch.nn.functional.scaled_dot_product_attention(*tt, attn_mask=torch.from_numpy(mask))
        r.backward(torch.ones_like(r))
        assert_close(out, r, 1e-5, 1e-4)
        for a, t in zip(ts, tt):
            assert_close(a.grad, t.grad, 1e-4, 1e-3)


def test_no_keys_and_no_queries():
    q, k, v = nf.randn(1, 2, 3, 4, requires_grad=True), nf.randn(1, 2, 0, 4), nf.randn(1, 2, 0, 5)
    out = F.scaled_dot_product_attention(q, k, v)
    assert tuple(out.shape) == (1, 2, 3, 5) and not out.detach().numpy().any()
    out.sum().backward()
    assert not q.grad.numpy().any()
    out = F.scaled_dot_product_attention(nf.randn(1, 2, 0, 4), nf.randn(1, 2, 3, 4),
                                         nf.randn(1, 2, 3, 5))
    assert tuple(out.shape) == (1, 2, 0, 5)


# ---------------------------------------------------------------- dropout
def _dropout_reference_seed(gen_seed):
    return int(np.random.Generator(np.random.PCG64(gen_seed)).integers(0, 2 ** 63))


@pytest.mark.parametrize("causal", [False, True])
def test_dropout_mask_is_regenerated_in_backward(causal):
    rng = np.random.default_rng(0)
    b, h, l, s, e, p = 2, 2, 70, 75, 16, 0.3
    q, k, v = (rng.standard_normal(x) for x in [(b, h, l, e), (b, h, s, e), (b, h, s, e)])
    ts = [nf.from_numpy(x.copy()).requires_grad_() for x in (q, k, v)]
    out = F.scaled_dot_product_attention(*ts, dropout_p=p, is_causal=causal,
                                         generator=nf.Generator().manual_seed(5))
    keep = cpu_backend.sdpa_dropout_mask(_dropout_reference_seed(5), b, h, l, s, p)
    assert abs(keep.mean() - (1 - p)) < 0.02
    assert_close(out, np_sdpa(q, k, v, causal=causal, keep=keep, p=p), 1e-10, 1e-8)
    g = rng.standard_normal(out.shape)
    out.backward(nf.from_numpy(g))
    if torch is not None:  # the same formula in torch, with the same keep mask
        tt = [torch.from_numpy(x.copy()).requires_grad_() for x in (q, k, v)]
        sc = tt[0] @ tt[1].transpose(-1, -2) / np.sqrt(e)
        if causal:
            sc = sc.masked_fill(~torch.ones(l, s, dtype=torch.bool).tril(), -float("inf"))
        w = torch.softmax(sc, -1) * torch.from_numpy(keep) / (1 - p)
        (w @ tt[2]).backward(torch.from_numpy(g))
        for a, t in zip(ts, tt):
            assert_close(a.grad, t.grad, 1e-10, 1e-8)
    # the same generator seed gives the same output; another seed a different one
    again = F.scaled_dot_product_attention(*ts, dropout_p=p, is_causal=causal,
                                           generator=nf.Generator().manual_seed(5))
    other = F.scaled_dot_product_attention(*ts, dropout_p=p, is_causal=causal,
                                           generator=nf.Generator().manual_seed(6))
    assert np.array_equal(again.detach().numpy(), out.detach().numpy())
    assert not np.array_equal(other.detach().numpy(), out.detach().numpy())


def test_dropout_all_and_gradcheck():
    q, k, v = nf.randn(1, 1, 3, 4), nf.randn(1, 1, 5, 4), nf.randn(1, 1, 5, 2)
    assert not F.scaled_dot_product_attention(q, k, v, dropout_p=1.0).numpy().any()
    rng = np.random.default_rng(2)
    arrays = [rng.standard_normal(s) for s in [(1, 2, 3, 4), (1, 2, 5, 4), (1, 2, 5, 3)]]

    def fn(q, k, v):  # a fixed seed per call: the function is deterministic for gradcheck
        return F.scaled_dot_product_attention(q, k, v, dropout_p=0.4,
                                              generator=nf.Generator().manual_seed(1))
    run_gradcheck(fn, arrays)


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize("args,kwargs,exc,text", [
    (((2, 4, 5, 8), (2, 4, 6, 7), (2, 4, 6, 3)), {}, ValueError, "same last dim"),
    (((2, 4, 5, 8), (2, 4, 6, 8), (2, 4, 7, 3)), {}, ValueError, "number of keys"),
    (((2, 4, 5, 8), (2, 3, 6, 8), (2, 3, 6, 3)), {}, ValueError, "enable_gqa"),
    (((2, 4, 5, 8), (2, 3, 6, 8), (2, 3, 6, 3)), {"enable_gqa": True}, ValueError, "multiple"),
    (((2, 4, 5, 8), (3, 4, 6, 8), (3, 4, 6, 3)), {}, ValueError, "broadcast"),
    (((8,), (6, 8), (6, 3)), {}, ValueError, "at least 2 dims"),
    (((2, 4, 5, 8), (2, 4, 6, 8), (2, 4, 6, 3)), {"dropout_p": 1.5}, ValueError, "dropout_p"),
])
def test_shape_errors(args, kwargs, exc, text):
    q, k, v = (nf.randn(*s) for s in args)
    with pytest.raises(exc, match=text) as info:
        F.scaled_dot_product_attention(q, k, v, **kwargs)
    assert "scaled_dot_product_attention" in str(info.value)


def test_mask_and_dtype_errors():
    q, k, v = nf.randn(2, 4, 5, 8), nf.randn(2, 4, 6, 8), nf.randn(2, 4, 6, 3)
    with pytest.raises(ValueError, match=r"attn_mask of shape \(5, 7\) does not broadcast"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=nf.ones(5, 7, dtype=nf.bool))
    with pytest.raises(ValueError, match="is_causal"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=nf.ones(5, 6, dtype=nf.bool),
                                       is_causal=True)
    with pytest.raises(TypeError, match="attn_mask must be bool"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=nf.ones(5, 6, dtype=nf.float64))
    with pytest.raises(TypeError, match="same dtype"):
        F.scaled_dot_product_attention(q, k.double(), v)
    with pytest.raises(TypeError, match="must be a Tensor"):
        F.scaled_dot_product_attention(q, np.zeros((2, 4, 6, 8)), v)


def test_kernel_validates_its_arguments():
    cpu = nf._C.cpu
    q = np.zeros((1, 2, 3, 4), np.float32)
    k = np.zeros((1, 2, 5, 4), np.float32)
    v = np.zeros((1, 2, 5, 3), np.float32)
    with pytest.raises(ValueError, match=r"sdpa_forward: shapes do not match.*k \(1, 2, 5, 3\)"):
        cpu.sdpa_forward(q, np.zeros((1, 2, 5, 3), np.float32), v, None, False, 1.0, 0.0, 0)
    with pytest.raises(ValueError, match="multiple of the key/value heads"):
        cpu.sdpa_forward(q, k[:, :1].repeat(3, 1)[:1, :], v[:, :1].repeat(3, 1), None, False,
                         1.0, 0.0, 0)
    with pytest.raises(ValueError, match="one dtype"):
        cpu.sdpa_forward(q, k.astype(np.float64), v, None, False, 1.0, 0.0, 0)
    with pytest.raises(ValueError, match=r"mask of shape \(1, 1, 3, 4\) does not broadcast"):
        cpu.sdpa_forward(q, k, v, np.ones((1, 1, 3, 4), bool), False, 1.0, 0.0, 0)
    with pytest.raises(ValueError, match="contiguous in its last dim"):
        cpu.sdpa_forward(np.zeros((1, 2, 3, 8), np.float32)[..., ::2], k, v, None, False, 1.0,
                         0.0, 0)
    with pytest.raises(ValueError, match="dropout_p"):
        cpu.sdpa_forward(q, k, v, None, False, 1.0, 2.0, 0)
    with pytest.raises(TypeError, match="numpy array"):
        cpu.sdpa_forward([1.0], k, v, None, False, 1.0, 0.0, 0)
    out, lse = cpu.sdpa_forward(q, k, v, None, False, 1.0, 0.0, 0)
    with pytest.raises(ValueError, match=r"gout has shape \(1, 2, 3, 4\), expected \(1, 2, 3, 3\)"):
        cpu.sdpa_backward(q, k, v, None, out, np.zeros((1, 2, 3, 4), np.float32), lse, False,
                          1.0, 0.0, 0)


# ---------------------------------------------------------------- threads, ISAs
def test_thread_count_does_not_change_results():
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in [(1, 2, 333, 32), (1, 2, 300, 32),
                                                                 (1, 2, 300, 32)]]
    mask = rng.standard_normal((333, 300)).astype(np.float32)
    results = []
    before = nf.get_num_threads()
    try:
        for threads in (1, 2, 3):
            nf.set_num_threads(threads)
            ts = [nf.from_numpy(a.copy()).requires_grad_() for a in arrays]
            out = F.scaled_dot_product_attention(*ts, is_causal=True)
            out.backward(nf.ones_like(out))
            results.append([out.detach().numpy()] + [t.grad.numpy() for t in ts])
            # an additive mask's gradient summed over the heads (the items alias it)
            ts = [nf.from_numpy(a.copy()).requires_grad_() for a in arrays + [mask]]
            out = F.scaled_dot_product_attention(*ts[:3], attn_mask=ts[3])
            out.backward(nf.ones_like(out))
            results[-1] += [t.grad.numpy() for t in ts]
    finally:
        nf.set_num_threads(before)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert np.array_equal(a, b)


_ISA_SCRIPT = r"""
import numpy as np, nnforge as nf, sys
sys.path.insert(0, {tests!r})
from test_attention import np_sdpa
rng = np.random.default_rng(0)
shapes = [(2, 4, 37, 24), (2, 2, 41, 24), (2, 2, 41, 13)]
q, k, v = (rng.standard_normal(s).astype(np.float32) for s in shapes)
mask = rng.random((2, 1, 37, 41)) < 0.8
for m, causal in ((mask, False), (None, True)):
    ts = [nf.from_numpy(x).requires_grad_() for x in (q, k, v)]
    out = nf.nn.functional.scaled_dot_product_attention(
        *ts, attn_mask=None if m is None else nf.from_numpy(m), is_causal=causal, enable_gqa=True)
    np.testing.assert_allclose(out.detach().numpy(), np_sdpa(q, k, v, m, causal), atol=2e-5,
                               rtol=1e-4)
    out.sum().backward()
    q64 = [nf.from_numpy(x.astype(np.float64)).requires_grad_() for x in (q, k, v)]
    o64 = nf.nn.functional.scaled_dot_product_attention(
        *q64, attn_mask=None if m is None else nf.from_numpy(m), is_causal=causal, enable_gqa=True)
    o64.sum().backward()
    for a, b in zip(ts, q64):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), atol=2e-4, rtol=1e-3)
add = rng.uniform(-1, 1, (2, 1, 1, 41)).astype(np.float32)  # an additive mask's gradient
grads = []
for dt in (np.float32, np.float64):
    ts = [nf.from_numpy(x.astype(dt)).requires_grad_() for x in (q, k, v, add)]
    nf.nn.functional.scaled_dot_product_attention(*ts[:3], attn_mask=ts[3],
                                                  enable_gqa=True).sum().backward()
    grads.append([t.grad.numpy() for t in ts])
for a, b in zip(*grads):
    np.testing.assert_allclose(a, b, atol=2e-4, rtol=1e-3)
print(nf._C.selected_isa())
"""


@pytest.mark.parametrize("isa", ["scalar", "avx2", "avx512"])
def test_every_isa_build(isa):
    env = dict(os.environ, NNFORGE_ISA=isa)
    script = _ISA_SCRIPT.format(tests=os.path.dirname(os.path.abspath(__file__)))
    r = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                       timeout=120)
    if r.returncode and "needs features" in r.stderr + r.stdout:
        pytest.skip(f"this CPU has no {isa}")
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip().endswith(isa)


# ---------------------------------------------------------------- memory
_MEMORY_SCRIPT = r"""
import resource, numpy as np, nnforge as nf
T, H, D = 8192, 4, 64
rng = np.random.default_rng(0)
q, k, v = (nf.from_numpy(rng.standard_normal((1, H, T, D)).astype(np.float32)) for _ in range(3))
with nf.no_grad():
    nf.nn.functional.scaled_dot_product_attention(q[:, :, :64], k[:, :, :64], v[:, :, :64])
    out = None
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = nf.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
assert np.isfinite(out.detach().numpy()).all()
print((after - before) * 1024)
"""


def test_forward_memory_stays_far_below_the_score_matrix():
    env = dict(os.environ, OMP_NUM_THREADS="2")
    r = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT], env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    growth = int(r.stdout.split()[-1])
    t = 8192
    # the output itself is 8 MiB; one (T, T) float32 score matrix would be 256 MiB
    assert growth < 4 * t * t / 8, f"peak RSS grew by {growth / 2**20:.1f} MiB"
