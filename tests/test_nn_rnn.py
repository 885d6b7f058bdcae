"""nn.RNN / LSTM / GRU and the cells against PyTorch (state_dicts copied: outputs,
final states and every gradient, packed sequences for ``lengths``), the extras
(peephole, coupled, merge modes, IRNN init) against the numpy reference of
test_rnn_kernels, float64 gradcheck of each cell, and the error messages."""
import numpy as np
import pytest

import nnforge as nf

from helpers import check_op, run_gradcheck, torch_or_skip
from test_rnn_kernels import ref_layer

KINDS = [("RNN", {}), ("RNN", {"nonlinearity": "relu"}), ("LSTM", {}), ("GRU", {})]
KIND_IDS = ["rnn_tanh", "rnn_relu", "lstm", "gru"]


def _pair(torch, cls, kw, dtype="float64", **common):
    tm = getattr(torch.nn, cls)(**common, **kw)
    tm = tm.double() if dtype == "float64" else tm
    m = getattr(nf.nn, cls)(**common, **kw, dtype=getattr(nf, dtype))
    m.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    return tm, m


def _states(out, lstm):
    return list(out[1]) if lstm else [out[1]]


@pytest.mark.parametrize("num_layers,bidirectional,batch_first,with_hx,with_lengths", [
    (1, False, False, False, False),
    (2, True, True, True, False),
    (3, False, False, True, True),
    (2, True, False, False, True),
    (1, True, True, True, True),
])
@pytest.mark.parametrize("cls,kw", KINDS, ids=KIND_IDS)
def test_matches_torch(cls, kw, num_layers, bidirectional, batch_first, with_hx, with_lengths):
    torch = torch_or_skip()
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    T, B, I, H = 6, 4, 5, 3
    D = 2 if bidirectional else 1
    lstm = cls == "LSTM"
    tm, m = _pair(torch, cls, kw, input_size=I, hidden_size=H, num_layers=num_layers,
                  bidirectional=bidirectional, batch_first=batch_first)
    x = rng.standard_normal((B, T, I) if batch_first else (T, B, I))
    hx = [rng.standard_normal((num_layers * D, B, H)) for _ in range(2 if lstm else 1)]
    lengths = [6, 2, 5, 1] if with_lengths else None

    tx = torch.tensor(x, requires_grad=True)
    thx = [torch.tensor(h, requires_grad=True) for h in hx]
    t_arg = (tuple(thx) if lstm else thx[0]) if with_hx else None
    if with_lengths:
        packed = torch.nn.utils.rnn.pack_padded_sequence(tx, lengths, batch_first=batch_first,
                                                         enforce_sorted=False)
        tout = tm(packed, t_arg)
        ty, _ = torch.nn.utils.rnn.pad_packed_sequence(tout[0], batch_first=batch_first,
                                                       total_length=T)
    else:
        tout = tm(tx, t_arg)
        ty = tout[0]
    nx = nf.tensor(x, requires_grad=True)
    nhx = [nf.tensor(h, requires_grad=True) for h in hx]
    n_arg = (tuple(nhx) if lstm else nhx[0]) if with_hx else None
    out = m(nx, n_arg, lengths=lengths)
    ny = out[0]

    np.testing.assert_allclose(ny.detach().numpy(), ty.detach().numpy(), atol=1e-10)
    for a, b in zip(_states(out, lstm), _states(tout, lstm)):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), atol=1e-10)

    gy = rng.standard_normal(ty.shape)
    gs = [rng.standard_normal(s.shape) for s in _states(tout, lstm)]
    torch.autograd.backward([ty] + _states(tout, lstm),
                            [torch.tensor(gy)] + [torch.tensor(g) for g in gs])
    nf.autograd.backward([ny] + _states(out, lstm), [nf.tensor(gy)] + [nf.tensor(g) for g in gs])
    np.testing.assert_allclose(nx.grad.numpy(), tx.grad.numpy(), atol=1e-9)
    if with_hx:
        for a, b in zip(nhx, thx):
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), atol=1e-9)
    tparams = dict(tm.named_parameters())
    for name, p in m.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tparams[name].grad.numpy(), atol=1e-9,
                                   err_msg=name)


