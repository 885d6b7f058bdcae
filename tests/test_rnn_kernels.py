"""The fused recurrent layer kernels (csrc/cpu/rnn.cpp) against a plain numpy
reference of the equations, float64 gradcheck of the layer op for every cell
kind, thread-count independence, and the bindings' argument checks."""
import numpy as np
import pytest

import nnforge as nf
from nnforge import _C
from nnforge.backend import cpu_rnn
from nnforge.ops.rnn import rnn_layer

from helpers import run_gradcheck

CASES = [  # (mode, peephole, coupled)
    ("rnn_tanh", False, False), ("rnn_relu", False, False), ("gru", False, False),
    ("lstm", False, False), ("lstm", True, False), ("lstm", False, True), ("lstm", True, True),
]
IDS = [f"{m}{'-peep' if p else ''}{'-coupled' if c else ''}" for m, p, c in CASES]


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def gate_blocks(mode, coupled):
    return {"rnn_tanh": 1, "rnn_relu": 1, "gru": 3}.get(mode, 3 if coupled else 4)


def ref_step(mode, x, h, c, w_ih, w_hh, b_ih, b_hh, peep, coupled):
    """One step for one sample, the textbook equations (see ops/rnn.py)."""
    H = h.shape[0]
    gi = w_ih @ x + (b_ih if b_ih is not None else 0)
    gh = w_hh @ h + (b_hh if b_hh is not None else 0)
    if mode == "rnn_tanh":
        return np.tanh(gi + gh), None
    if mode == "rnn_relu":
        return np.maximum(gi + gh, 0), None
    if mode == "gru":
        r = sigmoid(gi[:H] + gh[:H])
        z = sigmoid(gi[H:2 * H] + gh[H:2 * H])
        n = np.tanh(gi[2 * H:] + r * gh[2 * H:])
        return (1 - z) * n + z * h, None
    a = gi + gh
    p = peep if peep is not None else np.zeros((2 if coupled else 3) * H)
    if coupled:
        af, ag, ao = a[:H], a[H:2 * H], a[2 * H:]
        f = sigmoid(af + p[:H] * c)
        i = 1 - f
        po = p[H:]
    else:
        ai, af, ag, ao = a[:H], a[H:2 * H], a[2 * H:3 * H], a[3 * H:]
        i = sigmoid(ai + p[:H] * c)
        f = sigmoid(af + p[H:2 * H] * c)
        po = p[2 * H:]
    c_new = f * c + i * np.tanh(ag)
    o = sigmoid(ao + po * c_new)
    return o * np.tanh(c_new), c_new


def ref_layer(mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh, peep, lengths, coupled, reverse):
    T, B, _ = x.shape
    H = w_hh.shape[1]
    y = np.zeros((T, B, H))
    h_n, c_n = h0.copy(), (c0.copy() if c0 is not None else None)
    for b in range(B):
        L = T if lengths is None else lengths[b]
        order = range(L - 1, -1, -1) if reverse else range(L)
        h, c = h0[b], (c0[b] if c0 is not None else None)
        for t in order:
            h, c = ref_step(mode, x[t, b], h, c, w_ih, w_hh, b_ih, b_hh, peep, coupled)
            y[t, b] = h
        h_n[b] = h
        if c is not None:
            c_n[b] = c
    return y, h_n, c_n


def make_layer(mode, peephole, coupled, T=5, B=3, I=4, H=3, dtype=np.float64, seed=0, bias=True):
    rng = np.random.default_rng(seed)
    GH = gate_blocks(mode, coupled) * H
    r = lambda *s: rng.uniform(-0.8, 0.8, s).astype(dtype)  # noqa: E731
    return dict(x=r(T, B, I), h0=r(B, H), c0=r(B, H) if mode == "lstm" else None,
                w_ih=r(GH, I), w_hh=r(GH, H), b_ih=r(GH) if bias else None,
                b_hh=r(GH) if bias else None,
                peephole=r((2 if coupled else 3) * H) if peephole else None)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("lengths", [None, [5, 1, 3]])
