"""Elementwise math with broadcasting: each op's forward beside its derivative.

Binary ops promote their operands as PyTorch does (``dtypes.result_type``);
Python scalars stay scalars (no gradient). Gradients are produced at the
broadcast shape; the engine sums them back to each input's shape.
"""
from __future__ import annotations

from .. import dtypes as _dt
from ..autograd.function import Function
from ..tensor import Tensor
from ._util import cast_to, check_tensor, float_input, make, same_device, shape_str


# ---------------------------------------------------------------- binary
class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        return ctx.backend.add(a, b)

    @staticmethod
    def backward(ctx, g):
        return g, g


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        return ctx.backend.subtract(a, b)

    @staticmethod
    def backward(ctx, g):
        return g, (ctx.backend.negative(g) if ctx.needs_input_grad[1] else None)


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        need_a, need_b = ctx.needs_input_grad
        ctx.save_for_backward(a if need_b else None, b if need_a else None)  # only what is used
        return ctx.backend.multiply(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        mul = ctx.backend.multiply
        return (mul(g, b) if ctx.needs_input_grad[0] else None,
                mul(g, a) if ctx.needs_input_grad[1] else None)


class Div(Function):
    # d(a/b)/da = 1/b ; d(a/b)/db = -a/b^2. The operands are saved (not the
    # output), as PyTorch does, so the result may be edited in place afterwards.
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a if ctx.needs_input_grad[1] else None, b)
        return ctx.backend.divide(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        be = ctx.backend
        ga = be.divide(g, b) if ctx.needs_input_grad[0] else None
        gb = None
        if ctx.needs_input_grad[1]:
            gb = be.negative(be.divide(be.multiply(g, a), be.multiply(b, b)))
        return ga, gb


class Pow(Function):
    # d(a^b)/da = b a^(b-1) ; d(a^b)/db = a^b log a  (taken as 0 where a = 0 and b >= 0)
    @staticmethod
    def forward(ctx, a, b):
        out = ctx.backend.power(a, b)
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, g):
        a, b, out = ctx.saved_tensors
        be = ctx.backend
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = be.multiply(g, be.multiply(b, be.power(a, be.subtract(b, 1))))
            ga = be.where(be.equal(b, 0), 0, ga)  # d(a^0)/da = 0, also at a = 0
        if ctx.needs_input_grad[1]:
            gb = be.multiply(g, be.multiply(out, be.log(a)))
            gb = be.where(be.logical_and(be.equal(a, 0), be.greater_equal(b, 0)), 0, gb)
        return ga, gb


