"""nf.bfloat16 end to end: the dtype, PyTorch's promotion, casts (bit-exact
round-to-nearest-even from float32), ops on bfloat16 CPU tensors against
PyTorch's bfloat16 CPU results, training a small MLP, safetensors BF16 files,
Module.bfloat16(), importing without ml_dtypes; and (marked cuda) bfloat16
tensors to and from the GPU and a bfloat16 GPT forward/backward on cuda vs cpu.

Tolerances: a bfloat16 value carries 8 significant bits (unit roundoff 2^-8 =
0.0039). Elementwise ops round once, as PyTorch's do, so results agree to one
bfloat16 ulp (rtol 2^-7) where both sides' float32 math differs in its last
bits; ops that sum (matmul, softmax, norms, conv, losses) round once at the
end but may sum in another order: their tolerance is a few ulps of the result
scale.
"""
import pickle
import subprocess
import sys

import numpy as np
import pytest

import nnforge as nf
import nnforge.nn.functional as F
from cuda_support import needs_gpu

torch = pytest.importorskip("torch")
ml_dtypes = pytest.importorskip("ml_dtypes")

BF16 = np.dtype(ml_dtypes.bfloat16)
ULP = 2.0 ** -7  # one bfloat16 ulp, relative (the spacing just above 1.0)

_DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64",
           "bfloat16"]


def _nf(name):
    return nf.bool if name == "bool" else getattr(nf, name)


def _ours(a, requires_grad=False):
    """A bfloat16 nnforge tensor from a float32 numpy array."""
    return nf.from_numpy(np.asarray(a, np.float32)).to(nf.bfloat16).requires_grad_(requires_grad)


def _theirs(a, requires_grad=False):
    return torch.from_numpy(np.asarray(a, np.float32)).to(torch.bfloat16).requires_grad_(
        requires_grad)


def _f32(x):
    """float32 values of a bfloat16 tensor of either library (exact)."""
    if isinstance(x, torch.Tensor):
        return x.detach().float().numpy()
    return x.detach().float().numpy()


def _bits(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().contiguous().view(torch.int16).numpy().view(np.uint16)
    return np.ascontiguousarray(x.detach().numpy()).view(np.uint16)


def _close(ours, theirs, rtol=ULP, atol=0.0, scale=None):
    """Same shape, both bfloat16, values within rtol (+ atol * scale of the result)."""
    assert ours.dtype is nf.bfloat16, ours.dtype
    assert theirs.dtype == torch.bfloat16
    a, b = _f32(ours), _f32(theirs)
    assert a.shape == b.shape
    if scale is None:
        scale = float(np.max(np.abs(b))) if b.size else 1.0
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol * scale, equal_nan=True)


# ---------------------------------------------------------------- the dtype
def test_dtype_object():
    d = nf.bfloat16
    assert repr(d) == "nnforge.bfloat16" and d.name == "bfloat16"
    assert d.itemsize == 2 and d.is_floating_point and d.is_signed
    assert d.np == BF16
    assert pickle.loads(pickle.dumps(d)) is d
    for spelling in ("bfloat16", ml_dtypes.bfloat16, BF16, d):
        assert nf.dtypes.as_dtype(spelling) is d
    assert nf.dtypes.from_numpy_dtype(BF16) is d
    t = nf.zeros(2, 3, dtype=nf.bfloat16)
    assert t.dtype is d and t.element_size() == 2 and t.itemsize == 2 and t.nbytes == 12
    assert t.is_floating_point() and t.stride() == (3, 1)
    # The only spelling, as in PyTorch (torch has no other alias either).
    assert not hasattr(nf, "bf16") and not hasattr(torch, "bf16")


@pytest.mark.parametrize("other", _DTYPES)
def test_promotion_of_two_tensors_matches_torch(other):
    for a_name, b_name in (("bfloat16", other), (other, "bfloat16")):
        ours = nf.result_type(nf.zeros(2, dtype=_nf(a_name)), nf.zeros(2, dtype=_nf(b_name)))
        theirs = torch.promote_types(getattr(torch, a_name), getattr(torch, b_name))
        assert ours.name == str(theirs).replace("torch.", ""), (a_name, b_name)
        # ... and the op's result has that dtype
        got = nf.zeros(2, dtype=_nf(a_name)) + nf.zeros(2, dtype=_nf(b_name))
        assert got.dtype is ours


