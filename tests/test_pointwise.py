"""Elementwise ops against numpy and PyTorch: forward over odd, size-1, empty,
non-contiguous and broadcast shapes, every gradient, and gradcheck in float64.
Most tests are one ``check_op`` call (tests/helpers.py)."""
import operator

import numpy as np
import pytest

import nnforge as nf
from helpers import assert_close, check_op, requires_torch, run_gradcheck, torch


def layouts_ok(shapes):
    """check_op's 'transposed' layout turns a 0-d input into shape (1,)
    (np.ascontiguousarray); run the non-contiguous pass only without 0-d inputs."""
    return all(len(s) > 0 for s in shapes)

pytestmark = pytest.mark.filterwarnings("error")  # PyTorch gives inf/nan silently; so must we

UNARY_SHAPES = [(), (1,), (0,), (7,), (3, 4), (2, 0, 3), (2, 3, 5)]
# Pairs of shapes that broadcast: equal, trailing-1, added leading dims, 0-d, empty.
BINARY_SHAPES = [
    ((3, 4), (3, 4)),
    ((3, 1), (5,)),
    ((2, 1, 5), (3, 1)),
    ((), (3,)),
    ((4, 3), ()),
    ((1,), (0,)),
    ((0, 3), (1, 3)),
    ((2, 0, 3), (3,)),
    ((7,), (1, 7)),
]


def test_backend_errstate_is_reentrant():
    # numpy 2 refuses to enter one np.errstate object twice; every call must work.
    x = nf.tensor([1.0, 0.0])
    for _ in range(3):
        np.testing.assert_array_equal(nf.div(x, x).isnan().numpy(), [False, True])
        nf.log(x), nf.sqrt(x)


# ---------------------------------------------------------------- binary arithmetic
BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b, np.add, {}),
    "sub": (lambda a, b: a - b, lambda a, b: a - b, np.subtract, {}),
    "mul": (lambda a, b: a * b, lambda a, b: a * b, np.multiply, {}),
    "div": (lambda a, b: a / b, lambda a, b: a / b, np.divide, {"positive": True}),
    "pow": (lambda a, b: a ** b, lambda a, b: a ** b, np.power, {"positive": True}),
    "maximum": (nf.maximum, lambda a, b: torch.maximum(a, b), np.maximum, {}),
    "minimum": (nf.minimum, lambda a, b: torch.minimum(a, b), np.minimum, {}),
    "add_alpha": (lambda a, b: nf.add(a, b, alpha=2.5), lambda a, b: torch.add(a, b, alpha=2.5),
                  lambda a, b: a + 2.5 * b, {}),
    "sub_alpha": (lambda a, b: nf.sub(a, b, alpha=-3), lambda a, b: torch.sub(a, b, alpha=-3),
                  lambda a, b: a + 3 * b, {}),
}


@pytest.mark.parametrize("shapes", BINARY_SHAPES, ids=str)
@pytest.mark.parametrize("name", BINARY)
def test_binary(name, shapes):
    nf_fn, th_fn, np_fn, kw = BINARY[name]
    check_op(nf_fn, th_fn, np_fn, shapes=shapes, noncontig=layouts_ok(shapes), **kw)


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div"])
def test_binary_float64(name):
    nf_fn, th_fn, np_fn, kw = BINARY[name]
    check_op(nf_fn, th_fn, np_fn, shapes=[(2, 3), (3,)], dtype="float64", **kw)


@pytest.mark.parametrize("scalar", [2, -1.5, 0.0, True])
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "radd", "rsub", "rmul", "rdiv"])
def test_binary_with_python_scalar(op, scalar):
    fn = {
        "add": lambda a: a + scalar, "sub": lambda a: a - scalar, "mul": lambda a: a * scalar,
        "div": lambda a: a / scalar, "radd": lambda a: scalar + a, "rsub": lambda a: scalar - a,
        "rmul": lambda a: scalar * a, "rdiv": lambda a: scalar / a,
    }[op]
    if op == "sub" and scalar is True or op == "rsub" and scalar is True:
        pytest.skip("PyTorch rejects bool in subtraction")
    # division by the scalar 0 gives inf/nan: compare with torch only, no gradcheck
    by_zero = op == "div" and scalar in (0.0, False)
    check_op(fn, fn, None if by_zero else fn, shapes=[(3, 4)], positive=op == "rdiv",
             gradcheck=not by_zero)


