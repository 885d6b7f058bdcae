"""Tests for nnforge.nn.functional, the loss modules, activations and dropout
(python/nnforge/nn/functional.py, loss.py, activation.py, dropout.py): PyTorch parity
of values and gradients, gradcheck in float64, dropout statistics, error messages."""
import math

import numpy as np
import pytest

import nnforge as nf
from nnforge import nn
from nnforge.nn import functional as F

REDUCTIONS = ["mean", "sum", "none"]


def as_np(t):
    return t.detach().numpy()


def rng(seed=0):
    return np.random.default_rng(seed)


def class_targets(shape, n_classes, ignore_index=None, seed=1):
    t = rng(seed).integers(0, n_classes, shape)
    if ignore_index is not None:
        t.reshape(-1)[::3] = ignore_index  # every third target ignored
    return t


def compare_with_torch(nf_fn, torch_fn, arrays, grad_of=(0,), rtol=1e-5, atol=1e-6):
    """Runs both functions on the same numpy inputs; compares values and the
    gradients of sum(output * g) w.r.t. the inputs listed in ``grad_of``."""
    torch = pytest.importorskip("torch")
    nf_in = [nf.tensor(a, requires_grad=i in grad_of) if a is not None else None
             for i, a in enumerate(arrays)]
    t_in = [torch.tensor(a, requires_grad=i in grad_of) if a is not None else None
            for i, a in enumerate(arrays)]
    out_n, out_t = nf_fn(*nf_in), torch_fn(*t_in)
    assert tuple(out_n.shape) == tuple(out_t.shape)
    np.testing.assert_allclose(as_np(out_n), out_t.detach().numpy(), rtol=rtol, atol=atol)
    g = rng(9).standard_normal(tuple(out_t.shape)).astype(arrays[0].dtype)
    (out_n * nf.tensor(g)).sum().backward()
    (out_t * torch.tensor(g)).sum().backward()
    for i in grad_of:
        np.testing.assert_allclose(nf_in[i].grad.numpy(), t_in[i].grad.numpy(), rtol=rtol,
                                   atol=atol, err_msg=f"gradient of input {i}")


# ---------------------------------------------------------------- cross_entropy
CE_SHAPES = [((6, 5), (6,)), ((3, 4, 2, 3), (3, 2, 3)), ((5,), ())]


@pytest.mark.parametrize("shapes", CE_SHAPES, ids=lambda s: str(s[0]))
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True], ids=["noweight", "weight"])
@pytest.mark.parametrize("ignore", [None, 1], ids=["noignore", "ignore1"])
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_cross_entropy_class_indices_vs_pytorch(shapes, reduction, weighted, ignore, smoothing):
    torch = pytest.importorskip("torch")
    in_shape, t_shape = shapes
    n_classes = in_shape[0] if len(in_shape) == 1 else in_shape[1]
    x = rng().standard_normal(in_shape).astype(np.float32)
    t = np.asarray(class_targets(t_shape, n_classes, seed=2))
    if ignore is not None and t.ndim:
        t.reshape(-1)[::3] = ignore
    w = (rng(3).random(n_classes) + 0.5).astype(np.float32) if weighted else None
    ii = -100 if ignore is None else ignore
    compare_with_torch(
        lambda a, tt, ww: F.cross_entropy(a, tt, weight=ww, ignore_index=ii,
                                          reduction=reduction, label_smoothing=smoothing),
        lambda a, tt, ww: torch.nn.functional.cross_entropy(
            a, tt, weight=ww, ignore_index=ii, reduction=reduction, label_smoothing=smoothing),
        [x, t, w])


