"""CUDA backend core: host transfers, creation, dtype promotion, elementwise
math, casts and copies, over ``nnforge._C.cuda.DeviceArray``.

Promotion follows numpy (the CPU backend's semantics, so both devices give the
same dtypes): ``np.result_type`` of the operands' dtypes and Python scalars
(weak under NEP 50); the kernels then see operands of one dtype. A Python
scalar operand becomes a 0-d device array filled by a kernel (no host sync).
Every kernel launch is asynchronous; ``to_host`` synchronizes.

bfloat16 arrays report ml_dtypes' bfloat16 numpy dtype (kind "V"; see
nnforge.dtypes); where numpy promotes it unlike PyTorch (with a Python float
it would give float32/float64, with float16 or int16+ it has no common type),
``result_dtype`` follows nnforge's rules instead, as the CPU backend does.
"""
from __future__ import annotations

import numpy as np

from .. import _C
from .. import dtypes as _dt

__all__ = ["asarray", "from_host", "to_host", "ensure_array", "empty", "zeros", "ones", "full",
           "zeros_like", "arange", "add", "subtract", "multiply", "divide", "floor_divide",
           "remainder", "power", "maximum", "minimum", "equal", "not_equal", "less",
           "less_equal", "greater", "greater_equal", "logical_and", "logical_or", "logical_xor",
           "logical_not", "negative", "absolute", "exp", "expm1", "log", "log1p", "sqrt",
           "rsqrt", "reciprocal", "sin", "cos", "tanh", "sigmoid", "relu", "sign", "square",
           "floor", "ceil", "round", "isnan", "isinf", "isfinite", "erf", "gelu",
           "gelu_backward", "where", "clip", "astype", "copy", "copyto", "add_", "ascontiguous",
           "is_contiguous", "result_dtype"]

_BOOL = np.dtype(np.bool_)
_BF16 = _dt.BFLOAT16_NP  # None without ml_dtypes
_FLOAT_KINDS = _dt.FLOAT_KINDS  # "fV": V is bfloat16


def _cuda():
    """``nnforge._C.cuda`` with its kernels, or a RuntimeError in a build without CUDA."""
    if not _C.cuda.is_built():
        raise RuntimeError("device 'cuda': this nnforge was built without CUDA "
                           "(reinstall with nvcc on PATH, NNFORGE_CUDA=AUTO or ON)")
    return _C.cuda


def _is_dev(x) -> bool:
    return _C.cuda.is_built() and isinstance(x, _C.cuda.DeviceArray)


def _current_device() -> int:
    return int(_cuda().current_device())


def _device_array(x, op: str):
    if not _is_dev(x):
        raise TypeError(f"{op}: expected a CUDA DeviceArray, got {type(x).__name__}")
    return x


# ---------------------------------------------------------------- host transfers
def from_host(a, device=None):
    """A numpy array (any layout, native or not) to a new device array."""
    a = np.asarray(a)
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    a = np.ascontiguousarray(a) if a.ndim else a.reshape(())
    if not a.flags.c_contiguous:
        a = a.copy()
    return _cuda().DeviceArray.from_numpy(a, _current_device() if device is None else device)


def to_host(a) -> np.ndarray:
    """A numpy copy of a device array (waits for the kernels that produce it)."""
    return a.numpy()


def asarray(x, dtype=None, device=None):
    if _is_dev(x):
        return x if dtype is None else astype(x, np.dtype(dtype))
    return from_host(np.asarray(x, dtype=dtype), device)


def ensure_array(x):
    return x


# ---------------------------------------------------------------- creation
def empty(shape, dtype, device=None):
    shape = [shape] if isinstance(shape, (int, np.integer)) else list(shape)
    return _cuda().DeviceArray.empty(shape, np.dtype(dtype),
                                     _current_device() if device is None else device)


def full(shape, value, dtype, device=None):
    shape = [shape] if isinstance(shape, (int, np.integer)) else list(shape)
    if hasattr(value, "item"):
        value = value.item()
    return _cuda().full(shape, value, np.dtype(dtype),
                        _current_device() if device is None else device)


def zeros(shape, dtype, device=None):
    return full(shape, 0, dtype, device)


def ones(shape, dtype, device=None):
    return full(shape, 1, dtype, device)


def zeros_like(a):
    return full(a.shape, 0, a.dtype, a.device)


def arange(start, end, step, dtype, device=None):
    n = int(np.ceil((end - start) / step)) if step else 0
    n = max(n, 0)
    return _cuda().arange(start, step, n, np.dtype(dtype),
                          _current_device() if device is None else device)


# ---------------------------------------------------------------- promotion
def _dtype_of(x):
    if _is_dev(x):
        return x.dtype
    if isinstance(x, (bool, int, float)):
        return x  # weak Python scalar (NEP 50)
    return np.asarray(x).dtype


