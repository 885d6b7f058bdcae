"""Tests for the loss Functions (python/nnforge/ops/loss.py), their nn.functional
forms and the loss modules (nn/loss.py): values and gradients (input, target,
weights) against PyTorch for every reduction, gradcheck in float64, stability
for huge logits, the fused cross entropy against the composed formula, the
0-1 loss / accuracy metric, module buffers and reprs, errors. The older
cross-entropy/NLL/MSE tests live in test_nn_functional.py."""
import math
import warnings

import numpy as np
import pytest

import nnforge as nf
from nnforge import nn
from nnforge.backend import cpu as cpu_backend
from nnforge.nn import functional as F

from helpers import assert_close, check_op, requires_torch, run_gradcheck, torch, torch_or_skip

REDUCTIONS = ["mean", "sum", "none"]


def tf():
    return torch.nn.functional


def arrays(*shapes, seed=0, low=-2.0, high=2.0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return [rng.uniform(low, high, s).astype(dtype) for s in shapes]


def probs(shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).uniform(0.05, 0.95, shape).astype(dtype)


# ---------------------------------------------------------------- regression losses
REGRESSION = {
    "l1": (lambda r: lambda a, b: F.l1_loss(a, b, reduction=r),
           lambda r: lambda a, b: tf().l1_loss(a, b, reduction=r)),
    "smooth_l1": (lambda r: lambda a, b: F.smooth_l1_loss(a, b, reduction=r),
                  lambda r: lambda a, b: tf().smooth_l1_loss(a, b, reduction=r)),
    "smooth_l1_beta": (lambda r: lambda a, b: F.smooth_l1_loss(a, b, reduction=r, beta=0.4),
                       lambda r: lambda a, b: tf().smooth_l1_loss(a, b, reduction=r, beta=0.4)),
    "smooth_l1_beta0": (lambda r: lambda a, b: F.smooth_l1_loss(a, b, reduction=r, beta=0.0),
                        lambda r: lambda a, b: tf().smooth_l1_loss(a, b, reduction=r, beta=0.0)),
    "huber": (lambda r: lambda a, b: F.huber_loss(a, b, reduction=r),
              lambda r: lambda a, b: tf().huber_loss(a, b, reduction=r)),
    "huber_delta": (lambda r: lambda a, b: F.huber_loss(a, b, reduction=r, delta=0.3),
                    lambda r: lambda a, b: tf().huber_loss(a, b, reduction=r, delta=0.3)),
    "mse": (lambda r: lambda a, b: F.mse_loss(a, b, reduction=r),
            lambda r: lambda a, b: tf().mse_loss(a, b, reduction=r)),
    "mse_half": (lambda r: lambda a, b: F.mse_loss(a, b, reduction=r, half=True),
                 lambda r: lambda a, b: 0.5 * tf().mse_loss(a, b, reduction=r)),
}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", sorted(REGRESSION))
@pytest.mark.parametrize("shape", [(4, 5), (7,), ()], ids=str)
def test_regression_losses_vs_pytorch(name, reduction, shape):
    nf_fn, torch_fn = REGRESSION[name]
    a, b = arrays(shape, shape)
    check_op(nf_fn(reduction), torch_fn(reduction) if torch else None,
             inputs=[a.astype(np.float32), b.astype(np.float32)], gradcheck=False)
    check_op(nf_fn(reduction), torch_fn(reduction) if torch else None, inputs=[a, b])


@requires_torch
@pytest.mark.parametrize("name", ["l1", "huber_delta", "smooth_l1_beta"])
def test_regression_losses_at_their_kinks(name):
    """d = input - target exactly 0 and exactly +-delta/beta: PyTorch's gradient."""
    nf_fn, torch_fn = REGRESSION[name]
    k = {"l1": 0.0, "huber_delta": 0.3, "smooth_l1_beta": 0.4}[name]
    t = np.array([0.0, 0.5, -1.0, 2.0, 0.0, 1.0])
    x = t + np.array([0.0, k, -k, 0.0, k, -k])
    check_op(nf_fn("sum"), torch_fn("sum"), inputs=[x, t], gradcheck=False)


@requires_torch
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", ["l1", "huber"])
def test_weighted_l1_and_huber_vs_pytorch(name, reduction):
    a, b = arrays((3, 4), (3, 4))
    w = np.random.default_rng(5).uniform(0.1, 2.0, (3, 4))
    fn = getattr(F, f"{name}_loss")
    ref = getattr(tf(), f"{name}_loss")
    check_op(lambda x, y, ww: fn(x, y, reduction=reduction, weight=ww),
             lambda x, y, ww: ref(x, y, reduction=reduction, weight=ww),
             inputs=[a, b, w], requires_grad=[True, True, False])


def test_mse_half_is_half_the_squared_error():
    o, t = nf.tensor([1.0, 3.0, -2.0], requires_grad=True), nf.tensor([0.0, 1.0, 1.0])
    loss = F.mse_loss(o, t, reduction="sum", half=True)
    assert loss.item() == pytest.approx(0.5 * (1 + 4 + 9))
    loss.backward()
    np.testing.assert_allclose(o.grad.numpy(), [1.0, 2.0, -3.0])  # o - t
    assert nn.MSELoss(half=True)(o, t).item() == pytest.approx(14 / 6)
    assert repr(nn.MSELoss(half=True)) == "MSELoss(half=True)"
    assert repr(nn.MSELoss()) == "MSELoss()"


# ---------------------------------------------------------------- binary cross entropy
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True], ids=["noweight", "weight"])
def test_bce_vs_pytorch(reduction, weighted):
    x, t = probs((4, 3)), probs((4, 3), seed=1)
    w = np.random.default_rng(2).uniform(0.5, 2.0, (3,)) if weighted else None

    def nf_fn(a, b, *ww):
        return F.binary_cross_entropy(a, b, weight=ww[0] if ww else None, reduction=reduction)

    def th_fn(a, b, *ww):
        return tf().binary_cross_entropy(a, b, weight=ww[0] if ww else None, reduction=reduction)

    ins = [x, t] + ([w] if weighted else [])
    rg = [True, True] + ([False] if weighted else [])
    check_op(nf_fn, th_fn if torch else None, inputs=ins, requires_grad=rg)
    check_op(nf_fn, th_fn if torch else None, inputs=[a.astype(np.float32) for a in ins],
             requires_grad=rg, gradcheck=False)
    if weighted:  # our extra: a gradient for the weight too
        run_gradcheck(nf_fn, ins, [True, True, True])


