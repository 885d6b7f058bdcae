"""Tests for the activations (python/nnforge/ops/activation.py, nn/activation.py,
their nn.functional forms) and the erf/GELU kernels (csrc/cpu/activation.cpp):
values and gradients against PyTorch (smooth regions, kink points and their
neighbourhoods, |x| up to 1e4 in float32 and float64), gradcheck in float64,
no floating-point exceptions inside the backend, modules and their reprs,
in-place forms, RReLU's randomness, PReLU's parameter, errors."""
import math

import numpy as np
import pytest

import nnforge as nf
from nnforge import nn
from nnforge.backend import cpu as cpu_backend
from nnforge.nn import functional as F

from helpers import assert_close, check_op, requires_torch, torch, torch_or_skip


def tf():
    return torch.nn.functional


# name -> (nnforge fn, torch fn (built lazily), the points where the derivative jumps)
def _cases():
    return {
        "relu": (F.relu, lambda: tf().relu, [0.0]),
        "relu6": (F.relu6, lambda: tf().relu6, [0.0, 6.0]),
        "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), lambda: lambda x: tf().leaky_relu(x, 0.2),
                       [0.0]),
        "rrelu_eval": (lambda x: F.rrelu(x, 0.1, 0.3), lambda: lambda x: tf().rrelu(x, 0.1, 0.3),
                       [0.0]),
        "elu": (lambda x: F.elu(x, 0.7), lambda: lambda x: tf().elu(x, 0.7), [0.0]),
        "selu": (F.selu, lambda: tf().selu, [0.0]),
        "celu": (lambda x: F.celu(x, 1.5), lambda: lambda x: tf().celu(x, 1.5), [0.0]),
        "gelu": (F.gelu, lambda: tf().gelu, []),
        "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"),
                      lambda: lambda x: tf().gelu(x, approximate="tanh"), []),
        "silu": (F.silu, lambda: tf().silu, []),
        "mish": (F.mish, lambda: tf().mish, []),
        "softplus": (F.softplus, lambda: tf().softplus, [20.0]),
        "softplus_beta": (lambda x: F.softplus(x, 2.0, 5.0),
                          lambda: lambda x: tf().softplus(x, 2.0, 5.0), [2.5]),
        "hardswish": (F.hardswish, lambda: tf().hardswish, [-3.0, 3.0]),
        "hardsigmoid": (F.hardsigmoid, lambda: tf().hardsigmoid, [-3.0, 3.0]),
        "hardtanh": (lambda x: F.hardtanh(x, -0.5, 1.5),
                     lambda: lambda x: tf().hardtanh(x, -0.5, 1.5), [-0.5, 1.5]),
        "threshold": (lambda x: F.threshold(x, 0.5, -2.0),
                      lambda: lambda x: tf().threshold(x, 0.5, -2.0), [0.5]),
        "sigmoid": (F.sigmoid, lambda: torch.sigmoid, []),
        "logsigmoid": (F.logsigmoid, lambda: tf().logsigmoid, []),
        "tanh": (F.tanh, lambda: torch.tanh, []),
        "softsign": (F.softsign, lambda: tf().softsign, [0.0]),
        "tanhshrink": (F.tanhshrink, lambda: tf().tanhshrink, []),
        "softshrink": (F.softshrink, lambda: tf().softshrink, [-0.5, 0.5]),
        "hardshrink": (lambda x: F.hardshrink(x, 1.0), lambda: lambda x: tf().hardshrink(x, 1.0),
                       [-1.0, 1.0]),
    }


CASES = _cases()
NAMES = sorted(CASES)


def smooth_points(kinks, shape, seed=0):
    """Random values in [-6, 6] at least 0.05 away from every kink (so that
    finite differences never straddle one)."""
    x = np.random.default_rng(seed).uniform(-6, 6, shape)
    for k in kinks:
        near = np.abs(x - k) < 0.05
        x[near] = k + np.where(x[near] >= k, 0.05, -0.05)
    return x


def kink_points(kinks):
    """Each kink, and points just either side of it (1e-6 to 1e-2 away)."""
    pts = [0.0]
    for k in kinks:
        pts += [k] + [k + s * d for d in (1e-6, 1e-4, 1e-2) for s in (-1, 1)]
    return np.array(pts)


