"""nf.peft: LoRA (identity start, merge/unmerge, name patterns), adapters, prefix- and
prompt-tuning on a small GPT: exact trainable counts, gradients only where they
belong, KV-cache generation equal to recomputation, loss falls on a tiny task,
errors."""
import copy

import numpy as np
import pytest

import nnforge as nf
from nnforge import peft
from nnforge.models import GPT

V, D, L, H, BLOCK = 23, 32, 2, 4, 24


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny matrices: one thread is fastest, and on a busy shared machine two threads
    # that wait on each other made this file 10x slower.
    threads = nf.get_num_threads()
    nf.set_num_threads(1)
    yield
    nf.set_num_threads(threads)


def _gpt(**kw):
    nf.manual_seed(0)
    args = dict(block_size=BLOCK, n_layer=L, n_head=H, d_model=D)
    args.update(kw)
    return GPT(V, **args).eval()


def _ids(b=2, t=10, seed=1):
    return nf.from_numpy(np.random.default_rng(seed).integers(0, V, (b, t)))


def _np(t):
    return t.detach().numpy()


def _randomize(params, seed=3, scale=0.1):
    rng = np.random.default_rng(seed)
    with nf.no_grad():
        for p in params:
            p.copy_(nf.from_numpy((scale * rng.standard_normal(p.shape)).astype(np.float32)))


def _trainable(model):
    return {n for n, p in model.named_parameters() if p.requires_grad}


# ----------------------------------------------------------------------------- LoRA
def test_lora_starts_as_the_base_model_and_counts_exactly():
    m = _gpt()
    x = _ids()
    before = _np(m(x))
    total = sum(p.numel() for p in m.parameters())
    peft.apply_lora(m, ("qkv", "proj"), r=4, alpha=8)
    np.testing.assert_array_equal(_np(m(x)), before)          # B = 0: nothing changes
    # per layer: qkv (D -> 3D) and proj (D -> D); r (in + out) each
    assert peft.count_parameters(m) == (L * 4 * ((D + 3 * D) + (D + D)),
                                        total + L * 4 * (4 * D + 2 * D))
    assert _trainable(m) == {f"blocks.{i}.attn.{n}.lora_{ab}" for i in range(L)
                             for n in ("qkv", "proj") for ab in "AB"}
    lin = m.blocks[0].attn.qkv
    assert isinstance(lin, peft.LoRALinear) and lin.scaling == 2.0
    assert "blocks.0.attn.qkv.weight" in m.state_dict()       # base names unchanged
    assert "trainable%" in peft.trainable_summary(m)