@requires_torch
def test_bce_clamps_its_logs_at_minus_100():
    x = np.array([0.0, 1.0, 0.0, 1.0, 1e-50, 0.5])
    t = np.array([1.0, 0.0, 0.0, 1.0, 1.0, 0.3])
    check_op(lambda a, b: F.binary_cross_entropy(a, b, reduction="none"),
             lambda a, b: tf().binary_cross_entropy(a, b, reduction="none"),
             inputs=[x, t], requires_grad=[True, False], gradcheck=False, noncontig=False)
    assert F.binary_cross_entropy(nf.tensor([0.0]), nf.tensor([1.0])).item() == 100.0
    # The target's gradient is that of the clamped loss, log(1 - x) - log(x) with both
    # logs clamped: finite (PyTorch leaves these logs unclamped and gives inf).
    tt = nf.tensor(t, requires_grad=True)
    F.binary_cross_entropy(nf.tensor(x), tt, reduction="sum").backward()
    np.testing.assert_allclose(tt.grad.numpy(), [100.0, -100.0, 100.0, -100.0, 100.0, 0.0],
                               atol=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weights", ["none", "weight", "pos_weight", "both"])
def test_bce_with_logits_vs_pytorch(reduction, weights):
    x, = arrays((5, 3), low=-4, high=4)
    t = probs((5, 3), seed=1)
    w = np.random.default_rng(2).uniform(0.5, 2.0, (5, 1))
    pw = np.random.default_rng(3).uniform(0.5, 3.0, (3,))
    use_w, use_pw = weights in ("weight", "both"), weights in ("pos_weight", "both")

    def call(fn, a, b, *extra):
        kw, extra = {}, list(extra)
        if use_w:
            kw["weight"] = extra.pop(0)
        if use_pw:
            kw["pos_weight"] = extra.pop(0)
        return fn(a, b, reduction=reduction, **kw)

    ins = [x, t] + ([w] if use_w else []) + ([pw] if use_pw else [])
    nf_fn = lambda *a: call(F.binary_cross_entropy_with_logits, *a)
    th_fn = (lambda *a: call(tf().binary_cross_entropy_with_logits, *a)) if torch else None
    rg = [True, True] + [False] * (len(ins) - 2)
    check_op(nf_fn, th_fn, inputs=ins, requires_grad=rg)
    check_op(nf_fn, th_fn, inputs=[a.astype(np.float32) for a in ins], requires_grad=rg,
             gradcheck=False)
    if len(ins) > 2:  # our extra: gradients for weight and pos_weight
        run_gradcheck(nf_fn, ins, [True] * len(ins))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_bce_with_logits_is_exact_for_huge_logits(dtype, monkeypatch):
    monkeypatch.setattr(cpu_backend, "_quiet", lambda: np.errstate(
        over="raise", invalid="raise", divide="raise", under="ignore"))
    x = nf.tensor(np.array([1e4, -1e4, 1e4, -1e4, 50.0, -50.0]).astype(dtype),
                  requires_grad=True)
    t = nf.tensor(np.array([1.0, 0.0, 0.0, 1.0, 1.0, 0.0]).astype(dtype))
    loss = F.binary_cross_entropy_with_logits(x, t, reduction="none",
                                              pos_weight=nf.tensor(np.array(2.0, dtype)))
    expected = [0.0, 0.0, 1e4, 2e4, 2 * math.log1p(math.exp(-50)), math.log1p(math.exp(-50))]
    np.testing.assert_allclose(loss.detach().numpy(), expected, rtol=1e-6)
    loss.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 0.0, 1.0, -2.0, 0.0, 0.0], atol=1e-12)
    if torch is not None:
        ref = tf().binary_cross_entropy_with_logits(
            torch.tensor(x.detach().numpy()), torch.tensor(t.numpy()), reduction="none",
            pos_weight=torch.tensor(2.0, dtype=getattr(torch, dtype)))
        assert_close(loss, ref, rtol=1e-6)


