"""Tests for nn.Linear, nn.Identity, nn.Flatten, nn.Unflatten (python/nnforge/nn/linear.py):
PyTorch parity of outputs and every gradient, initialisation bounds, gradcheck of F.linear."""
import math

import numpy as np
import pytest

import nnforge as nf
from nnforge import nn
from nnforge.nn import functional as F


def as_np(t):
    return t.detach().numpy()


@pytest.mark.parametrize("shape", [(5, 7), (7,), (3, 4, 7), (0, 7)], ids=str)
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_pytorch(shape, bias):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    t_lin = torch.nn.Linear(7, 6, bias=bias)
    lin = nn.Linear(7, 6, bias=bias)
    lin.load_state_dict({k: v.numpy() for k, v in t_lin.state_dict().items()})

    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    xn, xt = nf.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yn, yt = lin(xn), t_lin(xt)
    assert tuple(yn.shape) == tuple(yt.shape) == shape[:-1] + (6,)
    np.testing.assert_allclose(as_np(yn), yt.detach().numpy(), rtol=1e-5, atol=1e-6)

    g = np.random.default_rng(2).standard_normal(tuple(yt.shape)).astype(np.float32)
    yn.backward(nf.tensor(g))
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(xn.grad.numpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(lin.weight.grad.numpy(), t_lin.weight.grad.numpy(),
                               rtol=1e-5, atol=1e-5)
    if bias:
        np.testing.assert_allclose(lin.bias.grad.numpy(), t_lin.bias.grad.numpy(),
                                   rtol=1e-5, atol=1e-5)
    else:
        assert lin.bias is None and [n for n, _ in lin.named_parameters()] == ["weight"]


def test_linear_layout_and_repr():
    lin = nn.Linear(20, 30)
    assert tuple(lin.weight.shape) == (30, 20) and tuple(lin.bias.shape) == (30,)
    assert lin.in_features == 20 and lin.out_features == 30
    assert repr(lin) == "Linear(in_features=20, out_features=30, bias=True)"
    assert repr(nn.Linear(2, 3, bias=False)) == "Linear(in_features=2, out_features=3, bias=False)"
    assert list(lin.state_dict()) == ["weight", "bias"]


def test_linear_dtype_argument():
    lin = nn.Linear(3, 2, dtype=nf.float64)
    assert lin.weight.dtype == nf.float64 and lin.bias.dtype == nf.float64
    assert lin(nf.randn(4, 3, dtype=nf.float64)).dtype == nf.float64


def test_linear_init_bounds():
    nf.manual_seed(0)
    fan_in = 400
    lin = nn.Linear(fan_in, 500)
    bound = 1 / math.sqrt(fan_in)  # kaiming_uniform_(a=sqrt(5)) -> gain sqrt(1/3) * sqrt(3/fan_in)
    w = as_np(lin.weight)
    assert np.abs(w).max() <= bound
    assert np.abs(w).max() > 0.99 * bound
    np.testing.assert_allclose(w.std(), bound / math.sqrt(3), rtol=0.02)
    assert abs(w.mean()) < 0.01 * bound
    b = as_np(lin.bias)
    assert np.abs(b).max() <= bound and np.abs(b).max() > 0.9 * bound


def test_linear_reset_parameters_and_zero_features():
    lin = nn.Linear(4, 3)
    before = as_np(lin.weight).copy()
    lin.reset_parameters()
    assert not np.array_equal(before, as_np(lin.weight))
    with pytest.warns(UserWarning, match="zero-element"):  # as PyTorch warns
        empty = nn.Linear(0, 3)  # fan_in 0: PyTorch leaves a bias bound of 0
    np.testing.assert_array_equal(as_np(empty.bias), np.zeros(3))
    np.testing.assert_array_equal(as_np(empty(nf.zeros(2, 0))), np.zeros((2, 3)))


def test_linear_errors():
    lin = nn.Linear(4, 3)
    with pytest.raises(ValueError, match=r"linear: input of shape \(2, 5\).*\(3, 4\)"):
        lin(nf.randn(2, 5))
    with pytest.raises(ValueError, match="in_features"):
        nn.Linear(-1, 3)
    with pytest.raises(ValueError, match="out_features"):
        nn.Linear(3, 2.5)


def test_linear_trains():
    nf.manual_seed(3)
    lin = nn.Linear(2, 1)
    x = nf.randn(64, 2)
    y = x @ nf.tensor([[2.0], [-3.0]]) + 0.5
    for _ in range(200):
        lin.zero_grad()
        loss = F.mse_loss(lin(x), y)
        loss.backward()
        with nf.no_grad():
            for p in lin.parameters():
                p.sub_(p.grad * 0.1)
    np.testing.assert_allclose(as_np(lin.weight), [[2.0, -3.0]], atol=1e-3)
    np.testing.assert_allclose(as_np(lin.bias), [0.5], atol=1e-3)


@pytest.mark.parametrize("x_shape", [(3, 4), (4,), (2, 2, 4)], ids=str)
@pytest.mark.parametrize("bias", [True, False])
def test_linear_gradcheck(x_shape, bias):
    x = nf.randn(*x_shape, dtype=nf.float64, requires_grad=True)
    w = nf.randn(3, 4, dtype=nf.float64, requires_grad=True)
    inputs = [x, w]
    if bias:
        inputs.append(nf.randn(3, dtype=nf.float64, requires_grad=True))
    assert nf.autograd.gradcheck(F.linear, tuple(inputs))


# ---------------------------------------------------------------- Identity, Flatten, Unflatten
def test_identity():
    ident = nn.Identity(54, unused="argument")
    x = nf.randn(2, 3)
    assert ident(x) is x
    assert repr(ident) == "Identity()"


def test_flatten_unflatten():
    x = nf.randn(2, 3, 4, 5, requires_grad=True)
    assert tuple(nn.Flatten()(x).shape) == (2, 60)
    assert tuple(nn.Flatten(0, 2)(x).shape) == (24, 5)
    assert tuple(nn.Flatten(start_dim=-2)(x).shape) == (2, 3, 20)
    assert repr(nn.Flatten()) == "Flatten(start_dim=1, end_dim=-1)"
    un = nn.Unflatten(1, (3, 4))
    y = un(nf.randn(2, 12))
    assert tuple(y.shape) == (2, 3, 4)
    assert tuple(nn.Unflatten(-1, (2, -1))(nf.randn(5, 8)).shape) == (5, 2, 4)
    assert repr(un) == "Unflatten(dim=1, unflattened_size=(3, 4))"
    nn.Flatten()(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones((2, 3, 4, 5)))
    with pytest.raises(TypeError, match="unflattened_size"):
        nn.Unflatten(1, 12)


def test_flatten_unflatten_match_pytorch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)
    for args in [(), (0, 2), (2, -1), (-3, -2)]:
        np.testing.assert_array_equal(as_np(nn.Flatten(*args)(nf.tensor(x))),
                                      torch.nn.Flatten(*args)(torch.tensor(x)).numpy())
    np.testing.assert_array_equal(as_np(nn.Unflatten(2, (2, 2))(nf.tensor(x))),
                                  torch.nn.Unflatten(2, (2, 2))(torch.tensor(x)).numpy())
