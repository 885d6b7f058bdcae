"""CUDA recurrent layers (csrc/cuda/rnn.cu through backend/cuda_rnn.py) against
their CPU twin (backend/cpu_rnn.py): every cell kind (tanh / relu RNN, LSTM
plain, peephole, coupled and both, GRU), forward and every gradient, with and
without lengths (a zero-length row included), reverse, biases present or not,
float32 and float64 (float16 / bfloat16 through float32), sizes across the
GEMM tile edges, need_dx / need_dw, inference (save=False), non-contiguous
inputs, empty sizes, the deterministic weight gradients, rnn_time_reverse and
argument errors; then Tensor level: nn.RNN / LSTM / GRU (stacked,
bidirectional, batch_first, hx given or None, lengths, packed sequences,
peephole / coupled) and the cells on device="cuda" against the same modules on
the CPU with the same weights. Marked `cuda`; skipped without a GPU (the
CPU-only test at the end runs everywhere)."""
import numpy as np
import pytest

import nnforge as nf
from cuda_support import cpu, dev, dev_view, gpu, needs_gpu, views
from nnforge.backend import cpu_rnn
from test_rnn_kernels import CASES, IDS, gate_blocks, make_layer

# float64: the same arithmetic up to summation order. float32: the recurrence
# carries rounding differences (GEMM summation order, the CPU's own exp/tanh
# approximations vs CUDA's expf/tanhf) through T steps, and the weight
# gradients sum T B products: compared relative to the largest magnitude.
TOL = {"float64": (1e-10, 1e-11), "float32": (2e-4, 2e-5)}
NAMES = ("dx", "dh0", "dc0", "dw_ih", "dw_hh", "db_ih", "db_hh", "dpeephole")


def _host(a):
    return None if a is None else gpu().to_host(a)


def _close(got, want, dtype, what=""):
    if want is None:
        assert got is None, what
        return
    got = _host(got) if not isinstance(got, np.ndarray) else got
    assert got.shape == want.shape, (what, got.shape, want.shape)
    assert got.dtype == want.dtype, (what, got.dtype, want.dtype)
    r, a = TOL[np.dtype(want.dtype).name]
    scale = max(1.0, float(np.abs(want).max())) if want.size else 1.0
    np.testing.assert_allclose(got, want, rtol=r, atol=a * scale, err_msg=what)


def _upstream(shape_y, shape_h, dtype, seed=7):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape_y).astype(dtype), rng.standard_normal(shape_h).astype(dtype),
            rng.standard_normal(shape_h).astype(dtype))


def _layer_args(a, lens):
    keys = ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh", "peephole")
    return [a[k] for k in keys] + [lens]


def _compare_layer(mode, a, lens, coupled, reverse, need_dx=True, need_dw=True,
                   gpu_args=None):
    """Forward and backward on both backends; asserts every result agrees."""
    args = _layer_args(a, lens)
    dtype = a["x"].dtype
    y, h_n, c_n, saved = cpu_rnn.rnn_layer_forward(mode, *args, coupled, reverse)
    if gpu_args is None:
        gpu_args = [None if v is None else dev(v) for v in args[:-1]] + [lens]
    gy, gh, gc, gsaved = gpu().rnn_layer_forward(mode, *gpu_args, coupled, reverse)
    _close(gy, y, dtype.name, "y")
    _close(gh, h_n, dtype.name, "h_n")
    _close(gc, c_n, dtype.name, "c_n")
    dy, dh, dc = _upstream(y.shape, h_n.shape, dtype)
    lstm = mode == "lstm"
    want = cpu_rnn.rnn_layer_backward(saved, dy, dh, dc if lstm else None, need_dx, need_dw)
    got = gpu().rnn_layer_backward(gsaved, dev(dy), dev(dh), dev(dc) if lstm else None,
                                   need_dx, need_dw)
    for name, g, w in zip(NAMES, got, want):
        _close(g, w, dtype.name, name)