# ---------------------------------------------------------------- KL divergence
@pytest.mark.parametrize("reduction", ["batchmean", "sum", "none", "mean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_vs_pytorch(reduction, log_target):
    x = np.log(np.random.default_rng(0).dirichlet(np.ones(4), 3))
    p = np.random.default_rng(1).dirichlet(np.ones(4), 3)
    p[0, 1] = 0.0  # a zero probability: its term is 0
    t = np.log(p + 1e-3) if log_target else p
    nf_fn = lambda a, b: F.kl_div(a, b, reduction=reduction, log_target=log_target)
    th_fn = (lambda a, b: tf().kl_div(a, b, reduction=reduction, log_target=log_target)) \
        if torch else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # 'mean' warns, in both libraries
        check_op(nf_fn, th_fn, inputs=[x, t], requires_grad=[True, log_target])
        check_op(nf_fn, th_fn, inputs=[x.astype(np.float32), t.astype(np.float32)],
                 requires_grad=[True, log_target], gradcheck=False)
    pos = np.random.default_rng(2).dirichlet(np.ones(4), 3)
    run_gradcheck(nf_fn if reduction != "mean" else
                  (lambda a, b: F.kl_div(a, b, reduction="sum", log_target=log_target)),
                  [x, np.log(pos) if log_target else pos])


def test_kl_div_batchmean_is_the_kl_divergence_per_sample():
    p = np.array([[0.5, 0.5], [0.9, 0.1]])
    q = np.array([[0.25, 0.75], [0.5, 0.5]])
    kl = (p * np.log(p / q)).sum(1).mean()
    loss = nn.KLDivLoss(reduction="batchmean")(nf.tensor(np.log(q)), nf.tensor(p))
    assert loss.item() == pytest.approx(kl, rel=1e-12)
    with pytest.warns(UserWarning, match="batchmean"):
        F.kl_div(nf.tensor(np.log(q)), nf.tensor(p))
    with pytest.raises(ValueError, match="'avg' is not a valid value for reduction"):
        nn.KLDivLoss(reduction="avg")
    with pytest.raises(ValueError, match="not a valid value"):
        F.l1_loss(nf.ones(2), nf.ones(2), reduction="batchmean")


# ---------------------------------------------------------------- cross entropy (fused)
def composed_cross_entropy(x, t, weight=None, ignore_index=-100, reduction="mean",
                           smoothing=0.0):
    """The textbook composition: log_softmax, pick, weight, smooth, reduce."""
    logp = F.log_softmax(x, dim=1)
    n_classes = x.shape[1]
    valid = (t != ignore_index)
    safe = nf.where(valid, t, 0)
    w = valid.to(x.dtype) if weight is None else weight[safe] * valid.to(x.dtype)
    nll = -logp.gather(1, safe.unsqueeze(1)).squeeze(1) * w
    wl = logp if weight is None else logp * weight.reshape((1, -1) + (1,) * (x.ndim - 2))
    smooth = -wl.sum(1) * valid.to(x.dtype)
    loss = nll * (1 - smoothing) + smooth * (smoothing / n_classes)
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.sum() / w.sum()


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
@pytest.mark.parametrize("shape", [(6, 5), (3, 4, 2, 3)], ids=str)
def test_fused_cross_entropy_matches_the_composed_formula_incl_weight_gradient(
        reduction, smoothing, shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    t = rng.integers(0, shape[1], (shape[0],) + shape[2:])
    t.reshape(-1)[::4] = 2  # ignored
    w = rng.uniform(0.5, 2.0, shape[1])
    tt = nf.tensor(t)
    fused = lambda a, ww: F.cross_entropy(a, tt, weight=ww, ignore_index=2, reduction=reduction,
                                          label_smoothing=smoothing)
    ref = lambda a, ww: composed_cross_entropy(a, tt, ww, 2, reduction, smoothing)
    check_op(fused, None, lambda a, ww: ref(nf.tensor(a), nf.tensor(ww)).numpy(),
             inputs=[x, w], noncontig=False, gradcheck=False)
    for fn in (fused, ref):  # identical gradients for logits and weights
        a, ww = nf.tensor(x, requires_grad=True), nf.tensor(w, requires_grad=True)
        out = fn(a, ww)
        out.backward(nf.ones_like(out))
        if fn is fused:
            ga, gw = a.grad.numpy(), ww.grad.numpy()
    np.testing.assert_allclose(ga, a.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gw, ww.grad.numpy(), rtol=1e-10, atol=1e-12)
    run_gradcheck(fused, [x, w])


@requires_torch
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_huge_logits_vs_pytorch(dtype, smoothing, monkeypatch):
    monkeypatch.setattr(cpu_backend, "_quiet", lambda: np.errstate(
        over="raise", invalid="raise", divide="raise", under="ignore"))
    x = np.array([[1e4, -1e4, 0.0, 5e3], [-1e4, -1e4, -1e4, -1e4], [3e3, 1e4, -2e3, 0.0]])
    t = np.array([1, 2, 0])
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        check_op(lambda a: F.cross_entropy(a, nf.tensor(t), label_smoothing=smoothing),
                 lambda a: tf().cross_entropy(a, torch.tensor(t), label_smoothing=smoothing),
                 inputs=[x.astype(dtype)], gradcheck=False, noncontig=False, rtol=1e-6)


@requires_torch
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_many_extra_dims_vs_pytorch(reduction):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 5, 3, 2, 2))
    t = rng.integers(0, 5, (2, 3, 2, 2))
    t[0, 1] = -100
    check_op(lambda a: F.cross_entropy(a, nf.tensor(t), reduction=reduction,
                                       label_smoothing=0.2),
             lambda a: tf().cross_entropy(a, torch.tensor(t), reduction=reduction,
                                          label_smoothing=0.2),
             inputs=[x], gradcheck=False)


def test_cross_entropy_all_ignored_gives_nan_loss_and_zero_gradient():
    for smoothing in (0.0, 0.2):
        x = nf.randn(3, 4, requires_grad=True)
        loss = F.cross_entropy(x, nf.tensor([-100, -100, -100]), label_smoothing=smoothing)
        assert math.isnan(loss.item())
        loss.backward()
        np.testing.assert_array_equal(x.grad.numpy(), np.zeros((3, 4)))
    x = nf.randn(0, 4, requires_grad=True)
    assert math.isnan(F.cross_entropy(x, nf.tensor(np.zeros(0, np.int64))).item())


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss_weight_gradient_gradcheck(reduction):
    x = np.log(np.random.default_rng(0).dirichlet(np.ones(4), (3, 2)).transpose(0, 2, 1))
    t = nf.tensor([[0, 3], [1, -1], [3, 3]])
    w = np.array([0.5, 1.0, 2.0, 1.5])
    run_gradcheck(lambda a, ww: F.nll_loss(a, t, weight=ww, ignore_index=-1,
                                           reduction=reduction), [x, w])


# ---------------------------------------------------------------- 0-1 loss and accuracy
def test_zero_one_loss_and_accuracy():
    logits = nf.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 0.0, 5.0], [4.0, 0.0, 0.0]],
                       requires_grad=True)
    target = nf.tensor([0, 1, 1, 2])
    assert F.zero_one_loss(logits, target).item() == 0.5
    assert F.zero_one_loss(logits, target, reduction="sum").item() == 2.0
    np.testing.assert_array_equal(F.zero_one_loss(logits, target, reduction="none").numpy(),
                                  [0, 0, 1, 1])
    acc = F.accuracy(logits, target)
    assert acc.item() == 0.5 and acc.ndim == 0 and not acc.requires_grad
    assert acc.dtype == nf.get_default_dtype()
    # labels against labels; scores with extra dims (N, C, d); an unbatched (C,) input
    assert F.accuracy(nf.tensor([1, 2, 3]), nf.tensor([1, 0, 3])).item() == pytest.approx(2 / 3)
    scores = nf.tensor(np.random.default_rng(0).standard_normal((2, 3, 4)))
    labels = scores.argmax(1)
    assert F.accuracy(scores, labels).item() == 1.0
    assert F.zero_one_loss(nf.tensor([0.1, 0.9]), nf.tensor(0)).item() == 1.0