@pytest.mark.parametrize("shape", [(6, 5), (2, 4, 3, 2), (4,)], ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True], ids=["noweight", "weight"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_probabilities_vs_pytorch(shape, reduction, weighted, smoothing):
    torch = pytest.importorskip("torch")
    class_dim = 0 if len(shape) == 1 else 1
    n_classes = shape[class_dim]
    x = rng().standard_normal(shape).astype(np.float32)
    p = rng(4).random(shape).astype(np.float32)
    p = p / p.sum(axis=class_dim, keepdims=True)
    w = (rng(3).random(n_classes) + 0.5).astype(np.float32) if weighted else None
    compare_with_torch(
        lambda a, tt, ww: F.cross_entropy(a, tt, weight=ww, reduction=reduction,
                                          label_smoothing=smoothing),
        lambda a, tt, ww: torch.nn.functional.cross_entropy(
            a, tt, weight=ww, reduction=reduction, label_smoothing=smoothing),
        [x, p, w], grad_of=(0, 1))


def test_cross_entropy_all_targets_ignored_gives_nan_like_pytorch():
    loss = F.cross_entropy(nf.randn(3, 4), nf.tensor([-100, -100, -100]))
    assert math.isnan(loss.item())
    torch = pytest.importorskip("torch")
    assert math.isnan(torch.nn.functional.cross_entropy(
        torch.randn(3, 4), torch.tensor([-100, -100, -100])).item())


def test_cross_entropy_known_value():
    # Uniform logits over 4 classes: loss = log 4 for every sample.
    loss = F.cross_entropy(nf.zeros(3, 4), nf.tensor([0, 1, 3]))
    assert loss.item() == pytest.approx(math.log(4), rel=1e-6)
    # A confident, correct prediction costs almost nothing.
    logits = nf.tensor([[20.0, 0.0, 0.0]])
    assert F.cross_entropy(logits, nf.tensor([0])).item() < 1e-8


def test_cross_entropy_module_and_weight_buffer():
    w = nf.tensor([1.0, 2.0, 0.5])
    crit = nn.CrossEntropyLoss(weight=w, ignore_index=0, label_smoothing=0.1, reduction="sum")
    assert list(crit.state_dict()) == ["weight"]
    assert crit.weight is w
    x, t = nf.randn(4, 3), nf.tensor([0, 1, 2, 1])
    np.testing.assert_allclose(
        as_np(crit(x, t)),
        as_np(F.cross_entropy(x, t, weight=w, ignore_index=0, label_smoothing=0.1,
                              reduction="sum")), rtol=1e-6)
    crit64 = crit.double()
    assert crit64.weight.dtype == nf.float64
    assert repr(nn.CrossEntropyLoss()) == "CrossEntropyLoss()"


# ---------------------------------------------------------------- nll_loss
@pytest.mark.parametrize("shapes", CE_SHAPES, ids=lambda s: str(s[0]))
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True], ids=["noweight", "weight"])
@pytest.mark.parametrize("ignore", [None, 2], ids=["noignore", "ignore2"])
def test_nll_loss_vs_pytorch(shapes, reduction, weighted, ignore):
    torch = pytest.importorskip("torch")
    in_shape, t_shape = shapes
    n_classes = in_shape[0] if len(in_shape) == 1 else in_shape[1]
    x = rng().standard_normal(in_shape).astype(np.float32)
    t = np.asarray(class_targets(t_shape, n_classes, seed=5))
    if ignore is not None and t.ndim:
        t.reshape(-1)[::3] = ignore
    w = (rng(3).random(n_classes) + 0.5).astype(np.float32) if weighted else None
    ii = -100 if ignore is None else ignore
    compare_with_torch(
        lambda a, tt, ww: F.nll_loss(a, tt, weight=ww, ignore_index=ii, reduction=reduction),
        lambda a, tt, ww: torch.nn.functional.nll_loss(a, tt, weight=ww, ignore_index=ii,
                                                       reduction=reduction),
        [x, t, w])