# ---------------------------------------------------------------- array level
@needs_gpu
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("lengths", [None, [5, 1, 3], [2, 0, 5]], ids=["full", "len", "len0"])
@pytest.mark.parametrize("mode,peephole,coupled", CASES, ids=IDS)
def test_layer_matches_cpu(mode, peephole, coupled, lengths, reverse, dtype):
    a = make_layer(mode, peephole, coupled, dtype=np.dtype(dtype))
    lens = None if lengths is None else np.array(lengths, np.int64)
    _compare_layer(mode, a, lens, coupled, reverse)


@needs_gpu
@pytest.mark.parametrize("T,B,I,H", [(7, 33, 20, 65), (4, 130, 9, 129), (2, 1, 300, 31),
                                     (3, 5, 16, 256), (1, 3, 5, 256), (2, 3, 4, 512)], ids=str)
@pytest.mark.parametrize("mode,peephole,coupled", CASES, ids=IDS)
def test_layer_sizes_across_tiles(mode, peephole, coupled, T, B, I, H):
    """Rows, gate columns and depths on both sides of the GEMM tiles (128 / 64); H = 256
    and 512 (and G H = 516 for LSTM at H = 129) split the per-step products along K
    (split_k in rnn.cu: S = 4 .. 32, LSTM's backward at H = 512 the largest): the step kernels add the partial products themselves (forward: with b_hh
    into the gates, GRU's gh; backward: the next step's incoming dh), and the last
    backward product's partials are folded into dh0 (T = 1: only that fold)."""
    a = make_layer(mode, peephole, coupled, T=T, B=B, I=I, H=H, dtype=np.float32, seed=T + H)
    lens = np.random.default_rng(H).integers(0, T + 1, B).astype(np.int64)
    _compare_layer(mode, a, lens, coupled, reverse=B % 2 == 0)
    a64 = {k: None if v is None else v.astype(np.float64) for k, v in a.items()}
    _compare_layer(mode, a64, None, coupled, reverse=False)


@needs_gpu
@pytest.mark.parametrize("mode,peephole,coupled", CASES, ids=IDS)
def test_layer_without_bias(mode, peephole, coupled):
    a = make_layer(mode, peephole, coupled, bias=False, seed=3)
    _compare_layer(mode, a, np.array([5, 4, 1], np.int64), coupled, reverse=True)


@needs_gpu
@pytest.mark.parametrize("need_dx,need_dw", [(True, False), (False, True), (False, False)])
@pytest.mark.parametrize("mode,peephole,coupled", [CASES[2], CASES[4], CASES[6]],
                         ids=[IDS[2], IDS[4], IDS[6]])
def test_need_dx_need_dw(mode, peephole, coupled, need_dx, need_dw):
    a = make_layer(mode, peephole, coupled, seed=6)
    _compare_layer(mode, a, np.array([3, 5, 2], np.int64), coupled, False, need_dx, need_dw)


@needs_gpu
@pytest.mark.parametrize("mode", ["lstm", "gru", "rnn_relu"])
def test_inference_keeps_nothing_and_matches(mode):
    a = make_layer(mode, mode == "lstm", False, seed=4)
    args = [None if v is None else dev(v) for v in _layer_args(a, None)[:-1]]
    lens = np.array([5, 2, 4], np.int64)
    full = gpu().rnn_layer_forward(mode, *args, lens, False, True, True)
    lean = gpu().rnn_layer_forward(mode, *args, lens, False, True, False)
    assert lean[3] is None and full[3] is not None
    for u, v in zip(full[:3], lean[:3]):
        if u is not None:
            np.testing.assert_array_equal(_host(u), _host(v))


@needs_gpu
@pytest.mark.parametrize("view", ["transposed", "sliced"])
@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_non_contiguous_inputs(mode, view):
    a = make_layer(mode, False, False, dtype=np.float32, seed=8)
    lens = np.array([5, 3, 4], np.int64)
    gpu_args = []
    for k in ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh", "peephole"):
        v = a[k]
        if v is None:
            gpu_args.append(None)
            continue
        vs = dict(views(v))  # the same values in that layout (1-D arrays: sliced only)
        gpu_args.append(dev_view(view, vs[view]) if view in vs else dev(v))
    assert not gpu_args[0].is_contiguous()
    _compare_layer(mode, a, lens, False, True, gpu_args=gpu_args + [lens])