# ---------------------------------------------------------------- pow
@pytest.mark.parametrize("exponent", [2, 3, 0.5, -1, -2.5, 0, 1, 2.0])
def test_pow_tensor_scalar(exponent):
    check_op(lambda a: a ** exponent, lambda a: a ** exponent, lambda a: np.power(a, exponent),
             shapes=[(3, 5)], positive=True)


@pytest.mark.parametrize("exponent", [2, 3, 0, 1])
def test_pow_integer_exponent_of_negative_base(exponent):
    check_op(lambda a: a ** exponent, lambda a: a ** exponent, lambda a: np.power(a, exponent),
             shapes=[(4, 3)])


@pytest.mark.parametrize("base", [2, 0.5, 3.0])
def test_pow_scalar_tensor(base):
    check_op(lambda a: base ** a, lambda a: base ** a, lambda a: np.power(base, a), shapes=[(2, 3)])


@requires_torch
@pytest.mark.parametrize("exponent", [0.0, 0.5, 1.0, 2.0, 3.0, -1.0, -0.5])
def test_pow_zero_base_matches_torch(exponent):
    # 0 ** b: d/da = b * 0^(b-1) (0, 1, inf, -inf...), d/db = 0 for b >= 0 (log 0 masked out).
    base = np.array([0.0, 0.0, 1.5, -2.0])
    expo = np.full(4, exponent)
    if exponent != int(exponent):
        base = np.abs(base)
    check_op(lambda a, b: a ** b, lambda a, b: a ** b, None, inputs=[base, expo],
             dtype="float64", gradcheck=False, noncontig=False)
    check_op(lambda a: a ** exponent, lambda a: a ** exponent, None, inputs=[base],
             gradcheck=False, noncontig=False)


@requires_torch
def test_scalar_pow_zero_base_matches_torch():
    check_op(lambda a: 0.0 ** a, lambda a: 0.0 ** a, None, inputs=[np.array([0.0, 1.0, 2.0, 0.5])],
             gradcheck=False, noncontig=False)


def test_pow_gradcheck_away_from_zero():
    rng = np.random.default_rng(1)
    run_gradcheck(lambda a, b: a ** b, [rng.uniform(0.5, 2, (3, 1)), rng.uniform(-2, 2, (4,))])


# ---------------------------------------------------------------- dtype promotion
@requires_torch
@pytest.mark.parametrize("lhs", ["float32", "float64", "int64", "int32", "bool"])
@pytest.mark.parametrize("rhs", ["float32", "int64", "bool", 2, 2.5, True])
@pytest.mark.parametrize("op", ["add", "mul", "div"])
def test_promotion_matches_torch(op, lhs, rhs):
    a_np = np.array([1, 0, 3]).astype(lhs)
    b_np = np.array([2, 1, 1]).astype(rhs) if isinstance(rhs, str) else rhs
    a, at = nf.from_numpy(a_np.copy()), torch.from_numpy(a_np.copy())
    b = nf.from_numpy(b_np.copy()) if isinstance(rhs, str) else rhs
    bt = torch.from_numpy(b_np.copy()) if isinstance(rhs, str) else rhs
    if op == "add" and lhs == "bool" and rhs in ("bool", True):
        pass  # bool + bool is logical or in both
    out = getattr(nf, op)(a, b)
    ref = getattr(torch, op)(at, bt)
    assert_close(out, ref, check_dtype=True)


# ---------------------------------------------------------------- unary
UNARY = {
    "neg": (lambda a: -a, lambda a: -a, np.negative, {}),
    "abs": (nf.abs, lambda a: a.abs(), np.abs, {}),
    "exp": (nf.exp, lambda a: a.exp(), np.exp, {}),
    "log": (nf.log, lambda a: a.log(), np.log, {"positive": True}),
    "log1p": (nf.log1p, lambda a: a.log1p(), np.log1p, {"low": -0.5}),
    "sqrt": (nf.sqrt, lambda a: a.sqrt(), np.sqrt, {"positive": True}),
    "rsqrt": (nf.rsqrt, lambda a: a.rsqrt(), lambda a: 1 / np.sqrt(a), {"positive": True}),
    "sin": (nf.sin, lambda a: a.sin(), np.sin, {}),
    "cos": (nf.cos, lambda a: a.cos(), np.cos, {}),
    "tanh": (nf.tanh, lambda a: a.tanh(), np.tanh, {}),
    "sigmoid": (nf.sigmoid, lambda a: a.sigmoid(), lambda a: 1 / (1 + np.exp(-a)), {}),
    "relu": (nf.relu, lambda a: a.relu(), lambda a: np.maximum(a, 0), {}),
    "square_via_mul": (lambda a: a * a, lambda a: a * a, np.square, {}),
    "method_exp": (lambda a: a.exp(), lambda a: a.exp(), np.exp, {}),
    "abs_operator": (lambda a: abs(a), lambda a: abs(a), np.abs, {}),
}


