"""Tests for nnforge.nn.init (python/nnforge/nn/init.py): gains and fans against PyTorch's,
the bounds and spreads each initialiser should give, structured inits, reproducibility."""
import math

import numpy as np
import pytest

import nnforge as nf
from nnforge import nn
from nnforge.nn import init


def as_np(t):
    return t.detach().numpy()


def big(*shape, dtype=nf.float32):
    return nn.Parameter(nf.empty(*shape, dtype=dtype))


# ---------------------------------------------------------------- gains and fans
GAIN_CASES = [("linear", None), ("conv1d", None), ("conv2d", None), ("conv3d", None),
              ("conv_transpose1d", None), ("conv_transpose2d", None), ("conv_transpose3d", None),
              ("sigmoid", None), ("tanh", None), ("relu", None), ("leaky_relu", None),
              ("leaky_relu", 0.2), ("leaky_relu", 0), ("leaky_relu", 1), ("selu", None)]


def test_calculate_gain_table():
    assert init.calculate_gain("linear") == 1.0
    assert init.calculate_gain("sigmoid") == 1.0
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01 ** 2)))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert init.calculate_gain("selu") == 0.75
    with pytest.raises(ValueError, match="unsupported nonlinearity 'swish'"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="not a valid number"):
        init.calculate_gain("leaky_relu", "0.1")


@pytest.mark.parametrize("nonlinearity,param", GAIN_CASES)
def test_calculate_gain_matches_pytorch(nonlinearity, param):
    torch = pytest.importorskip("torch")
    assert init.calculate_gain(nonlinearity, param) == pytest.approx(
        torch.nn.init.calculate_gain(nonlinearity, param), rel=1e-12)


FAN_SHAPES = [(5, 3), (8, 4, 3, 3), (6, 2, 5), (4, 2, 3, 3, 3), (1, 1)]


@pytest.mark.parametrize("shape", FAN_SHAPES, ids=str)
def test_fans(shape):
    fan_in, fan_out = init._calculate_fan_in_and_fan_out(nf.empty(*shape))
    rf = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    assert (fan_in, fan_out) == (shape[1] * rf, shape[0] * rf)
    torch = pytest.importorskip("torch")
    assert (fan_in, fan_out) == torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(*shape))


def test_fans_need_two_dims():
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init._calculate_fan_in_and_fan_out(nf.empty(5))
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(nf.empty(5))
    with pytest.raises(ValueError, match="mode 'fan_avg'"):
        init.kaiming_uniform_(nf.empty(3, 3), mode="fan_avg")


# ---------------------------------------------------------------- plain fills
def test_fills_return_the_tensor_in_place_without_graph():
    p = big(3, 4)
    for fn, args in [(init.uniform_, ()), (init.normal_, ()), (init.constant_, (0.3,)),
                     (init.ones_, ()), (init.zeros_, ()), (init.eye_, ()),
                     (init.xavier_uniform_, ()), (init.xavier_normal_, ()),
                     (init.kaiming_uniform_, ()), (init.kaiming_normal_, ()),
                     (init.orthogonal_, ()), (init.trunc_normal_, ())]:
        assert fn(p, *args) is p, fn.__name__
        assert p.is_leaf and p.grad_fn is None and p.requires_grad
        assert p.dtype == nf.float32


def test_constant_ones_zeros():
    t = nf.empty(2, 3)
    np.testing.assert_array_equal(init.constant_(t, 0.25).numpy(), np.full((2, 3), 0.25))
    np.testing.assert_array_equal(init.ones_(t).numpy(), np.ones((2, 3)))
    np.testing.assert_array_equal(init.zeros_(t).numpy(), np.zeros((2, 3)))


def test_uniform_and_normal_statistics():
    nf.manual_seed(0)
    u = as_np(init.uniform_(big(200, 500), -2.0, 3.0))
    assert u.min() >= -2.0 and u.max() < 3.0
    np.testing.assert_allclose(u.mean(), 0.5, atol=0.02)
    np.testing.assert_allclose(u.std(), 5 / math.sqrt(12), rtol=0.01)
    n = as_np(init.normal_(big(200, 500), 1.5, 0.5))
    np.testing.assert_allclose(n.mean(), 1.5, atol=0.005)
    np.testing.assert_allclose(n.std(), 0.5, rtol=0.01)


def test_float64_tensors():
    t = init.xavier_normal_(big(100, 100, dtype=nf.float64))
    assert t.dtype == nf.float64 and float(t.abs().sum()) > 0


# ---------------------------------------------------------------- scaled by fans
def _check_uniform(values, bound):
    assert np.abs(values).max() <= bound
    assert np.abs(values).max() > 0.99 * bound
    np.testing.assert_allclose(values.std(), bound / math.sqrt(3), rtol=0.02)