@pytest.mark.parametrize("cls,kw", KINDS, ids=KIND_IDS)
def test_float32_unbatched_and_state_dict_keys(cls, kw):
    torch = torch_or_skip()
    torch.manual_seed(1)
    tm, m = _pair(torch, cls, kw, dtype="float32", input_size=3, hidden_size=4, num_layers=2,
                  bidirectional=True)
    assert list(m.state_dict()) == list(tm.state_dict())
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    out, tout = m(nf.tensor(x)), tm(torch.tensor(x))
    assert out[0].dtype == nf.float32 and tuple(out[0].shape) == tuple(tout[0].shape)
    np.testing.assert_allclose(out[0].detach().numpy(), tout[0].detach().numpy(), atol=2e-6)
    for a, b in zip(_states(out, cls == "LSTM"), _states(tout, cls == "LSTM")):
        assert tuple(a.shape) == tuple(b.shape)
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), atol=2e-6)


@pytest.mark.parametrize("cls,kw", KINDS, ids=KIND_IDS)
def test_unbatched_with_hx_matches_torch(cls, kw):
    torch = torch_or_skip()
    torch.manual_seed(2)
    tm, m = _pair(torch, cls, kw, input_size=3, hidden_size=2, num_layers=2, bidirectional=True,
                  batch_first=True)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 3))
    hs = [rng.standard_normal((4, 2)) for _ in range(2 if cls == "LSTM" else 1)]
    t_hx = tuple(torch.tensor(h) for h in hs) if cls == "LSTM" else torch.tensor(hs[0])
    n_hx = tuple(nf.tensor(h) for h in hs) if cls == "LSTM" else nf.tensor(hs[0])
    out, tout = m(nf.tensor(x), n_hx), tm(torch.tensor(x), t_hx)
    np.testing.assert_allclose(out[0].detach().numpy(), tout[0].detach().numpy(), atol=1e-12)
    for a, b in zip(_states(out, cls == "LSTM"), _states(tout, cls == "LSTM")):
        assert tuple(a.shape) == tuple(b.shape) == (4, 2)
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), atol=1e-12)


def test_dropout_between_layers_only_in_training():
    torch_or_skip()
    m = nf.nn.LSTM(3, 4, num_layers=2, dropout=0.5, dtype=nf.float64)
    x = nf.randn(5, 2, 3, dtype=nf.float64)
    m.eval()
    a, b = m(x)[0].detach().numpy(), m(x)[0].detach().numpy()
    np.testing.assert_array_equal(a, b)
    m.train()
    nf.manual_seed(0)
    c = m(x)[0].detach().numpy()
    assert not np.allclose(a, c)
    single = nf.nn.LSTM(3, 4, num_layers=1, dropout=0.5, dtype=nf.float64)  # nothing to drop
    single.train()
    np.testing.assert_array_equal(single(x)[0].detach().numpy(), single(x)[0].detach().numpy())


# ---------------------------------------------------------------- cells
CELLS = [("RNNCell", {}, "rnn_tanh_cell"), ("RNNCell", {"nonlinearity": "relu"}, "rnn_relu_cell"),
         ("LSTMCell", {}, "lstm_cell"), ("GRUCell", {}, "gru_cell")]


@pytest.mark.parametrize("cls,kw,fn", CELLS, ids=[c[2] for c in CELLS])
def test_cell_functions_match_torch_and_gradcheck(cls, kw, fn):
    torch = torch_or_skip()
    from nnforge.ops import rnn as ops
    G = {"RNNCell": 1, "LSTMCell": 4, "GRUCell": 3}[cls]
    B, I, H = 3, 4, 3
    shapes = [(B, I), (B, H)] + ([(B, H)] if cls == "LSTMCell" else []) + \
        [(G * H, I), (G * H, H), (G * H,), (G * H,)]
    if cls == "LSTMCell":
        # (h, c + 0): autograd.backward([h, c]) with two outputs of one node as roots
        # counts that node's edges twice (engine._topological_order), reported to the lead.
        def nf_fn(x, h, c, *w):
            h1, c1 = ops.lstm_cell(x, h, c, *w)
            return h1, c1 + 0
        th_fn = lambda x, h, c, *w: torch.lstm_cell(x, (h, c), *w)  # noqa: E731
    else:
        nf_fn = getattr(ops, fn)
        th_fn = getattr(torch, fn)
    check_op(nf_fn, th_fn, shapes=shapes, low=-1.0, high=1.0, dtype="float64")
    check_op(nf_fn, th_fn, shapes=shapes, low=-1.0, high=1.0, dtype="float32", gradcheck=False,
             grad_atol=1e-5)