def test_zero_one_loss_shape_errors():
    with pytest.raises(ValueError, match=r"zero_one_loss: expected target of shape \(4,\)"):
        F.zero_one_loss(nf.randn(4, 3), nf.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"accuracy: input of shape \(2, 3\) must be class "
                                         r"scores"):
        F.accuracy(nf.randn(2, 3), nf.randn(2, 3, 4))


# ---------------------------------------------------------------- modules
@requires_torch
def test_loss_modules_match_pytorch():
    torch = torch_or_skip()
    rng = np.random.default_rng(0)
    x, t = rng.uniform(-2, 2, (4, 3)), rng.uniform(0, 1, (4, 3))
    p = rng.uniform(0.05, 0.95, (4, 3))
    w, pw = rng.uniform(0.5, 2, (3,)), rng.uniform(0.5, 2, (3,))
    pairs = [
        (nn.L1Loss(reduction="sum"), torch.nn.L1Loss(reduction="sum"), x, t),
        (nn.HuberLoss(delta=0.5), torch.nn.HuberLoss(delta=0.5), x, t),
        (nn.SmoothL1Loss(beta=0.5), torch.nn.SmoothL1Loss(beta=0.5), x, t),
        (nn.BCELoss(weight=nf.tensor(w)), torch.nn.BCELoss(weight=torch.tensor(w)), p, t),
        (nn.BCEWithLogitsLoss(pos_weight=nf.tensor(pw)),
         torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pw)), x, t),
        (nn.KLDivLoss(reduction="batchmean", log_target=True),
         torch.nn.KLDivLoss(reduction="batchmean", log_target=True), x, x[::-1].copy()),
    ]
    for ours, ref, a, b in pairs:
        assert_close(ours(nf.tensor(a), nf.tensor(b)), ref(torch.tensor(a), torch.tensor(b)),
                     rtol=1e-10, msg=type(ours).__name__)
        assert list(ours.state_dict()) == list(ref.state_dict()), type(ours).__name__
        assert repr(ours) == repr(ref)


