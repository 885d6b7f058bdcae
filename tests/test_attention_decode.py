"""The decode path of scaled dot-product attention (csrc/cpu/attention_decode*.cpp):
up to kSdpaDecodeMaxRows = 4 query rows read K and V in place instead of packing
tiles. Checked against the float64 numpy reference for every mask mode, causal
with L < S and L > S, grouped-query heads, strided K/V (the KV cache's views),
fully masked rows, both dtypes, 1 and 2 threads and every ISA build; its lse
feeds the shared backward, so gradients are checked too."""
from __future__ import annotations

import numpy as np
import pytest

import nnforge as nf
from helpers import assert_close, run_gradcheck, run_isa_script
from test_attention import np_sdpa

F = nf.nn.functional


def _qkv(b, hq, hk, l, s, e, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((b, hq, l, e)).astype(dtype),
            rng.standard_normal((b, hk, s, e)).astype(dtype),
            rng.standard_normal((b, hk, s, e)).astype(dtype))


def _run(q, k, v, mask=None, **kw):
    m = None if mask is None else nf.from_numpy(mask)
    return F.scaled_dot_product_attention(nf.from_numpy(q), nf.from_numpy(k), nf.from_numpy(v),
                                          attn_mask=m, **kw).numpy()


@pytest.mark.parametrize("l", [1, 2, 3, 4])
@pytest.mark.parametrize("s", [1, 7, 129, 300])
@pytest.mark.parametrize("mode", [None, "causal", "bool", "additive", "key_padding"])
def test_decode_rows_match_reference(l, s, mode):
    q, k, v = _qkv(2, 3, 3, l, s, 16, seed=l * 1000 + s)
    rng = np.random.default_rng(s)
    mask, kw = None, {}
    if mode == "causal":
        kw["is_causal"] = True
    elif mode == "bool":
        mask = rng.random((l, s)) < 0.6
        mask[:, 0] = True
    elif mode == "additive":
        mask = rng.standard_normal((2, 1, l, s)).astype(np.float32)
    elif mode == "key_padding":
        mask = np.ones((2, 1, 1, s), bool)
        mask[1, ..., s // 2 + 1:] = False
    got = _run(q, k, v, mask, **kw)
    want = np_sdpa(q, k, v, mask, causal=mode == "causal")
    assert_close(got, want, rtol=2e-5, atol=2e-6)


def test_decode_grouped_query_heads_and_float64():
    q, k, v = _qkv(2, 8, 2, 1, 37, 64, dtype=np.float64, seed=3)
    got = _run(q, k, v, enable_gqa=True)
    assert got.dtype == np.float64
    assert_close(got, np_sdpa(q, k, v), rtol=1e-12, atol=1e-13)


def test_decode_reads_strided_cache_views():
    # the KV cache hands out k[:, :, :S] views of (B, H, capacity, D) buffers
    q, k, v = _qkv(1, 6, 6, 1, 200, 64, seed=4)
    kb, vb = np.zeros((1, 6, 256, 64), np.float32), np.zeros((1, 6, 256, 64), np.float32)
    kb[:, :, :200], vb[:, :, :200] = k, v
    got = _run(q, kb[:, :, :200], vb[:, :, :200])
    assert_close(got, np_sdpa(q, k, v), rtol=2e-5, atol=2e-6)


def test_decode_fully_masked_row_is_zero_with_zero_gradients():
    q, k, v = _qkv(1, 2, 2, 2, 5, 8, seed=5)
    mask = np.ones((2, 5), bool)
    mask[1] = False
    qt, kt, vt = (nf.from_numpy(x).requires_grad_() for x in (q, k, v))
    out = F.scaled_dot_product_attention(qt, kt, vt, attn_mask=nf.from_numpy(mask))
    got = out.detach().numpy()
    assert np.all(got[:, :, 1] == 0) and np.all(np.isfinite(got))
    out.sum().backward()
    assert np.all(qt.grad.numpy()[:, :, 1] == 0)
    assert_close(got, np_sdpa(q, k, v, mask), rtol=2e-5, atol=2e-6)


def test_decode_more_rows_than_keys_causal():
    # L = 4 > S = 2: rows 2 and 3 see both keys (top-left triangle)
    q, k, v = _qkv(1, 2, 2, 4, 2, 8, seed=6)
    assert_close(_run(q, k, v, is_causal=True), np_sdpa(q, k, v, causal=True),
                 rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("mode", ["plain", "causal", "additive"])
def test_decode_gradcheck(mode):
    rng = np.random.default_rng(7)
    q, k, v = _qkv(1, 2, 2, 3, 6, 4, dtype=np.float64, seed=7)
    mask = rng.standard_normal((3, 6)) if mode == "additive" else None
    m = None if mask is None else nf.from_numpy(mask)
    run_gradcheck(lambda a, b, c: F.scaled_dot_product_attention(
        a, b, c, attn_mask=m, is_causal=mode == "causal"), [q, k, v])


def test_decode_threads_give_identical_results():
    q, k, v = _qkv(4, 8, 8, 1, 150, 64, seed=8)
    before = nf.get_num_threads()
    try:
        nf.set_num_threads(1)
        one = _run(q, k, v)
        nf.set_num_threads(2)
        two = _run(q, k, v)
    finally:
        nf.set_num_threads(before)
    assert np.array_equal(one, two)


ISA_SCRIPT = """
import numpy as np, nnforge as nf
rng = np.random.default_rng(0)
q = rng.standard_normal((1, 4, 2, 24))
k, v = rng.standard_normal((2, 1, 4, 77, 24))
s = q @ np.swapaxes(k, -1, -2) / np.sqrt(24)
w = np.exp(s - s.max(-1, keepdims=True))
want = (w / w.sum(-1, keepdims=True)) @ v
for dtype, tol in ((np.float32, 2e-5), (np.float64, 1e-12)):
    got = nf.nn.functional.scaled_dot_product_attention(
        *(nf.from_numpy(x.astype(dtype)) for x in (q, k, v))).numpy()
    assert np.allclose(got, want, rtol=tol, atol=tol), (dtype, np.abs(got - want).max())
print("ok")
"""


@pytest.mark.parametrize("isa", ["scalar", "avx2", "avx512"])
def test_decode_every_isa_build(isa):
    run_isa_script(ISA_SCRIPT, isa)
