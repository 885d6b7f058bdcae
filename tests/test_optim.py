"""Adam, AdamW, RMSprop, Adagrad, Adadelta (and the Optimizer base): trajectories
against PyTorch's over 20 steps, parameter groups, state names, state_dict round
trips (ours and PyTorch's), bad hyperparameters. SGD has its own file."""
import numpy as np
import pytest

import nnforge as nf
from helpers import torch_or_skip

CONFIGS = {
    "Adam": [
        dict(lr=0.01),
        dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6),
        dict(lr=0.05, betas=(0.3, 0.9)),  # 1 - beta1 >= 0.5: lerp from the other end
        dict(lr=0.01, weight_decay=0.1),
        dict(lr=0.01, amsgrad=True),
        dict(lr=0.02, weight_decay=0.05, amsgrad=True, maximize=True),
    ],
    "AdamW": [
        dict(lr=0.01),
        dict(lr=0.05, weight_decay=0.1, amsgrad=True),
        dict(lr=0.02, betas=(0.5, 0.9), weight_decay=0.0, maximize=True),
    ],
    "RMSprop": [
        dict(lr=0.01),
        dict(lr=0.01, alpha=0.9, momentum=0.9),
        dict(lr=0.01, centered=True),
        dict(lr=0.005, centered=True, momentum=0.5, weight_decay=0.1),
        dict(lr=0.002, alpha=0.4, centered=True),  # 1 - alpha >= 0.5 in the grad_avg lerp
        dict(lr=0.01, momentum=0.3, maximize=True),
    ],
    "Adagrad": [
        dict(lr=0.1),
        dict(lr=0.1, lr_decay=0.05),
        dict(lr=0.05, initial_accumulator_value=0.5, weight_decay=0.1),
        dict(lr=0.05, eps=1e-6, maximize=True),
    ],
    "Adadelta": [
        dict(),
        dict(lr=0.5, rho=0.8),
        dict(lr=1.0, eps=1e-4, weight_decay=0.1),
        dict(lr=0.5, maximize=True),
    ],
}
CASES = [(name, cfg) for name, cfgs in CONFIGS.items() for cfg in cfgs]
NAMES = list(CONFIGS)


def _case_id(case):
    name, cfg = case
    return name + "(" + ",".join(f"{k}={v}" for k, v in cfg.items()) + ")"


def _problem(lib, w0, x, y):
    """Least squares plus a cubic term, through each library's autograd."""
    w = lib.tensor(w0.copy(), requires_grad=True)
    xt, yt = lib.tensor(x), lib.tensor(y)

    def loss():
        r = xt @ w - yt
        return (r * r).mean() + (w * w * w).abs().sum() * 0.01
    return w, loss


def _grad(w, x, y):
    """The gradient of the same loss, in float64 numpy, rounded to w's dtype: both
    libraries get identical gradients for identical parameters, so that the
    optimizers are all that differs."""
    w64 = w.astype(np.float64)
    r = x @ w64 - y
    return (2 * x.T @ r / r.size + 0.03 * w64 * np.abs(w64)).astype(w.dtype)


def _data(rng, dtype):
    return (rng.standard_normal((5, 3)).astype(dtype), rng.standard_normal((16, 5)).astype(dtype),
            rng.standard_normal((16, 3)).astype(dtype))


def _run(opt, loss, steps):
    for _ in range(steps):
        opt.zero_grad()
        loss().backward()
        opt.step()


@pytest.mark.parametrize("case", CASES, ids=_case_id)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_trajectory_matches_pytorch(case, dtype, rng):
    """20 steps from the same start with the same gradient function. float32 agrees
    to rounding: the fused kernels round their multiply-adds as PyTorch's
    vectorized CPU kernels do, but PyTorch's float32 sqrt is not always
    correctly rounded, so a last-bit difference appears now and then."""
    torch = torch_or_skip()
    name, cfg = case
    w0, x, y = _data(rng, dtype)
    w = nf.tensor(w0.copy(), requires_grad=True)
    tw = torch.tensor(w0.copy(), requires_grad=True)
    opt = getattr(nf.optim, name)([w], **cfg)
    topt = getattr(torch.optim, name)([tw], **cfg)
    for _ in range(20):
        w.grad = nf.tensor(_grad(w.detach().numpy(), x, y))
        opt.step()
        tw.grad = torch.from_numpy(_grad(tw.detach().numpy(), x, y))
        topt.step()
    tol = 1e-6 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(w.detach().numpy(), tw.detach().numpy(), rtol=10 * tol, atol=tol)
    # The state too, under PyTorch's names.
    state, tstate = opt.state[w], topt.state[tw]
    assert set(state) == set(tstate)
    for key, value in tstate.items():
        if key == "step":
            assert float(state[key]) == float(value) == 20.0
        elif value is not None:
            np.testing.assert_allclose(state[key].numpy(), value.numpy(), rtol=10 * tol, atol=tol,
                                       err_msg=key)


