"""Transformer layers and stacks against PyTorch with copied state_dicts (eval
mode: outputs, input and parameter gradients), post- and pre-norm, relu/gelu,
batch_first both ways, causal and padding masks; the mask helper; errors."""
import numpy as np
import pytest

import nnforge as nf
from helpers import torch_or_skip


def _copy(tm, m):
    m.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    return tm.double().eval(), m.eval()


def _check_grads(tm, m, pairs):
    for a, b in pairs:
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), atol=1e-9)
    tparams = dict(tm.named_parameters())
    names = [n for n, _ in m.named_parameters()]
    assert sorted(names) == sorted(tparams)
    for name, p in m.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tparams[name].grad.numpy(), atol=1e-9,
                                   err_msg=name)


def _seq(rng, batch_first, n, length, e):
    return rng.standard_normal((n, length, e) if batch_first else (length, n, e))


# PyTorch warns that mixing a boolean padding mask with a float attn mask is deprecated.
@pytest.mark.filterwarnings("ignore:Support for mismatched src_key_padding_mask")
@pytest.mark.parametrize("norm_first,activation,batch_first,masks", [
    (False, "relu", False, "none"),
    (True, "gelu", True, "causal"),
    (False, "gelu", True, "padding"),
    (True, "relu", False, "both"),
])
def test_encoder_layer_and_stack_match_torch(norm_first, activation, batch_first, masks):
    torch = torch_or_skip()
    torch.manual_seed(0)
    E, H, F_, N, L = 8, 2, 16, 3, 5
    kw = dict(dim_feedforward=F_, activation=activation, batch_first=batch_first,
              norm_first=norm_first)
    t_layer = torch.nn.TransformerEncoderLayer(E, H, **kw)
    t_stack = torch.nn.TransformerEncoder(t_layer, 2, norm=torch.nn.LayerNorm(E),
                                          enable_nested_tensor=False)
    m_stack = nf.nn.TransformerEncoder(
        nf.nn.TransformerEncoderLayer(E, H, **kw, dtype=nf.float64), 2,
        norm=nf.nn.LayerNorm(E, dtype=nf.float64))
    tm, m = _copy(t_stack, m_stack)
    rng = np.random.default_rng(0)
    x = _seq(rng, batch_first, N, L, E)
    pad = np.zeros((N, L), dtype=bool)
    pad[1, -2:] = True
    t_kw, n_kw = {}, {}
    if masks in ("causal", "both"):
        t_kw["mask"] = torch.nn.Transformer.generate_square_subsequent_mask(L, dtype=torch.float64)
        n_kw["mask"] = nf.nn.Transformer.generate_square_subsequent_mask(L, dtype=nf.float64)
    if masks in ("padding", "both"):
        t_kw["src_key_padding_mask"], n_kw["src_key_padding_mask"] = torch.tensor(pad), \
            nf.tensor(pad)
    tx, nx = torch.tensor(x, requires_grad=True), nf.tensor(x, requires_grad=True)
    ty, ny = tm(tx, **t_kw), m(nx, **n_kw)
    np.testing.assert_allclose(ny.detach().numpy(), ty.detach().numpy(), atol=1e-10)
    g = rng.standard_normal(tuple(ny.shape))
    (ny * nf.tensor(g)).sum().backward()
    (ty * torch.tensor(g)).sum().backward()
    _check_grads(tm, m, [(nx, tx)])


@pytest.mark.parametrize("norm_first,batch_first", [(False, False), (True, True)])
def test_decoder_layer_matches_torch(norm_first, batch_first):
    torch = torch_or_skip()
    torch.manual_seed(1)
    E, H, N, T, S = 8, 4, 2, 4, 6
    kw = dict(dim_feedforward=12, batch_first=batch_first, norm_first=norm_first)
    tm, m = _copy(torch.nn.TransformerDecoderLayer(E, H, **kw),
                  nf.nn.TransformerDecoderLayer(E, H, **kw, dtype=nf.float64))
    rng = np.random.default_rng(1)
    tgt, mem = _seq(rng, batch_first, N, T, E), _seq(rng, batch_first, N, S, E)
    mpad = np.zeros((N, S), dtype=bool)
    mpad[0, -3:] = True
    t_in = [torch.tensor(a, requires_grad=True) for a in (tgt, mem)]
    n_in = [nf.tensor(a, requires_grad=True) for a in (tgt, mem)]
    ty = tm(*t_in, tgt_mask=torch.nn.Transformer.generate_square_subsequent_mask(
        T, dtype=torch.float64), memory_key_padding_mask=torch.tensor(mpad), tgt_is_causal=True)
    ny = m(*n_in, tgt_mask=nf.nn.Transformer.generate_square_subsequent_mask(
        T, dtype=nf.float64), memory_key_padding_mask=nf.tensor(mpad), tgt_is_causal=True)
    np.testing.assert_allclose(ny.detach().numpy(), ty.detach().numpy(), atol=1e-10)
    ny.sum().backward()
    ty.sum().backward()
    _check_grads(tm, m, zip(n_in, t_in))