LARGE = np.array([-1e4, -3e3, -1e3, -100.0, -88.0, -30.0, 30.0, 88.0, 100.0, 1e3, 3e3, 1e4])


# ---------------------------------------------------------------- parity and gradcheck
@pytest.mark.parametrize("name", NAMES)
def test_smooth_region_vs_pytorch_and_gradcheck(name):
    fn, torch_fn, kinks = CASES[name]
    x = smooth_points(kinks, (4, 7))
    check_op(fn, torch_fn() if torch is not None else None,
             inputs=[x.astype(np.float32)], gradcheck=False)
    check_op(fn, torch_fn() if torch is not None else None,
             inputs=[x], gradcheck=True)  # float64: also finite differences


@requires_torch
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", NAMES)
def test_kinks_and_large_magnitudes_vs_pytorch(name, dtype):
    """At the kinks the derivative must take PyTorch's value (one side or the
    other, or 0); far out everything must stay finite and agree."""
    fn, torch_fn, kinks = CASES[name]
    x = np.concatenate([kink_points(kinks), LARGE]).astype(dtype)
    check_op(fn, torch_fn(), inputs=[x], gradcheck=False, noncontig=False,
             atol=1e-6 if dtype == "float32" else 1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", NAMES + ["rrelu_train", "prelu"])
def test_no_floating_point_exceptions_for_large_inputs(name, dtype, monkeypatch):
    """No overflow, invalid operation or division by zero happens anywhere in the
    backend (not merely hidden): the backend's quiet mode is made to raise."""
    strict = lambda: np.errstate(over="raise", invalid="raise", divide="raise", under="ignore")
    monkeypatch.setattr(cpu_backend, "_quiet", strict)
    if name == "rrelu_train":
        fn = lambda x: F.rrelu(x, training=True)
    elif name == "prelu":
        fn = lambda x: F.prelu(x, nf.tensor([0.25], dtype=x.dtype))
    else:
        fn = CASES[name][0]
    x = nf.tensor(np.concatenate([LARGE, -LARGE[::-1] * 10]).astype(dtype), requires_grad=True)
    with strict():
        y = fn(x)
        y.backward(nf.ones_like(y))
    assert np.isfinite(y.detach().numpy()).all()
    assert np.isfinite(x.grad.numpy()).all()


@pytest.mark.parametrize("shape", [(0,), (1,), (3, 0, 2), (), (5, 1, 3)], ids=str)
def test_odd_shapes(shape):
    x = nf.tensor(np.random.default_rng(0).standard_normal(shape), dtype=nf.float32)
    for name in NAMES:
        out = CASES[name][0](x)
        assert tuple(out.shape) == shape and out.dtype == nf.float32, name


def test_known_values():
    x = nf.tensor([-1.0, 0.0, 1.0], dtype=nf.float64)
    phi1 = 0.5 * (1 + math.erf(1 / math.sqrt(2)))
    np.testing.assert_allclose(F.gelu(x).numpy(), [-(1 - phi1), 0.0, phi1], rtol=1e-15)
    np.testing.assert_allclose(F.silu(x).numpy(), [-1 / (1 + math.e), 0.0, 1 / (1 + 1 / math.e)],
                               rtol=1e-15)
    np.testing.assert_allclose(F.softplus(x).numpy(), np.log1p(np.exp([-1.0, 0.0, 1.0])),
                               rtol=1e-15)
    np.testing.assert_allclose(F.elu(x).numpy(), [math.exp(-1) - 1, 0.0, 1.0], rtol=1e-15)
    np.testing.assert_allclose(F.hardswish(x).numpy(), [-1 / 3, 0.0, 2 / 3], rtol=1e-15)
    np.testing.assert_allclose(F.softsign(x).numpy(), [-0.5, 0.0, 0.5])
    # The left tail of GELU keeps its relative precision (erfc, not 1 + erf).
    far = F.gelu(nf.tensor([-10.0], dtype=nf.float64)).item()
    assert far == pytest.approx(-10 * 0.5 * math.erfc(10 / math.sqrt(2)), rel=1e-12)


def test_float16_inputs_run_through_float32():
    x = nf.tensor(np.linspace(-4, 4, 17), dtype=nf.float16)
    for fn in (F.gelu, F.silu, F.mish, F.elu):
        y = fn(x)
        assert y.dtype == nf.float16
        assert_close(y, fn(x.float()), atol=2e-3, rtol=2e-3)


# ---------------------------------------------------------------- in-place forms
INPLACE = {
    "relu6": lambda x, ip: F.relu6(x, inplace=ip),
    "leaky_relu": lambda x, ip: F.leaky_relu(x, 0.1, inplace=ip),
    "elu": lambda x, ip: F.elu(x, inplace=ip),
    "selu": lambda x, ip: F.selu(x, inplace=ip),
    "celu": lambda x, ip: F.celu(x, 2.0, inplace=ip),
    "silu": lambda x, ip: F.silu(x, inplace=ip),
    "mish": lambda x, ip: F.mish(x, inplace=ip),
    "hardswish": lambda x, ip: F.hardswish(x, inplace=ip),
    "hardsigmoid": lambda x, ip: F.hardsigmoid(x, inplace=ip),
    "hardtanh": lambda x, ip: F.hardtanh(x, inplace=ip),
    "threshold": lambda x, ip: F.threshold(x, 0.1, 5.0, inplace=ip),
    "rrelu": lambda x, ip: F.rrelu(x, inplace=ip),
}


@pytest.mark.parametrize("name", sorted(INPLACE))
def test_inplace_writes_into_input_and_keeps_the_graph(name):
    fn = INPLACE[name]
    a = np.random.default_rng(1).uniform(-4, 4, (3, 4))
    expected = fn(nf.tensor(a), False).numpy()
    x = nf.tensor(a)
    assert fn(x, True) is x
    np.testing.assert_allclose(x.numpy(), expected)
    # Inside a graph: the in-place result backpropagates like the out-of-place one.
    w = nf.tensor(a, requires_grad=True)
    h = w * 1.0
    out = fn(h, True)
    assert out is h
    out.sum().backward()
    w2 = nf.tensor(a, requires_grad=True)
    fn(w2 * 1.0, False).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), w2.grad.numpy())


