"""nn.MultiheadAttention against PyTorch with copied weights: self- and
cross-attention, kdim/vdim, batch_first both ways, unbatched input, boolean and
float masks of every shape PyTorch takes, bias_kv / zero attention, weights per
head or averaged, with and without need_weights (fused kernel), all gradients."""
import numpy as np
import pytest

import nnforge as nf
from helpers import torch_or_skip


def _pair(torch, **kw):
    tm = torch.nn.MultiheadAttention(**kw).double().eval()
    m = nf.nn.MultiheadAttention(**kw, dtype=nf.float64).eval()
    m.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    return tm, m


def _run_both(torch, tm, m, t_fn, n_fn, inputs, call_kw, t_masks, n_masks):
    """Runs t_fn / n_fn (calling tm / m) on the same inputs: outputs, weights and
    the gradients of the inputs and of every parameter agree."""
    tx = [torch.tensor(a, requires_grad=True) for a in inputs]
    nx = [nf.tensor(a, requires_grad=True) for a in inputs]
    tout, tw = t_fn(*tx, **call_kw, **t_masks)
    out, w = n_fn(*nx, **call_kw, **n_masks)
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), atol=1e-10)
    if call_kw.get("need_weights", True):
        np.testing.assert_allclose(w.detach().numpy(), tw.detach().numpy(), atol=1e-10)
    else:
        assert w is None and tw is None
    g = np.random.default_rng(5).standard_normal(tuple(out.shape))
    (out * nf.tensor(g)).sum().backward()
    (tout * torch.tensor(g)).sum().backward()
    for a, b in zip(nx, tx):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), atol=1e-9)
    tparams = dict(tm.named_parameters())
    for name, p in m.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tparams[name].grad.numpy(), atol=1e-9,
                                   err_msg=name)


CASES = {
    "self": dict(kw={}, cross=False),
    "cross kdim vdim": dict(kw={"kdim": 5, "vdim": 3}, cross=True),
    "cross same dims": dict(kw={}, cross=True),
    "no bias": dict(kw={"bias": False}, cross=False),
    "bias_kv zero_attn": dict(kw={"add_bias_kv": True, "add_zero_attn": True}, cross=True),
}


# PyTorch warns that mixing a boolean key_padding_mask with a float attn_mask is deprecated.
@pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask")
@pytest.mark.parametrize("need_weights", [True, False], ids=["weights", "fused"])
@pytest.mark.parametrize("masks", ["none", "key_padding", "bool 2d", "float 3d", "mixed"])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("case", list(CASES))
def test_matches_torch(case, batch_first, masks, need_weights):
    torch = torch_or_skip()
    torch.manual_seed(0)
    spec = CASES[case]
    E, H, N, L, S = 8, 2, 3, 4, 6 if spec["cross"] else 4
    tm, m = _pair(torch, embed_dim=E, num_heads=H, batch_first=batch_first, **spec["kw"])
    rng = np.random.default_rng(0)

    def seq(length, dim):
        shape = (N, length, dim) if batch_first else (length, N, dim)
        return rng.standard_normal(shape)
    q = seq(L, E)
    if spec["cross"]:
        inputs = [q, seq(S, m.kdim), seq(S, m.vdim)]
    else:
        inputs = [q]
    kpm = np.zeros((N, S), dtype=bool)
    kpm[0, -2:] = True
    kpm[2, 0] = True
    bool2d = np.triu(np.ones((L, S), dtype=bool), 1)
    float3d = rng.standard_normal((N * H, L, S))
    t_masks, n_masks = {}, {}
    if masks in ("key_padding", "mixed"):
        t_masks["key_padding_mask"] = torch.tensor(kpm)
        n_masks["key_padding_mask"] = nf.tensor(kpm)
    if masks == "bool 2d":
        t_masks["attn_mask"], n_masks["attn_mask"] = torch.tensor(bool2d), nf.tensor(bool2d)
    if masks in ("float 3d", "mixed"):
        t_masks["attn_mask"], n_masks["attn_mask"] = torch.tensor(float3d), nf.tensor(float3d)
    if spec["cross"]:
        t_fn, n_fn = tm, m
    else:      # self-attention: one tensor as query, key and value (one packed projection)
        def t_fn(x, **kw):
            return tm(x, x, x, **kw)

        def n_fn(x, **kw):
            return m(x, x, x, **kw)
    _run_both(torch, tm, m, t_fn, n_fn, inputs, {"need_weights": need_weights}, t_masks,
              n_masks)