def test_full_transformer_matches_torch_and_inits_like_it():
    torch = torch_or_skip()
    torch.manual_seed(2)
    kw = dict(d_model=8, nhead=2, num_encoder_layers=2, num_decoder_layers=1,
              dim_feedforward=16, batch_first=True)
    t_model = torch.nn.Transformer(**kw)
    m = nf.nn.Transformer(**kw, dtype=nf.float64)
    assert {k: tuple(v.shape) for k, v in m.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in t_model.state_dict().items()}
    w = m.encoder.layers[0].linear1.weight        # Xavier-uniform: |w| <= sqrt(6 / (8 + 16))
    assert float(abs(w).max()) <= (6 / 24) ** 0.5
    tm, m = _copy(t_model, m)
    rng = np.random.default_rng(2)
    src, tgt = rng.standard_normal((2, 7, 8)), rng.standard_normal((2, 5, 8))
    spad = np.zeros((2, 7), dtype=bool)
    spad[1, 5:] = True
    t_in = [torch.tensor(a, requires_grad=True) for a in (src, tgt)]
    n_in = [nf.tensor(a, requires_grad=True) for a in (src, tgt)]
    t_mask = torch.nn.Transformer.generate_square_subsequent_mask(5, dtype=torch.float64)
    n_mask = nf.nn.Transformer.generate_square_subsequent_mask(5, dtype=nf.float64)
    ty = tm(*t_in, tgt_mask=t_mask, src_key_padding_mask=torch.tensor(spad),
            memory_key_padding_mask=torch.tensor(spad))
    ny = m(*n_in, tgt_mask=n_mask, src_key_padding_mask=nf.tensor(spad),
           memory_key_padding_mask=nf.tensor(spad))
    np.testing.assert_allclose(ny.detach().numpy(), ty.detach().numpy(), atol=1e-10)
    ny.sum().backward()
    ty.sum().backward()
    _check_grads(tm, m, zip(n_in, t_in))


def test_causal_mask_helper():
    torch = torch_or_skip()
    for n in (1, 4):
        np.testing.assert_array_equal(
            nf.nn.Transformer.generate_square_subsequent_mask(n).numpy(),
            torch.nn.Transformer.generate_square_subsequent_mask(n).numpy())
    from nnforge.nn.transformer import _is_causal_mask
    mask = nf.nn.Transformer.generate_square_subsequent_mask(4)
    assert _is_causal_mask(mask, 4) and not _is_causal_mask(mask, 3)
    assert _is_causal_mask(nf.tensor(np.triu(np.ones((4, 4), bool), 1)), 4)
    assert not _is_causal_mask(nf.zeros(4, 4), 4)


def test_dropout_only_in_training_and_errors():
    nf.manual_seed(0)
    layer = nf.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.5, batch_first=True)
    x = nf.randn(2, 5, 8)
    layer.train()
    a, b = layer(x), layer(x)
    assert float(abs(a - b).max()) > 1e-3
    layer.eval()
    np.testing.assert_array_equal(layer(x).detach().numpy(), layer(x).detach().numpy())
    with pytest.raises(RuntimeError, match="activation should be relu/gelu"):
        nf.nn.TransformerEncoderLayer(8, 2, activation="tanh")
    model = nf.nn.Transformer(8, 2, 1, 1, 16, batch_first=True)
    with pytest.raises(RuntimeError, match="batch number of src and tgt must be equal"):
        model(nf.randn(2, 5, 8), nf.randn(3, 4, 8))
    with pytest.raises(RuntimeError, match="feature number of src and tgt"):
        model(nf.randn(2, 5, 8), nf.randn(2, 4, 6))