def test_lora_matches_formula_and_merge_unmerge_are_exact():
    nf.manual_seed(0)
    fc = nf.nn.Linear(7, 5)
    w0 = _np(fc.weight).copy()
    lora = peft.LoRALinear(fc, r=3, alpha=6)
    _randomize([lora.lora_B])
    x = nf.randn(4, 7)
    a, b = _np(lora.lora_A), _np(lora.lora_B)
    want = _np(x) @ (w0 + 2.0 * b @ a).T + _np(fc.bias)
    y = _np(lora(x))
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)
    lora.merge()
    assert lora.merged
    np.testing.assert_allclose(_np(lora.weight), w0 + 2.0 * b @ a, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(_np(lora(x)), y, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_np(lora.to_linear()(x)), y, rtol=1e-5, atol=1e-6)
    lora.unmerge()
    np.testing.assert_allclose(_np(lora.weight), w0, rtol=0, atol=1e-6)
    np.testing.assert_allclose(_np(lora(x)), y, rtol=1e-5, atol=1e-6)
    with pytest.raises(RuntimeError, match="not merged"):
        lora.unmerge()


def test_merge_lora_on_a_whole_model():
    m = _gpt()
    peft.apply_lora(m, ("qkv", "proj", "mlp.0", "mlp.2"), r=2)
    _randomize([p for p in m.parameters() if p.requires_grad], scale=0.2)
    x = _ids()
    y = _np(m(x))
    assert np.abs(y - _np(_gpt()(x))).max() > 1e-3            # the update does something
    peft.merge_lora(m)
    np.testing.assert_allclose(_np(m(x)), y, rtol=1e-4, atol=1e-5)
    peft.unmerge_lora(m)
    np.testing.assert_allclose(_np(m(x)), y, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(_np(m.blocks[1].mlp[0].weight),
                               _np(_gpt().blocks[1].mlp[0].weight), atol=1e-6)


def test_lora_state_dict_round_trip():
    m = _gpt()
    peft.apply_lora(m, r=2)
    _randomize([p for p in m.parameters() if p.requires_grad])
    sd = peft.lora_state_dict(m)
    assert set(sd) == {n for n in _trainable(m)}
    assert set(peft.trainable_state_dict(m)) == set(sd)
    fresh = peft.apply_lora(_gpt(), r=2)
    result = fresh.load_state_dict(sd, strict=False)
    assert not result.unexpected_keys
    x = _ids()
    np.testing.assert_array_equal(_np(fresh(x)), _np(m(x)))


@pytest.mark.parametrize("target, chosen", [
    (("qkv",), {f"blocks.{i}.attn.qkv" for i in range(L)}),
    (("attn.proj",), {f"blocks.{i}.attn.proj" for i in range(L)}),
    (("blocks.1.*",), {"blocks.1.attn.qkv", "blocks.1.attn.proj", "blocks.1.mlp.0",
                       "blocks.1.mlp.2"}),
    (r"blocks\.0\.mlp\.\d", {"blocks.0.mlp.0", "blocks.0.mlp.2"}),
    (lambda name, mod: mod.out_features == D and "mlp" in name,
     {f"blocks.{i}.mlp.2" for i in range(L)}),
])
def test_lora_selects_linear_layers_by_name(target, chosen):
    m = peft.apply_lora(_gpt(), target, r=2)
    got = {n for n, mod in m.named_modules() if isinstance(mod, peft.LoRALinear)}
    assert got == chosen
    assert not isinstance(m.head, peft.LoRALinear)


def test_lora_errors():
    with pytest.raises(ValueError, match=r"matches no Linear.*blocks.0.attn.qkv"):
        peft.apply_lora(_gpt(), ("nothing",))
    with pytest.raises(ValueError, match="matches no Linear"):
        peft.apply_lora(_gpt(), r"blocks\.9\..*")
    with pytest.raises(ValueError, match="regular expression"):
        peft.apply_lora(_gpt(), "blocks.[")
    for r in (0, -2, 1.5):
        with pytest.raises(ValueError, match="r must be a positive int"):
            peft.apply_lora(_gpt(), r=r)
        with pytest.raises(ValueError, match="r must be a positive int"):
            peft.LoRALinear(nf.nn.Linear(3, 3), r=r)
    with pytest.raises(TypeError, match="must be an nnforge.nn.Linear"):
        peft.LoRALinear(nf.nn.Conv1d(3, 3, 1))
    m = peft.apply_lora(_gpt(), ("qkv",))
    with pytest.raises(ValueError, match="already has LoRA"):
        peft.apply_lora(m, ("qkv",))
    with pytest.raises(ValueError, match="no LoRALinear"):
        peft.merge_lora(_gpt())
    peft.merge_lora(m)
    with pytest.raises(RuntimeError, match="already merged"):
        m.blocks[0].attn.qkv.merge()


# ------------------------------------------------------------------------- adapters
def test_adapters_start_as_identity_and_count_exactly():
    m = _gpt()
    x = _ids()
    before = _np(m(x))
    total = sum(p.numel() for p in m.parameters())
    peft.apply_adapters(m, bottleneck=5)
    np.testing.assert_array_equal(_np(m(x)), before)
    per = 2 * 5 * D + 5 + D
    assert peft.count_parameters(m) == (2 * L * per, total + 2 * L * per)
    assert all(".adapter." in n for n in _trainable(m))
    with pytest.raises(ValueError, match="already has adapters"):
        peft.apply_adapters(m)
    twin = copy.deepcopy(m)
    np.testing.assert_array_equal(_np(twin(x)), before)
    assert twin.blocks[0].attn.n_head == H          # wrapped attributes still readable
    with pytest.raises(ValueError, match="no GPTBlock"):
        peft.apply_adapters(nf.nn.Linear(3, 3))
    with pytest.raises(ValueError, match="bottleneck"):
        peft.Adapter(8, 0)


def test_adapters_on_transformer_encoder_layer():
    nf.manual_seed(0)
    layer = nf.nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, dropout=0.0,
                                          batch_first=True).eval()
    x = nf.randn(2, 5, 16)
    before = _np(layer(x))
    peft.apply_adapters(layer, bottleneck=4)
    np.testing.assert_allclose(_np(layer(x)), before, rtol=1e-6, atol=1e-6)
    assert peft.count_parameters(layer)[0] == 2 * (2 * 4 * 16 + 4 + 16)
    _randomize([p for p in layer.parameters() if p.requires_grad])
    layer(x).sum().backward()
    for n, p in layer.named_parameters():
        assert (p.grad is not None) == (".adapter." in n), n


# ------------------------------------------------------------------- prefix / prompt
def test_prefix_counts_and_kv_cache_generation_equals_recomputation():
    for kw in (dict(), dict(positions="rotary", n_kv_head=2)):
        m = _gpt(**kw)
        total = sum(p.numel() for p in m.parameters())
        peft.apply_prefix_tuning(m, num_virtual_tokens=3)
        kv = m.blocks[0].attn.n_kv_head * (D // H)
        assert peft.count_parameters(m) == (L * 2 * 3 * kv, total + L * 2 * 3 * kv)
        assert all(".attn.prefix." in n for n in _trainable(m))
        x = _ids(1, 9)
        full = _np(m(x))
        cache = m.new_cache()
        steps = [_np(m(x[:, :4], cache))] + [_np(m(x[:, t:t + 1], cache)) for t in range(4, 9)]
        np.testing.assert_allclose(np.concatenate(steps, 1), full, rtol=1e-4, atol=1e-5)
        prompt = [1, 2, 3]
        a = m.generate(prompt, 30, temperature=0.0, use_cache=True)      # past block_size
        b = m.generate(prompt, 30, temperature=0.0, use_cache=False)
        assert a == b


def test_prefix_changes_attention_and_init_from_tokens():
    m = _gpt()
    x = _ids()
    base = _np(m(x))
    peft.apply_prefix_tuning(m, 4, init_ids=[5, 6, 7, 8])
    assert np.abs(_np(m(x)) - base).max() > 1e-4
    # a prefix taken from tokens' keys/values acts like those tokens seen before (as far
    # as attention goes: positions differ), so it must equal what the cache would hold
    cache = _gpt().new_cache()
    _gpt()(nf.tensor([[5, 6, 7, 8]]), cache)
    np.testing.assert_allclose(_np(m.blocks[1].attn.prefix.key), _np(cache.layers[1][0][0]))
    peft.remove_prefix_tuning(m)
    np.testing.assert_array_equal(_np(m(x)), base)
    with pytest.raises(ValueError, match="init_ids holds 2 ids"):
        peft.apply_prefix_tuning(_gpt(), 4, init_ids=[1, 2])
    with pytest.raises(ValueError, match="num_virtual_tokens"):
        peft.apply_prefix_tuning(_gpt(), 0)
    with pytest.raises(ValueError, match="no GPT"):
        peft.apply_prefix_tuning(nf.nn.Linear(2, 2))


def test_trainable_state_dict_saves_prefix_and_prompt(tmp_path):
    for wrap in (lambda m: peft.apply_prefix_tuning(m, 3),
                 lambda m: peft.PromptTuning(m, 3).eval()):
        tuned = wrap(_gpt())
        _randomize([p for p in tuned.parameters() if p.requires_grad], seed=5)
        sd = peft.trainable_state_dict(tuned)
        assert set(sd) == _trainable(tuned)
        nf.save(sd, str(tmp_path / "adapter.safetensors"))
        fresh = wrap(_gpt())
        fresh.load_state_dict(nf.load(str(tmp_path / "adapter.safetensors")), strict=False)
        x = _ids()
        np.testing.assert_array_equal(_np(fresh(x)), _np(tuned(x)))


def test_prompt_tuning_shapes_counts_and_generation():
    m = _gpt()
    total = sum(p.numel() for p in m.parameters())
    pt = peft.PromptTuning(m, num_virtual_tokens=5, init_ids=[1, 2, 3, 4, 5]).eval()
    np.testing.assert_array_equal(_np(pt.prompt), _np(m.tok_emb.weight)[[1, 2, 3, 4, 5]])
    assert peft.count_parameters(pt) == (5 * D, total + 5 * D)
    assert _trainable(pt) == {"prompt"}
    x = _ids(2, 7)
    y = pt(x)
    assert tuple(y.shape) == (2, 7, V)
    # the same as feeding the prompt's tokens as text, then dropping their logits
    ids = np.concatenate([np.tile([1, 2, 3, 4, 5], (2, 1)), x.numpy()], 1)
    np.testing.assert_allclose(_np(y), _np(m(nf.from_numpy(ids)))[:, 5:], rtol=1e-5, atol=1e-5)
    a = pt.generate([1, 2], 25, temperature=0.0, use_cache=True)
    b = pt.generate([1, 2], 25, temperature=0.0, use_cache=False)
    assert a == b and len(a) == 25
    with pytest.raises(ValueError, match="init_ids holds 1 ids"):
        peft.PromptTuning(_gpt(), 2, init_ids=[1])
    with pytest.raises(ValueError, match="num_virtual_tokens"):
        peft.PromptTuning(_gpt(), BLOCK)
    with pytest.raises(TypeError, match="GPT"):
        peft.PromptTuning(nf.nn.Linear(2, 2))


# ------------------------------------------------- gradients and a tiny task, every method
def _wrap(method, m):
    if method == "full":
        return m
    if method == "lora":
        return peft.apply_lora(m, ("qkv", "proj"), r=4)
    if method == "adapter":
        return peft.apply_adapters(m, bottleneck=8)
    if method == "prefix":
        return peft.apply_prefix_tuning(m, 4, init_ids=[0, 1, 2, 3])
    return peft.PromptTuning(m, 4, init_ids=[0, 1, 2, 3])


def _task(seed=0):
    """Sequences counting up modulo V from a random start: next token = this + 1."""
    rng = np.random.default_rng(seed)
    seq = (rng.integers(0, V, (16, 1)) + np.arange(17)) % V
    return nf.from_numpy(seq[:, :-1]), nf.from_numpy(seq[:, 1:])


@pytest.mark.parametrize("method", ["full", "lora", "adapter", "prefix", "prompt"])
def test_each_method_trains_only_its_parameters_and_lowers_loss(method):
    # The frozen base: a GPT with N(0, 0.3^2) weights, far from the near-constant
    # function GPT-2's N(0, 0.02^2) start computes, so that its attention responds to a
    # prefix or a prompt as a trained model's would.
    base = _gpt()
    _randomize([p for p in base.parameters() if p.ndim == 2], seed=0, scale=0.3)
    model = _wrap(method, base)
    model.train()
    names = _trainable(model)
    x, y = _task()

    def loss_fn():
        logits = model(x)
        return nf.nn.functional.cross_entropy(logits.reshape(-1, V), y.reshape(-1))

    opt = nf.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-2)
    first = float(loss_fn())
    for step in range(15):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        if step == 0:
            for n, p in model.named_parameters():
                assert (p.grad is not None) == (n in names), n
            # (LoRA's A and an adapter's down-projection get zero gradients at first:
            # B and the up-projection start at zero)
            assert any(np.abs(p.grad.numpy()).max() > 0 for p in model.parameters()
                       if p.grad is not None)
        opt.step()
    last = float(loss_fn())
    assert last < first - 0.3, (method, first, last)


def test_finetune_recipe_runs_small(tmp_path):
    from nnforge.train.recipes import finetune
    source, target = finetune.speaker_split("A:\nx\n\nB:\ny\ny\n\nA:\nz\n", "A")
    assert (source, target) == ("B:\ny\ny\n\n", "A:\nx\n\nA:\nz\n\n")
    with pytest.raises(ValueError, match="no speech of 'NOBODY'"):
        finetune.speaker_split("A:\nx\n", "NOBODY")
    lines = []
    small = dict(batch_size=2, block_size=24, n_layer=1, n_head=2, d_model=16,
                 source_eval_chars=2000, progress=False)
    out = finetune.finetune_tinyshakespeare(pretrain_steps=2, steps=2, log=lines.append,
                                            out_dir=str(tmp_path), **small)
    assert [r["method"] for r in out["rows"]] == list(finetune.METHODS)
    shares = {r["method"]: r["trainable"] for r in out["rows"]}
    assert shares["full"] == out["rows"][0]["total"]
    assert shares["prompt"] == finetune.N_VIRTUAL * 16
    assert shares["prefix"] == 1 * 2 * finetune.N_VIRTUAL * 16
    assert all(np.isfinite(r["target_after"]) for r in out["rows"])
    assert (tmp_path / "finetune.json").exists() and any("lora" in ln for ln in lines)
    again = finetune.finetune_tinyshakespeare(
        steps=1, methods=("lora",), pretrained=str(tmp_path / "pretrained.safetensors"),
        log=None, **small)
    assert again["target_before"] == pytest.approx(out["target_before"], rel=1e-6)
    with pytest.raises(ValueError, match="unknown methods"):
        finetune.finetune_tinyshakespeare(methods=("bitfit",), log=None)