@pytest.mark.parametrize("mode,peephole,coupled", CASES, ids=IDS)
def test_forward_matches_numpy(mode, peephole, coupled, lengths, reverse):
    a = make_layer(mode, peephole, coupled)
    lens = None if lengths is None else np.array(lengths, np.int64)
    y, h_n, c_n, _ = cpu_rnn.rnn_layer_forward(mode, a["x"], a["h0"], a["c0"], a["w_ih"],
                                               a["w_hh"], a["b_ih"], a["b_hh"], a["peephole"],
                                               lens, coupled, reverse)
    ry, rh, rc = ref_layer(mode, a["x"], a["h0"], a["c0"], a["w_ih"], a["w_hh"], a["b_ih"],
                           a["b_hh"], a["peephole"], lengths, coupled, reverse)
    np.testing.assert_allclose(y, ry, atol=1e-12)
    np.testing.assert_allclose(h_n, rh, atol=1e-12)
    if mode == "lstm":
        np.testing.assert_allclose(c_n, rc, atol=1e-12)
    else:
        assert c_n is None


@pytest.mark.parametrize("mode,peephole,coupled", CASES, ids=IDS)
def test_forward_float32_and_no_bias(mode, peephole, coupled):
    a = make_layer(mode, peephole, coupled, dtype=np.float32, bias=False, seed=3)
    y, h_n, _, _ = cpu_rnn.rnn_layer_forward(mode, a["x"], a["h0"], a["c0"], a["w_ih"],
                                             a["w_hh"], None, None, a["peephole"], None,
                                             coupled, False)
    assert y.dtype == np.float32
    ry, rh, _ = ref_layer(mode, *(v.astype(np.float64) if v is not None else None
                                  for v in a.values()), None, coupled, False)
    np.testing.assert_allclose(y, ry, atol=2e-6)
    np.testing.assert_allclose(h_n, rh, atol=2e-6)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("mode,peephole,coupled", CASES, ids=IDS)
def test_layer_gradcheck(mode, peephole, coupled, reverse):
    a = make_layer(mode, peephole, coupled, T=3, B=2, I=2, H=2, seed=1)
    lens = np.array([3, 2], np.int64)
    names = [k for k, v in a.items() if v is not None]

    def fn(*ts):
        kw = dict(zip(names, ts))
        out = rnn_layer(kw["x"], kw["h0"], kw["w_ih"], kw["w_hh"], kw.get("b_ih"),
                        kw.get("b_hh"), mode=mode, cx=kw.get("c0"),
                        peephole=kw.get("peephole"), coupled=coupled, lengths=lens,
                        reverse=reverse)
        return out
    run_gradcheck(fn, [a[k] for k in names])


def test_zero_steps_and_zero_length_rows():
    a = make_layer("lstm", False, False, T=0)
    y, h_n, c_n, saved = cpu_rnn.rnn_layer_forward("lstm", a["x"], a["h0"], a["c0"], a["w_ih"],
                                                   a["w_hh"], a["b_ih"], a["b_hh"], None, None,
                                                   False, False)
    assert y.shape == (0, 3, 3)
    np.testing.assert_array_equal(h_n, a["h0"])
    grads = cpu_rnn.rnn_layer_backward(saved, np.zeros((0, 3, 3)), np.ones((3, 3)),
                                       np.ones((3, 3)))
    np.testing.assert_array_equal(grads[1], np.ones((3, 3)))
    assert not grads[3].any()
    # A row of length 0 keeps its initial state and outputs zeros.
    a = make_layer("gru", False, False)
    y, h_n, _, _ = cpu_rnn.rnn_layer_forward("gru", a["x"], a["h0"], None, a["w_ih"], a["w_hh"],
                                             a["b_ih"], a["b_hh"], None,
                                             np.array([5, 0, 2]), False, False)
    np.testing.assert_array_equal(h_n[1], a["h0"][1])
    assert not y[:, 1].any() and not y[2:, 2].any()