@pytest.mark.parametrize("shape", [(300, 200), (64, 32, 3, 3)], ids=str)
@pytest.mark.parametrize("gain", [1.0, 2.5])
def test_xavier(shape, gain):
    fan_in, fan_out = init._calculate_fan_in_and_fan_out(nf.empty(*shape))
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    _check_uniform(as_np(init.xavier_uniform_(big(*shape), gain=gain)), math.sqrt(3) * std)
    w = as_np(init.xavier_normal_(big(*shape), gain=gain))
    np.testing.assert_allclose(w.std(), std, rtol=0.02)
    assert abs(w.mean()) < 0.02 * std


KAIMING_CASES = [(0, "fan_in", "leaky_relu"), (math.sqrt(5), "fan_in", "leaky_relu"),
                 (0, "fan_out", "relu"), (0.1, "fan_out", "leaky_relu"),
                 (0, "fan_in", "tanh"), (0, "fan_in", "linear"), (0, "fan_in", "selu")]


@pytest.mark.parametrize("a,mode,nonlinearity", KAIMING_CASES)
def test_kaiming(a, mode, nonlinearity):
    shape = (128, 64, 3, 3)
    fan = 64 * 9 if mode == "fan_in" else 128 * 9
    std = init.calculate_gain(nonlinearity, a) / math.sqrt(fan)
    _check_uniform(as_np(init.kaiming_uniform_(big(*shape), a=a, mode=mode,
                                               nonlinearity=nonlinearity)), math.sqrt(3) * std)
    w = as_np(init.kaiming_normal_(big(*shape), a=a, mode=mode, nonlinearity=nonlinearity))
    np.testing.assert_allclose(w.std(), std, rtol=0.02)


@pytest.mark.parametrize("a,mode,nonlinearity", KAIMING_CASES)
def test_kaiming_spread_matches_pytorch(a, mode, nonlinearity):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    shape = (128, 64, 3, 3)
    tw = torch.empty(*shape)
    torch.nn.init.kaiming_uniform_(tw, a=a, mode=mode, nonlinearity=nonlinearity)
    w = as_np(init.kaiming_uniform_(big(*shape), a=a, mode=mode, nonlinearity=nonlinearity))
    np.testing.assert_allclose(np.abs(w).max(), tw.abs().max().item(), rtol=0.005)
    np.testing.assert_allclose(w.std(), tw.std().item(), rtol=0.02)
    torch.nn.init.kaiming_normal_(tw, a=a, mode=mode, nonlinearity=nonlinearity)
    w = as_np(init.kaiming_normal_(big(*shape), a=a, mode=mode, nonlinearity=nonlinearity))
    np.testing.assert_allclose(w.std(), tw.std().item(), rtol=0.03)


def test_kaiming_zero_element_warns():
    t = nf.empty(0, 3)
    with pytest.warns(UserWarning, match="zero-element"):
        assert init.kaiming_uniform_(t) is t
    with pytest.warns(UserWarning, match="zero-element"):
        init.kaiming_normal_(t)


# ---------------------------------------------------------------- structured
@pytest.mark.parametrize("shape", [(4, 4), (3, 7), (7, 3), (6, 2, 3, 3), (1, 5)], ids=str)
def test_orthogonal(shape):
    w = as_np(init.orthogonal_(big(*shape))).reshape(shape[0], -1).astype(np.float64)
    rows, cols = w.shape
    if rows <= cols:
        np.testing.assert_allclose(w @ w.T, np.eye(rows), atol=1e-5)
    else:
        np.testing.assert_allclose(w.T @ w, np.eye(cols), atol=1e-5)
    g = as_np(init.orthogonal_(big(*shape), gain=2.0)).reshape(rows, cols).astype(np.float64)
    small = g @ g.T if rows <= cols else g.T @ g
    np.testing.assert_allclose(small, 4.0 * np.eye(min(rows, cols)), atol=1e-4)


def test_orthogonal_is_not_biased_towards_positive_diagonal():
    # The sign correction makes Q Haar-distributed: diagonal entries are symmetric about 0.
    gen = nf.Generator().manual_seed(0)
    diag = [as_np(init.orthogonal_(nf.empty(3, 3), generator=gen))[0, 0] for _ in range(400)]
    assert abs(np.mean(diag)) < 0.1


def test_orthogonal_needs_two_dims():
    with pytest.raises(ValueError, match="2 or more dimensions"):
        init.orthogonal_(nf.empty(4))


def test_eye_():
    np.testing.assert_array_equal(init.eye_(nf.empty(3, 5)).numpy(), np.eye(3, 5))
    np.testing.assert_array_equal(init.eye_(nf.empty(4, 2)).numpy(), np.eye(4, 2))
    with pytest.raises(ValueError, match="2 dimensions"):
        init.eye_(nf.empty(2, 2, 2))