def test_nll_loss_module_and_weighted_mean_by_hand():
    logp = nf.log(nf.tensor([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]]))
    target = nf.tensor([0, 1, 2])
    w = nf.tensor([1.0, 2.0, 3.0])
    expected = -(1 * math.log(0.5) + 2 * math.log(0.8) + 3 * math.log(0.6)) / (1 + 2 + 3)
    assert nn.NLLLoss(weight=w)(logp, target).item() == pytest.approx(expected, rel=1e-6)
    assert nn.NLLLoss(reduction="sum")(logp, target).item() == pytest.approx(
        -(math.log(0.5) + math.log(0.8) + math.log(0.6)), rel=1e-6)


# ---------------------------------------------------------------- mse_loss
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(5, 3), (7,), (2, 3, 4), ()], ids=str)
@pytest.mark.parametrize("weighted", [False, True], ids=["noweight", "weight"])
def test_mse_loss_vs_pytorch(reduction, shape, weighted):
    torch = pytest.importorskip("torch")
    a = np.asarray(rng().standard_normal(shape), dtype=np.float32)
    b = np.asarray(rng(1).standard_normal(shape), dtype=np.float32)
    w = np.asarray(rng(2).random(shape) + 0.1, dtype=np.float32) if weighted else None
    compare_with_torch(
        lambda x, y, ww: F.mse_loss(x, y, reduction=reduction, weight=ww),
        lambda x, y, ww: torch.nn.functional.mse_loss(x, y, reduction=reduction, weight=ww),
        [a, b, w], grad_of=(0, 1))


def test_mse_loss_module_and_legacy_arguments():
    x, y = nf.tensor([1.0, 2.0, 4.0]), nf.tensor([1.0, 0.0, 1.0])
    assert nn.MSELoss()(x, y).item() == pytest.approx(13 / 3)
    assert nn.MSELoss(reduction="sum")(x, y).item() == pytest.approx(13)
    np.testing.assert_array_equal(as_np(nn.MSELoss(reduction="none")(x, y)), [0, 4, 9])
    with pytest.warns(DeprecationWarning):
        assert nn.MSELoss(size_average=False).reduction == "sum"
    with pytest.warns(DeprecationWarning):
        assert F.mse_loss(x, y, reduce=False).shape == (3,)


# ---------------------------------------------------------------- gradcheck (float64)
def f64(*shape, seed=0, requires_grad=True):
    a = rng(seed).standard_normal(shape)
    return nf.tensor(a, dtype=nf.float64, requires_grad=requires_grad)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradcheck_cross_entropy_indices(reduction):
    x = f64(4, 3, 2)
    t = nf.tensor([[0, 2], [1, -100], [2, 2], [0, 1]])
    w = nf.tensor([0.5, 1.0, 2.0], dtype=nf.float64)
    assert nf.autograd.gradcheck(
        lambda a: F.cross_entropy(a, t, weight=w, reduction=reduction, label_smoothing=0.25), (x,))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradcheck_cross_entropy_probabilities(reduction):
    x = f64(3, 4)
    p = nf.tensor(rng(2).dirichlet(np.ones(4), 3), dtype=nf.float64, requires_grad=True)
    w = nf.tensor([0.5, 1.0, 2.0, 1.5], dtype=nf.float64)
    assert nf.autograd.gradcheck(
        lambda a, b: F.cross_entropy(a, b, weight=w, reduction=reduction, label_smoothing=0.1),
        (x, p))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradcheck_nll_loss(reduction):
    x = f64(5, 3)
    t = nf.tensor([0, 2, 1, 1, -1])
    w = nf.tensor([1.0, 3.0, 0.5], dtype=nf.float64, requires_grad=True)
    assert nf.autograd.gradcheck(
        lambda a, ww: F.nll_loss(a, t, weight=ww, ignore_index=-1, reduction=reduction), (x, w))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradcheck_mse_loss(reduction):
    a, b = f64(3, 4, seed=1), f64(3, 4, seed=2)
    w = nf.tensor(rng(3).random((3, 4)) + 0.1, dtype=nf.float64)
    assert nf.autograd.gradcheck(lambda x, y: F.mse_loss(x, y, reduction=reduction), (a, b))
    assert nf.autograd.gradcheck(lambda x, y: F.mse_loss(x, y, reduction=reduction, weight=w),
                                 (a, b))


