"""Attaches the ops to ``Tensor`` as methods and operators, and defines the
in-place variants (``add_``, ``mul_``, ``fill_``, ...) that bump the version
counter. Kept apart from tensor.py so that file stays the core."""
from __future__ import annotations

from .autograd.grad_mode import is_grad_enabled
from .ops import convert, creation, indexing, linalg, pointwise as pw, reduction as red, shape
from .random import _rng, uniform_array
from .tensor import Tensor

# ---------------------------------------------------------------- operators
def _cmp_or_identity(fn):
    """``t == None`` is False (and ``!=`` True), as in PyTorch, not an elementwise result."""
    def method(self, other):
        if other is None:
            return NotImplemented
        return fn(self, other)
    method.__name__ = fn.__name__
    return method


def _r(fn):
    """The reflected form of a binary op: other <op> self."""
    return lambda self, other: fn(other, self)


_OPERATORS = {
    "__add__": pw.add, "__radd__": _r(pw.add),
    "__sub__": pw.sub, "__rsub__": _r(pw.sub),
    "__mul__": pw.mul, "__rmul__": _r(pw.mul),
    "__truediv__": pw.div, "__rtruediv__": _r(pw.div),
    "__floordiv__": pw.floor_divide, "__rfloordiv__": _r(pw.floor_divide),
    "__mod__": pw.remainder, "__rmod__": _r(pw.remainder),
    "__pow__": pw.pow, "__rpow__": _r(pw.pow),
    "__matmul__": linalg.matmul, "__rmatmul__": _r(linalg.matmul),
    "__neg__": pw.neg, "__abs__": pw.abs,
    "__eq__": _cmp_or_identity(pw.eq), "__ne__": _cmp_or_identity(pw.ne), "__lt__": pw.lt, "__le__": pw.le,
    "__gt__": pw.gt, "__ge__": pw.ge,
    "__getitem__": indexing.getitem, "__setitem__": indexing.setitem,
}


def _bool_only(op, fn):
    def method(self, other):
        o = other.data if isinstance(other, Tensor) else other
        if self.data.dtype.kind != "b" or (isinstance(other, Tensor) and other.data.dtype.kind != "b"):
            raise TypeError(f"{op}: only bool tensors are supported (logical {op})")
        return fn(self, other if isinstance(other, Tensor) else
                  Tensor._make(self.device.backend.asarray(o, "bool"), self.device))
    return method


def _contains(self, element) -> bool:
    """``element in t``: whether any element of ``t`` equals it, as in PyTorch."""
    if not isinstance(element, (Tensor, int, float, bool)):
        raise TypeError(f"in: expected a Tensor or a number, got {type(element).__name__}")
    return bool(red.any(pw.eq(self, element)).item())


def _invert(self):
    if self.data.dtype.kind != "b":
        raise TypeError("invert (~): only bool tensors are supported")
    return pw.logical_not(self)