@pytest.mark.parametrize("cls,kw,fn", CELLS, ids=[c[2] for c in CELLS])
@pytest.mark.parametrize("unbatched", [False, True])
def test_cell_modules_match_torch(cls, kw, fn, unbatched):
    torch = torch_or_skip()
    torch.manual_seed(0)
    tm = getattr(torch.nn, cls)(4, 3, **kw).double()
    m = getattr(nf.nn, cls)(4, 3, **kw, dtype=nf.float64)
    m.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    rng = np.random.default_rng(0)
    shape = (4,) if unbatched else (2, 4)
    x = rng.standard_normal(shape)
    hs = [rng.standard_normal(shape[:-1] + (3,)) for _ in range(2 if cls == "LSTMCell" else 1)]
    for with_hx in (False, True):
        thx = (tuple(torch.tensor(h) for h in hs) if cls == "LSTMCell"
               else torch.tensor(hs[0])) if with_hx else None
        nhx = (tuple(nf.tensor(h) for h in hs) if cls == "LSTMCell"
               else nf.tensor(hs[0])) if with_hx else None
        tx, nx = torch.tensor(x, requires_grad=True), nf.tensor(x, requires_grad=True)
        to, no = tm(tx, thx), m(nx, nhx)
        to = to if isinstance(to, tuple) else (to,)
        no = no if isinstance(no, tuple) else (no,)
        for a, b in zip(no, to):
            assert tuple(a.shape) == tuple(b.shape)
            np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), atol=1e-12)
        sum(o.sum() for o in to).backward()
        sum(o.sum() for o in no).backward()
        np.testing.assert_allclose(nx.grad.numpy(), tx.grad.numpy(), atol=1e-12)
        np.testing.assert_allclose(m.weight_hh.grad.numpy(), tm.weight_hh.grad.numpy(),
                                   atol=1e-12)
        m.zero_grad()
        tm.zero_grad()