def result_dtype(*xs) -> np.dtype:
    """numpy's result dtype for these operands (device arrays, numpy values, scalars);
    with a bfloat16 operand, nnforge's (PyTorch's) promotion of the arrays, Python
    scalars weak (bfloat16 with 2.5 stays bfloat16, as NEP 50 keeps float16)."""
    dts = [_dtype_of(x) for x in xs]
    try:
        dt = np.result_type(*dts)
    except TypeError:  # numpy's DTypePromotionError: bfloat16 with float16, int16, ...
        return _bf16_result(dts)
    if dt.kind == "f" and _BF16 is not None and any(d is _BF16 for d in dts):
        return _bf16_result(dts)
    return dt


def _bf16_result(dts) -> np.dtype:
    strong = [_dt.from_numpy_dtype(d) for d in dts if isinstance(d, np.dtype)]
    out = strong[0]
    for d in strong[1:]:
        out = _dt._promote_pair(out, d)
    return out.np


def _as_operand(x, dtype, device):
    """``x`` as a device array of ``dtype`` on ``device``."""
    if _is_dev(x):
        if x.device != device:
            raise ValueError(f"expected all arrays on cuda:{device}, got one on cuda:{x.device}")
        return x if x.dtype == dtype else _cuda().astype(x, dtype)
    if isinstance(x, (bool, int, float, np.generic)) or np.ndim(x) == 0:
        return _cuda().full([], x.item() if hasattr(x, "item") else x, dtype, device)
    return from_host(np.asarray(x, dtype=dtype), device)


def _device_of(xs, op: str) -> int:
    for x in xs:
        if _is_dev(x):
            return x.device
    raise TypeError(f"{op}: expected at least one CUDA array operand")


def _binary(kernel_op: str, op: str, a, b, float_result: bool = False, dtype=None):
    device = _device_of((a, b), op)
    dt = result_dtype(a, b) if dtype is None else np.dtype(dtype)
    if float_result and dt.kind not in _FLOAT_KINDS:
        dt = np.dtype(np.float64)  # numpy's true_divide of integers
    return _cuda().binary(kernel_op, _as_operand(a, dt, device), _as_operand(b, dt, device))


def _compare(kernel_op: str, op: str, a, b):
    return _binary(kernel_op, op, a, b)


def _make_binary(kernel_op, name, float_result=False):
    def fn(a, b):
        return _binary(kernel_op, name, a, b, float_result)
    fn.__name__ = name
    fn.__doc__ = f"numpy.{name} on CUDA arrays (kernel '{kernel_op}', broadcasting)."
    return fn


add = _make_binary("add", "add")
subtract = _make_binary("sub", "subtract")
multiply = _make_binary("mul", "multiply")
divide = _make_binary("div", "divide", float_result=True)
floor_divide = _make_binary("floor_divide", "floor_divide")
remainder = _make_binary("remainder", "remainder")
power = _make_binary("pow", "power")
maximum = _make_binary("maximum", "maximum")
minimum = _make_binary("minimum", "minimum")
equal = _make_binary("eq", "equal")
not_equal = _make_binary("ne", "not_equal")
less = _make_binary("lt", "less")
less_equal = _make_binary("le", "less_equal")
greater = _make_binary("gt", "greater")
greater_equal = _make_binary("ge", "greater_equal")
logical_and = _make_binary("logical_and", "logical_and")
logical_or = _make_binary("logical_or", "logical_or")
logical_xor = _make_binary("logical_xor", "logical_xor")


def _unary(kernel_op: str, name: str, a):
    a = _device_array(a, name)
    return _cuda().unary(kernel_op, a)


def _make_float_unary(kernel_op, name):
    """Float math: integer and bool inputs compute in numpy's result dtype (float64
    for int32/int64, float16 for bool/uint8), as the CPU twin does."""
    np_fn = getattr(np, name, None)

    def fn(a):
        a = _device_array(a, name)
        if a.dtype.kind not in _FLOAT_KINDS:
            dt = np_fn(np.zeros(0, a.dtype)).dtype if np_fn is not None else np.dtype(np.float64)
            a = _cuda().astype(a, dt)
        return _cuda().unary(kernel_op, a)
    fn.__name__ = name
    fn.__doc__ = f"{name} on CUDA arrays (kernel '{kernel_op}')."
    return fn


exp = _make_float_unary("exp", "exp")
expm1 = _make_float_unary("expm1", "expm1")
log = _make_float_unary("log", "log")
log1p = _make_float_unary("log1p", "log1p")
sqrt = _make_float_unary("sqrt", "sqrt")
rsqrt = _make_float_unary("rsqrt", "sqrt")
sin = _make_float_unary("sin", "sin")
cos = _make_float_unary("cos", "cos")
tanh = _make_float_unary("tanh", "tanh")
sigmoid = _make_float_unary("sigmoid", "exp")
erf = _make_float_unary("erf", "exp")