@pytest.mark.parametrize("default", ["float32", "float64", "bfloat16"])
def test_promotion_with_scalars_and_zero_dim_tensors_matches_torch(default):
    nf.set_default_dtype(_nf(default))
    old = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, default))
    try:
        cases = [  # (operands as (kind, dtype name or Python value))
            [("dim", "bfloat16"), ("py", 2.5)], [("dim", "bfloat16"), ("py", 2)],
            [("dim", "bfloat16"), ("py", True)], [("dim", "int64"), ("py", 2.5)],
            [("dim", "bool"), ("py", 2.5)], [("0d", "bfloat16"), ("py", 2.5)],
            [("dim", "bfloat16"), ("0d", "float32")], [("dim", "bfloat16"), ("0d", "float64")],
            [("dim", "float16"), ("0d", "bfloat16")], [("dim", "int32"), ("0d", "bfloat16")],
            [("0d", "bfloat16"), ("0d", "float16")], [("0d", "int64"), ("py", 1.5)],
            [("py", 1.5), ("dim", "bfloat16")], [("0d", "float64"), ("dim", "bfloat16")],
        ]
        for case in cases:
            ours_ops, their_ops = [], []
            for kind, v in case:
                if kind == "py":
                    ours_ops.append(v)
                    their_ops.append(v)
                else:
                    shape = (2,) if kind == "dim" else ()
                    ours_ops.append(nf.zeros(shape, dtype=_nf(v)))
                    their_ops.append(torch.zeros(shape, dtype=getattr(torch, v)))
            want = torch.result_type(*their_ops)
            got = nf.result_type(*ours_ops)
            assert got.name == str(want).replace("torch.", ""), case
            got_op = ours_ops[0] + ours_ops[1]
            want_op = their_ops[0] + their_ops[1]
            assert got_op.dtype.name == str(want_op.dtype).replace("torch.", ""), case
    finally:
        torch.set_default_dtype(old)


# ---------------------------------------------------------------- creation and casts
def _tricky_float32():
    """float32 values that exercise bfloat16 rounding: exact ties to even (odd and even
    kept halves), one bit above and below a tie, the largest finite values (which round
    to inf), subnormals, signed zeros, infinities and NaN (quiet, negative, with payload)."""
    rng = np.random.default_rng(0)
    hi = rng.integers(0, 1 << 16, size=4000, dtype=np.uint32) << 16
    lo = np.concatenate([np.full(1000, 0x8000), np.full(1000, 0x7FFF), np.full(1000, 0x8001),
                         rng.integers(0, 1 << 16, size=1000)]).astype(np.uint32)
    bits = (hi | lo).astype(np.uint32)
    special = np.array([0x7F7FFFFF, 0xFF7FFFFF, 0x7F7F8000, 0x7F7F7FFF, 0x00000001, 0x80000001,
                        0x00008000, 0x00018000, 0x007FFFFF, 0x00000000, 0x80000000, 0x7F800000,
                        0xFF800000, 0x7FC00000, 0xFFC00000, 0x7F800001, 0x7FBFFFFF],
                       dtype=np.uint32)
    return np.concatenate([bits, special]).view(np.float32)


def test_float32_to_bfloat16_is_bit_exact_round_to_nearest_even():
    x = _tricky_float32()
    ours, theirs = nf.from_numpy(x).to(nf.bfloat16), torch.from_numpy(x).to(torch.bfloat16)
    nan = np.isnan(x)
    assert np.array_equal(np.isnan(_f32(ours)), nan)  # NaN stays NaN (never inf)
    np.testing.assert_array_equal(_bits(ours)[~nan], _bits(theirs)[~nan])
    # round to nearest even, spelled out: add 0x7FFF + the kept half's lowest bit
    b = x.view(np.uint32)[~nan].astype(np.uint64)
    want = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16).astype(np.uint16)
    np.testing.assert_array_equal(_bits(ours)[~nan], want)
    # bfloat16 -> float32 is exact: the bits move up 16 places
    back = ours.float().numpy()
    np.testing.assert_array_equal(back.view(np.uint32)[~nan], want.astype(np.uint32) << 16)