def test_loss_module_buffers_follow_dtype():
    crit = nn.BCEWithLogitsLoss(weight=nf.ones(3), pos_weight=nf.ones(3)).double()
    assert crit.weight.dtype == nf.float64 and crit.pos_weight.dtype == nf.float64
    assert list(crit.state_dict()) == ["weight", "pos_weight"]


# ---------------------------------------------------------------- errors
def test_pointwise_loss_argument_errors():
    with pytest.raises(ValueError, match=r"l1_loss: input of shape \(4, 1\) and target of "
                                         r"shape \(4,\) must have the same shape"):
        F.l1_loss(nf.randn(4, 1), nf.randn(4))
    with pytest.raises(ValueError, match="binary_cross_entropy: all elements of input should "
                                         "be between 0 and 1"):
        F.binary_cross_entropy(nf.tensor([0.5, 1.5]), nf.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"pos_weight of shape \(4,\) must broadcast to the "
                                         r"input's shape \(2, 3\)"):
        F.binary_cross_entropy_with_logits(nf.randn(2, 3), nf.rand(2, 3), pos_weight=nf.ones(4))
    with pytest.raises(ValueError, match=r"binary_cross_entropy: weight of shape \(2, 3, 1\)"):
        F.binary_cross_entropy(nf.rand(2, 3), nf.rand(2, 3), weight=nf.ones(2, 3, 1))
    with pytest.raises(ValueError, match="huber_loss: delta must be positive"):
        F.huber_loss(nf.randn(2), nf.randn(2), delta=0.0)
    with pytest.raises(ValueError, match="smooth_l1_loss: beta must be non-negative"):
        F.smooth_l1_loss(nf.randn(2), nf.randn(2), beta=-1.0)
    with pytest.raises(TypeError, match="kl_div: argument 'target' must be a Tensor"):
        F.kl_div(nf.randn(2), [0.5, 0.5], reduction="sum")
    with pytest.raises(ValueError, match="HuberLoss: delta"):
        nn.HuberLoss(delta=-1.0)