def reciprocal(a):
    a = _device_array(a, "reciprocal")
    if a.dtype.kind not in _FLOAT_KINDS:  # numpy: integer reciprocal (1 / x truncated)
        return floor_divide(1, a) if a.dtype.kind != "b" else copy(a)
    return _cuda().unary("reciprocal", a)


def _make_numeric_unary(kernel_op, name):
    def fn(a):
        a = _device_array(a, name)
        if a.dtype == _BOOL:
            if name in ("negative", "sign"):
                raise TypeError(f"{name}: not supported for bool arrays")
            return copy(a)  # abs, relu, square of bool: the values themselves
        return _cuda().unary(kernel_op, a)
    fn.__name__ = name
    return fn


negative = _make_numeric_unary("neg", "negative")
absolute = _make_numeric_unary("abs", "absolute")
sign = _make_numeric_unary("sign", "sign")
relu = _make_numeric_unary("relu", "relu")
square = _make_numeric_unary("square", "square")


def _make_rounding(kernel_op, name):
    def fn(a):
        a = _device_array(a, name)
        if a.dtype.kind not in _FLOAT_KINDS:
            return copy(a)  # integers are already whole
        return _cuda().unary(kernel_op, a)
    fn.__name__ = name
    return fn


floor = _make_rounding("floor", "floor")
ceil = _make_rounding("ceil", "ceil")


def round(a, decimals=0):
    if decimals:
        raise NotImplementedError("round: decimals != 0 is not yet implemented in the CUDA "
                                  "backend (issue 8, in progress)")
    return _make_rounding("round", "round")(a)


def _make_float_test(kernel_op, name, value_for_int):
    def fn(a):
        a = _device_array(a, name)
        if a.dtype.kind not in _FLOAT_KINDS:
            return full(a.shape, value_for_int, _BOOL, a.device)
        return _cuda().unary(kernel_op, a)
    fn.__name__ = name
    return fn


isnan = _make_float_test("isnan", "isnan", False)
isinf = _make_float_test("isinf", "isinf", False)
isfinite = _make_float_test("isfinite", "isfinite", True)


def logical_not(a):
    return _cuda().unary("logical_not", _device_array(a, "logical_not"))


def gelu(a, approximate="none"):
    """x Phi(x) (approximate='tanh': x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2)."""
    return _cuda().unary("gelu_tanh" if approximate == "tanh" else "gelu", _float(a, "gelu"))


def gelu_backward(g, a, approximate="none"):
    """g * GELU'(x), x = ``a``."""
    a = _float(a, "gelu_backward")
    g = _as_operand(g, a.dtype, a.device)
    op = "gelu_tanh_backward" if approximate == "tanh" else "gelu_backward"
    return _cuda().binary(op, g, a)


def _float(a, op):
    a = _device_array(a, op)
    return a if a.dtype.kind in _FLOAT_KINDS else _cuda().astype(a, np.dtype(np.float32))


def where(cond, a, b):
    device = _device_of((cond, a, b), "where")
    dt = result_dtype(a, b)
    c = _as_operand(cond, _BOOL, device)
    return _cuda().where(c, _as_operand(a, dt, device), _as_operand(b, dt, device))


def clip(a, lo, hi):
    """Clamp; ``lo``/``hi`` may be None, scalars or arrays (max wins, as PyTorch)."""
    if lo is not None:
        a = maximum(a, lo)
    if hi is not None:
        a = minimum(a, hi)
    return a


# ---------------------------------------------------------------- casts and copies
def astype(a, dtype):
    dtype = np.dtype(dtype)
    return a if a.dtype == dtype else _cuda().astype(a, dtype)


def copy(a):
    return _cuda().astype(a, a.dtype)


def copyto(dst, src):
    """dst[...] = src, broadcasting src and converting its dtype (in place)."""
    if _is_dev(src):
        _cuda().copy_(dst, src)
    elif isinstance(src, (bool, int, float, np.generic)) or np.ndim(src) == 0:
        _cuda().fill_(dst, src.item() if hasattr(src, "item") else src)
    else:
        _cuda().copy_(dst, from_host(np.asarray(src), dst.device))


def add_(dst, src):
    """dst += src (in place), src broadcast and converted to dst's dtype."""
    src = _as_operand(src, dst.dtype, dst.device)
    _cuda().binary("add", dst, src, out=dst)


def ascontiguous(a):
    return _cuda().contiguous(a)


def is_contiguous(a) -> bool:
    return a.is_contiguous()