def test_inplace_on_leaf_requiring_grad_is_refused():
    x = nf.tensor([1.0, -1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        F.elu(x, inplace=True)


# ---------------------------------------------------------------- RReLU
def test_rrelu_training_draws_slopes_in_range_and_gradient_is_the_slope():
    x = nf.tensor(-np.linspace(0.5, 3.0, 2000), requires_grad=True)
    y = F.rrelu(x, 0.1, 0.4, training=True)
    slopes = y.detach().numpy() / x.detach().numpy()
    assert slopes.min() >= 0.1 and slopes.max() < 0.4
    assert np.unique(slopes.round(6)).size > 1000  # one slope per element
    assert slopes.mean() == pytest.approx(0.25, abs=0.01)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), slopes, rtol=1e-6)
    pos = nf.tensor([0.5, 2.0], requires_grad=True)
    out = F.rrelu(pos, training=True)
    out.sum().backward()
    np.testing.assert_array_equal(out.detach().numpy(), [0.5, 2.0])
    np.testing.assert_array_equal(pos.grad.numpy(), [1.0, 1.0])


def test_rrelu_generator_gradcheck_and_eval_mean_slope():
    gen = nf.Generator()

    def fn(a):  # the same slopes on every call
        gen.manual_seed(3)
        return F.rrelu(a, 0.1, 0.3, training=True, generator=gen)

    x = nf.tensor(smooth_points([0.0], (3, 4)), requires_grad=True)
    assert nf.autograd.gradcheck(fn, (x,))
    assert_close(F.rrelu(nf.tensor([-2.0, 3.0])), [-2.0 * (1 / 8 + 1 / 3) / 2, 3.0], rtol=1e-6)


def test_rrelu_module_train_and_eval():
    m = nn.RReLU(0.1, 0.3)
    x = nf.full((1000,), -1.0)
    train_out = m(x).numpy()
    assert np.unique(train_out).size > 100
    m.eval()
    np.testing.assert_allclose(m(x).numpy(), -0.2, rtol=1e-6)
    with pytest.raises(ValueError, match="lower bound"):
        nn.RReLU(0.5, 0.1)


# ---------------------------------------------------------------- PReLU
@pytest.mark.parametrize("num_parameters,shape", [(1, (4, 3)), (3, (4, 3)), (3, (2, 3, 5)),
                                                  (2, (2, 2, 3, 3)), (1, (5,))],
                         ids=str)