# ---------------------------------------------------------------- methods
_METHODS = {
    # pointwise
    "add": pw.add, "sub": pw.sub, "subtract": pw.sub, "mul": pw.mul, "multiply": pw.mul,
    "div": pw.div, "divide": pw.div, "true_divide": pw.div, "floor_divide": pw.floor_divide,
    "remainder": pw.remainder, "pow": pw.pow, "maximum": pw.maximum, "minimum": pw.minimum,
    "neg": pw.neg, "negative": pw.neg, "abs": pw.abs, "sign": pw.sign, "exp": pw.exp,
    "log": pw.log, "log1p": pw.log1p, "sqrt": pw.sqrt, "rsqrt": pw.rsqrt, "sin": pw.sin,
    "cos": pw.cos, "tanh": pw.tanh, "sigmoid": pw.sigmoid, "relu": pw.relu,
    "clamp": pw.clamp, "clip": pw.clamp, "floor": pw.floor, "ceil": pw.ceil, "round": pw.round,
    "isnan": pw.isnan, "isinf": pw.isinf, "isfinite": pw.isfinite,
    "masked_fill": pw.masked_fill, "eq": pw.eq, "ne": pw.ne, "lt": pw.lt, "le": pw.le,
    "gt": pw.gt, "ge": pw.ge, "logical_and": pw.logical_and, "logical_or": pw.logical_or,
    "logical_xor": pw.logical_xor, "logical_not": pw.logical_not, "equal": pw.equal,
    "allclose": pw.allclose,
    # reductions
    "sum": red.sum, "mean": red.mean, "var": red.var, "std": red.std, "prod": red.prod,
    "max": red.max, "min": red.min, "amax": red.amax, "amin": red.amin,
    "argmax": red.argmax, "argmin": red.argmin, "logsumexp": red.logsumexp,
    "cumsum": red.cumsum, "softmax": red.softmax, "log_softmax": red.log_softmax,
    "all": red.all, "any": red.any,
    # linear algebra
    "matmul": linalg.matmul, "mm": linalg.mm, "bmm": linalg.bmm, "dot": linalg.dot,
    # shape
    "reshape": shape.reshape, "view": shape.view, "flatten": shape.flatten,
    "unflatten": shape.unflatten, "squeeze": shape.squeeze, "unsqueeze": shape.unsqueeze,
    "permute": shape.permute, "transpose": shape.transpose, "swapaxes": shape.transpose,
    "t": shape.t, "expand": shape.expand, "expand_as": shape.expand_as,
    "broadcast_to": shape.broadcast_to, "repeat": shape.repeat, "flip": shape.flip,
    "narrow": shape.narrow, "split": shape.split, "chunk": shape.chunk, "unbind": shape.unbind,
    # indexing
    "index_select": indexing.index_select, "gather": indexing.gather,
    "scatter_add": indexing.scatter_add, "masked_select": indexing.masked_select,
    "nonzero": indexing.nonzero, "take": indexing.take,
    # copies
    "clone": convert.clone, "contiguous": convert.contiguous,
}


def _view_as(self, other):
    return shape.view(self, tuple(other.shape))


def _reshape_as(self, other):
    return shape.reshape(self, tuple(other.shape))


def _where(self, condition, other):
    return pw.where(condition, self, other)


def _new(fn):
    def method(self, *size, dtype=None, device=None, requires_grad=False):
        return fn(*size, dtype=self.dtype if dtype is None else dtype,
                  device=self.device if device is None else device, requires_grad=requires_grad)
    return method


def _new_full(self, size, fill_value, *, dtype=None, device=None, requires_grad=False):
    return creation.full(size, fill_value, dtype=self.dtype if dtype is None else dtype,
                         device=self.device if device is None else device,
                         requires_grad=requires_grad)


def _new_tensor(self, data, *, dtype=None, device=None, requires_grad=False):
    return creation.tensor(data, dtype=self.dtype if dtype is None else dtype,
                           device=self.device if device is None else device,
                           requires_grad=requires_grad)


# ---------------------------------------------------------------- in-place
def _inplace_method(name, fn):
    def method(self, *args, **kwargs):
        return self._inplace(name, lambda s, *a: fn(s, *a, **kwargs), *args)
    method.__name__ = name
    method.__doc__ = f"In-place version of ``{name[:-1]}``; bumps the version counter."
    return method


_INPLACE = {
    "add_": pw.add, "sub_": pw.sub, "mul_": pw.mul, "div_": pw.div, "pow_": pw.pow,
    "neg_": pw.neg, "abs_": pw.abs, "exp_": pw.exp, "log_": pw.log, "sqrt_": pw.sqrt,
    "tanh_": pw.tanh, "sigmoid_": pw.sigmoid, "relu_": pw.relu, "clamp_": pw.clamp,
    "clip_": pw.clamp, "masked_fill_": pw.masked_fill,
    "scatter_add_": indexing.scatter_add,
}


def _true_like(t):
    return Tensor._make(t.device.backend.full((), True, "bool"), t.device)


def _fill(s, v):
    return pw.where(_true_like(s), v, s)  # gradient 0 to the old values, 1 to a tensor v


def fill_(self, value):
    if isinstance(value, Tensor) and value.numel() != 1:
        raise ValueError(f"fill_: value must be a 0-d tensor, got shape {tuple(value.shape)}")
    if is_grad_enabled() and (self._requires_grad or (isinstance(value, Tensor) and value._requires_grad)):
        v = value.reshape(()) if isinstance(value, Tensor) else value
        return self._inplace("fill_", _fill, v)
    self._check_inplace("fill_")
    v = value.item() if isinstance(value, Tensor) else value
    self.device.backend.copyto(self.data, v)
    self._bump_version()
    return self


