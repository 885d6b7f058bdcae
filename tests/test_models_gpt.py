"""GPT: shapes, weight tying, causality, KV-cache generation equal to full
recomputation (learned / sinusoidal / rotary positions, grouped KV heads, past
block_size), sampling options, a tiny language-modelling run, errors."""
import os

import numpy as np
import pytest

import nnforge as nf
from nnforge.models import GPT, KVCache


def _small(**kw):
    nf.manual_seed(0)
    args = dict(block_size=16, n_layer=2, n_head=4, d_model=32)
    args.update(kw)
    return GPT(40, **args)


def test_shapes_tying_and_init():
    m = _small()
    logits = m(nf.randint(0, 40, (3, 10)))
    assert tuple(logits.shape) == (3, 10, 40)
    assert m.head.weight is m.tok_emb.weight
    names = [n for n, _ in m.named_parameters()]
    assert "head.weight" not in names or "tok_emb.weight" not in names   # counted once
    proj = m.blocks[0].attn.proj.weight.detach().numpy()
    fc = m.blocks[0].mlp[0].weight.detach().numpy()
    assert proj.std() < fc.std()          # residual projections scaled by 1/sqrt(2 n_layer)
    untied = _small(tie_weights=False)
    assert untied.head.weight is not untied.tok_emb.weight


@pytest.mark.parametrize("positions", ["learned", "sinusoidal", "rotary"])
def test_causal_future_tokens_do_not_change_the_past(positions):
    m = _small(positions=positions).eval()
    x = nf.randint(0, 40, (2, 12))
    y = x.numpy().copy()
    y[:, 8:] = (y[:, 8:] + 1) % 40
    a, b = m(x).detach().numpy(), m(nf.from_numpy(y)).detach().numpy()
    np.testing.assert_allclose(a[:, :8], b[:, :8], atol=1e-5)
    assert np.abs(a[:, 8:] - b[:, 8:]).max() > 1e-3


@pytest.mark.parametrize("positions,n_kv_head", [("learned", None), ("sinusoidal", None),
                                                 ("rotary", 2), ("rotary", 1)])
def test_kv_cache_logits_and_tokens_equal_full_recomputation(positions, n_kv_head):
    m = _small(positions=positions, n_kv_head=n_kv_head).eval()
    ids = nf.randint(0, 40, (2, 11))
    full = m(ids).detach().numpy()
    cache = m.new_cache()
    parts = [m(ids[:, :4], cache), m(ids[:, 4:5], cache), m(ids[:, 5:11], cache)]
    assert len(cache) == 11 and isinstance(cache, KVCache)
    kv_heads = n_kv_head or 4
    assert tuple(cache.layers[0][0].shape) == (2, kv_heads, 11, 8)
    stepped = np.concatenate([p.detach().numpy() for p in parts], axis=1)
    np.testing.assert_allclose(stepped, full, atol=1e-5)
    for kw in ({"temperature": 0}, {"temperature": 0.8, "top_k": 5},
               {"temperature": 1.0, "top_p": 0.9}):
        # 30 new tokens after 3: runs past block_size (16), where the window slides
        a = m.generate([1, 2, 3], 30, generator=nf.Generator().manual_seed(3), **kw)
        b = m.generate([1, 2, 3], 30, use_cache=False, generator=nf.Generator().manual_seed(3),
                       **kw)
        assert a == b and len(a) == 30 and all(0 <= t < 40 for t in a)