@pytest.mark.parametrize("shape", UNARY_SHAPES, ids=str)
@pytest.mark.parametrize("name", UNARY)
def test_unary(name, shape):
    nf_fn, th_fn, np_fn, kw = UNARY[name]
    check_op(nf_fn, th_fn, np_fn, shapes=[shape], noncontig=layouts_ok([shape]), **kw)


@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "tanh", "sigmoid", "sin"])
def test_unary_float64(name):
    nf_fn, th_fn, np_fn, kw = UNARY[name]
    check_op(nf_fn, th_fn, np_fn, shapes=[(3, 4)], dtype="float64", **kw)


@requires_torch
@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "rsqrt", "sin", "tanh", "sigmoid", "abs"])
def test_unary_of_integer_tensor_matches_torch(name):
    nf_fn, th_fn, _, _ = UNARY[name]
    a = np.array([1, 2, 3, 4])
    assert_close(nf_fn(nf.from_numpy(a)), th_fn(torch.from_numpy(a)), check_dtype=True)


@requires_torch
@pytest.mark.parametrize("name", ["log", "sqrt", "rsqrt", "log1p", "exp", "abs", "relu", "sin",
                                  "tanh", "sigmoid"])
def test_unary_special_values_match_torch(name):
    # 0, negatives, +-inf and nan: values and gradients as PyTorch gives them, silently.
    nf_fn, th_fn, _, _ = UNARY[name]
    x = np.array([0.0, -0.0, -1.0, 1.0, np.inf, -np.inf, np.nan, 800.0, -800.0])
    check_op(nf_fn, th_fn, None, inputs=[x], dtype="float64", gradcheck=False, noncontig=False)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_is_stable_for_huge_inputs(dtype):
    x = np.array([-1e4, -1e3, -100.0, -20.0, 0.0, 20.0, 100.0, 1e3, 1e4], dtype=dtype)
    def reference(a):  # e^-|a| never overflows
        e = np.exp(-np.abs(a))
        return np.where(a >= 0, 1 / (1 + e), e / (1 + e))
    out = check_op(nf.sigmoid, lambda a: a.sigmoid(), reference, inputs=[x], gradcheck=False)
    y = out.detach().numpy()
    assert np.isfinite(y).all() and y[0] == 0.0 and y[-1] == 1.0 and y[4] == 0.5


def test_sign():
    x = np.array([-2.0, -0.0, 0.0, 3.0, np.inf, -np.inf])
    check_op(nf.sign, lambda a: a.sign(), np.sign, inputs=[x], grad=False)


@requires_torch
def test_sign_of_nan_is_zero_like_torch():
    x = np.array([np.nan, 1.0, -1.0])
    assert_close(nf.sign(nf.from_numpy(x)), torch.sign(torch.from_numpy(x)))


def test_sign_has_no_gradient_and_int_dtype():
    x = nf.tensor([-1.0, 2.0], requires_grad=True)
    assert not nf.sign(x).requires_grad
    assert nf.sign(nf.tensor([-3, 0, 5])).tolist() == [-1, 0, 1]
    assert nf.sign(nf.tensor([-3, 0, 5])).dtype == nf.int64


@pytest.mark.parametrize("op", ["floor", "ceil", "round"])
def test_rounding(op):
    x = np.array([-2.5, -1.5, -0.4, 0.0, 0.5, 1.5, 2.5, 2.7])
    check_op(getattr(nf, op), lambda a: getattr(a, op)(), getattr(np, op), inputs=[x], grad=False)


# ---------------------------------------------------------------- maximum / minimum ties
@requires_torch
@pytest.mark.parametrize("fn", ["maximum", "minimum"])
def test_maximum_minimum_split_ties_evenly(fn):
    a = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    b = np.array([1.0, 0.0, 3.0])
    check_op(getattr(nf, fn), lambda x, y: getattr(torch, fn)(x, y), getattr(np, fn),
             inputs=[a, b], gradcheck=False)


def test_max_min_with_tensor_other_is_elementwise():
    a, b = nf.tensor([1.0, 5.0]), nf.tensor([3.0, 2.0])
    assert nf.max(a, b).tolist() == [3.0, 5.0]
    assert nf.min(a, b).tolist() == [1.0, 2.0]