def test_integer_targets_are_promoted_for_pointwise_losses():
    x = nf.tensor([0.5, 2.0], requires_grad=True)
    loss = F.l1_loss(x, nf.tensor([1, 2]))
    assert loss.dtype == nf.float32 and loss.item() == pytest.approx(0.25)
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), [-0.5, 0.0])


# ---------------------------------------------------------------- kernels (csrc/cpu/loss*.cpp)
def ce_reference(z, t, w, ignore_index, e):
    """Per-position loss, logsumexp and gradient (upstream 1) in float64 numpy."""
    z = z.astype(np.float64)
    n, c = z.shape[:2]
    m = z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z - m).sum(axis=1, keepdims=True)) + m
    logp = z - lse
    valid = t != ignore_index
    safe = np.where(valid, t, 0)
    wv = np.ones(c) if w is None else w.astype(np.float64)
    shape = (1, c) + (1,) * (z.ndim - 2)
    onehot = np.arange(c).reshape(shape) == safe[:, None]
    q_w = (1 - e) * onehot * wv[safe][:, None] + e / c * wv.reshape(shape)  # weighted target
    loss = np.where(valid, -(q_w * logp).sum(axis=1), 0.0)
    grad = np.exp(logp) * q_w.sum(axis=1, keepdims=True) - q_w
    grad = np.where(valid[:, None], grad, 0.0)
    return loss, lse[:, 0], grad