@pytest.mark.parametrize("average", [True, False])
def test_unbatched_and_per_head_weights(average):
    torch = torch_or_skip()
    torch.manual_seed(1)
    tm, m = _pair(torch, embed_dim=6, num_heads=3)
    rng = np.random.default_rng(1)
    q, k = rng.standard_normal((4, 6)), rng.standard_normal((5, 6))
    kpm = np.array([False, False, True, False, True])
    tout, tw = tm(torch.tensor(q), torch.tensor(k), torch.tensor(k),
                  key_padding_mask=torch.tensor(kpm), average_attn_weights=average)
    out, w = m(nf.tensor(q), nf.tensor(k), nf.tensor(k), key_padding_mask=nf.tensor(kpm),
               average_attn_weights=average)
    assert tuple(w.shape) == tuple(tw.shape) == ((4, 5) if average else (3, 4, 5))
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), atol=1e-10)
    np.testing.assert_allclose(w.detach().numpy(), tw.detach().numpy(), atol=1e-10)


def test_state_dict_layout_and_init():
    torch = torch_or_skip()
    tm = torch.nn.MultiheadAttention(8, 2, kdim=4, vdim=6, add_bias_kv=True)
    m = nf.nn.MultiheadAttention(8, 2, kdim=4, vdim=6, add_bias_kv=True)
    assert {k: tuple(v.shape) for k, v in m.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in tm.state_dict().items()}
    m = nf.nn.MultiheadAttention(16, 4)
    assert float(abs(m.in_proj_bias).sum()) == 0 and float(abs(m.out_proj.bias).sum()) == 0
    bound = (6 / (16 + 48)) ** 0.5       # xavier_uniform_ on the packed (48, 16) weight
    assert float(abs(m.in_proj_weight).max()) <= bound
    assert float(abs(m.in_proj_weight).max()) > 0.8 * bound


def test_dropout_on_weights_only_in_training():
    nf.manual_seed(0)
    m = nf.nn.MultiheadAttention(8, 2, dropout=0.5, batch_first=True)
    x = nf.randn(2, 5, 8)
    m.train()
    _, w = m(x, x, x, average_attn_weights=False)
    assert float((w == 0).float().mean()) > 0.2            # dropped weights
    m.eval()
    _, w = m(x, x, x, average_attn_weights=False)
    np.testing.assert_allclose(w.sum(-1).detach().numpy(), np.ones((2, 2, 5)), rtol=1e-5)


def test_errors():
    with pytest.raises(ValueError, match=r"embed_dim \(10\) must be divisible by num_heads \(3\)"):
        nf.nn.MultiheadAttention(10, 3)
    m = nf.nn.MultiheadAttention(8, 2, batch_first=True)
    x = nf.randn(2, 5, 8)
    with pytest.raises(ValueError, match="query must have 8 features"):
        m(nf.randn(2, 5, 7), x, x)
    with pytest.raises(ValueError, match=r"key_padding_mask must have shape \(2, 5\)"):
        m(x, x, x, key_padding_mask=nf.zeros(2, 4, dtype=nf.bool))
    with pytest.raises(ValueError, match=r"2-D attn_mask must have shape \(5, 5\)"):
        m(x, x, x, attn_mask=nf.zeros(5, 4, dtype=nf.bool))
    with pytest.raises(RuntimeError, match="is_causal is a hint"):
        m(x, x, x, is_causal=True)
    with pytest.raises(ValueError, match="same batch and sequence"):
        m(x, x, nf.randn(2, 4, 8))