@pytest.mark.parametrize("src", ["float16", "float64", "int64", "int32", "uint8", "bool"])
def test_casts_to_and_from_other_dtypes_match_torch(src):
    rng = np.random.default_rng(1)
    if src == "bool":
        a = rng.random(200) < 0.5
    elif src in ("int64", "int32", "uint8"):
        a = rng.integers(0, 250, size=200).astype(src)
    else:  # float32-representable values (torch casts float64 through float32)
        a = (rng.standard_normal(200) * 100).astype(np.float32).astype(src)
    ours = nf.from_numpy(a).to(nf.bfloat16)
    theirs = torch.from_numpy(a).to(torch.bfloat16)
    np.testing.assert_array_equal(_bits(ours), _bits(theirs))
    back_ours = ours.to(_nf(src)).numpy()
    back_theirs = theirs.to(getattr(torch, src)).numpy()
    np.testing.assert_array_equal(back_ours, back_theirs)  # to ints: truncation toward 0


def test_creation_functions():
    t = nf.tensor([[1.0, 2.7], [-3.14159, 1e30]], dtype=nf.bfloat16)
    want = torch.tensor([[1.0, 2.7], [-3.14159, 1e30]], dtype=torch.bfloat16)
    np.testing.assert_array_equal(_bits(t), _bits(want))
    assert nf.tensor(t).dtype is nf.bfloat16  # from a bfloat16 tensor ...
    assert nf.tensor(t.numpy()).dtype is nf.bfloat16  # ... and from an ml_dtypes array
    assert nf.from_numpy(t.numpy()).dtype is nf.bfloat16
    assert nf.as_tensor([1, 2], dtype=nf.bfloat16).dtype is nf.bfloat16
    for make in (lambda: nf.zeros(3, dtype=nf.bfloat16), lambda: nf.ones(3, dtype=nf.bfloat16),
                 lambda: nf.full((3,), 0.1, dtype=nf.bfloat16),
                 lambda: nf.arange(0, 3, dtype=nf.bfloat16),
                 lambda: nf.linspace(0, 1, 3, dtype=nf.bfloat16),
                 lambda: nf.eye(3, dtype=nf.bfloat16), lambda: nf.randn(3, dtype=nf.bfloat16),
                 lambda: nf.zeros_like(t), lambda: nf.empty(2, dtype=nf.bfloat16)):
        assert make().dtype is nf.bfloat16
    assert nf.full((), 0.1, dtype=nf.bfloat16).item() == float(torch.tensor(0.1,
                                                                             dtype=torch.bfloat16))
    u = nf.rand(20000, dtype=nf.bfloat16).float().numpy()
    assert u.min() >= 0 and u.max() < 1 and len(np.unique(u)) > 200  # on bfloat16's own grid
    assert nf.randn(2, 3, dtype=nf.bfloat16, requires_grad=True).requires_grad


def test_conversions_and_printing():
    t = nf.tensor([1.0, 2.7, -3.14159], dtype=nf.bfloat16)
    a = t.numpy()
    assert a.dtype == BF16 and type(a) is np.ndarray
    assert t.tolist() == [1.0, 2.703125, -3.140625] and all(type(v) is float for v in t.tolist())
    assert t[1].item() == 2.703125 and type(t[1].item()) is float
    assert float(t[0]) == 1.0 and int(t[1]) == 2
    assert repr(t) == "tensor([ 1.0000,  2.7031, -3.1406], dtype=nnforge.bfloat16)"
    assert repr(t) == repr(torch.tensor([1.0, 2.7, -3.14159],
                                        dtype=torch.bfloat16)).replace("torch", "nnforge")
    assert "requires_grad=True" in repr(t.clone().requires_grad_())
    assert f"{t[1]:.2f}" == "2.70"
    assert t.bfloat16() is t and t.type() == "nnforge.bfloat16"
    assert t.to(nf.float32).dtype is nf.float32 and t.float().dtype is nf.float32
    assert t.to(dtype=nf.bfloat16) is t
    assert pickle.loads(pickle.dumps(t)).dtype is nf.bfloat16
    x = nf.tensor([0.5, 1.5], requires_grad=True)
    y = x.bfloat16()
    assert y.dtype is nf.bfloat16 and y.requires_grad
    (y * 3).sum().backward()  # the cast is differentiable; the gradient arrives in float32
    assert x.grad.dtype is nf.float32 and x.grad.tolist() == [3.0, 3.0]