@needs_gpu
def test_lengths_as_device_array_and_bad_lengths():
    a = make_layer("gru", False, False, seed=9)
    lens = np.array([4, 0, 5], np.int64)
    args = [None if v is None else dev(v) for v in _layer_args(a, None)[:-1]]
    y1 = gpu().rnn_layer_forward("gru", *args, lens, False, True)[0]
    y2 = gpu().rnn_layer_forward("gru", *args, dev(lens), False, True)[0]
    np.testing.assert_array_equal(_host(y1), _host(y2))
    with pytest.raises(ValueError, match=r"lengths\[1\] = 6 is outside \[0, T\]"):
        gpu().rnn_layer_forward("gru", *args, np.array([5, 6, 1]), False, False)
    with pytest.raises(ValueError, match=r"lengths has shape \(2,\), expected \(3,\)"):
        gpu().rnn_layer_forward("gru", *args, np.array([5, 1]), False, False)
    with pytest.raises(TypeError, match="lengths must hold integers"):
        gpu().rnn_layer_forward("gru", *args, np.array([5.0, 1, 1]), False, False)


@needs_gpu
@pytest.mark.parametrize("T,B,I,H", [(3, 0, 2, 2), (3, 2, 0, 2), (3, 2, 2, 0), (0, 2, 2, 2),
                                     (0, 0, 0, 0)], ids=str)
@pytest.mark.parametrize("mode", ["lstm", "gru", "rnn_tanh"])
def test_empty_sizes(mode, T, B, I, H):
    G = gate_blocks(mode, False)
    x, h0 = np.ones((T, B, I), np.float32), np.full((B, H), 0.5, np.float32)
    c0 = h0 if mode == "lstm" else None
    w_ih = np.full((G * H, I), 0.25, np.float32)
    w_hh = np.full((G * H, H), 0.25, np.float32)
    b = np.full((G * H,), 0.1, np.float32)
    a = dict(x=x, h0=h0, c0=c0, w_ih=w_ih, w_hh=w_hh, b_ih=b, b_hh=b, peephole=None)
    _compare_layer(mode, a, None, False, False)