@pytest.mark.parametrize("mode", ["lstm", "gru", "rnn_tanh"])
@pytest.mark.parametrize("B,H", [(33, 64), (32, 200)])
def test_same_results_for_1_and_2_threads(mode, B, H):
    a = make_layer(mode, False, False, T=6, B=B, I=16, H=H, dtype=np.float32, seed=5)
    lens = np.random.default_rng(0).integers(1, 7, B)
    dy = np.random.default_rng(1).standard_normal((6, B, H)).astype(np.float32)
    dh = np.random.default_rng(2).standard_normal((B, H)).astype(np.float32)
    results = []
    old = nf.get_num_threads()
    try:
        for threads in (1, 2):
            nf.set_num_threads(threads)
            y, h_n, c_n, saved = cpu_rnn.rnn_layer_forward(
                mode, a["x"], a["h0"], a["c0"], a["w_ih"], a["w_hh"], a["b_ih"], a["b_hh"],
                None, lens, False, False)
            grads = cpu_rnn.rnn_layer_backward(saved, dy, dh, dh if mode == "lstm" else None)
            results.append([y, h_n] + [g for g in grads if g is not None])
    finally:
        nf.set_num_threads(old)
    for r1, r2 in zip(*results):
        np.testing.assert_array_equal(r1, r2)