def test_prelu_vs_pytorch_and_gradcheck(num_parameters, shape):
    w = np.random.default_rng(2).uniform(-0.5, 1.0, num_parameters)
    x = smooth_points([0.0], shape, seed=4)
    torch_fn = (lambda a, b: torch.nn.functional.prelu(a, b)) if torch is not None else None
    check_op(F.prelu, torch_fn, inputs=[x.astype(np.float32), w.astype(np.float32)])
    check_op(F.prelu, torch_fn, inputs=[x, w])


def test_prelu_module_matches_pytorch_through_state_dict():
    torch = torch_or_skip()
    ref = torch.nn.PReLU(3, init=0.1)
    with torch.no_grad():
        ref.weight.copy_(torch.tensor([0.1, -0.2, 0.5]))
    m = nn.PReLU(num_parameters=3, init=0.1)
    assert list(m.state_dict()) == ["weight"] and m.weight.tolist() == pytest.approx([0.1] * 3)
    m.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((4, 3, 2)).astype(np.float32)
    xt, xn = torch.tensor(x, requires_grad=True), nf.tensor(x, requires_grad=True)
    ref(xt).square().sum().backward()
    (m(xn) * m(xn)).sum().backward()
    assert_close(m(nf.tensor(x)), ref(torch.tensor(x)))
    assert_close(xn.grad, xt.grad)
    assert_close(m.weight.grad, ref.weight.grad, rtol=1e-5)
    assert repr(m) == repr(ref) == "PReLU(num_parameters=3)"


def test_prelu_errors():
    with pytest.raises(ValueError, match=r"prelu: weight of shape \(3,\).*one per channel \(4\)"):
        F.prelu(nf.randn(2, 4), nf.ones(3))
    with pytest.raises(ValueError, match=r"one per channel \(1\)"):
        F.prelu(nf.randn(3), nf.ones(3))
    with pytest.raises(ValueError, match=r"prelu: input must have at least 1 dimension"):
        F.prelu(nf.tensor(1.0), nf.ones(1))
    with pytest.raises(ValueError, match="num_parameters"):
        nn.PReLU(0)


# ---------------------------------------------------------------- softmax family
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmin_vs_pytorch(dim):
    check_op(lambda a: F.softmin(a, dim), (lambda a: tf().softmin(a, dim)) if torch else None,
             shapes=[(3, 4, 2)], dtype="float64")
    x = nf.randn(3, 4)
    assert_close(nn.Softmin(dim=1)(x), F.softmax(-x, dim=1))
    with pytest.raises(TypeError, match="softmin: dim is required"):
        F.softmin(x)


# ---------------------------------------------------------------- modules
def _module_pairs():
    return [
        (nn.ReLU(), "ReLU"), (nn.ReLU(inplace=True), "ReLU"), (nn.ReLU6(), "ReLU6"),
        (nn.LeakyReLU(), "LeakyReLU"), (nn.LeakyReLU(0.2, inplace=True), "LeakyReLU"),
        (nn.RReLU(), "RReLU"), (nn.ELU(alpha=0.5), "ELU"), (nn.ELU(inplace=True), "ELU"),
        (nn.SELU(), "SELU"), (nn.CELU(2.0), "CELU"), (nn.GELU(), "GELU"),
        (nn.GELU("tanh"), "GELU"), (nn.SiLU(), "SiLU"), (nn.Mish(), "Mish"),
        (nn.Softplus(), "Softplus"), (nn.Softplus(beta=2.0, threshold=10.0), "Softplus"),
        (nn.Hardswish(), "Hardswish"), (nn.Hardsigmoid(), "Hardsigmoid"),
        (nn.Hardtanh(), "Hardtanh"), (nn.Hardtanh(-2.0, 3.0), "Hardtanh"),
        (nn.Threshold(0.1, 20.0), "Threshold"), (nn.Sigmoid(), "Sigmoid"),
        (nn.LogSigmoid(), "LogSigmoid"), (nn.Tanh(), "Tanh"), (nn.Softsign(), "Softsign"),
        (nn.Tanhshrink(), "Tanhshrink"), (nn.Softshrink(), "Softshrink"),
        (nn.Hardshrink(0.3), "Hardshrink"), (nn.Softmax(dim=1), "Softmax"),
        (nn.LogSoftmax(dim=0), "LogSoftmax"), (nn.Softmin(dim=1), "Softmin"),
    ]