@needs_gpu
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_reduced_floats_through_float32(mode, dtype):
    a = make_layer(mode, mode == "lstm", False, dtype=np.float32, seed=10)
    lens = np.array([5, 2, 4], np.int64)
    red = {k: None if v is None else nf._C.cuda.astype(dev(v), dtype) for k, v in a.items()}
    # The CPU twin sees the same (rounded) values in float32.
    a32 = {k: None if v is None else _host(nf._C.cuda.astype(red[k], "float32"))
           for k, v in a.items()}
    args = [red[k] for k in ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh", "peephole")]
    y, h_n, c_n, saved = gpu().rnn_layer_forward(mode, *args, lens, False, True)
    assert y.dtype_name == dtype and h_n.dtype_name == dtype
    wy, wh, wc, wsaved = cpu_rnn.rnn_layer_forward(mode, *_layer_args(a32, lens), False, True)
    loose = dict(rtol=2e-2, atol=1e-2)  # one rounding of the float32 results to 8 / 11 bits
    np.testing.assert_allclose(_host(nf._C.cuda.astype(y, "float32")), wy, **loose)
    np.testing.assert_allclose(_host(nf._C.cuda.astype(h_n, "float32")), wh, **loose)
    dy = np.ones(wy.shape, np.float32)
    dh = np.ones(wh.shape, np.float32)
    want = cpu_rnn.rnn_layer_backward(wsaved, dy, dh, dh if mode == "lstm" else None)
    got = gpu().rnn_layer_backward(saved, nf._C.cuda.astype(dev(dy), dtype),
                                   nf._C.cuda.astype(dev(dh), dtype),
                                   nf._C.cuda.astype(dev(dh), dtype) if mode == "lstm" else None)
    for name, g, w in zip(NAMES, got, want):
        if w is None:
            assert g is None
            continue
        assert g.dtype_name == dtype, name
        scale = max(1.0, float(np.abs(w).max()))
        np.testing.assert_allclose(_host(nf._C.cuda.astype(g, "float32")), w, rtol=2e-2,
                                   atol=1e-2 * scale, err_msg=name)


@needs_gpu
@pytest.mark.parametrize("H", [40, 256], ids=["H40", "H256-split-k"])
@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_weight_gradients_deterministic(mode, H):
    """Bit-identical results over repeated runs, also with the per-step products split
    along K (H = 256: the partial products are added in a fixed order)."""
    a = make_layer(mode, mode == "lstm", False, T=9, B=70, I=33, H=H, dtype=np.float32)
    args = [None if v is None else dev(v) for v in _layer_args(a, None)[:-1]]
    lens = np.random.default_rng(0).integers(1, 10, 70).astype(np.int64)
    dy, dh, dc = _upstream((9, 70, H), (70, H), np.float32)
    runs = []
    for _ in range(3):
        y, h_n, c_n, saved = gpu().rnn_layer_forward(mode, *args, lens, False, True)
        grads = gpu().rnn_layer_backward(saved, dev(dy), dev(dh),
                                         dev(dc) if mode == "lstm" else None)
        runs.append([_host(g) for g in (y, h_n, c_n) + tuple(grads) if g is not None])
    for other in runs[1:]:
        for u, v in zip(runs[0], other):
            np.testing.assert_array_equal(u, v)


@needs_gpu
@pytest.mark.parametrize("lengths", [None, [4, 2, 1, 0]])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_time_reverse_matches_cpu(dtype, lengths):
    a = (np.arange(4 * 4 * 3) * 1.5).reshape(4, 4, 3).astype(dtype)
    lens = None if lengths is None else np.array(lengths, np.int64)
    got = gpu().rnn_time_reverse(dev(a), lens)
    np.testing.assert_array_equal(_host(got), cpu_rnn.rnn_time_reverse(a, lens))
    back = gpu().rnn_time_reverse(got, None if lens is None else dev(lens))
    np.testing.assert_array_equal(_host(back), a)
    nc = gpu().swap_last(dev(np.ascontiguousarray(a.swapaxes(-1, -2))))
    np.testing.assert_array_equal(_host(gpu().rnn_time_reverse(nc, lens)),
                                  cpu_rnn.rnn_time_reverse(a, lens))


@needs_gpu
def test_argument_errors():
    a = make_layer("lstm", False, False, dtype=np.float32)
    args = {k: None if v is None else dev(v) for k, v in a.items()}
    order = ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh", "peephole")

    def call(**over):
        kw = dict(args, **over)
        return gpu().rnn_layer_forward("lstm", *[kw[k] for k in order], None)

    with pytest.raises(ValueError, match=r"h0 has shape \(2, 3\), expected \(3, 3\)"):
        call(h0=dev(np.zeros((2, 3), np.float32)))
    with pytest.raises(ValueError, match=r"w_ih has shape \(12, 4\), expected \(12, 7\)"):
        call(x=dev(np.zeros((5, 3, 7), np.float32)))
    with pytest.raises(ValueError, match="h0 has dtype float64"):
        call(h0=dev(np.zeros((3, 3))))
    with pytest.raises(ValueError, match="c0 is required"):
        call(c0=None)
    with pytest.raises(ValueError, match=r"peephole has shape \(5,\), expected \(9,\)"):
        call(peephole=dev(np.zeros(5, np.float32)))
    with pytest.raises(TypeError, match="rnn_forward"):
        call(x=dev(np.zeros((5, 3, 4), np.int32)))
    with pytest.raises(ValueError, match="mode must be"):
        gpu().rnn_layer_forward("elman", *[args[k] for k in order], None)
    with pytest.raises(ValueError, match="coupled=True needs mode 'lstm'"):
        gpu().rnn_layer_forward("gru", args["x"], args["h0"], None, dev(np.zeros((9, 4),
                                np.float32)), dev(np.zeros((9, 3), np.float32)), None, None,
                                None, None, True)
    # The binding itself (public in nnforge._C.cuda) checks layouts.
    with pytest.raises(ValueError, match="must be C-contiguous"):
        nf._C.cuda.rnn_forward("lstm", args["x"], args["h0"], args["c0"],
                               gpu().swap_last(dev(np.ascontiguousarray(a["w_ih"].T))),
                               args["w_hh"], None, None, None, None, False, True)
    y, h_n, c_n, gates, cells, gh_n = nf._C.cuda.rnn_forward(
        "lstm", *[args[k] for k in order], None, False, True)
    with pytest.raises(ValueError, match=r"gates has shape \(5, 3, 3\), expected \(5, 3, 12\)"):
        nf._C.cuda.rnn_backward("lstm", *[args[k] for k in order], None, False, y, y, cells,
                                None, y, h_n, c_n)
    with pytest.raises(ValueError, match="dc_n is required"):
        nf._C.cuda.rnn_backward("lstm", *[args[k] for k in order], None, False, y, gates,
                                cells, None, y, h_n, None)


# ---------------------------------------------------------------- Tensor level
def _module_pair(cls, **kw):
    """The same module (same weights) on the CPU and on the GPU, float64."""
    m_cpu = getattr(nf.nn, cls)(**kw, dtype=nf.float64)
    m_gpu = getattr(nf.nn, cls)(**kw, dtype=nf.float64)
    m_gpu.load_state_dict({k: np.array(v) for k, v in m_cpu.state_dict().items()})
    m_gpu.to("cuda")
    return m_cpu, m_gpu


def _outputs(out):
    """The module's outputs as a flat list of Tensors."""
    from nnforge.nn.utils.rnn import PackedSequence  # a NamedTuple: checked first
    flat = []
    for o in (out if isinstance(out, tuple) else (out,)):
        if isinstance(o, PackedSequence):
            flat.append(o.data)
        elif isinstance(o, tuple):
            flat.extend(o)
        else:
            flat.append(o)
    return flat


def _run_both(m_cpu, m_gpu, make_inputs):
    """Runs both modules on the same inputs, backward of sum(out_k * u_k); compares the
    outputs and the gradients of the inputs and of every parameter."""
    results = []
    for device, m in (("cpu", m_cpu), ("cuda", m_gpu)):
        inputs, leaves = make_inputs(device)
        outs = _outputs(m(*inputs))
        rng = np.random.default_rng(11)
        loss = None
        for o in outs:
            u = nf.tensor(rng.standard_normal(tuple(o.shape)), dtype=o.dtype, device=device)
            term = (o * u).sum()
            loss = term if loss is None else loss + term
        loss.backward()
        results.append(([o.detach().cpu().numpy() for o in outs],
                         [t.grad.cpu().numpy() for t in leaves],
                         {n: p.grad.cpu().numpy() for n, p in m.named_parameters()}))
    (o_c, l_c, p_c), (o_g, l_g, p_g) = results
    for k, (g, w) in enumerate(zip(o_g, o_c)):
        _close(g, w, "float64", f"output {k}")
    for k, (g, w) in enumerate(zip(l_g, l_c)):
        _close(g, w, "float64", f"input grad {k}")
    assert p_g.keys() == p_c.keys()
    for n in p_c:
        _close(p_g[n], p_c[n], "float64", n)


KINDS = [("RNN", {}), ("RNN", {"nonlinearity": "relu"}), ("LSTM", {}), ("GRU", {}),
         ("LSTM", {"peephole": True}), ("LSTM", {"coupled": True})]
KIND_IDS = ["rnn_tanh", "rnn_relu", "lstm", "gru", "lstm-peep", "lstm-coupled"]


@needs_gpu
@pytest.mark.parametrize("num_layers,bidirectional,batch_first,with_hx,with_lengths", [
    (1, False, False, False, False),
    (2, True, True, True, False),
    (3, False, False, True, True),
    (2, True, False, False, True),
    (1, True, True, True, True),
])
@pytest.mark.parametrize("cls,kw", KINDS, ids=KIND_IDS)
def test_modules_cuda_vs_cpu(cls, kw, num_layers, bidirectional, batch_first, with_hx,
                             with_lengths):
    T, B, I, H = 6, 4, 5, 3
    D = 2 if bidirectional else 1
    lstm = cls == "LSTM"
    m_cpu, m_gpu = _module_pair(cls, input_size=I, hidden_size=H, num_layers=num_layers,
                                bidirectional=bidirectional, batch_first=batch_first, **kw)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, T, I) if batch_first else (T, B, I))
    hx = [rng.standard_normal((num_layers * D, B, H)) for _ in range(2 if lstm else 1)]
    lengths = [6, 2, 5, 1] if with_lengths else None

    def make(device):
        xt = nf.tensor(x, device=device, requires_grad=True)
        hts = [nf.tensor(h, device=device, requires_grad=True) for h in hx]
        state = (tuple(hts) if lstm else hts[0]) if with_hx else None
        return (xt, state, lengths), [xt] + (hts if with_hx else [])

    _run_both(m_cpu, m_gpu, make)


