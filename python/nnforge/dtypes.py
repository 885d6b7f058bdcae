"""Data types: ``nf.float32`` and friends, and PyTorch's type-promotion rules.

A ``dtype`` is a small immutable object naming an element type. Every backend
maps it to its own storage type (numpy's for the CPU backend).

``bfloat16`` (8 exponent bits, 7 mantissa bits: float32's range, ~3 significant
digits) has no numpy type of its own; its storage is the ``ml_dtypes`` package's
``bfloat16``, a numpy dtype of kind "V" with numpy's ufuncs (each computes in
float32 and rounds to nearest even). Without ml_dtypes, ``nf.bfloat16`` still
exists, and using it raises a RuntimeError that says to install the package.
"""
from __future__ import annotations

import numpy as np

try:
    import ml_dtypes as _ml_dtypes
    BFLOAT16_NP = np.dtype(_ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover - ml_dtypes is a dependency; checked where used
    _ml_dtypes = None
    BFLOAT16_NP = None

# numpy kinds of floating-point tensor storage: "f", and "V" for bfloat16
# (ml_dtypes'), the only dtype of kind "V" a tensor can hold.
FLOAT_KINDS = "fV"

_NO_ML_DTYPES = ("nnforge.bfloat16 needs the ml_dtypes package, which gives numpy its "
                 "bfloat16 type: pip install ml_dtypes")


class dtype:
    """An element type, e.g. ``nf.float32``. Compare with ``==`` or ``is``."""

    __slots__ = ("name", "np", "is_floating_point", "is_signed", "itemsize", "_category")

    def __init__(self, name: str, np_dtype, category: int, itemsize: int = 0):
        self.name = name
        if np_dtype is not None:  # None: bfloat16 without ml_dtypes (``np`` then raises)
            self.np = np.dtype(np_dtype)
        self.itemsize = itemsize or self.np.itemsize
        self.is_floating_point = category == _FLOAT
        self.is_signed = category != _BOOL and not name.startswith("uint")
        self._category = category

    def __getattr__(self, attr):
        # Only reached when a slot is unset: ``np`` of bfloat16 without ml_dtypes.
        if attr == "np" and self.name == "bfloat16":
            raise RuntimeError(_NO_ML_DTYPES)
        raise AttributeError(f"'nnforge.dtype' object has no attribute {attr!r}")

    def __repr__(self) -> str:
        return f"nnforge.{self.name}"

    def __reduce__(self):
        return (_by_name, (self.name,))


# Promotion categories, lowest to highest (PyTorch: bool < integer < floating).
_BOOL, _INT, _FLOAT = 0, 1, 2

bool_ = dtype("bool", np.bool_, _BOOL)
uint8 = dtype("uint8", np.uint8, _INT)
int8 = dtype("int8", np.int8, _INT)
int16 = dtype("int16", np.int16, _INT)
int32 = dtype("int32", np.int32, _INT)
int64 = dtype("int64", np.int64, _INT)
float16 = dtype("float16", np.float16, _FLOAT)
float32 = dtype("float32", np.float32, _FLOAT)
float64 = dtype("float64", np.float64, _FLOAT)
bfloat16 = dtype("bfloat16", BFLOAT16_NP, _FLOAT, itemsize=2)

_ALL = (bool_, uint8, int8, int16, int32, int64, float16, float32, float64) + (
    (bfloat16,) if BFLOAT16_NP is not None else ())
_FROM_NP = {d.np: d for d in _ALL}
_NAMES = {d.name: d for d in _ALL}
_NAMES["bfloat16"] = bfloat16  # also without ml_dtypes: its ``np`` says what is missing
_NAMES.update({"float": float32, "double": float64, "half": float16, "long": int64,
               "int": int32, "short": int16})

_default_float = float32


def _by_name(name: str) -> dtype:
    return _NAMES[name]


def get_default_dtype() -> dtype:
    return _default_float


def set_default_dtype(d: dtype) -> None:
    """Sets the dtype of float tensors made from Python floats (float32 or float64)."""
    global _default_float
    d = as_dtype(d)
    if not d.is_floating_point:
        raise TypeError(f"set_default_dtype: only floating dtypes are allowed, got {d}")
    _default_float = d


def as_dtype(d, op: str | None = None) -> dtype:
    """Turns an nnforge dtype, a numpy dtype, a Python type or a name into a
    ``dtype``; ``op`` names the caller in the error message."""
    try:
        return _as_dtype(d)
    except TypeError as e:
        if op is None:
            raise
        raise TypeError(f"{op}: {e}") from None


def _as_dtype(d) -> dtype:
    if isinstance(d, dtype):
        return d
    if d is float:
        return _default_float
    if d is int:
        return int64
    if d is bool:
        return bool_
    if isinstance(d, str) and d in _NAMES:
        return _NAMES[d]
    try:
        npd = np.dtype(d)
    except TypeError:
        raise TypeError(f"unknown dtype {d!r}") from None
    try:
        return _FROM_NP[npd]
    except KeyError:
        raise TypeError(f"nnforge has no dtype matching numpy's {npd}") from None


def from_numpy_dtype(npd) -> dtype:
    try:
        return _FROM_NP[npd]        # a numpy dtype (the common case): no conversion
    except (KeyError, TypeError):
        pass
    try:
        return _FROM_NP[np.dtype(npd)]
    except KeyError:
        raise TypeError(f"nnforge has no dtype matching numpy's {np.dtype(npd)}; "
                        f"supported: {', '.join(d.name for d in _ALL)}") from None


def _promote_pair(a: dtype, b: dtype) -> dtype:
    """Two tensors' common dtype. Across categories the higher category wins
    as it is (int64 + float16 -> float16, as in PyTorch, where numpy would
    widen to float64); within one, numpy's promotion agrees with PyTorch's
    (ml_dtypes': bfloat16 with float32 or float64 gives that one), except for
    bfloat16 with float16, which numpy refuses and PyTorch makes float32."""
    if a is b:
        return a
    if a._category != b._category:
        return a if a._category > b._category else b
    try:
        return _FROM_NP[np.promote_types(a.np, b.np)]
    except TypeError:  # numpy has no common type of bfloat16 and float16; PyTorch's is float32
        return float32


def _scalar_category(x) -> int:
    if isinstance(x, (bool, np.bool_)):
        return _BOOL
    if isinstance(x, (int, np.integer)):
        return _INT
    return _FLOAT


def result_type(*operands) -> dtype:
    """PyTorch's promotion: dimensioned tensors decide, unless a zero-dim tensor
    or a Python scalar is of a higher category (bool < int < float); then the
    zero-dim tensors decide, and if a scalar is higher still, the default dtype
    of its category (int64, or the default float) is taken."""
    dim_t = zero_t = None
    scalar_cat = -1
    for x in operands:
        d = getattr(x, "dtype", None)
        if isinstance(x, np.ndarray):  # a numpy array counts as a tensor of its dtype
            d = from_numpy_dtype(x.dtype)
        if isinstance(d, dtype):
            if x.ndim > 0:
                dim_t = d if dim_t is None else _promote_pair(dim_t, d)
            else:
                zero_t = d if zero_t is None else _promote_pair(zero_t, d)
        else:
            scalar_cat = max(scalar_cat, _scalar_category(x))
    result = dim_t
    if zero_t is not None and (result is None or zero_t._category > result._category):
        result = zero_t
    if scalar_cat >= 0 and (result is None or scalar_cat > result._category):
        result = (bool_, int64, _default_float)[scalar_cat]
    if result is None:
        raise TypeError("result_type: needs at least one operand")
    return result