# ---------------------------------------------------------------- clamp
CLAMP = {
    "both": (lambda a: a.clamp(-0.5, 0.7), lambda a: a.clamp(-0.5, 0.7)),
    "min_only": (lambda a: a.clamp(min=0.2), lambda a: a.clamp(min=0.2)),
    "max_only": (lambda a: a.clamp(max=0.2), lambda a: a.clamp(max=0.2)),
    "min_gt_max": (lambda a: nf.clamp(a, 1.0, -1.0), lambda a: torch.clamp(a, 1.0, -1.0)),
    "int_bounds": (lambda a: nf.clip(a, -1, 1), lambda a: torch.clip(a, -1, 1)),
}


@pytest.mark.parametrize("shape", [(), (0,), (3, 5), (2, 1, 4)], ids=str)
@pytest.mark.parametrize("name", CLAMP)
def test_clamp_scalar_bounds(name, shape):
    nf_fn, th_fn = CLAMP[name]
    check_op(nf_fn, th_fn, None, shapes=[shape])


@pytest.mark.parametrize("shapes", [[(3, 4), (3, 4), (3, 4)], [(3, 4), (4,), (3, 1)],
                                    [(5,), (), (1,)], [(0, 2), (2,), (1, 2)]], ids=str)
def test_clamp_tensor_bounds(shapes):
    check_op(lambda x, lo, hi: nf.clamp(x, lo, hi), lambda x, lo, hi: torch.clamp(x, lo, hi),
             lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi), shapes=shapes,
             noncontig=layouts_ok(shapes))


@pytest.mark.parametrize("which", ["min", "max"])
def test_clamp_one_tensor_bound(which):
    check_op(lambda x, b: nf.clamp(x, **{which: b}), lambda x, b: torch.clamp(x, **{which: b}),
             (lambda x, b: np.maximum(x, b)) if which == "min" else (lambda x, b: np.minimum(x, b)),
             shapes=[(3, 4), (4,)])


@requires_torch
def test_clamp_boundaries_and_crossed_tensor_bounds_match_torch():
    x = np.array([-1.0, 0.5, 2.0, 0.0, 1.0, 3.0])
    lo = np.array([0.0, 1.0, 0.0, 0.0, 0.0, 3.0])
    hi = np.array([0.5, 0.0, 3.0, 1.0, 1.0, 3.0])
    check_op(lambda a, b, c: nf.clamp(a, b, c), lambda a, b, c: torch.clamp(a, b, c), None,
             inputs=[x, lo, hi], gradcheck=False)
    check_op(lambda a: a.clamp(0.0, 1.0), lambda a: a.clamp(0.0, 1.0), None, inputs=[x],
             gradcheck=False)


# ---------------------------------------------------------------- comparisons and logic
COMPARE = ["eq", "ne", "lt", "le", "gt", "ge"]


@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((3, 1), (4,)), ((0, 2), (2,)), ((), (5,))],
                         ids=str)
@pytest.mark.parametrize("op", COMPARE)
def test_comparison(op, shapes):
    rng = np.random.default_rng(0)
    a, b = (rng.integers(0, 3, s).astype(np.float32) for s in shapes)  # many ties
    npf = {"eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal,
           "gt": np.greater, "ge": np.greater_equal}[op]
    out = check_op(getattr(nf, op), lambda x, y: getattr(torch, op)(x, y), npf, inputs=[a, b],
                   grad=False)
    assert out.dtype == nf.bool and not out.requires_grad


@pytest.mark.parametrize("op", COMPARE)
def test_comparison_operators_and_scalars(op):
    sym = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}[op]
    x = np.array([[0.0, 1.0, 2.0], [3.0, 1.0, -1.0]])
    fn = eval(f"lambda a: a {sym} 1.0")
    rfn = eval(f"lambda a: 1 {sym} a")
    check_op(fn, fn, fn, inputs=[x], grad=False)
    check_op(rfn, rfn, rfn, inputs=[x], grad=False)


@pytest.mark.parametrize("op", ["logical_and", "logical_or", "logical_xor"])
@pytest.mark.parametrize("dtype", ["bool", "float32"])
def test_logical_binary(op, dtype):
    rng = np.random.default_rng(0)
    a = (rng.random((3, 4)) < 0.5).astype(dtype)
    b = (rng.random((4,)) < 0.5).astype(dtype)
    check_op(getattr(nf, op), lambda x, y: getattr(torch, op)(x, y), getattr(np, op),
             inputs=[a, b], grad=False)