def _torch_twin(module):
    """The same module built in PyTorch from our module's attributes."""
    cls = getattr(torch.nn, type(module).__name__)
    kwargs = {k: v for k, v in vars(module).items()
              if not k.startswith("_") and k != "training"}
    return cls(**kwargs)


@requires_torch
@pytest.mark.parametrize("module,name", _module_pairs(), ids=lambda v: v if isinstance(v, str)
                         else None)
def test_modules_match_pytorch_in_value_and_repr(module, name):
    assert type(module).__name__ == name
    ref = _torch_twin(module)
    assert repr(module) == repr(ref)
    module.eval(), ref.eval()
    x = smooth_points([0.0, 6.0, -3.0, 3.0], (3, 5), seed=5).astype(np.float32)
    assert_close(module(nf.tensor(x)), ref(torch.tensor(x)), atol=1e-6, rtol=1e-5)
    assert list(module.state_dict()) == list(ref.state_dict())


def test_module_argument_errors():
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh'"):
        nn.GELU("fast")
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh', got 'erf'"):
        F.gelu(nf.randn(3), approximate="erf")
    with pytest.raises(ValueError, match="min_val"):
        nn.Hardtanh(1.0, -1.0)
    with pytest.raises(ValueError, match="lambd must be non-negative"):
        nn.Softshrink(-0.1)
    with pytest.raises(ValueError, match="softplus: beta must not be 0"):
        F.softplus(nf.randn(2), beta=0)


@pytest.mark.parametrize("name", ["gelu", "silu", "elu", "mish", "hardswish", "softplus",
                                  "leaky_relu", "softshrink"])
def test_integer_inputs_are_refused_with_the_op_name(name):
    with pytest.raises(TypeError, match=f"{name}: input must be floating point, got int64"):
        getattr(F, name)(nf.tensor([1, 2, 3]))
    with pytest.raises(TypeError, match=f"{name}: argument 'input' must be a Tensor"):
        getattr(F, name)([1.0, 2.0])


# ---------------------------------------------------------------- the C++ kernels
def _kernels():
    from nnforge._C import cpu
    return cpu