@pytest.mark.parametrize("shape", [(5, 7), (1, 1), (3, 1), (0, 4), (2, 3, 1), (2, 4, 300),
                                   (3, 5, 2, 7), (70, 40, 50)], ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weighted,smoothing", [(False, 0.0), (True, 0.0), (False, 0.2),
                                                (True, 0.3)])
def test_cross_entropy_kernels_against_numpy(shape, dtype, weighted, smoothing):
    """Odd sizes, a single class, no samples, positions across tiles of 256, and
    one case above the threading threshold (70 * 40 * 50 = 140000 elements)."""
    rng = np.random.default_rng(0)
    z = (rng.standard_normal(shape) * 4).astype(dtype)
    t = rng.integers(0, shape[1], (shape[0],) + shape[2:])
    t.reshape(-1)[::5] = -1
    w = rng.uniform(0.5, 2.0, shape[1]).astype(dtype) if weighted else None
    loss, lse, wy = cpu_backend.cross_entropy_forward(z, t, w, -1, smoothing)
    ref_loss, ref_lse, ref_grad = ce_reference(z, t, w, -1, smoothing)
    tol = 2e-6 if dtype == np.float32 else 1e-12
    assert loss.dtype == dtype and loss.shape == t.shape
    np.testing.assert_allclose(loss, ref_loss, rtol=tol, atol=tol * 10)
    np.testing.assert_allclose(lse, ref_lse, rtol=tol, atol=tol * 10)
    np.testing.assert_array_equal(wy, np.where(t != -1, 1.0 if w is None else
                                               w[np.where(t != -1, t, 0)], 0.0))
    g = np.ones(t.shape, dtype)
    grad = cpu_backend.cross_entropy_backward(z, t, w, lse, wy, g, -1, smoothing)
    assert grad.dtype == dtype and grad.shape == z.shape
    np.testing.assert_allclose(grad, ref_grad, rtol=tol * 10, atol=tol * 10)


def test_cross_entropy_kernels_on_views_float16_and_special_values():
    rng = np.random.default_rng(1)
    base = rng.standard_normal((4, 6, 10))
    view = base[:, :, ::2]  # not contiguous
    t = rng.integers(0, 6, (4, 5))
    loss, lse, _ = cpu_backend.cross_entropy_forward(view, t, None, -100, 0.0)
    np.testing.assert_allclose(loss, ce_reference(view, t, None, -100, 0.0)[0], rtol=1e-12)
    half = cpu_backend.cross_entropy_forward(view.astype(np.float16), t, None, -100, 0.0)[0]
    assert half.dtype == np.float16
    np.testing.assert_allclose(half, loss, rtol=2e-3, atol=2e-3)
    # -inf logits are probability 0; NaN makes its row NaN; huge logits stay finite
    z = np.array([[0.0, -np.inf, 1.0], [np.nan, 0.0, 1.0], [1e4, -1e4, 0.0]], np.float32)
    loss, lse, wy = cpu_backend.cross_entropy_forward(z, np.array([0, 1, 1]), None, -100, 0.0)
    assert loss[0] == pytest.approx(np.log1p(np.e), rel=1e-6)
    assert np.isnan(loss[1]) and loss[2] == 2e4
    grad = cpu_backend.cross_entropy_backward(z, np.array([0, 1, 1]), None, lse, wy,
                                              np.ones(3, np.float32), -100, 0.0)
    assert grad[0, 1] == 0.0 and np.isnan(grad[1]).all() and np.isfinite(grad[2]).all()