def zero_(self):
    return fill_(self, 0)


def copy_(self, src, non_blocking=False):
    """Copies ``src`` (broadcast to this shape, cast to this dtype) into this tensor."""
    if not isinstance(src, Tensor):
        raise TypeError(f"copy_: src must be a Tensor, got {type(src).__name__}")
    src_c = src.to(self.dtype).to(self.device)
    if src_c.ndim > self.ndim or any(
            a not in (b, 1) for a, b in zip(reversed(src_c.shape), reversed(self.shape))):
        raise ValueError(f"copy_: src of shape {tuple(src.shape)} cannot be broadcast to the "
                         f"destination shape {tuple(self.shape)}")
    if is_grad_enabled() and (self._requires_grad or src_c._requires_grad):
        return self._inplace("copy_", _fill, src_c)
    self._check_inplace("copy_")
    self.device.backend.copyto(self.data, src_c.data)
    self._bump_version()
    return self


def _overwrite(self, name, arr):
    """Writes new values (a host array) into ``self``. On a tensor in the graph
    this is recorded like fill_: the old values get a zero gradient."""
    be = self.device.backend
    if is_grad_enabled() and self._requires_grad:
        new = Tensor._make(be.from_host(arr.astype(self.data.dtype, copy=False)), self.device)
        return self._inplace(name, _fill, new)
    self._check_inplace(name)
    be.copyto(self.data, be.from_host(arr))
    self._bump_version()
    return self


def _random_fill(name, sample):
    def method(self, *args, generator=None, **kwargs):
        self._check_inplace(name)
        if not self.is_floating_point():
            raise TypeError(f"{name}: expects a floating point tensor, got {self.dtype.name}")
        arr = sample(_rng(generator), tuple(self.shape), self.data.dtype, *args, **kwargs)
        return _overwrite(self, name, arr)
    method.__name__ = name
    return method


uniform_ = _random_fill("uniform_", lambda rng, shp, dt, a=0.0, b=1.0: uniform_array(rng, a, b, shp, dt))
normal_ = _random_fill("normal_", lambda rng, shp, dt, mean=0.0, std=1.0: rng.normal(mean, std, shp))


def _bernoulli_(self, p=0.5, *, generator=None):
    self._check_inplace("bernoulli_")
    return _overwrite(self, "bernoulli_", _rng(generator).random(tuple(self.shape)) < p)


def _iop(name):
    def method(self, other):
        return getattr(self, name)(other)
    return method


def install() -> None:
    for name, fn in {**_OPERATORS, **_METHODS}.items():
        setattr(Tensor, name, fn)
    Tensor.__pos__ = lambda self: self
    Tensor.__invert__ = _invert
    Tensor.__contains__ = _contains
    Tensor.__and__ = _bool_only("and", pw.logical_and)
    Tensor.__or__ = _bool_only("or", pw.logical_or)
    Tensor.__xor__ = _bool_only("xor", pw.logical_xor)
    Tensor.__rand__, Tensor.__ror__, Tensor.__rxor__ = Tensor.__and__, Tensor.__or__, Tensor.__xor__
    Tensor.T = property(shape.T)
    Tensor.mT = property(shape.mT)
    Tensor.view_as = _view_as
    Tensor.reshape_as = _reshape_as
    Tensor.where = _where
    Tensor.new_zeros = _new(creation.zeros)
    Tensor.new_ones = _new(creation.ones)
    Tensor.new_empty = _new(creation.empty)
    Tensor.new_full = _new_full
    Tensor.new_tensor = _new_tensor
    for name, fn in _INPLACE.items():
        setattr(Tensor, name, _inplace_method(name, fn))
    Tensor.fill_ = fill_
    Tensor.zero_ = zero_
    Tensor.copy_ = copy_
    Tensor.uniform_ = uniform_
    Tensor.normal_ = normal_
    Tensor.bernoulli_ = _bernoulli_
    for op, name in (("__iadd__", "add_"), ("__isub__", "sub_"), ("__imul__", "mul_"),
                     ("__itruediv__", "div_"), ("__ipow__", "pow_")):
        setattr(Tensor, op, _iop(name))
    Tensor.__array_priority__ = 1000  # numpy defers to our reflected operators