@pytest.mark.parametrize("shape", [(0,), (1,), (7,), (3, 5), (2, 1, 3), (40000,)], ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_erf_and_gelu_kernels_against_math(shape, dtype):
    """Against math.erf per element (the large case runs the threaded path)."""
    x = np.random.default_rng(0).uniform(-6, 6, shape).astype(dtype)
    erf = np.vectorize(math.erf, otypes=[np.float64])
    tol = 1e-6 if dtype == np.float32 else 1e-14
    ref_erf = erf(x.astype(np.float64)) if x.size else x.astype(np.float64)
    np.testing.assert_allclose(cpu_backend.erf(x), ref_erf, atol=tol, rtol=tol)
    x64 = x.astype(np.float64)
    cdf = 0.5 * (1 + (erf(x64 / math.sqrt(2)) if x.size else x64))
    pdf = np.exp(-0.5 * x64 ** 2) / math.sqrt(2 * math.pi)
    y = cpu_backend.gelu(x)
    assert y.dtype == dtype and y.shape == shape
    np.testing.assert_allclose(y, x * cdf, atol=tol * 10, rtol=tol * 10)
    g = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    np.testing.assert_allclose(cpu_backend.gelu_backward(g, x), g * (cdf + x * pdf),
                               atol=tol * 10, rtol=tol * 10)


def test_kernels_accept_noncontiguous_through_the_backend():
    base = np.random.default_rng(0).standard_normal((6, 8))
    view = base[:, ::2].T
    np.testing.assert_allclose(cpu_backend.gelu(view), cpu_backend.gelu(view.copy()))
    np.testing.assert_allclose(cpu_backend.gelu_backward(view, view, "tanh"),
                               cpu_backend.gelu_backward(view.copy(), view.copy(), "tanh"))
    # a broadcast upstream gradient (e.g. from a sum)
    np.testing.assert_allclose(cpu_backend.gelu_backward(np.ones(()), base),
                               cpu_backend.gelu_backward(np.ones_like(base), base))


def test_kernels_check_their_arguments():
    k = _kernels()
    with pytest.raises(ValueError, match="erf: x has dtype int64; expected float32 or float64"):
        k.erf(np.arange(3))
    with pytest.raises(ValueError, match="gelu: x must be C-contiguous"):
        k.gelu(np.ones((4, 4))[:, ::2])
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh', got 'x'"):
        k.gelu(np.ones(3), "x")
    with pytest.raises(ValueError, match=r"gelu_backward: grad of shape \(2,\) and x of shape "
                                         r"\(3,\)"):
        k.gelu_backward(np.ones(2), np.ones(3))
    with pytest.raises(ValueError, match="grad has dtype float32 but x has dtype float64"):
        k.gelu_backward(np.ones(3, np.float32), np.ones(3))
    with pytest.raises(TypeError, match="erf: x must be a numpy array, got list"):
        k.erf([1.0, 2.0])


def _gelu_reference(x, approximate):
    x = np.asarray(x, np.float64)
    if approximate == "tanh":
        u = math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)
        t = np.tanh(u)
        dt = (1 - t * t) * math.sqrt(2 / math.pi) * (1 + 3 * 0.044715 * x ** 2)
        return 0.5 * x * (1 + t), 0.5 * (1 + t) + 0.5 * x * dt
    cdf = 0.5 * np.vectorize(math.erfc, otypes=[np.float64])(-x / math.sqrt(2))
    return x * cdf, cdf + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_float32_gelu_keeps_relative_precision_in_the_left_tail(approximate):
    """The float kernels (vectorized erfc / sigmoid forms) against float64 math:
    relative error below 2e-5 down to x = -10 for the exact form (where 1 + erf
    would cancel), absolute error below 1e-6 everywhere."""
    x = np.concatenate([np.linspace(-12, 9, 40001), np.linspace(-1e-3, 1e-3, 101)])
    x32 = x.astype(np.float32)
    ref_y, ref_d = _gelu_reference(x32, approximate)
    y = cpu_backend.gelu(x32, approximate).astype(np.float64)
    d = cpu_backend.gelu_backward(np.ones_like(x32), x32, approximate).astype(np.float64)
    np.testing.assert_allclose(y, ref_y, atol=1e-6, rtol=0)
    np.testing.assert_allclose(d, ref_d, atol=3e-6, rtol=0)
    if approximate == "none":
        tail = (x32 > -10) & (np.abs(ref_y) > 0)
        np.testing.assert_allclose(y[tail], ref_y[tail], rtol=2e-5)


@pytest.mark.parametrize("isa", ["scalar", "avx2"])
def test_gelu_kernels_every_isa_agrees(isa):
    """The portable and AVX2 builds (the tests above run the widest one this CPU
    has) against float64 math, in a fresh process with NNFORGE_ISA set."""
    import os
    import subprocess
    import sys
    from nnforge._C import cpu_features
    if isa == "avx2" and not (cpu_features()["avx2"] and cpu_features()["fma"]):
        pytest.skip("this CPU has no AVX2 + FMA")
    script = (
        "import math, numpy as np, nnforge._C as C\n"
        "from nnforge.backend import cpu\n"
        f"assert C.selected_isa() == {isa!r}\n"
        "x = np.linspace(-12, 9, 4001)\n"
        "erfc = np.vectorize(math.erfc)\n"
        "cdf = 0.5 * erfc(-x / math.sqrt(2))\n"
        "for dt, tol in ((np.float32, 1e-6), (np.float64, 1e-13)):\n"
        "    y = cpu.gelu(x.astype(dt))\n"
        "    d = cpu.gelu_backward(np.ones(x.shape, dt), x.astype(dt))\n"
        "    assert np.abs(y - x * cdf).max() < tol, dt\n"
        "    pdf = np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)\n"
        "    assert np.abs(d - cdf - x * pdf).max() < 3 * tol, dt\n"
        "    yt = cpu.gelu(x.astype(dt), 'tanh')\n"
        "    u = math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)\n"
        "    assert np.abs(yt - 0.5 * x * (1 + np.tanh(u))).max() < tol, dt\n"
        "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=dict(os.environ, NNFORGE_ISA=isa))
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