def test_cross_entropy_kernels_check_their_arguments():
    from nnforge._C import cpu as kernels
    z, t = np.zeros((2, 3, 1), np.float32), np.zeros((2, 1), np.int64)
    with pytest.raises(ValueError, match=r"cross_entropy_forward: z must have shape \(N, C, D\)"):
        kernels.cross_entropy_forward(np.zeros((2, 3), np.float32), t, None, -100, 0.0)
    with pytest.raises(ValueError, match=r"target has shape \(2,\), expected \(2, 1\)"):
        kernels.cross_entropy_forward(z, np.zeros(2, np.int64), None, -100, 0.0)
    with pytest.raises(ValueError, match="target has dtype int32, expected int64"):
        kernels.cross_entropy_forward(z, t.astype(np.int32), None, -100, 0.0)
    with pytest.raises(ValueError, match=r"weight has shape \(2,\), expected \(3,\)"):
        kernels.cross_entropy_forward(z, t, np.ones(2, np.float32), -100, 0.0)
    with pytest.raises(ValueError, match="weight has dtype float64, expected float32"):
        kernels.cross_entropy_forward(z, t, np.ones(3), -100, 0.0)
    with pytest.raises(ValueError, match="z has dtype int64"):
        kernels.cross_entropy_forward(z.astype(np.int64), t, None, -100, 0.0)
    with pytest.raises(ValueError, match="z must be C-contiguous"):
        kernels.cross_entropy_forward(np.zeros((2, 3, 2), np.float32)[:, :, :1], t, None, -100,
                                      0.0)
    assert kernels.cross_entropy_forward(z, t + 3, None, -100, 0.0)[3] == 0  # the bad position
    with pytest.raises(IndexError, match="cross_entropy_backward: target 3 is out of bounds"):
        kernels.cross_entropy_backward(z, t + 3, None, t.astype(np.float32),
                                       t.astype(np.float32), t.astype(np.float32), -100, 0.0)
    with pytest.raises(IndexError, match=r"target 5 is out of bounds for 3 classes \(valid: 0 "
                                         r"to 2, or ignore_index=-100\)"):
        cpu_backend.cross_entropy_forward(z[:, :, 0], np.array([0, 5]), None, -100, 0.0)


@pytest.mark.parametrize("isa", ["scalar", "avx2"])
def test_cross_entropy_kernels_every_isa_agrees(isa):
    """The portable and AVX2 builds of the kernels (the tests above run the widest
    one this CPU has) against the same numpy reference, in a fresh process."""
    import subprocess
    import sys
    import textwrap
    from nnforge._C import cpu_features
    if isa == "avx2" and not (cpu_features()["avx2"] and cpu_features()["fma"]):
        pytest.skip("this CPU has no AVX2 + FMA")
    script = textwrap.dedent("""
        import numpy as np, nnforge._C as C
        from nnforge.backend import cpu
        assert C.selected_isa() == "%s"
        rng = np.random.default_rng(0)
        for shape in [(9, 13), (3, 5, 300)]:
            for dtype in (np.float32, np.float64):
                z = (rng.standard_normal(shape) * 4).astype(dtype)
                t = rng.integers(0, shape[1], (shape[0],) + shape[2:])
                w = rng.uniform(0.5, 2, shape[1]).astype(dtype)
                loss, lse, wy = cpu.cross_entropy_forward(z, t, w, -1, 0.1)
                g = cpu.cross_entropy_backward(z, t, w, lse, wy, np.ones(t.shape, dtype), -1, 0.1)
                z64 = z.astype(np.float64)
                logp = z64 - np.log(np.exp(z64).sum(1, keepdims=True))
                assert np.allclose(lse, np.log(np.exp(z64).sum(1)), rtol=2e-6), shape
                p = np.exp(logp)
                print(float(loss.sum()), float(np.abs(g).sum()),
                      float(np.abs(p.sum(1) - 1).max()))
        print("ok")
    """ % isa)
    env = dict(__import__("os").environ, NNFORGE_ISA=isa)
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    here = subprocess.run([sys.executable, "-c", script.replace('"%s"' % isa, "C.selected_isa()")],
                          capture_output=True, text=True)
    assert here.returncode == 0, here.stderr
    ours = [list(map(float, line.split())) for line in out.stdout.splitlines()[:-1]]
    widest = [list(map(float, line.split())) for line in here.stdout.splitlines()[:-1]]
    np.testing.assert_allclose(ours, widest, rtol=1e-5)