def test_gradcheck_softmax_log_softmax_dropout():
    x = f64(3, 5)
    assert nf.autograd.gradcheck(lambda a: F.softmax(a, dim=1), (x,))
    assert nf.autograd.gradcheck(lambda a: F.log_softmax(a, dim=0), (x,))
    gen = nf.Generator()

    def drop(a):  # the same mask on every call
        gen.manual_seed(5)
        return F.dropout(a, 0.4, generator=gen)
    assert nf.autograd.gradcheck(drop, (x,))


# ---------------------------------------------------------------- activations
@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh"])
def test_pointwise_activations_vs_pytorch(name):
    torch = pytest.importorskip("torch")
    x = rng().standard_normal((4, 5)).astype(np.float32)
    compare_with_torch(getattr(F, name), getattr(torch.nn.functional, name), [x])
    module = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}[name]()
    np.testing.assert_allclose(as_np(module(nf.tensor(x))),
                               getattr(torch, name)(torch.tensor(x)).numpy(), rtol=1e-6)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_log_softmax_vs_pytorch(dim):
    torch = pytest.importorskip("torch")
    x = rng().standard_normal((3, 4, 5)).astype(np.float32)
    compare_with_torch(lambda a: F.softmax(a, dim), lambda a: torch.softmax(a, dim), [x])
    compare_with_torch(lambda a: F.log_softmax(a, dim=dim),
                       lambda a: torch.log_softmax(a, dim), [x])
    np.testing.assert_allclose(as_np(nn.Softmax(dim=dim)(nf.tensor(x))),
                               torch.softmax(torch.tensor(x), dim).numpy(), rtol=1e-6)
    np.testing.assert_allclose(as_np(nn.LogSoftmax(dim)(nf.tensor(x))),
                               torch.log_softmax(torch.tensor(x), dim).numpy(), rtol=1e-5,
                               atol=1e-6)


def test_softmax_requires_dim():
    with pytest.raises(TypeError, match="softmax: dim is required"):
        F.softmax(nf.randn(2, 3))
    with pytest.raises(TypeError, match="log_softmax: dim is required"):
        F.log_softmax(nf.randn(2, 3))
    with pytest.raises(TypeError, match=r"Softmax: dim is required.*Softmax\(dim=-1\)"):
        nn.Softmax()
    with pytest.raises(TypeError, match="LogSoftmax: dim is required"):
        nn.LogSoftmax()
    assert repr(nn.Softmax(dim=1)) == "Softmax(dim=1)"


def test_relu_inplace():
    x = nf.tensor([-1.0, 0.5, -2.0])
    out = F.relu(x, inplace=True)
    assert out is x
    np.testing.assert_array_equal(x.numpy(), [0.0, 0.5, 0.0])
    y = nf.tensor([-1.0, 2.0])
    assert nn.ReLU(inplace=True)(y) is y and repr(nn.ReLU(True)) == "ReLU(inplace=True)"


def test_pad_and_one_hot_are_exported():
    x = nf.ones(2, 3)
    assert tuple(F.pad(x, (1, 2)).shape) == (2, 6)
    assert tuple(F.pad(x, (1, 1, 2, 0), value=5.0).shape) == (4, 5)
    np.testing.assert_array_equal(F.one_hot(nf.tensor([0, 2]), 3).numpy(), [[1, 0, 0], [0, 0, 1]])


# ---------------------------------------------------------------- dropout
def test_dropout_training_statistics():
    nf.manual_seed(0)
    p = 0.3
    x = nf.full((400, 500), 2.0)
    y = as_np(F.dropout(x, p=p, training=True))
    dropped = y == 0
    np.testing.assert_allclose(dropped.mean(), p, atol=0.005)
    np.testing.assert_allclose(y[~dropped], 2.0 / (1 - p), rtol=1e-6)  # survivors are scaled
    np.testing.assert_allclose(y.mean(), 2.0, rtol=0.01)  # the expectation is kept