def test_logical_not_and_bool_operators():
    rng = np.random.default_rng(0)
    a, b = rng.random((2, 5)) < 0.5, rng.random((5,)) < 0.5
    check_op(nf.logical_not, lambda x: torch.logical_not(x), np.logical_not, inputs=[a], grad=False)
    check_op(lambda x, y: (x & y, x | y, x ^ y, ~x), lambda x, y: (x & y, x | y, x ^ y, ~x),
             lambda x, y: (x & y, x | y, x ^ y, ~x), inputs=[a, b], grad=False)


# ---------------------------------------------------------------- where / masked_fill
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4), (3, 4)), ((3, 1), (4,), (3, 4)),
                                    ((4,), (2, 1, 4), ()), ((0, 3), (3,), (1, 3))], ids=str)
def test_where(shapes):
    cond = np.random.default_rng(3).random(shapes[0]) < 0.5
    rng = np.random.default_rng(4)
    a, b = (rng.standard_normal(s) for s in shapes[1:])
    check_op(lambda c, x, y: nf.where(c, x, y), lambda c, x, y: torch.where(c, x, y), np.where,
             inputs=[cond, a.astype(np.float32), b.astype(np.float32)], noncontig=layouts_ok(shapes))


def test_where_with_scalar_and_method():
    cond = np.array([[True, False, True]])
    x = np.arange(6.0).reshape(2, 3)
    check_op(lambda c, a: nf.where(c, a, 0.0), lambda c, a: torch.where(c, a, 0.0),
             lambda c, a: np.where(c, a, 0.0), inputs=[cond, x])
    check_op(lambda c, a: a.where(c, -a), lambda c, a: a.where(c, -a),
             lambda c, a: np.where(c, a, -a), inputs=[cond, x])


def test_where_single_argument_is_nonzero_tuple():
    x = nf.tensor([[0, 1], [2, 0]])
    rows, cols = nf.where(x != 0)
    assert rows.tolist() == [0, 1] and cols.tolist() == [1, 0]


@pytest.mark.parametrize("mask_shape", [(3, 4), (4,), (3, 1), ()], ids=str)
@pytest.mark.parametrize("value", [0.0, -1e9, float("-inf")])
def test_masked_fill(mask_shape, value):
    mask = np.random.default_rng(1).random(mask_shape) < 0.5
    x = np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32)
    check_op(lambda a, m: a.masked_fill(m, value), lambda a, m: a.masked_fill(m, value),
             lambda a, m: np.where(m, np.float32(value), a), inputs=[x, mask],
             gradcheck=np.isfinite(value))


def test_masked_fill_with_tensor_value_gets_gradient():
    mask = np.array([[True, False], [False, True]])
    check_op(lambda a, m, v: nf.masked_fill(a, m, v), lambda a, m, v: a.masked_fill(m, v),
             lambda a, m, v: np.where(m, v, a),
             inputs=[np.ones((2, 2)), mask, np.array(3.0)], noncontig=False)


# ---------------------------------------------------------------- numpy operands
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "pow"])
def test_numpy_array_operands_act_as_constant_tensors(op):
    # tensor <op> ndarray and ndarray <op> tensor broadcast and promote as two tensors.
    fn = {"add": operator.add, "sub": operator.sub, "mul": operator.mul,
          "div": operator.truediv, "pow": operator.pow}[op]
    x = np.array([[0.5, 1.0, 2.0]], dtype=np.float32)
    arr = np.array([[1.0], [2.0]], dtype=np.float64)
    t = nf.from_numpy(x.copy()).requires_grad_()
    for out, ref in ((fn(t, arr), fn(x, arr)), (fn(arr, t), fn(arr, x))):
        assert isinstance(out, nf.Tensor) and out.dtype == nf.float64
        assert_close(out, ref, 1e-6, 1e-6)
    fn(arr, t).sum().backward()
    assert t.grad.shape == (1, 3) and t.grad.dtype == nf.float32


# ---------------------------------------------------------------- floor division, remainder
DIV_A = np.array([-3.0, -2.5, 2.0, 7.5, 0.0, -7.0])
DIV_B = np.array([2.0, -2.0, 0.5, -3.0, 3.0, 2.0])