@pytest.mark.parametrize("shape,groups", [((4, 4, 3), 1), ((6, 3, 3, 3), 2), ((2, 5, 3, 3, 3), 1),
                                          ((5, 2, 4, 4), 1)], ids=str)
def test_dirac_(shape, groups):
    w = as_np(init.dirac_(nf.empty(*shape), groups=groups))
    out_per_group = shape[0] // groups
    centre = tuple(s // 2 for s in shape[2:])
    expected = np.zeros(shape, dtype=np.float32)
    for g in range(groups):
        for d in range(min(out_per_group, shape[1])):
            expected[(g * out_per_group + d, d) + centre] = 1
    np.testing.assert_array_equal(w, expected)
    torch = pytest.importorskip("torch")
    tw = torch.empty(*shape)
    torch.nn.init.dirac_(tw, groups=groups)
    np.testing.assert_array_equal(w, tw.numpy())


def test_dirac_errors():
    with pytest.raises(ValueError, match="3, 4, or 5 dimensions"):
        init.dirac_(nf.empty(3, 3))
    with pytest.raises(ValueError, match="divisible"):
        init.dirac_(nf.empty(5, 2, 3), groups=2)


# ---------------------------------------------------------------- truncated normal
def _truncated_moments(mean, std, a, b):
    """Mean and std of N(mean, std^2) truncated to [a, b] (closed form)."""
    alpha, beta = (a - mean) / std, (b - mean) / std
    pdf = lambda x: math.exp(-x * x / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda x: 0.5 * math.erfc(-x / math.sqrt(2))  # noqa: E731
    z = cdf(beta) - cdf(alpha)
    m = (pdf(alpha) - pdf(beta)) / z
    var = 1 + (alpha * pdf(alpha) - beta * pdf(beta)) / z - m * m
    return mean + std * m, std * math.sqrt(var)


@pytest.mark.parametrize("mean,std,a,b", [
    (0.0, 1.0, -2.0, 2.0),       # the default
    (0.0, 0.02, -2.0, 2.0),      # ViT-style: bounds far outside the spread
    (1.0, 2.0, 0.0, 1.5),        # asymmetric
    (0.0, 1.0, 3.0, 6.0),        # right tail (exponential proposal)
    (0.0, 1.0, -8.0, -7.9),      # narrow interval far in the left tail (uniform proposal)
    (0.0, 1.0, -0.01, 0.02),     # narrow interval around the mean
])
def test_trunc_normal(mean, std, a, b):
    nf.manual_seed(0)
    w = as_np(init.trunc_normal_(big(200, 200), mean, std, a, b)).astype(np.float64)
    assert w.min() >= a and w.max() <= b
    exp_mean, exp_std = _truncated_moments(mean, std, a, b)
    np.testing.assert_allclose(w.mean(), exp_mean, atol=5 * exp_std / math.sqrt(w.size))
    np.testing.assert_allclose(w.std(), exp_std, rtol=0.02)


def test_trunc_normal_errors():
    with pytest.raises(ValueError, match="a < b"):
        init.trunc_normal_(nf.empty(3), a=1.0, b=0.0)
    with pytest.raises(ValueError, match="std must be positive"):
        init.trunc_normal_(nf.empty(3), std=0.0)


# ---------------------------------------------------------------- reproducibility
@pytest.mark.parametrize("fn", [init.uniform_, init.normal_, init.xavier_uniform_,
                                init.xavier_normal_, init.kaiming_uniform_, init.kaiming_normal_,
                                init.orthogonal_, init.trunc_normal_])
def test_generator_reproducibility(fn):
    a = as_np(fn(nf.empty(6, 5), generator=nf.Generator().manual_seed(7))).copy()
    b = as_np(fn(nf.empty(6, 5), generator=nf.Generator().manual_seed(7))).copy()
    c = as_np(fn(nf.empty(6, 5), generator=nf.Generator().manual_seed(8))).copy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # Without a generator, the global seed decides.
    nf.manual_seed(3)
    d = as_np(fn(nf.empty(6, 5))).copy()
    nf.manual_seed(3)
    np.testing.assert_array_equal(d, as_np(fn(nf.empty(6, 5))))


def test_manual_seed_reproduces_linear_init():
    nf.manual_seed(11)
    a = nn.Linear(5, 4)
    nf.manual_seed(11)
    b = nn.Linear(5, 4)
    np.testing.assert_array_equal(as_np(a.weight), as_np(b.weight))
    np.testing.assert_array_equal(as_np(a.bias), as_np(b.bias))


def test_bad_generator_type():
    with pytest.raises(TypeError, match="Generator"):
        init.orthogonal_(nf.empty(3, 3), generator=np.random.default_rng(0))