# ---------------------------------------------------------------- ops vs torch bf16 CPU
def _pair(rng, shape, scale=1.0, requires_grad=False):
    a = (rng.standard_normal(shape) * scale).astype(np.float32)
    return _ours(a, requires_grad), _theirs(a, requires_grad)


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "add_scalar", "mul_scalar",
                                  "rsub_scalar", "div_scalar", "pow_scalar", "maximum", "exp",
                                  "log", "sqrt", "rsqrt", "tanh", "sigmoid", "relu", "gelu",
                                  "gelu_tanh", "abs", "neg", "sin", "clamp", "where_scalar",
                                  "masked_fill", "floor", "sign", "silu", "leaky_relu"])
def test_elementwise_ops_match_torch(name):
    rng = np.random.default_rng(2)
    (a, ta), (b, tb) = _pair(rng, (7, 33)), _pair(rng, (33,))
    pos, tpos = _ours(np.abs(a.float().numpy()) + 0.1), _theirs(np.abs(_f32(ta)) + 0.1)
    ops = {
        "add": (lambda x, y: x + y), "sub": (lambda x, y: x - y), "mul": (lambda x, y: x * y),
        "div": (lambda x, y: x / y), "add_scalar": (lambda x, y: x + 1.37),
        "mul_scalar": (lambda x, y: x * 0.3), "rsub_scalar": (lambda x, y: 2.5 - x),
        "div_scalar": (lambda x, y: x / 3.0), "pow_scalar": (lambda x, y: x ** 2),
        "maximum": (lambda x, y: x.maximum(y) if hasattr(x, "maximum") else None),
    }
    if name in ops:
        fn = ops[name]
        ours, theirs = fn(a, b), fn(ta, tb)
        if name == "maximum":
            ours, theirs = nf.maximum(a, b), torch.maximum(ta, tb)
    elif name in ("log", "sqrt", "rsqrt"):
        ours, theirs = getattr(nf, name)(pos), getattr(torch, name)(tpos)
    elif name in ("gelu", "silu", "leaky_relu"):
        ours, theirs = getattr(F, name)(a), getattr(torch.nn.functional, name)(ta)
    elif name == "gelu_tanh":
        ours, theirs = F.gelu(a, approximate="tanh"), torch.nn.functional.gelu(ta,
                                                                                approximate="tanh")
    elif name == "clamp":
        ours, theirs = nf.clamp(a, -0.5, 0.75), torch.clamp(ta, -0.5, 0.75)
    elif name == "where_scalar":
        ours, theirs = nf.where(a > 0, a, 0.1), torch.where(ta > 0, ta, 0.1)
    elif name == "masked_fill":
        ours, theirs = a.masked_fill(a > 0, -1.5), ta.masked_fill(ta > 0, -1.5)
    else:
        ours, theirs = getattr(nf, name)(a), getattr(torch, name)(ta)
    # PyTorch rounds the Python scalar of add/sub to bfloat16 first (not that of mul
    # or div); nnforge keeps every scalar in float32: up to half a scalar ulp apart.
    atol = 2.0 ** -8 * 2.5 if name in ("add_scalar", "rsub_scalar") else 1e-6
    _close(ours, theirs, rtol=ULP, atol=atol, scale=1.0)


def test_reductions_match_torch():
    rng = np.random.default_rng(3)
    a, ta = _pair(rng, (6, 500))
    for fn in (lambda x: x.sum(), lambda x: x.sum(1), lambda x: x.mean(0), lambda x: x.var(1),
               lambda x: x.std(), lambda x: x.amax(1), lambda x: x.prod(0),
               lambda x: x.logsumexp(1), lambda x: x.cumsum(1)):
        _close(fn(a), fn(ta), rtol=2 * ULP, atol=ULP)
    # PyTorch accumulates bfloat16 sums in float32; summing in bfloat16 gives 32, not 100
    assert nf.full((1000,), 0.1, dtype=nf.bfloat16).sum().item() == \
        torch.full((1000,), 0.1, dtype=torch.bfloat16).sum().item()
    assert a.argmax(1).tolist() == ta.argmax(1).tolist()


@pytest.mark.parametrize("shapes", [((16, 64), (64, 24)), ((3, 5, 40), (40, 7)),
                                    ((2, 9, 33), (2, 33, 17)), ((64,), (64,))])