def test_kv_cache_buffers_views_and_fallbacks():
    """With a capacity the cache writes each step into buffers allocated once and
    hands out views of them; past the capacity, or for keys that need a gradient,
    it concatenates (and the gradient reaches the earlier steps)."""
    k1, v1 = nf.randn(1, 2, 3, 4), nf.randn(1, 2, 3, 4)
    k2, v2 = nf.randn(1, 2, 1, 4), nf.randn(1, 2, 1, 4)
    cache = KVCache(1, capacity=5)
    k, v = cache.update(0, k1, v1)
    buf = cache._buffers[0][0]
    k, v = cache.update(0, k2, v2)
    assert len(cache) == 4 and k.data.base is buf and buf.shape == (1, 2, 5, 4)
    np.testing.assert_array_equal(k.numpy(), np.concatenate([k1.numpy(), k2.numpy()], 2))
    np.testing.assert_array_equal(v.numpy(), np.concatenate([v1.numpy(), v2.numpy()], 2))
    k, _ = cache.update(0, k2, v2)                     # 5 steps: the buffer is full
    k, _ = cache.update(0, k2, v2)                     # 6 > capacity: concatenation
    assert len(cache) == 6 and cache._buffers[0] is None
    np.testing.assert_array_equal(k.numpy()[:, :, :4], np.concatenate(
        [k1.numpy(), k2.numpy()], 2))
    a = nf.randn(1, 2, 2, 4, requires_grad=True)
    grad_cache = KVCache(1, capacity=8)
    grad_cache.update(0, a, a)
    k, _ = grad_cache.update(0, k2, v2)
    (k * 2).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), np.full((1, 2, 2, 4), 2.0, np.float32))


@pytest.mark.parametrize("kw", [{}, {"positions": "sinusoidal"},
                                {"positions": "rotary", "n_kv_head": 2}, {"bias": False}])
def test_decode_step_equals_the_module_path(kw):
    """models/gpt_decode.py: one token on the backend arrays gives the module path's
    logits and fills the cache the same way."""
    from nnforge.models import gpt_decode
    m = _small(**kw).eval()
    assert gpt_decode.plain(m)
    ids = nf.randint(0, 40, (2, 9))
    with nf.no_grad():
        fast, slow = m.new_cache(), m.new_cache()
        m(ids[:, :8], fast)
        m(ids[:, :8], slow)
        a = gpt_decode.decode_step(m, [int(i) for i in ids[:, 8].numpy()], fast)
        b = m(ids[:, 8:9], slow)[:, -1]
    assert tuple(a.shape) == (2, 40) and len(fast) == len(slow) == 9
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-6)
    for (kf, vf), (ks, vs) in zip(fast.layers, slow.layers):
        np.testing.assert_array_equal(kf.numpy(), ks.numpy())
        np.testing.assert_array_equal(vf.numpy(), vs.numpy())


def test_decode_step_only_for_plain_networks():
    """LoRA-wrapped layers, a prefix, a forward hook or training mode change what
    the network computes: generation must fall back to the module path (and still
    give the tokens of a cache-free run)."""
    from nnforge import peft
    from nnforge.models import gpt_decode
    m = _small().eval()
    assert gpt_decode.plain(m)
    m.train()
    assert not gpt_decode.plain(m)
    m.eval()
    handle = m.blocks[1].mlp[1].register_forward_hook(lambda mod, args, out: out * 0.5)
    assert not gpt_decode.plain(m)
    assert m.generate([1, 2, 3], 8, temperature=0) == m.generate([1, 2, 3], 8, temperature=0,
                                                                  use_cache=False)
    handle.remove()
    lora = peft.apply_lora(_small(), target_modules=("qkv",), r=2).eval()
    for p in lora.parameters():       # a nonzero LoRA update, so skipping it would show
        if p.requires_grad:
            nf.nn.init.normal_(p, 0.0, 0.5)
    assert not gpt_decode.plain(lora)
    assert lora.generate([4, 5], 8, temperature=0) == lora.generate([4, 5], 8, temperature=0,
                                                                     use_cache=False)
    prefixed = peft.apply_prefix_tuning(_small(), num_virtual_tokens=2).eval()
    assert not gpt_decode.plain(prefixed)


def test_sampling_options():
    from nnforge.models.sampling import sample_next
    z = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    assert sample_next(z, temperature=0) == 0
    g = nf.Generator().manual_seed(0)
    draws = [sample_next(z, 1.0, top_k=2, generator=g) for _ in range(300)]
    assert set(draws) == {0, 1}
    draws = [sample_next(z, 1.0, top_p=0.7, generator=g) for _ in range(300)]
    assert set(draws) == {0, 1}                      # 0.5 < 0.7 <= 0.5 + 0.3
    draws = [sample_next(z, 1.0, top_p=0.5, generator=g) for _ in range(50)]
    assert set(draws) == {0}
    counts = np.bincount([sample_next(z, 1.0, generator=g) for _ in range(4000)], minlength=4)
    np.testing.assert_allclose(counts / 4000, [0.5, 0.3, 0.15, 0.05], atol=0.03)