# ---------------------------------------------------------------- extras
@pytest.mark.parametrize("peephole,coupled", [(True, False), (False, True), (True, True)])
def test_lstm_variants_match_numpy(peephole, coupled):
    m = nf.nn.LSTM(3, 4, num_layers=2, bidirectional=True, peephole=peephole, coupled=coupled,
                   dtype=nf.float64)
    G = 3 if coupled else 4
    assert tuple(m.weight_ih_l0.shape) == (G * 4, 3)
    assert tuple(m.weight_ih_l1_reverse.shape) == (G * 4, 8)
    if peephole:
        assert tuple(m.weight_peephole_l1_reverse.shape) == ((2 if coupled else 3) * 4,)
    else:
        assert not any("peephole" in n for n, _ in m.named_parameters())
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 2, 3))
    lengths = [5, 3]
    out, (h_n, c_n) = m(nf.tensor(x), lengths=lengths)
    layer_in, hs, cs = x, [], []
    for layer in range(2):
        ys = []
        for d, suffix in enumerate(["", "_reverse"]):
            p = {k: getattr(m, f"{k}_l{layer}{suffix}", None)
                 for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_peephole")}
            p = {k: (v.detach().numpy() if v is not None else None) for k, v in p.items()}
            y, h, c = ref_layer("lstm", layer_in, np.zeros((2, 4)), np.zeros((2, 4)),
                                p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"],
                                p["weight_peephole"], lengths, coupled, d == 1)
            ys.append(y)
            hs.append(h)
            cs.append(c)
        layer_in = np.concatenate(ys, axis=2)
    np.testing.assert_allclose(out.detach().numpy(), layer_in, atol=1e-12)
    np.testing.assert_allclose(h_n.detach().numpy(), np.stack(hs), atol=1e-12)
    np.testing.assert_allclose(c_n.detach().numpy(), np.stack(cs), atol=1e-12)


@pytest.mark.parametrize("peephole,coupled", [(True, False), (False, True)])
def test_lstm_variant_module_gradients(peephole, coupled):
    """Input gradient by gradcheck; every parameter gradient against central
    differences of the loss (the layer op's own gradcheck is in test_rnn_kernels)."""
    m = nf.nn.LSTM(2, 2, num_layers=2, peephole=peephole, coupled=coupled, bidirectional=True,
                   dtype=nf.float64)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, 2))
    lengths = [3, 2]

    def loss(t):
        out, (h, c) = m(t, lengths=lengths)
        return (out * out).sum() + (h * c).sum()
    run_gradcheck(lambda t: m(t, lengths=lengths)[0], [x])
    m.zero_grad()
    loss(nf.tensor(x)).backward()
    eps = 1e-6
    for name, p in m.named_parameters():
        data = p.detach().numpy()
        flat = data.reshape(-1)
        for k in range(0, flat.size, max(1, flat.size // 4)):
            old = flat[k]
            flat[k] = old + eps
            up = loss(nf.tensor(x)).item()
            flat[k] = old - eps
            down = loss(nf.tensor(x)).item()
            flat[k] = old
            np.testing.assert_allclose(p.grad.numpy().reshape(-1)[k], (up - down) / (2 * eps),
                                       atol=1e-6, err_msg=name)


@pytest.mark.parametrize("merge_mode,np_fn", [
    ("concat", lambda f, b: np.concatenate([f, b], axis=2)),
    ("sum", lambda f, b: f + b), ("mean", lambda f, b: (f + b) / 2), ("max", np.maximum)])
def test_merge_modes(merge_mode, np_fn):
    ref = nf.nn.GRU(3, 4, num_layers=2, bidirectional=True, dtype=nf.float64)
    m = nf.nn.GRU(3, 4, num_layers=2, bidirectional=True, merge_mode=merge_mode,
                  dtype=nf.float64)
    m.load_state_dict(ref.state_dict())
    x = nf.randn(5, 2, 3, dtype=nf.float64)
    lengths = [5, 2]
    # The last layer's directions, from the reference's concatenated output.
    full = ref(x, lengths=lengths)[0].detach().numpy()
    out, h_n = m(x, lengths=lengths)
    expected = np_fn(full[..., :4], full[..., 4:])
    np.testing.assert_allclose(out.detach().numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(h_n.detach().numpy(), ref(x, lengths=lengths)[1].detach().numpy())
    assert not out.detach().numpy()[2:, 1].any()
    # and gradients flow through the merge
    xs = np.random.default_rng(0).standard_normal((3, 2, 3))
    small = nf.nn.GRU(3, 2, bidirectional=True, merge_mode=merge_mode, dtype=nf.float64)
    run_gradcheck(lambda t: small(t)[0], [xs])


def test_irnn_identity_init():
    m = nf.nn.RNN(3, 5, num_layers=2, nonlinearity="relu", init="identity", bidirectional=True)
    for name, p in m.named_parameters():
        if name.startswith("weight_hh"):
            np.testing.assert_array_equal(p.detach().numpy(), np.eye(5))
        elif name.startswith("bias"):
            assert not p.detach().numpy().any()
        else:
            assert p.detach().numpy().std() > 0
    with pytest.raises(ValueError, match="RNN: init must be 'uniform' or 'identity'"):
        nf.nn.RNN(3, 5, init="orthogonal")


def test_default_init_range_and_repr():
    m = nf.nn.LSTM(3, 16, num_layers=2, bidirectional=True, peephole=True)
    for _, p in m.named_parameters():
        v = p.detach().numpy()
        assert np.abs(v).max() <= 0.25 and v.std() > 0.05
    assert "peephole=True" in repr(m) and "bidirectional=True" in repr(m)


# ---------------------------------------------------------------- errors
def test_bad_input_errors():
    lstm = nf.nn.LSTM(4, 3, num_layers=2)
    x = nf.randn(5, 2, 4)
    with pytest.raises(ValueError, match=r"LSTM: input.size\(-1\) must be equal to input_size. "
                                         r"Expected 4, got 6"):
        lstm(nf.randn(5, 2, 6))
    with pytest.raises(ValueError, match="LSTM: expected input to be 2-D"):
        lstm(nf.randn(4))
    with pytest.raises(ValueError, match=r"LSTM: expected h_0 of shape \(2, 2, 3\)"):
        lstm(x, (nf.zeros(1, 2, 3), nf.zeros(2, 2, 3)))
    with pytest.raises(ValueError, match=r"LSTM: expected c_0 of shape \(2, 2, 3\).*got "
                                         r"\(2, 3, 3\)"):
        lstm(x, (nf.zeros(2, 2, 3), nf.zeros(2, 3, 3)))
    with pytest.raises(TypeError, match=r"LSTM: hx must be a tuple \(h_0, c_0\)"):
        lstm(x, nf.zeros(2, 2, 3))
    with pytest.raises(ValueError, match=r"GRU: expected hx of shape \(1, 2, 3\)"):
        nf.nn.GRU(4, 3)(x, nf.zeros(2, 3))
    with pytest.raises(ValueError, match=r"LSTM: lengths must be in \[0, 5\].*\[6, 2\]"):
        lstm(x, lengths=[6, 2])
    with pytest.raises(ValueError, match=r"LSTM: lengths must be >= 1"):
        lstm(x, lengths=[0, 2])
    with pytest.raises(ValueError, match=r"LSTM: lengths must have one entry per batch row "
                                         r"\(2\), got 3"):
        lstm(x, lengths=[1, 2, 3])
    with pytest.raises(TypeError, match="LSTM: lengths must hold integers"):
        lstm(x, lengths=[1.5, 2.0])
    with pytest.raises(TypeError, match="LSTM: input has dtype float64 but the parameters"):
        lstm(nf.randn(5, 2, 4, dtype=nf.float64))
    with pytest.raises(NotImplementedError, match="LSTM: proj_size"):
        nf.nn.LSTM(4, 3, proj_size=2)
    with pytest.raises(ValueError, match="GRU: merge_mode must be one of"):
        nf.nn.GRU(4, 3, bidirectional=True, merge_mode="avg")
    with pytest.raises(ValueError, match="RNN: unknown nonlinearity 'gelu'"):
        nf.nn.RNN(4, 3, nonlinearity="gelu")
    with pytest.raises(ValueError, match="LSTM: dropout should be a number in range"):
        nf.nn.LSTM(4, 3, dropout=1.5)
    with pytest.raises(ValueError, match="GRUCell: input has inconsistent input_size: got 5 "
                                         "expected 4"):
        nf.nn.GRUCell(4, 3)(nf.randn(2, 5))
    with pytest.raises(ValueError, match=r"LSTMCell: cx of shape \(3, 3\) does not match input "
                                         r"of shape \(2, 4\)"):
        nf.nn.LSTMCell(4, 3)(nf.randn(2, 4), (nf.zeros(2, 3), nf.zeros(3, 3)))
    with pytest.raises(ValueError, match=r"rnn_layer\(gru\): weight_ih must have shape \(9, 4\)"):
        from nnforge.ops.rnn import rnn_layer
        rnn_layer(x, nf.zeros(2, 3), nf.zeros(9, 5), nf.zeros(9, 3), mode="gru")


def test_lengths_as_tensor_and_unbatched_int():
    gru = nf.nn.GRU(4, 3, batch_first=True, dtype=nf.float64)
    x = nf.randn(2, 5, 4, dtype=nf.float64)
    a = gru(x, lengths=nf.tensor([5, 3]))
    b = gru(x, lengths=np.array([5, 3]))
    np.testing.assert_array_equal(a[0].detach().numpy(), b[0].detach().numpy())
    assert not a[0].detach().numpy()[1, 3:].any()
    one = gru(x[1, :3])[1].detach().numpy()
    np.testing.assert_allclose(gru(x[1], lengths=3)[1].detach().numpy(), one, atol=1e-14)
    np.testing.assert_allclose(a[1].detach().numpy()[0, 1], one[0], atol=1e-14)


def test_graph_frees_saved_state_and_rejects_second_backward():
    lstm = nf.nn.LSTM(3, 4)
    out, _ = lstm(nf.randn(5, 2, 3))
    out.sum().backward()
    assert out.grad_fn is None or getattr(out.grad_fn, "saved", None) is None
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        out.sum().backward()
    lstm.zero_grad()
    out, _ = lstm(nf.randn(5, 2, 3))
    out.sum().backward(retain_graph=True)
    first = lstm.weight_hh_l0.grad.detach().numpy().copy()
    out.sum().backward()
    np.testing.assert_allclose(lstm.weight_hh_l0.grad.detach().numpy(), 2 * first, rtol=1e-6)