@needs_gpu
@pytest.mark.parametrize("cls", ["LSTM", "GRU"])
def test_packed_sequence_cuda_vs_cpu(cls):
    from nnforge.nn.utils.rnn import pack_padded_sequence
    m_cpu, m_gpu = _module_pair(cls, input_size=3, hidden_size=4, num_layers=2,
                                bidirectional=True)
    x = np.random.default_rng(1).standard_normal((5, 3, 3))
    lengths = [2, 5, 3]

    def make(device):
        xt = nf.tensor(x, device=device, requires_grad=True)
        return (pack_padded_sequence(xt, lengths, enforce_sorted=False),), [xt]

    _run_both(m_cpu, m_gpu, make)


@needs_gpu
@pytest.mark.parametrize("cls,kw", [("RNNCell", {}), ("RNNCell", {"nonlinearity": "relu"}),
                                    ("LSTMCell", {}), ("GRUCell", {})],
                         ids=["rnn_tanh", "rnn_relu", "lstm", "gru"])
@pytest.mark.parametrize("with_hx", [False, True])
def test_cells_cuda_vs_cpu(cls, kw, with_hx):
    m_cpu, m_gpu = _module_pair(cls, input_size=4, hidden_size=3, **kw)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 4))
    hs = [rng.standard_normal((2, 3)) for _ in range(2 if cls == "LSTMCell" else 1)]

    def make(device):
        xt = nf.tensor(x, device=device, requires_grad=True)
        hts = [nf.tensor(h, device=device, requires_grad=True) for h in hs]
        state = (tuple(hts) if cls == "LSTMCell" else hts[0]) if with_hx else None
        return (xt, state), [xt] + (hts if with_hx else [])

    _run_both(m_cpu, m_gpu, make)