def test_matmul_matches_torch(shapes):
    rng = np.random.default_rng(4)
    (a, ta), (b, tb) = _pair(rng, shapes[0]), _pair(rng, shapes[1])
    ours = a @ b
    assert ours.dtype is nf.bfloat16
    # float32 accumulation on both sides, one rounding: within an ulp or two of the scale
    _close(ours, ta @ tb, rtol=2 * ULP, atol=2 * ULP)
    # and it is the float32 product rounded once
    exact = (a.float() @ b.float()).to(nf.bfloat16)
    np.testing.assert_array_equal(_bits(ours), _bits(exact))


def test_linear_softmax_layer_norm_conv_cross_entropy_match_torch():
    rng = np.random.default_rng(5)
    tF = torch.nn.functional
    (x, tx), (w, tw), (b, tb) = _pair(rng, (8, 48)), _pair(rng, (20, 48), 0.2), _pair(rng, (20,))
    _close(F.linear(x, w, b), tF.linear(tx, tw, tb), rtol=2 * ULP, atol=2 * ULP)
    _close(F.softmax(x, -1), tF.softmax(tx, -1), rtol=2 * ULP, atol=ULP)
    _close(F.log_softmax(x, 0), tF.log_softmax(tx, 0), rtol=2 * ULP, atol=ULP)
    (lw, tlw), (lb, tlb) = _pair(rng, (48,)), _pair(rng, (48,))
    _close(F.layer_norm(x, (48,), lw, lb), tF.layer_norm(tx, (48,), tlw, tlb),
           rtol=2 * ULP, atol=2 * ULP)
    (img, timg), (k, tk) = _pair(rng, (2, 3, 12, 12)), _pair(rng, (5, 3, 3, 3), 0.3)
    _close(F.conv2d(img, k, None, 1, 1), tF.conv2d(timg, tk, None, 1, 1), rtol=2 * ULP,
           atol=2 * ULP)
    _close(F.max_pool2d(img, 2), tF.max_pool2d(timg, 2), rtol=0)
    _close(F.avg_pool2d(img, 2), tF.avg_pool2d(timg, 2), rtol=ULP, atol=ULP)
    target = rng.integers(0, 20, size=8)
    logits, tlogits = _pair(rng, (8, 20), 2.0, requires_grad=True)
    loss = F.cross_entropy(logits, nf.from_numpy(target))
    tloss = tF.cross_entropy(tlogits, torch.from_numpy(target))
    _close(loss, tloss, rtol=2 * ULP)
    loss.backward()
    tloss.backward()
    assert logits.grad.dtype is nf.bfloat16
    _close(logits.grad, tlogits.grad, rtol=2 * ULP, atol=2 * ULP)


def _mlps():
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(torch.nn.Linear(12, 32), torch.nn.GELU(), torch.nn.LayerNorm(32),
                                 torch.nn.Linear(32, 5))
    ours = nf.nn.Sequential(nf.nn.Linear(12, 32), nf.nn.GELU(), nf.nn.LayerNorm(32),
                            nf.nn.Linear(32, 5))
    ours.load_state_dict({k: nf.from_numpy(v.detach().numpy().copy())
                          for k, v in theirs.state_dict().items()})
    return ours.bfloat16(), theirs.bfloat16()


def _grad_close(ours, theirs, tol=0.02):
    """Gradients of a bfloat16 network: the relative error of the whole array. Single
    elements may differ more where a sum cancels (both sides round their own
    intermediate bfloat16 values, which differ by an ulp here and there)."""
    assert ours.dtype is nf.bfloat16
    a, b = _f32(ours), _f32(theirs)
    assert np.linalg.norm(a - b) <= tol * np.linalg.norm(b) + 1e-6, \
        np.linalg.norm(a - b) / np.linalg.norm(b)