def test_dropout_gradient_is_the_scaled_mask():
    x = nf.randn(50, 40, requires_grad=True)
    y = F.dropout(x, 0.5)
    y.sum().backward()
    kept = as_np(y) != 0
    np.testing.assert_array_equal(x.grad.numpy(), np.where(kept, 2.0, 0.0))


def test_dropout_eval_and_edge_probabilities():
    x = nf.randn(10, 10)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    np.testing.assert_array_equal(as_np(F.dropout(x, 1.0)), np.zeros((10, 10)))
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match=f"between 0 and 1, but got {bad}"):
            F.dropout(x, bad)
        with pytest.raises(ValueError, match="between 0 and 1"):
            nn.Dropout(bad)
    with pytest.raises(TypeError, match="floating point"):
        F.dropout(nf.tensor([1, 2, 3]), 0.5)


def test_dropout_module_train_eval_and_inplace():
    drop = nn.Dropout(0.5)
    x = nf.ones(1000)
    assert (as_np(drop(x)) == 0).any()
    drop.eval()
    assert drop(x) is x
    assert repr(drop) == "Dropout(p=0.5, inplace=False)"
    y = nf.ones(1000)
    out = nn.Dropout(0.5, inplace=True)(y)
    assert out is y and (y.numpy() == 0).any()


def test_dropout_generator_reproducible():
    x = nf.ones(100)
    a = as_np(F.dropout(x, 0.5, generator=nf.Generator().manual_seed(1)))
    b = as_np(F.dropout(x, 0.5, generator=nf.Generator().manual_seed(1)))
    np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- bad inputs
def test_target_out_of_range_raises_index_error():
    x = nf.randn(3, 5)
    with pytest.raises(IndexError, match="cross_entropy: target 7 is out of bounds for 5 classes"):
        F.cross_entropy(x, nf.tensor([0, 7, 1]))
    with pytest.raises(IndexError, match="nll_loss: target -3 is out of bounds for 5 classes"):
        F.nll_loss(x, nf.tensor([0, -3, 1]))
    with pytest.raises(IndexError, match="target 5 is out of bounds"):
        nn.CrossEntropyLoss(ignore_index=2)(x, nf.tensor([2, 5, 1]))
    # ignore_index itself is allowed even though it is out of range
    F.cross_entropy(x, nf.tensor([0, -100, 1]))
    F.cross_entropy(x, nf.tensor([0, 9, 1]), ignore_index=9)


def test_shape_mismatches_raise_value_error():
    with pytest.raises(ValueError, match=r"cross_entropy: expected target of shape \(3,\) for "
                                         r"input of shape \(3, 5\), got target of shape \(4,\)"):
        F.cross_entropy(nf.randn(3, 5), nf.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError,
                       match=r"nll_loss: expected target of shape \(2, 4\).*\(2, 3, 4\)"):
        F.nll_loss(nf.randn(2, 3, 4), nf.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"probability targets must have the input's shape "
                                         r"\(3, 5\), got \(3, 4\)"):
        F.cross_entropy(nf.randn(3, 5), nf.rand(3, 4))
    with pytest.raises(ValueError, match=r"mse_loss: input of shape \(4, 1\) and target of shape "
                                         r"\(4,\)"):
        F.mse_loss(nf.randn(4, 1), nf.randn(4))
    with pytest.raises(ValueError, match=r"weight of shape \(4,\) must have one entry per class"):
        F.cross_entropy(nf.randn(3, 5), nf.tensor([0, 1, 2]), weight=nf.ones(4))
    with pytest.raises(ValueError, match=r"mse_loss: weight of shape \(3,\)"):
        F.mse_loss(nf.randn(2, 3), nf.randn(2, 3), weight=nf.ones(3))
    with pytest.raises(ValueError, match="target must be 0-d"):
        F.nll_loss(nf.randn(5), nf.tensor([1]))