@pytest.mark.parametrize("B,H", [(1, 7), (5, 7), (33, 7), (32, 9), (8, 513)])
@pytest.mark.parametrize("mode", ["lstm", "gru"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_odd_sizes_match_torch(mode, B, H, dtype):
    """The per-step products run over W_hh packed once per call, with the tile chosen by
    the batch (8-row tiles for a batch of 32 on AVX-512): batches around the tile heights
    and hidden sizes around the panel widths, forward and every gradient against torch."""
    torch = pytest.importorskip("torch")
    T, I = 3, 5
    a = make_layer(mode, False, False, T=T, B=B, I=I, H=H, dtype=dtype, seed=B + H)
    rng = np.random.default_rng(H)
    dy = rng.standard_normal((T, B, H)).astype(dtype)
    dh = rng.standard_normal((B, H)).astype(dtype)
    y, h_n, c_n, saved = cpu_rnn.rnn_layer_forward(mode, a["x"], a["h0"], a["c0"], a["w_ih"],
                                                   a["w_hh"], a["b_ih"], a["b_hh"], None, None,
                                                   False, False)
    dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, _ = cpu_rnn.rnn_layer_backward(
        saved, dy, dh, dh if mode == "lstm" else None)

    t = {k: torch.tensor(v.astype(np.float64), requires_grad=True)
         for k, v in a.items() if v is not None}
    layer = (torch.nn.LSTM if mode == "lstm" else torch.nn.GRU)(I, H).double()
    with torch.no_grad():
        for name in ("w_ih", "w_hh", "b_ih", "b_hh"):
            getattr(layer, f"{name.replace('w_', 'weight_').replace('b_', 'bias_')}_l0").copy_(
                t[name])
    state = (t["h0"][None], t["c0"][None]) if mode == "lstm" else t["h0"][None]
    ty, tstate = layer(t["x"], state)
    th_n = tstate[0][0] if mode == "lstm" else tstate[0]
    loss = (ty * torch.from_numpy(dy.astype(np.float64))).sum() + (
        th_n * torch.from_numpy(dh.astype(np.float64))).sum()
    if mode == "lstm":
        loss = loss + (tstate[1][0] * torch.from_numpy(dh.astype(np.float64))).sum()
    loss.backward()
    tol = dict(rtol=1e-9, atol=1e-10) if dtype == np.float64 else dict(rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(y, ty.detach().numpy(), **tol)
    np.testing.assert_allclose(h_n, th_n.detach().numpy(), **tol)
    ref = {"dx": t["x"].grad, "dh0": t["h0"].grad, "dw_ih": layer.weight_ih_l0.grad,
           "dw_hh": layer.weight_hh_l0.grad, "db_ih": layer.bias_ih_l0.grad,
           "db_hh": layer.bias_hh_l0.grad}
    ours = {"dx": dx, "dh0": dh0, "dw_ih": dw_ih, "dw_hh": dw_hh, "db_ih": db_ih, "db_hh": db_hh}
    if mode == "lstm":
        ref["dc0"], ours["dc0"] = t["c0"].grad, dc0
    for name, r in ref.items():
        r = r.numpy()
        scale = max(1.0, np.abs(r).max())
        np.testing.assert_allclose(ours[name], r, rtol=tol["rtol"], atol=tol["atol"] * scale,
                                   err_msg=name)


def test_time_reverse_respects_lengths():
    a = np.arange(12.0).reshape(4, 3, 1)
    r = cpu_rnn.rnn_time_reverse(a, np.array([4, 2, 1]))
    np.testing.assert_array_equal(r[:, 0, 0], a[::-1, 0, 0])
    np.testing.assert_array_equal(r[:, 1, 0], [4, 1, 7, 10])
    np.testing.assert_array_equal(r[:, 2, 0], a[:, 2, 0])
    np.testing.assert_array_equal(cpu_rnn.rnn_time_reverse(r, np.array([4, 2, 1])), a)


# ---------------------------------------------------------------- binding checks
def _args(mode="lstm", **over):
    a = make_layer(mode, False, False, dtype=np.float32)
    args = dict(mode=mode, x=a["x"], h0=a["h0"], c0=a["c0"], w_ih=a["w_ih"], w_hh=a["w_hh"],
                b_ih=a["b_ih"], b_hh=a["b_hh"], peephole=None, lengths=None, coupled=False)
    args.update(over)
    return args


@pytest.mark.parametrize("over,match", [
    (dict(mode="elman"), "mode must be"),
    (dict(x=np.zeros((5, 3), np.float32)), r"x must have shape \(T, B, I\)"),
    (dict(x=np.zeros((5, 3, 4), np.int32)), "expected float32 or float64"),
    (dict(x=np.zeros((5, 3, 7), np.float32)), r"w_ih has shape \(12, 4\), expected \(12, 7\)"),
    (dict(h0=np.zeros((2, 3), np.float32)), r"h0 has shape \(2, 3\), expected \(3, 3\)"),
    (dict(h0=np.zeros((3, 3), np.float64)), "h0 has dtype float64"),
    (dict(c0=None), "c0 is required"),
    (dict(b_ih=np.zeros(5, np.float32)), r"b_ih has shape \(5,\)"),
    (dict(w_hh=np.zeros((12, 3), np.float32)[::2]), r"w_hh has shape"),
    (dict(w_hh=np.zeros((3, 12), np.float32).T), "must be C-contiguous"),
    (dict(lengths=np.array([5, 6, 1])), r"lengths\[1\] = 6 is outside \[0, T\]"),
    (dict(lengths=np.array([5, -1, 1])), r"lengths\[1\] = -1"),
    (dict(lengths=np.array([5, 1])), r"lengths has shape \(2,\), expected \(3,\)"),
    (dict(lengths=np.array([5, 1, 1], np.int32)), "lengths has dtype int32"),
    (dict(peephole=np.zeros(5, np.float32)), r"peephole has shape \(5,\), expected \(9,\)"),
])
def test_binding_rejects_bad_arrays(over, match):
    with pytest.raises(ValueError, match=match):
        _C.cpu.rnn_forward(**_args(**over))


def test_binding_rejects_mode_mismatches_and_non_arrays():
    with pytest.raises(ValueError, match="coupled=True needs mode 'lstm'"):
        _C.cpu.rnn_forward(**_args("gru", coupled=True))
    with pytest.raises(ValueError, match="peephole must be None for mode 'gru'"):
        _C.cpu.rnn_forward(**_args("gru", peephole=np.zeros(9, np.float32)))
    with pytest.raises(ValueError, match="c0 must be None unless mode is 'lstm'"):
        _C.cpu.rnn_forward(**_args("gru", c0=np.zeros((3, 3), np.float32)))
    with pytest.raises(TypeError, match="x must be a numpy array, got list"):
        _C.cpu.rnn_forward(**_args(x=[[[1.0]]]))
    a = _args()
    y, h_n, c_n, gates, cells, gh_n = _C.cpu.rnn_forward(**a)
    bw = dict(a, y=y, gates=gates, cells=cells, gh_n=None, dy=np.zeros_like(y),
              dh_n=np.zeros_like(h_n), dc_n=np.zeros_like(h_n))
    _C.cpu.rnn_backward(**bw)  # well-formed: runs
    with pytest.raises(ValueError, match=r"gates has shape \(5, 3, 3\), expected \(5, 3, 12\)"):
        _C.cpu.rnn_backward(**dict(bw, gates=y))
    with pytest.raises(ValueError, match="dc_n is required"):
        _C.cpu.rnn_backward(**dict(bw, dc_n=None))
    with pytest.raises(ValueError, match=r"dy has shape \(3, 3\)"):
        _C.cpu.rnn_backward(**dict(bw, dy=h_n))


@pytest.mark.parametrize("mode", ["lstm", "gru", "rnn_relu"])
def test_inference_call_keeps_nothing_and_matches(mode):
    a = make_layer(mode, mode == "lstm", False, seed=4)
    args = (mode, a["x"], a["h0"], a["c0"], a["w_ih"], a["w_hh"], a["b_ih"], a["b_hh"],
            a["peephole"], np.array([5, 2, 4]), False)
    full = _C.cpu.rnn_forward(*args)
    lean = _C.cpu.rnn_forward(*args, save=False)
    assert lean[3:] == (None, None, None)
    for u, v in zip(full[:3], lean[:3]):
        if u is not None:
            np.testing.assert_array_equal(u, v)


def test_backward_skips_unwanted_gradients():
    a = make_layer("lstm", True, False, seed=6)
    y, h_n, c_n, saved = cpu_rnn.rnn_layer_forward("lstm", *a.values(), None, False, True)
    dy = np.ones_like(y)
    full = cpu_rnn.rnn_layer_backward(saved, dy, h_n, c_n)
    no_dx = cpu_rnn.rnn_layer_backward(saved, dy, h_n, c_n, need_dx=False)
    no_dw = cpu_rnn.rnn_layer_backward(saved, dy, h_n, c_n, need_dw=False)
    assert no_dx[0] is None and all(g is None for g in no_dw[3:])
    for k, g in enumerate(full):
        if k != 0:
            np.testing.assert_array_equal(no_dx[k], g)
        if k < 3:
            np.testing.assert_array_equal(no_dw[k], g)
    # Through the op: an input that does not require grad gets none, the weights do.
    x = nf.tensor(a["x"])
    w = [nf.tensor(a[k], requires_grad=True) for k in ("w_ih", "w_hh")]
    out = rnn_layer(x, nf.tensor(a["h0"]), *w, mode="lstm", cx=nf.tensor(a["c0"]))
    out[0].sum().backward()
    assert x.grad is None and w[0].grad is not None and w[1].grad is not None


@pytest.mark.parametrize("T,B,I,H", [(3, 0, 2, 2), (3, 2, 0, 2), (3, 2, 2, 0), (0, 0, 0, 0)])
@pytest.mark.parametrize("mode", ["lstm", "gru", "rnn_tanh"])
def test_empty_sizes(mode, T, B, I, H):
    G = gate_blocks(mode, False)
    x, h0 = np.ones((T, B, I), np.float32), np.full((B, H), 0.5, np.float32)
    c0 = h0 if mode == "lstm" else None
    w_ih, w_hh = np.ones((G * H, I), np.float32), np.ones((G * H, H), np.float32)
    y, h_n, c_n, saved = cpu_rnn.rnn_layer_forward(mode, x, h0, c0, w_ih, w_hh, None, None,
                                                   None, None)
    assert y.shape == (T, B, H) and h_n.shape == (B, H)
    grads = cpu_rnn.rnn_layer_backward(saved, np.ones_like(y), np.ones_like(h_n),
                                       np.ones_like(h_n) if mode == "lstm" else None)
    assert grads[0].shape == x.shape and grads[3].shape == w_ih.shape
    if T == 0:
        np.testing.assert_array_equal(h_n, h0)