def test_learns_a_tiny_corpus():
    text = "abcdefgh" * 40
    ids = np.array([ord(c) - 97 for c in text])
    m = _small(n_layer=1, d_model=32, block_size=16)
    opt = nf.optim.Adam(m.parameters(), lr=3e-3)
    rng = np.random.default_rng(0)
    losses = []
    for _ in range(60):
        starts = rng.integers(0, len(ids) - 17, size=8)
        w = np.stack([ids[s:s + 17] for s in starts])
        logits = m(nf.from_numpy(w[:, :-1].copy()))
        loss = nf.nn.functional.cross_entropy(logits.reshape(-1, 40),
                                              nf.from_numpy(w[:, 1:].reshape(-1).copy()))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < 0.1 * losses[0]
    assert m.generate([0], 8, temperature=0) == [1, 2, 3, 4, 5, 6, 7, 0]


def test_errors():
    with pytest.raises(ValueError, match="positions must be one of"):
        GPT(10, positions="alibi")
    with pytest.raises(ValueError, match="n_head by n_kv_head"):
        GPT(10, n_head=4, d_model=32, n_kv_head=3)
    m = _small()
    with pytest.raises(ValueError, match="exceed block_size 16"):
        m(nf.randint(0, 40, (1, 17)))
    with pytest.raises(ValueError, match=r"expected token ids of shape \(B, T\)"):
        m(nf.randint(0, 40, (17,)))
    with pytest.raises(ValueError, match="top_p must be in"):
        m.generate([1], 2, top_p=0)
    with pytest.raises(ValueError, match="at least one token"):
        m.generate([], 2)


@pytest.mark.parametrize("positions,n_kv_head", [("learned", None), ("rotary", 2)])
def test_attention_maps_are_the_weights_the_fused_forward_uses(positions, n_kv_head, tmp_path):
    m = _small(positions=positions, n_kv_head=n_kv_head).eval()
    ids = nf.randint(0, 40, (2, 9))
    maps = m.attention_maps(ids)
    assert len(maps) == 2 and tuple(maps[0].shape) == (2, 4, 9, 9)
    w = maps[0].numpy()
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-5)
    assert np.abs(np.triu(w, 1)).max() == 0                # causal
    # weights @ values, merged and projected, is the layer's fused attention output
    attn = m.blocks[0].attn
    with nf.no_grad():
        x = m.blocks[0].ln1(m.pos(m.tok_emb(ids)) if m.pos is not None else m.tok_emb(ids))
        v = attn.qkv(x)[..., 32 + attn.n_kv_head * 8:].reshape(2, 9, attn.n_kv_head, 8)
        v = np.repeat(v.numpy().transpose(0, 2, 1, 3), 4 // attn.n_kv_head, axis=1)
        ref = attn.proj(nf.from_numpy((w @ v).transpose(0, 2, 1, 3).reshape(2, 9, 32).copy()))
        np.testing.assert_allclose(attn(x).numpy(), ref.numpy(), atol=1e-5)
    if nf.viz.have_matplotlib():
        path = nf.viz.plot_attention_heads(maps[1][0], tmp_path / "heads.png",
                                           tokens=[str(i) for i in range(9)])
        assert os.path.getsize(path) > 0
    with pytest.raises(ValueError, match=r"expected weights \(heads, query, key\)"):
        nf.viz.plot_attention_heads(w[0, 0], tmp_path / "bad.png")


def test_gpt_recipe_learns_below_the_unigram_baseline_quickly():
    from nnforge.train.recipes import gpt
    r = gpt._gpt_recipe("char", 0)(steps=60, n_layer=1, d_model=48, n_head=4, block_size=32,
                                   batch_size=16, lr=5e-3, warmup=10, progress=False, log=None)
    # 60 steps of a 1-layer model; the 600-step default reaches far lower (README)
    assert r["val_bits_per_char"] < gpt.UNIGRAM_BITS
    assert len(r["sample"]) > 0 and r["history"].epochs >= 1