class Maximum(Function):
    # Ties split the gradient evenly between the two inputs, as PyTorch does.
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return ctx.backend.maximum(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return _split_by_winner(ctx, g, ctx.backend.greater(a, b), ctx.backend.equal(a, b))


class Minimum(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return ctx.backend.minimum(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return _split_by_winner(ctx, g, ctx.backend.less(a, b), ctx.backend.equal(a, b))


def _split_by_winner(ctx, g, a_wins, tie):
    be = ctx.backend
    half = be.multiply(g, 0.5)
    ga = be.where(a_wins, g, be.where(tie, half, 0)) if ctx.needs_input_grad[0] else None
    gb = be.where(a_wins, 0, be.where(tie, half, g)) if ctx.needs_input_grad[1] else None
    return ga, gb


def _binary(cls, op: str, a, b, *, float_result: bool = False):
    """Promotes ``a`` and ``b``, then applies ``cls``; names the op on shape errors."""
    a, b = _operands(op, a, b, float_result)
    try:
        return cls.apply(a, b)
    except ValueError as e:
        if "broadcast" in str(e):
            raise ValueError(f"{op}: shapes {shape_str(a)} and {shape_str(b)} are not "
                             "broadcastable") from None
        raise


def _operands(op: str, a, b, float_result: bool = False):
    """``a`` and ``b`` checked and promoted to their common dtype; ``a`` is made a
    tensor when it is a scalar (``b`` may stay a Python scalar)."""
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError(f"{op}: expected at least one Tensor, got {type(a).__name__} "
                        f"and {type(b).__name__}")
    for x in (a, b):
        if not isinstance(x, (Tensor, int, float, bool)) and not hasattr(x, "dtype"):
            raise TypeError(f"{op}: unsupported operand type {type(x).__name__}")
    device = (a if isinstance(a, Tensor) else b).device
    a, b = _array_operand(a, device), _array_operand(b, device)
    dt = _dt.result_type(a, b)
    if float_result and not dt.is_floating_point:
        dt = _dt.get_default_dtype()
    a, b = cast_to(a, dt), cast_to(b, dt)
    if not isinstance(a, Tensor):
        a = _scalar_tensor(a, dt, b.device)
    return a, b


def _array_operand(x, device):
    """A numpy array (or numpy scalar) operand becomes a constant tensor, as in
    PyTorch, so that it broadcasts and promotes like one."""
    if isinstance(x, (Tensor, int, float, bool)) or not hasattr(x, "shape"):
        return x
    data = device.backend.asarray(x)
    _dt.from_numpy_dtype(data.dtype)  # a clear TypeError for unsupported dtypes
    return Tensor._make(data, device, False)


def _scalar_tensor(x, dt, device) -> Tensor:
    be = device.backend
    return Tensor._make(be.full((), x, dt.np), device, False)


def add(input, other, *, alpha=1) -> Tensor:
    if alpha != 1:
        other = mul(other, alpha) if isinstance(other, Tensor) else other * alpha
    return _binary(Add, "add", input, other)


def sub(input, other, *, alpha=1) -> Tensor:
    if alpha != 1:
        other = mul(other, alpha) if isinstance(other, Tensor) else other * alpha
    if _is_bool(input) and _is_bool(other):
        raise TypeError("sub: subtraction of two bool tensors is not supported; use logical_xor")
    return _binary(Sub, "sub", input, other)


def mul(input, other) -> Tensor:
    return _binary(Mul, "mul", input, other)


def div(input, other, *, rounding_mode=None) -> Tensor:
    if rounding_mode is None:
        return _binary(Div, "div", input, other, float_result=True)
    if rounding_mode == "floor":
        return floor_divide(input, other)
    if rounding_mode == "trunc":
        a, b = _operands("div", input, other)
        _check_integer_divisor("div", a, b.data if isinstance(b, Tensor) else b)
        q = div(input, other)
        q = _unary_nograd(q, "trunc", lambda be, x: be.where(be.less(x, 0), be.ceil(x), be.floor(x)))
        dt = _dt.result_type(input, other)
        return q.to(dt)
    raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}")


def floor_divide(input, other) -> Tensor:
    """floor(a / b). Not differentiable (its derivative is zero almost everywhere)."""
    a, b = _operands("floor_divide", input, other)
    be = a.device.backend
    bd = b.data if isinstance(b, Tensor) else b
    _check_integer_divisor("floor_divide", a, bd)
    try:
        out = be.floor_divide(a.data, bd)
    except ValueError:
        raise ValueError(f"floor_divide: shapes {shape_str(a)} and {shape_str(b)} are not "
                         "broadcastable") from None
    return make(be.astype(out, a.data.dtype), a.device)


def _check_integer_divisor(op, a, bd):
    """Integer division by zero has no value: PyTorch raises, numpy would give 0."""
    if a.data.dtype.kind in "iub" and bool(a.device.backend.any(a.device.backend.equal(bd, 0))):
        raise ZeroDivisionError(f"{op}: integer division by zero")


def remainder(input, other) -> Tensor:
    """a - floor(a / b) * b, with the gradient of a passing through."""
    return sub(input, mul(floor_divide(input, other), other))


def pow(input, exponent) -> Tensor:
    a, b = _operands("pow", input, exponent)
    if a.data.dtype.kind in "iu":
        be = a.device.backend
        if (bool(be.to_host(be.any(be.less(b.data, 0)))) if isinstance(b, Tensor)
                else b < 0):
            raise ValueError("pow: integers to negative integer powers are not allowed; "
                             "use a floating point base")
    return _binary(Pow, "pow", a, b)


def maximum(input, other) -> Tensor:
    check_tensor(input, "maximum"), check_tensor(other, "maximum", "other")
    return _binary(Maximum, "maximum", input, other)


def minimum(input, other) -> Tensor:
    check_tensor(input, "minimum"), check_tensor(other, "minimum", "other")
    return _binary(Minimum, "minimum", input, other)


def _is_bool(x) -> bool:
    return (isinstance(x, Tensor) and x.data.dtype.kind == "b") or isinstance(x, bool)


# ---------------------------------------------------------------- unary
def _unary(name, fwd, bwd, save="out"):
    """Builds a Function class for y = f(x) with dy/dx given by ``bwd(be, g, x_or_y)``.

    ``save`` says which value the derivative is written in: "out" (y, e.g.
    exp, tanh, sigmoid) or "in" (x, e.g. log, sin)."""

    def forward(ctx, x):
        y = fwd(ctx.backend, x)
        ctx.save_for_backward(y if save == "out" else x)
        return y

    def backward(ctx, g):
        v, = ctx.saved_tensors
        return bwd(ctx.backend, g, v)

    return type(name, (Function,), {"forward": staticmethod(forward),
                                    "backward": staticmethod(backward)})


# d/dx of each function, as the textbook writes it.
Exp = _unary("Exp", lambda be, x: be.exp(x), lambda be, g, y: be.multiply(g, y))
Log = _unary("Log", lambda be, x: be.log(x), lambda be, g, x: be.divide(g, x), save="in")
Log1p = _unary("Log1p", lambda be, x: be.log1p(x), lambda be, g, x: be.divide(g, be.add(x, 1)), save="in")
Sqrt = _unary("Sqrt", lambda be, x: be.sqrt(x),  # 1 / (2 sqrt x)
              lambda be, g, y: be.divide(g, be.multiply(y, 2)))
Rsqrt = _unary("Rsqrt", lambda be, x: be.rsqrt(x),  # -1/2 x^(-3/2) = -y^3 / 2
               lambda be, g, y: be.multiply(g, be.multiply(be.power(y, 3), -0.5)))
Sin = _unary("Sin", lambda be, x: be.sin(x), lambda be, g, x: be.multiply(g, be.cos(x)), save="in")
Cos = _unary("Cos", lambda be, x: be.cos(x),
             lambda be, g, x: be.negative(be.multiply(g, be.sin(x))), save="in")
Tanh = _unary("Tanh", lambda be, x: be.tanh(x),  # 1 - tanh^2
              lambda be, g, y: be.multiply(g, be.subtract(1, be.multiply(y, y))))
Sigmoid = _unary("Sigmoid", lambda be, x: be.sigmoid(x),  # s (1 - s)
                 lambda be, g, y: be.multiply(g, be.multiply(y, be.subtract(1, y))))
Relu = _unary("Relu", lambda be, x: be.relu(x),  # 0 where y <= 0 (nan passes g, as in PyTorch)
              lambda be, g, y: be.where(be.less_equal(y, 0), 0, g))
Abs = _unary("Abs", lambda be, x: be.absolute(x),  # sign(x), 0 at 0
             lambda be, g, x: be.multiply(g, be.sign(x)), save="in")


class Neg(Function):
    @staticmethod
    def forward(ctx, x):
        return ctx.backend.negative(x)

    @staticmethod
    def backward(ctx, g):
        return ctx.backend.negative(g)


class Clamp(Function):
    # The gradient passes where lo <= x <= hi; a tensor bound receives it where it won.
    @staticmethod
    def forward(ctx, x, lo, hi):
        be = ctx.backend
        ctx.save_for_backward(x, lo, hi)
        return be.clip(x, lo, hi)

    @staticmethod
    def backward(ctx, g):
        x, lo, hi = ctx.saved_tensors
        be = ctx.backend
        below = be.less(x, lo) if lo is not None else None
        above = be.greater(x, hi) if hi is not None else None
        if hi is not None and lo is not None:
            below = be.logical_and(below, be.less_equal(lo, hi))
            above = be.logical_or(above, be.greater(lo, hi))
        inside = None
        for m in (below, above):
            if m is not None:
                inside = be.logical_not(m) if inside is None else be.logical_and(inside, be.logical_not(m))
        gx = be.where(inside, g, 0) if inside is not None else g
        glo = be.where(below, g, 0) if ctx.needs_input_grad[1] else None
        ghi = be.where(above, g, 0) if ctx.needs_input_grad[2] else None
        return gx, glo, ghi


def _apply_unary(cls, x, op):
    check_tensor(x, op)
    return cls.apply(float_input(x))


def exp(x): return _apply_unary(Exp, x, "exp")
def log(x): return _apply_unary(Log, x, "log")
def log1p(x): return _apply_unary(Log1p, x, "log1p")
def sqrt(x): return _apply_unary(Sqrt, x, "sqrt")
def rsqrt(x): return _apply_unary(Rsqrt, x, "rsqrt")
def sin(x): return _apply_unary(Sin, x, "sin")
def cos(x): return _apply_unary(Cos, x, "cos")
def tanh(x): return _apply_unary(Tanh, x, "tanh")
def sigmoid(x): return _apply_unary(Sigmoid, x, "sigmoid")


def relu(x) -> Tensor:
    check_tensor(x, "relu")
    return Relu.apply(x)


def abs(x) -> Tensor:
    check_tensor(x, "abs")
    return Abs.apply(x)


def neg(x) -> Tensor:
    check_tensor(x, "neg")
    if x.data.dtype.kind == "b":
        raise TypeError("neg: negation of a bool tensor is not supported; use logical_not")
    return Neg.apply(x)


def _unary_nograd(x, op, fn) -> Tensor:
    check_tensor(x, op)
    return make(fn(x.device.backend, x.data), x.device)


def sign(x) -> Tensor:
    """Sign of each element; its gradient is zero, so the result is a constant."""
    return _unary_nograd(x, "sign", lambda be, a: be.sign(a))


def floor(x): return _unary_nograd(x, "floor", lambda be, a: be.floor(a))
def ceil(x): return _unary_nograd(x, "ceil", lambda be, a: be.ceil(a))
def round(x): return _unary_nograd(x, "round", lambda be, a: be.round(a))
def isnan(x): return _unary_nograd(x, "isnan", lambda be, a: be.isnan(a))
def isinf(x): return _unary_nograd(x, "isinf", lambda be, a: be.isinf(a))
def isfinite(x): return _unary_nograd(x, "isfinite", lambda be, a: be.isfinite(a))


def clamp(input, min=None, max=None) -> Tensor:
    check_tensor(input, "clamp")
    if min is None and max is None:
        raise ValueError("clamp: at least one of 'min' and 'max' must be given")
    dt = _dt.result_type(*(v for v in (input, min, max) if v is not None))
    x, lo, hi = cast_to(input, dt), cast_to(min, dt), cast_to(max, dt)
    try:
        return Clamp.apply(x, lo, hi)
    except ValueError:
        bounds = " and ".join(f"{name} {shape_str(v)}" for name, v in (("min", min), ("max", max))
                              if v is not None)
        raise ValueError(f"clamp: input {shape_str(input)} and {bounds} are not "
                         "broadcastable") from None


clip = clamp


# ---------------------------------------------------------------- selection
class Where(Function):
    @staticmethod
    def forward(ctx, cond, a, b):
        ctx.save_for_backward(cond)
        return ctx.backend.where(cond, a, b)

    @staticmethod
    def backward(ctx, g):
        cond, = ctx.saved_tensors
        be = ctx.backend
        return (None,
                be.where(cond, g, 0) if ctx.needs_input_grad[1] else None,
                be.where(cond, 0, g) if ctx.needs_input_grad[2] else None)


def where(condition, input=None, other=None) -> Tensor:
    check_tensor(condition, "where", "condition")
    if input is None and other is None:
        from .indexing import nonzero
        return nonzero(condition, as_tuple=True)
    if condition.data.dtype.kind != "b":
        raise TypeError(f"where: condition must be a bool tensor, got {condition.dtype.name}")
    same_device("where", condition, input, other)
    dt = _dt.result_type(input, other)
    a, b = cast_to(input, dt), cast_to(other, dt)
    try:
        return Where.apply(condition, a, b)
    except ValueError as e:
        raise ValueError(f"where: condition {shape_str(condition)}, input {shape_str(input)} and "
                         f"other {shape_str(other)} are not broadcastable ({e})") from None


def masked_fill(input, mask, value) -> Tensor:
    """``input`` with ``value`` where ``mask`` is True (mask broadcasts to input)."""
    check_tensor(input, "masked_fill")
    check_tensor(mask, "masked_fill", "mask")
    if mask.data.dtype.kind != "b":
        raise TypeError(f"masked_fill: mask must be a bool tensor, got {mask.dtype.name}")
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ValueError(f"masked_fill: value must be a 0-d tensor, got shape {tuple(value.shape)}")
        value = cast_to(value, input.dtype).reshape(())
    same_device("masked_fill", input, mask, value)
    try:
        out = Where.apply(mask, value, input)
    except ValueError:
        raise ValueError(f"masked_fill: mask of shape {tuple(mask.shape)} does not broadcast to "
                         f"input of shape {tuple(input.shape)}") from None
    if out.data.shape != input.data.shape:
        raise ValueError(f"masked_fill: mask of shape {tuple(mask.shape)} does not broadcast to "
                         f"input of shape {tuple(input.shape)}")
    if out.data.dtype != input.data.dtype:
        out = cast_to(out, input.dtype)
    return out


# ---------------------------------------------------------------- comparisons and logic
def _compare(op, fname):
    def fn(input, other) -> Tensor:
        if not isinstance(input, Tensor):
            raise TypeError(f"{op}: argument 'input' must be a Tensor, got {type(input).__name__}")
        be = input.device.backend
        o = other
        if isinstance(other, Tensor):
            if other.device is not input.device and other.device != input.device:
                raise ValueError(f"{op}: expected all tensors on one device, got "
                                 f"{input.device} and {other.device}")
            o = other.data
        try:
            return make(getattr(be, fname)(input.data, o), input.device)
        except ValueError:
            raise ValueError(f"{op}: shapes {shape_str(input)} and {shape_str(other)} are not "
                             "broadcastable") from None
    fn.__name__ = op
    fn.__doc__ = f"Elementwise {op}; returns a bool tensor (not differentiable)."
    return fn


eq = _compare("eq", "equal")
ne = _compare("ne", "not_equal")
lt = _compare("lt", "less")
le = _compare("le", "less_equal")
gt = _compare("gt", "greater")
ge = _compare("ge", "greater_equal")
logical_and = _compare("logical_and", "logical_and")
logical_or = _compare("logical_or", "logical_or")
logical_xor = _compare("logical_xor", "logical_xor")


def logical_not(input) -> Tensor:
    return _unary_nograd(input, "logical_not", lambda be, a: be.logical_not(a))


def equal(input, other) -> bool:
    """True when both tensors have the same shape and elements."""
    return tuple(input.shape) == tuple(other.shape) and bool(eq(input, other).all().item())


def allclose(input, other, rtol=1e-5, atol=1e-8, equal_nan=False) -> bool:
    be = input.device.backend
    a, b = input.data, other.data
    close = be.less_equal(be.absolute(be.subtract(a, b)), be.add(atol, be.multiply(rtol, be.absolute(b))))
    # infinities are close only to themselves (inf - inf is nan; inf <= rtol * inf is True)
    finite = be.logical_and(be.isfinite(a), be.isfinite(b))
    close = be.where(finite, close, be.equal(a, b))
    if equal_nan:
        close = be.logical_or(close, be.logical_and(be.isnan(a), be.isnan(b)))
    return bool(be.to_host(be.all(close)))