@pytest.mark.parametrize("name", NAMES)
def test_training_through_autograd_matches_pytorch(name, rng):
    """End to end: each library's own forward and backward, 20 steps, float32."""
    torch = torch_or_skip()
    w0, x, y = _data(rng, "float32")
    w, loss = _problem(nf, w0, x, y)
    tw, tloss = _problem(torch, w0, x, y)
    cfg = {"Adagrad": dict(lr=0.05), "Adadelta": dict(lr=0.5)}.get(name, dict(lr=0.01))
    _run(getattr(nf.optim, name)([w], **cfg), loss, 20)
    _run(getattr(torch.optim, name)([tw], **cfg), tloss, 20)
    np.testing.assert_allclose(w.detach().numpy(), tw.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_param_groups_match_pytorch(name, rng):
    """Two groups with their own options; a parameter without a gradient is left alone."""
    torch = torch_or_skip()
    w0, x, y = _data(rng, "float64")
    b0 = rng.standard_normal(3)
    options = {"Adam": dict(lr=0.05, amsgrad=True), "AdamW": dict(lr=0.05, weight_decay=0.3),
               "RMSprop": dict(lr=0.02, centered=True), "Adagrad": dict(lr=0.3, lr_decay=0.1),
               "Adadelta": dict(lr=0.3, rho=0.5)}[name]

    def build(lib):
        w = lib.tensor(w0.copy(), requires_grad=True)
        b = lib.tensor(b0.copy(), requires_grad=True)
        idle = lib.tensor(np.ones(2), requires_grad=True)
        xt, yt = lib.tensor(x), lib.tensor(y)
        opt = getattr(lib.optim, name)([{"params": [w]}, {"params": [b, idle], **options}])

        def loss():
            r = xt @ w + b - yt
            return (r * r).mean()
        _run(opt, loss, 10)
        return [t.detach().numpy() for t in (w, b, idle)]

    for ours, theirs in zip(build(nf), build(torch)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-11, atol=1e-12)


def _linear_and_opt(name, cfg):
    nf.manual_seed(3)
    model = nf.nn.Linear(4, 2)
    return model, getattr(nf.optim, name)(model.parameters(), **cfg)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_state_dict_round_trip_continues_identically(case):
    name, cfg = case
    x = nf.randn(8, 4)

    def loss_of(model):
        return lambda: (model(x) ** 2).mean()

    m1, o1 = _linear_and_opt(name, cfg)
    _run(o1, loss_of(m1), 3)
    m2, o2 = _linear_and_opt(name, cfg)
    m2.load_state_dict(m1.state_dict())
    o2.load_state_dict(o1.state_dict())
    assert o2.state_dict()["param_groups"] == o1.state_dict()["param_groups"]
    _run(o1, loss_of(m1), 3)
    _run(o2, loss_of(m2), 3)
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_array_equal(p1.detach().numpy(), p2.detach().numpy())
    # The loaded state is a copy: the step counters went on separately.
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        assert o1.state[p1]["step"] is not o2.state[p2]["step"]
        assert float(o1.state[p1]["step"]) == float(o2.state[p2]["step"]) == 6.0


@pytest.mark.parametrize("name", NAMES)
def test_load_pytorch_state_dict(name, rng):
    """A PyTorch optimizer's state_dict, tensors turned into ours, continues as PyTorch does."""
    torch = torch_or_skip()
    cfg = {"Adam": dict(lr=0.01, amsgrad=True), "AdamW": dict(lr=0.01),
           "RMSprop": dict(lr=0.01, momentum=0.5, centered=True),
           "Adagrad": dict(lr=0.1, initial_accumulator_value=0.1), "Adadelta": dict(lr=0.5)}[name]
    w0, x, y = _data(rng, "float64")
    tw, tloss = _problem(torch, w0, x, y)
    topt = getattr(torch.optim, name)([tw], **cfg)
    _run(topt, tloss, 5)
    tsd = topt.state_dict()
    sd = {"state": {i: {k: nf.tensor(v.numpy()) if torch.is_tensor(v) else v
                        for k, v in st.items()} for i, st in tsd["state"].items()},
          "param_groups": tsd["param_groups"]}
    w, loss = _problem(nf, tw.detach().numpy(), x, y)
    opt = getattr(nf.optim, name)([w], **cfg)
    opt.load_state_dict(sd)
    _run(opt, loss, 5)
    _run(topt, tloss, 5)
    np.testing.assert_allclose(w.detach().numpy(), tw.detach().numpy(), rtol=1e-11, atol=1e-12)


def test_adagrad_state_exists_before_the_first_step():
    w = nf.nn.Parameter(nf.ones(3))
    opt = nf.optim.Adagrad([w], initial_accumulator_value=0.25)
    assert float(opt.state[w]["step"]) == 0.0
    assert opt.state[w]["sum"].tolist() == [0.25, 0.25, 0.25]


def test_step_counter_is_a_float32_cpu_tensor():
    w = nf.nn.Parameter(nf.ones(2))
    opt = nf.optim.Adam([w])
    for _ in range(3):
        (w * w).sum().backward()
        opt.step()
    step = opt.state[w]["step"]
    assert isinstance(step, nf.Tensor) and step.dtype == nf.float32 and step.ndim == 0
    assert step.item() == 3.0


@pytest.mark.parametrize("name", NAMES)
def test_closure_and_skipped_parameters(name):
    w = nf.nn.Parameter(nf.ones(2))
    frozen = nf.nn.Parameter(nf.ones(2))
    opt = getattr(nf.optim, name)([w, frozen])

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == 2.0
    assert w.tolist() != [1.0, 1.0]
    assert frozen.tolist() == [1.0, 1.0]
    assert w._version > 0


@pytest.mark.parametrize("name", NAMES)
def test_noncontiguous_and_float16_parameters(name):
    """A transposed parameter view and a float16 parameter go through the staging
    path of the backend wrapper and end where a contiguous float32 one does."""
    a = np.arange(1.0, 7.0, dtype=np.float32).reshape(2, 3)
    ref = nf.from_numpy(a.copy()).requires_grad_()
    view = nf.from_numpy(np.ascontiguousarray(a.T).T).requires_grad_()
    half = nf.from_numpy(a.astype(np.float16)).requires_grad_()
    assert not view.is_contiguous()
    opts = [getattr(nf.optim, name)([t], lr=0.1) for t in (ref, view, half)]
    for _ in range(3):
        for t, opt in zip((ref, view, half), opts):
            opt.zero_grad()
            (t.float() ** 2).sum().backward() if t is half else (t ** 2).sum().backward()
            opt.step()
    np.testing.assert_array_equal(view.detach().numpy(), ref.detach().numpy())
    assert not view.is_contiguous()
    assert half.dtype == nf.float16
    np.testing.assert_allclose(half.detach().numpy().astype(np.float32), ref.detach().numpy(),
                               rtol=2e-3, atol=2e-3)


def _param():
    return [nf.nn.Parameter(nf.ones(1))]


@pytest.mark.parametrize("name, kwargs, match", [
    ("Adam", dict(lr=-1.0), "invalid learning rate"),
    ("Adam", dict(eps=-1e-8), "invalid epsilon"),
    ("Adam", dict(betas=(1.0, 0.999)), "beta parameter at index 0"),
    ("Adam", dict(betas=(0.9, -0.1)), "beta parameter at index 1"),
    ("Adam", dict(betas=(0.9,)), "pair"),
    ("Adam", dict(weight_decay=-0.1), "invalid weight_decay"),
    ("AdamW", dict(lr=-0.1), "AdamW: invalid learning rate"),
    ("AdamW", dict(betas=(0.9, 1.5)), "beta parameter at index 1"),
    ("RMSprop", dict(lr=-0.1), "invalid learning rate"),
    ("RMSprop", dict(alpha=-0.5), "invalid alpha"),
    ("RMSprop", dict(eps=-1.0), "invalid epsilon"),
    ("RMSprop", dict(momentum=-0.9), "invalid momentum"),
    ("RMSprop", dict(weight_decay=-1.0), "invalid weight_decay"),
    ("Adagrad", dict(lr=-0.1), "invalid learning rate"),
    ("Adagrad", dict(lr_decay=-0.1), "invalid lr_decay"),
    ("Adagrad", dict(initial_accumulator_value=-1.0), "initial_accumulator_value"),
    ("Adagrad", dict(eps=-1.0), "invalid epsilon"),
    ("Adagrad", dict(weight_decay=-1.0), "invalid weight_decay"),
    ("Adadelta", dict(lr=-0.1), "invalid learning rate"),
    ("Adadelta", dict(rho=1.5), "invalid rho"),
    ("Adadelta", dict(eps=-1.0), "invalid epsilon"),
    ("Adadelta", dict(weight_decay=-1.0), "invalid weight_decay"),
])
def test_bad_hyperparameters(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        getattr(nf.optim, name)(_param(), **kwargs)


@pytest.mark.parametrize("name", NAMES)
def test_defaults_match_pytorch(name):
    torch = torch_or_skip()
    ours = getattr(nf.optim, name)(_param()).defaults
    theirs = getattr(torch.optim, name)([torch.ones(1, requires_grad=True)]).defaults
    for key, value in ours.items():
        assert theirs[key] == value, key


def test_load_state_dict_checks_group_sizes():
    a, b = nf.nn.Parameter(nf.ones(1)), nf.nn.Parameter(nf.ones(1))
    sd = nf.optim.Adam([a, b]).state_dict()
    with pytest.raises(ValueError, match="1 parameter groups|2 parameters"):
        nf.optim.Adam([a]).load_state_dict(sd)