@pytest.mark.parametrize("opt", ["SGD", "AdamW"])
def test_mlp_forward_backward_and_optimizer_step_match_torch(opt):
    ours, theirs = _mlps()
    assert all(p.dtype is nf.bfloat16 and p.requires_grad for p in ours.parameters())
    kw = {"lr": 0.1, "momentum": 0.9} if opt == "SGD" else {"lr": 0.01, "weight_decay": 0.1}
    o_opt = getattr(nf.optim, opt)(ours.parameters(), **kw)
    t_opt = getattr(torch.optim, opt)(theirs.parameters(), **kw)
    rng = np.random.default_rng(6)
    pairs = list(zip(ours.parameters(), theirs.parameters()))
    for step in range(3):
        with nf.no_grad():  # each step starts from the same bfloat16 weights
            for p, tp in pairs:
                p.copy_(nf.from_numpy(_f32(tp)).to(nf.bfloat16))
        x, tx = _pair(rng, (16, 12))
        y = rng.integers(0, 5, size=16)
        out, tout = ours(x), theirs(tx)
        _close(out, tout, rtol=4 * ULP, atol=4 * ULP)
        loss = F.cross_entropy(out, nf.from_numpy(y))
        tloss = torch.nn.functional.cross_entropy(tout, torch.from_numpy(y))
        assert loss.dtype is nf.bfloat16
        _close(loss, tloss, rtol=2 * ULP)
        o_opt.zero_grad()
        t_opt.zero_grad()
        loss.backward()
        tloss.backward()
        for p, tp in pairs:
            _grad_close(p.grad, tp.grad)
            p.grad = nf.from_numpy(_f32(tp.grad)).to(nf.bfloat16)  # the step sees the same
        o_opt.step()
        t_opt.step()
        for p, tp in pairs:
            assert p.dtype is nf.bfloat16
            # ours updates in float32 and rounds once; torch rounds each of its steps:
            # a few ulps of the parameter (and of the update, ~lr) apart
            _close(p, tp, rtol=2 * ULP, atol=0.05 * kw["lr"], scale=1.0)


def test_small_gpt_in_bfloat16_follows_float32():
    nf.manual_seed(0)
    model = nf.models.GPT(64, block_size=16, n_layer=2, n_head=4, d_model=32)
    ids = nf.from_numpy(np.random.default_rng(7).integers(0, 64, size=(2, 16)))
    ref = model(ids)
    model.bfloat16()
    logits = model(ids)
    assert logits.dtype is nf.bfloat16
    err = np.abs(logits.float().detach().numpy() - ref.detach().numpy()).max()
    assert err < 0.1 * np.abs(ref.detach().numpy()).max() + 0.05, err
    logits.float().logsumexp(-1).sum().backward()
    assert all(p.grad is not None and p.grad.dtype is nf.bfloat16 for p in model.parameters())


def test_module_bfloat16_keeps_integer_buffers():
    m = nf.nn.Sequential(nf.nn.Conv2d(3, 4, 3), nf.nn.BatchNorm2d(4))
    assert m.bfloat16() is m
    assert all(p.dtype is nf.bfloat16 for p in m.parameters())
    bufs = dict(m.named_buffers())
    assert bufs["1.running_mean"].dtype is nf.bfloat16
    assert bufs["1.num_batches_tracked"].dtype is nf.int64
    y = m(nf.randn(2, 3, 8, 8, dtype=nf.bfloat16))
    assert y.dtype is nf.bfloat16
    assert m.to(nf.float32) is m and all(p.dtype is nf.float32 for p in m.parameters())
    assert m.to(dtype=nf.bfloat16) is m and m[0].weight.dtype is nf.bfloat16


# ---------------------------------------------------------------- safetensors
def test_safetensors_round_trip(tmp_path):
    x = _tricky_float32()[:1000]
    tensors = {"w": nf.from_numpy(x).to(nf.bfloat16).reshape(10, 100),
               "scalar": nf.tensor(-3.5, dtype=nf.bfloat16),
               "f32": nf.randn(3), "strided": nf.randn(4, 6, dtype=nf.bfloat16).t()}
    nf.io.save_file(tensors, tmp_path / "a.safetensors")
    back = nf.io.load_file(tmp_path / "a.safetensors")
    for k, t in tensors.items():
        assert back[k].dtype is t.dtype and back[k].shape == t.shape
        np.testing.assert_array_equal(_bits(back[k]) if t.dtype is nf.bfloat16 else
                                      back[k].numpy(), _bits(t.contiguous()) if
                                      t.dtype is nf.bfloat16 else t.numpy())
    # a model checkpoint in bfloat16 loads back as bfloat16
    m = nf.nn.Linear(3, 2).bfloat16()
    nf.save(m.state_dict(), tmp_path / "m.safetensors")
    sd = nf.load(tmp_path / "m.safetensors")
    assert sd["weight"].dtype is nf.bfloat16
    np.testing.assert_array_equal(_bits(sd["weight"]), _bits(m.weight))