def test_bad_dtypes_and_arguments():
    with pytest.raises(TypeError, match="integer dtype"):
        F.nll_loss(nf.randn(3, 4), nf.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(TypeError, match="floating-point logits"):
        F.cross_entropy(nf.tensor([[1, 2]]), nf.tensor([0]))
    with pytest.raises(ValueError, match="'avg' is not a valid value for reduction"):
        F.cross_entropy(nf.randn(2, 3), nf.tensor([0, 1]), reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing must be between"):
        F.cross_entropy(nf.randn(2, 3), nf.tensor([0, 1]), label_smoothing=1.5)
    with pytest.raises(ValueError, match="label_smoothing"):
        nn.CrossEntropyLoss(label_smoothing=-0.1)
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        nn.MSELoss(reduction="mean ")
    with pytest.raises(TypeError, match="argument 'target' must be a Tensor"):
        F.cross_entropy(nf.randn(2, 3), [0, 1])
    with pytest.raises(ValueError, match="at least 1 dimension"):
        F.cross_entropy(nf.tensor(1.0), nf.tensor(0))


# ---------------------------------------------------------------- exports and layouts
def test_every_functional_name_and_module_class_is_exported():
    for name in F.__all__:
        assert callable(getattr(F, name)), name
    listed = ["ReLU", "LeakyReLU", "GELU", "PReLU", "ELU", "SiLU", "SELU", "Softplus", "Mish",
              "RReLU", "Hardswish", "Sigmoid", "Softsign", "Tanh", "Hardtanh", "Hardsigmoid",
              "Tanhshrink", "Softshrink", "Hardshrink", "Softmax", "LogSoftmax", "MSELoss",
              "L1Loss", "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "NLLLoss",
              "KLDivLoss", "HuberLoss"]  # DESIGN.md's list
    for name in listed:
        assert issubclass(getattr(nn, name), nn.Module), name
        assert name in nn.__all__, name


def test_cross_entropy_on_permuted_sequence_logits_vs_pytorch():
    """(N, T, C) logits seen as (N, C, T): a non-contiguous input, as in sequence models."""
    torch = pytest.importorskip("torch")
    x = rng().standard_normal((3, 7, 5)).astype(np.float32)
    t = class_targets((3, 7), 5, ignore_index=-100)
    xn = nf.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    loss_n = F.cross_entropy(xn.permute(0, 2, 1), nf.tensor(t), label_smoothing=0.1)
    loss_t = torch.nn.functional.cross_entropy(xt.permute(0, 2, 1), torch.tensor(t),
                                               label_smoothing=0.1)
    loss_n.backward(), loss_t.backward()
    np.testing.assert_allclose(loss_n.item(), loss_t.item(), rtol=1e-6)
    np.testing.assert_allclose(xn.grad.numpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_cross_entropy_dtypes():
    x = rng().standard_normal((4, 6))
    t = nf.tensor([0, 5, 2, 2])
    l64 = F.cross_entropy(nf.tensor(x), t)
    l32 = F.cross_entropy(nf.tensor(x, dtype=nf.float32), t)
    l16 = F.cross_entropy(nf.tensor(x, dtype=nf.float16), t)
    assert (l64.dtype, l32.dtype, l16.dtype) == (nf.float64, nf.float32, nf.float16)
    assert l32.item() == pytest.approx(l64.item(), rel=1e-6)
    assert l16.item() == pytest.approx(l64.item(), rel=2e-3)
    x16 = nf.tensor(x, dtype=nf.float16, requires_grad=True)
    F.cross_entropy(x16, t).backward()
    assert x16.grad.dtype == nf.float16
    np.testing.assert_allclose(x16.grad.numpy(), np.exp(x) / np.exp(x).sum(1, keepdims=True) / 4
                               - np.eye(6)[[0, 5, 2, 2]] / 4, atol=2e-3)
