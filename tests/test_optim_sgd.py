"""SGD: trajectories against PyTorch's over 20 steps, state_dict round trips, errors."""
import numpy as np
import pytest

import nnforge as nf
from helpers import torch_or_skip

CONFIGS = [
    dict(lr=0.1),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.3),
    dict(lr=0.05, momentum=0.9, nesterov=True),
    dict(lr=0.05, momentum=0.5, weight_decay=0.1),
    dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01, maximize=True),
]


def _problem(lib, w0, x, y):
    """A least-squares problem plus an L1-ish term so the gradients are not trivial."""
    w = lib.tensor(w0.copy(), requires_grad=True)
    xt, yt = lib.tensor(x), lib.tensor(y)

    def loss():
        r = xt @ w - yt
        return (r * r).mean() + (w * w * w).abs().sum() * 0.01
    return w, loss


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sgd_trajectory_matches_pytorch(cfg, dtype, rng):
    torch = torch_or_skip()
    w0 = rng.standard_normal((5, 3)).astype(dtype)
    x = rng.standard_normal((16, 5)).astype(dtype)
    y = rng.standard_normal((16, 3)).astype(dtype)
    w, loss = _problem(nf, w0, x, y)
    tw, tloss = _problem(torch, w0, x, y)
    opt, topt = nf.optim.SGD([w], **cfg), torch.optim.SGD([tw], **cfg)
    for _ in range(20):
        opt.zero_grad()
        loss().backward()
        opt.step()
        topt.zero_grad()
        tloss().backward()
        topt.step()
    tol = 1e-6 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(w.detach().numpy(), tw.detach().numpy(), rtol=tol * 10, atol=tol)


def test_sgd_step_by_hand():
    w = nf.nn.Parameter(nf.tensor([1.0, -2.0]))
    opt = nf.optim.SGD([w], lr=0.1, momentum=0.9)
    for expected in ([0.8, -1.6], [0.46, -0.92]):  # b1 = g1 ; b2 = 0.9 b1 + g2
        opt.zero_grad()
        (w * w).sum().backward()
        opt.step()
        np.testing.assert_allclose(w.detach().numpy(), expected, rtol=1e-6)


def test_param_groups_and_skipped_parameters():
    a = nf.nn.Parameter(nf.ones(2))
    b = nf.nn.Parameter(nf.ones(2))
    c = nf.nn.Parameter(nf.ones(2))  # no grad: untouched
    opt = nf.optim.SGD([{"params": [a]}, {"params": [b, c], "lr": 1.0}], lr=0.1)
    (a.sum() + b.sum()).backward()
    opt.step()
    assert a.tolist() == pytest.approx([0.9, 0.9])
    assert b.tolist() == pytest.approx([0.0, 0.0])
    assert c.tolist() == [1.0, 1.0]
    assert a._version > 0


def test_state_dict_round_trip_continues_identically():
    def make():
        nf.manual_seed(3)
        model = nf.nn.Linear(4, 2)
        return model, nf.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    x = nf.randn(8, 4)

    def step(model, opt):
        opt.zero_grad()
        (model(x) ** 2).mean().backward()
        opt.step()

    m1, o1 = make()
    for _ in range(3):
        step(m1, o1)
    m2, o2 = make()
    m2.load_state_dict(m1.state_dict())
    o2.load_state_dict(o1.state_dict())
    assert o2.state_dict()["param_groups"] == o1.state_dict()["param_groups"]
    for _ in range(3):
        step(m1, o1)
        step(m2, o2)
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_array_equal(p1.detach().numpy(), p2.detach().numpy())


def test_zero_grad_set_to_none_or_zero():
    w = nf.nn.Parameter(nf.ones(3))
    opt = nf.optim.SGD([w], lr=0.1)
    w.sum().backward()
    opt.zero_grad(set_to_none=False)
    assert w.grad.tolist() == [0.0, 0.0, 0.0]
    opt.zero_grad()
    assert w.grad is None


@pytest.mark.parametrize("kwargs, match", [
    (dict(lr=-1.0), "invalid learning rate"),
    (dict(lr=0.1, momentum=-0.5), "invalid momentum"),
    (dict(lr=0.1, weight_decay=-1.0), "invalid weight_decay"),
    (dict(lr=0.1, nesterov=True), "Nesterov"),
])
def test_bad_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        nf.optim.SGD([nf.nn.Parameter(nf.ones(1))], **kwargs)


def test_bad_params():
    with pytest.raises(TypeError, match="single Tensor"):
        nf.optim.SGD(nf.nn.Parameter(nf.ones(1)), lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        nf.optim.SGD([], lr=0.1)
    w = nf.ones(2, requires_grad=True)
    with pytest.raises(ValueError, match="non-leaf"):
        nf.optim.SGD([w * 2], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        nf.optim.SGD([{"params": [w]}, {"params": [w]}], lr=0.1)