def test_safetensors_files_interoperate_with_the_safetensors_package(tmp_path):
    st_torch = pytest.importorskip("safetensors.torch")
    t = torch.from_numpy(_tricky_float32()[:512]).to(torch.bfloat16).reshape(8, 64)
    st_torch.save_file({"t": t, "z": torch.tensor(1.5, dtype=torch.bfloat16)},
                       str(tmp_path / "pt.safetensors"))
    ours = nf.io.load_file(tmp_path / "pt.safetensors")
    assert ours["t"].dtype is nf.bfloat16 and ours["z"].shape == ()
    np.testing.assert_array_equal(_bits(ours["t"]), _bits(t))
    assert ours["z"].item() == 1.5
    nf.io.save_file({"t": ours["t"]}, tmp_path / "nf.safetensors")
    theirs = st_torch.load_file(str(tmp_path / "nf.safetensors"))
    assert theirs["t"].dtype == torch.bfloat16
    np.testing.assert_array_equal(_bits(theirs["t"]), _bits(t))


# ---------------------------------------------------------------- without ml_dtypes
def test_import_without_ml_dtypes_and_a_clear_error():
    code = """
import sys
sys.modules["ml_dtypes"] = None  # import ml_dtypes now raises ImportError
import nnforge as nf
assert nf.bfloat16.name == "bfloat16" and nf.bfloat16.itemsize == 2
assert (nf.ones(2) * 2).tolist() == [2.0, 2.0]
for make in (lambda: nf.zeros(2, dtype=nf.bfloat16), lambda: nf.ones(2).to(nf.bfloat16),
             lambda: nf.nn.Linear(2, 2).bfloat16()):
    try:
        make()
    except RuntimeError as e:
        assert "ml_dtypes" in str(e), e
    else:
        raise AssertionError("no error")
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


# ---------------------------------------------------------------- CUDA
@needs_gpu
def test_cuda_round_trip_and_array_interface():
    x = _tricky_float32()
    t = nf.from_numpy(x).to(nf.bfloat16)
    d = t.to("cuda")
    assert d.dtype is nf.bfloat16 and d.device.type == "cuda"
    assert d.data.dtype == BF16 and d.data.dtype_name == "bfloat16"
    np.testing.assert_array_equal(_bits(d.cpu()), _bits(t))
    # cast on the GPU: the same round-to-nearest-even as the CPU (NaN stays NaN)
    g = nf.from_numpy(x).to("cuda").to(nf.bfloat16).cpu()
    nan = np.isnan(x)
    assert np.array_equal(np.isnan(_f32(g)), nan)
    np.testing.assert_array_equal(_bits(g)[~nan], _bits(t)[~nan])
    assert d.data.__cuda_array_interface__["typestr"] == "<V2"  # as torch exports bfloat16
    assert d.numpy(force=True).dtype == BF16
    assert (d * 0.5 + 1).dtype is nf.bfloat16 and (d + nf.ones(1, device="cuda")).dtype is \
        nf.float32


@needs_gpu
def test_cuda_gpt_forward_backward_in_bfloat16_matches_cpu_bfloat16():
    def run(device):
        nf.manual_seed(0)
        model = nf.models.GPT(96, block_size=32, n_layer=2, n_head=4, d_model=64)
        model.bfloat16().to(device)
        ids = nf.from_numpy(np.random.default_rng(8).integers(0, 96, size=(3, 32))).to(device)
        logits = model(ids)
        loss = F.cross_entropy(logits.reshape(-1, 96).float(), ids.reshape(-1))
        loss.backward()
        return (logits.float().cpu().detach().numpy(), loss.item(),
                {n: p.grad.float().cpu().numpy() for n, p in model.named_parameters()})

    cpu_logits, cpu_loss, cpu_grads = run("cpu")
    gpu_logits, gpu_loss, gpu_grads = run("cuda")
    scale = np.abs(cpu_logits).max()
    assert np.abs(gpu_logits - cpu_logits).max() < 8 * ULP * scale + 1e-2
    assert abs(gpu_loss - cpu_loss) < 8 * ULP * abs(cpu_loss)
    for n, g in cpu_grads.items():
        err = np.linalg.norm(gpu_grads[n] - g) / (np.linalg.norm(g) + 1e-12)
        assert err < 0.05, (n, err)