@needs_gpu
def test_float32_module_and_inference():
    m_cpu = nf.nn.LSTM(8, 16, num_layers=2, bidirectional=True)
    m_gpu = nf.nn.LSTM(8, 16, num_layers=2, bidirectional=True)
    m_gpu.load_state_dict({k: np.array(v) for k, v in m_cpu.state_dict().items()})
    m_gpu.to("cuda")
    x = np.random.default_rng(3).standard_normal((7, 5, 8)).astype(np.float32)
    with nf.no_grad():
        want = m_cpu(nf.tensor(x))
        got = m_gpu(nf.tensor(x, device="cuda"))
    _close(got[0].cpu().numpy(), want[0].numpy(), "float32", "output")
    _close(got[1][0].cpu().numpy(), want[1][0].numpy(), "float32", "h_n")
    _close(got[1][1].cpu().numpy(), want[1][1].numpy(), "float32", "c_n")


# ---------------------------------------------------------------- everywhere
def test_rnn_names_implemented_in_cuda_backend():
    """Runs without a GPU: the CUDA backend defines these names itself (none of them
    falls back to the NotImplementedError stand-in) with the CPU twin's signatures."""
    import inspect

    from nnforge.backend import cuda as cuda_be
    for name in ("rnn_layer_forward", "rnn_layer_backward", "rnn_time_reverse"):
        assert name not in cuda_be.NOT_IMPLEMENTED
        fn = getattr(cuda_be, name)
        assert fn.__module__ == "nnforge.backend.cuda_rnn"
        ours, twin = inspect.signature(fn), inspect.signature(getattr(cpu, name))
        assert [(p.name, p.default) for p in ours.parameters.values()] == \
            [(p.name, p.default) for p in twin.parameters.values()]