@pytest.mark.parametrize("mode", [None, "trunc", "floor"])
@pytest.mark.parametrize("dtype", ["float64", "int64"])
def test_div_rounding_modes(mode, dtype):
    a, b = DIV_A.astype(dtype), DIV_B.astype(dtype)
    b[b == 0] = 1
    ref = {None: lambda x, y: x / y, "trunc": lambda x, y: np.trunc(x / y),
           "floor": lambda x, y: np.floor(x / y)}[mode]
    check_op(lambda x, y: nf.div(x, y, rounding_mode=mode),
             lambda x, y: torch.div(x, y, rounding_mode=mode),
             lambda x, y: ref(x, y) if mode is None else ref(x, y).astype(dtype),
             inputs=[a, b], grad=mode is None)


@pytest.mark.parametrize("dtype", ["float64", "int64"])
def test_floor_divide_and_remainder(dtype):
    a, b = DIV_A.astype(dtype), DIV_B.astype(dtype)
    b[b == 0] = 1
    check_op(lambda x, y: x // y, lambda x, y: x // y, np.floor_divide, inputs=[a, b], grad=False)
    check_op(lambda x, y: x % y, lambda x, y: x % y, np.remainder, inputs=[a, b],
             gradcheck=False)  # piecewise linear: the jumps break finite differences
    check_op(lambda x: 7 % x, lambda x: 7 % x, lambda x: np.remainder(7, x), inputs=[b], grad=False)


def test_remainder_gradients():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.1, 0.9, (3, 4)) + rng.integers(-3, 3, (3, 4)), rng.uniform(1.2, 2.0, (4,))
    check_op(nf.remainder, lambda x, y: torch.remainder(x, y), np.remainder, inputs=[a, b],
             gradcheck=False)


@pytest.mark.parametrize("fn", [lambda a, b: a // b, lambda a, b: a % b,
                                lambda a, b: nf.div(a, b, rounding_mode="trunc"),
                                lambda a, b: nf.div(a, b, rounding_mode="floor")],
                         ids=["floordiv", "remainder", "trunc", "floor"])
def test_integer_division_by_zero_raises(fn):
    # PyTorch raises; numpy would quietly give 0
    with pytest.raises(ZeroDivisionError, match="integer division by zero"):
        fn(nf.tensor([5, 3]), nf.tensor([1, 0]))


def test_float_division_by_zero_gives_inf_and_nan():
    out = nf.tensor([1.0, -1.0, 0.0]) / 0.0
    assert out[0].item() == np.inf and out[1].item() == -np.inf and np.isnan(out[2].item())
    assert nf.div(nf.tensor([1, 0]), nf.tensor([0, 0])).isinf().tolist() == [True, False]


def test_integer_to_negative_power_raises():
    with pytest.raises(ValueError, match="pow: integers to negative integer powers"):
        nf.tensor([2, 3]) ** -1
    with pytest.raises(ValueError, match="pow: integers to negative integer powers"):
        nf.tensor([2, 3]) ** nf.tensor([1, -2])
    assert (nf.tensor([2, 3]) ** 2).tolist() == [4, 9]
    assert (nf.tensor([2, 4]) ** -1.0).tolist() == [0.5, 0.25]


# ---------------------------------------------------------------- allclose / equal / isnan
@requires_torch
@pytest.mark.parametrize("equal_nan", [False, True])
@pytest.mark.parametrize("pair", [
    ([1.0, 2.0], [1.0 + 1e-9, 2.0]), ([1.0], [1.1]), ([np.inf], [np.inf]), ([np.inf], [-np.inf]),
    ([np.nan], [np.nan]), ([0.0, np.inf, np.nan], [1e-9, np.inf, np.nan]), ([1.0, 2.0], [1.0]),
], ids=str)
def test_allclose_and_equal_match_torch(pair, equal_nan):
    a, b = (np.array(v) for v in pair)
    A, B, TA, TB = nf.from_numpy(a), nf.from_numpy(b), torch.from_numpy(a), torch.from_numpy(b)
    assert nf.allclose(A, B, equal_nan=equal_nan) == torch.allclose(TA, TB, equal_nan=equal_nan)
    assert A.allclose(B, rtol=0.2, atol=0.0) == TA.allclose(TB, rtol=0.2, atol=0.0)
    assert nf.equal(A, B) == torch.equal(TA, TB)


@pytest.mark.parametrize("op", ["isnan", "isinf", "isfinite"])
def test_float_classification(op):
    x = np.array([0.0, -1.5, np.inf, -np.inf, np.nan])
    check_op(getattr(nf, op), lambda a: getattr(torch, op)(a), getattr(np, op), inputs=[x], grad=False)
