"""EMULATED "cuda" device for CPU-only machines. It checks that the PYTHON LAYER is
device-agnostic. It does NOT test the CUDA kernels: every computation is the CPU
backend's.

The ``emulated_cuda`` fixture makes ``device="cuda"`` usable without a GPU:

- ``nnforge.backend.get_backend("cuda")`` returns an emulated backend module
  (registered in ``nnforge.backend._loaded``; ``_check_cuda_usable`` is a no-op)
  and ``nf.cuda`` reports one available device;
- a "cuda" tensor's ``.data`` is an ``EmulatedDeviceArray``: an opaque object
  around a numpy array with the Python surface of ``nnforge._C.cuda.DeviceArray``
  (shape, dtype, dtype_name, ndim, size, nbytes, itemsize, strides,
  element_strides, device, offset, data_ptr, storage_nbytes, is_contiguous(),
  shares_storage(), numpy(), as_strided()) and nothing else. It is not a numpy
  subclass; ``np.asarray(x)``, numpy ufuncs and functions, ``bool(x)``,
  indexing, arithmetic and iteration on it raise TypeError;
- every function of the emulated backend is the CPU backend's function of the
  same name with the arguments unwrapped and the results rewrapped. A host
  numpy array handed to it (other than to the upload functions ``from_host``
  and ``asarray``) raises TypeError, and so does a host value returned from a
  forward (``ensure_array``): both mean the Python layer computed on the host.
  Index arguments are the exception, as in the real backend (cuda_index.py
  validates host indices on the host and uploads them): host integer arrays,
  boolean masks and lists are accepted in ``getitem``/``setitem``/``index_add``
  indices and as the ``indices`` of take, take_along_axis, put_along_axis,
  gather and scatter_add (values stay device-only), and the index forms the
  real backend refuses (a Python bool, a 0-d boolean array) raise its
  NotImplementedError here too.

So a code path that feeds ``.data`` to numpy, or otherwise bypasses
``tensor.device.backend``, fails loudly here. What this cannot catch: kernel
bugs, numeric differences of the GPU (reduction order, TF32), asynchronous
execution, memory limits, a CUDA function whose argument handling differs from
the CPU twin's, and random streams (the CPU generator is used on both sides).
"""
from __future__ import annotations

import functools
import inspect
import types

import numpy as np
import pytest

import nnforge as nf
import nnforge.backend as _backend_pkg
from nnforge.backend import cpu as _cpu

__all__ = ["EmulatedDeviceArray", "make_backend", "emulated_cuda"]


class EmulatedDeviceArray:
    """Stands in for ``nnforge._C.cuda.DeviceArray`` (same attributes, nothing more)."""

    __slots__ = ("_a", "__weakref__")

    def __init__(self, a: np.ndarray):
        if type(a) is not np.ndarray:
            raise TypeError(f"EmulatedDeviceArray wraps a numpy array, got {type(a).__name__}")
        self._a = a

    # -- DeviceArray's Python surface (csrc/bindings/cuda_array.cpp)
    shape = property(lambda self: tuple(self._a.shape))
    strides = property(lambda self: tuple(self._a.strides))
    element_strides = property(lambda self: tuple(s // self._a.itemsize for s in self._a.strides))
    dtype = property(lambda self: self._a.dtype)
    dtype_name = property(lambda self: self._a.dtype.name)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: int(self._a.size))
    nbytes = property(lambda self: int(self._a.nbytes))
    itemsize = property(lambda self: self._a.itemsize)
    device = property(lambda self: 0)
    data_ptr = property(lambda self: self._a.__array_interface__["data"][0])

    @property
    def offset(self) -> int:
        base = self._storage()
        return self.data_ptr - base.__array_interface__["data"][0]

    @property
    def storage_nbytes(self) -> int:
        return int(self._storage().nbytes)

    def _storage(self) -> np.ndarray:
        a = self._a
        while isinstance(a.base, np.ndarray):
            a = a.base
        return a

    def is_contiguous(self) -> bool:
        return bool(self._a.flags.c_contiguous)

    def shares_storage(self, other) -> bool:
        return isinstance(other, EmulatedDeviceArray) and np.shares_memory(self._a, other._a)

    def numpy(self) -> np.ndarray:
        """A host copy, as DeviceArray.numpy() makes."""
        return np.array(self._a, copy=True)

    def as_strided(self, shape, element_strides, element_offset):
        base = self._storage()
        st = tuple(int(s) * base.itemsize for s in element_strides)
        flat = base.reshape(-1)[int(element_offset):]
        return EmulatedDeviceArray(np.lib.stride_tricks.as_strided(flat, tuple(shape), st))

    def __repr__(self) -> str:
        return f"EmulatedDeviceArray(shape={self.shape}, dtype={self.dtype_name}, device=0)"

    # -- everything that would let host code compute on it: loud errors
    def _host_access(self, *args, **kwargs):
        raise TypeError("EmulatedDeviceArray: device memory used as a host array (numpy "
                        "conversion, indexing, arithmetic or truth value); the Python layer must "
                        "go through tensor.device.backend")

    __array__ = _host_access
    __array_function__ = _host_access
    __array_ufunc__ = None  # numpy ufuncs and ndarray operators refuse it
    __bool__ = _host_access
    __len__ = _host_access
    __iter__ = _host_access
    __getitem__ = _host_access
    __setitem__ = _host_access
    __float__ = _host_access
    __int__ = _host_access
    __index__ = _host_access
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _host_access
    __truediv__ = __rtruediv__ = __pow__ = __neg__ = __matmul__ = _host_access
    __lt__ = __le__ = __gt__ = __ge__ = _host_access


_E = EmulatedDeviceArray
_UPLOADS = frozenset({"from_host", "asarray"})
# Arguments that are host metadata by the backend contract (like a shape), so a
# host numpy array is right there: the sequence lengths of the recurrent kernels,
# and indices, which the real CUDA backend takes from the host (numpy integer
# arrays, masks, lists; cuda_index.py checks them on the host and uploads them).
_HOST_ARGS = {"rnn_layer_forward": "lengths", "rnn_time_reverse": "lengths",
              "getitem": "index", "setitem": "index", "index_add": "index",
              "take": "indices", "take_along_axis": "indices", "put_along_axis": "indices",
              "gather": "indices", "scatter_add": "indices"}
# Advanced-index items the real backend refuses (cuda_index._normalize).
_INDEX_FNS = frozenset({"getitem", "setitem", "index_add"})


def _check_index_surface(index, fn_name):
    for k in index if isinstance(index, tuple) else (index,):
        if isinstance(k, (bool, np.bool_)):
            raise NotImplementedError("index: a Python bool as an index is not supported by the "
                                      "CUDA backend; use a boolean array")
        a = k._a if type(k) is _E else k
        if isinstance(a, np.ndarray) and a.ndim == 0 and a.dtype == np.bool_:
            raise NotImplementedError("index: a 0-d boolean index is not supported by the CUDA "
                                      "backend")


def _unwrap(x, fn_name, host_ok=False):
    t = type(x)
    if t is _E:
        return x._a
    if t is np.ndarray:
        if fn_name not in _UPLOADS and not host_ok:
            raise TypeError(f"emulated cuda backend: {fn_name} got a host numpy array of shape "
                            f"{x.shape}; the Python layer must pass device arrays (upload with "
                            "backend.from_host / asarray, or build it with backend functions)")
        return x
    if t is tuple or t is list:
        return t(_unwrap(v, fn_name, host_ok) for v in x)
    if t is dict:
        return {k: _unwrap(v, fn_name, host_ok) for k, v in x.items()}
    return x


def _wrap(x):
    if isinstance(x, np.ndarray):
        return _E(np.asarray(x))  # also numpy subclasses (np.matrix never appears)
    if isinstance(x, np.generic):
        return _E(np.asarray(x))
    t = type(x)
    if t is tuple or t is list:
        return t(_wrap(v) for v in x)
    return x


_CREATION_WITH_DEVICE = ("empty", "zeros", "ones", "full", "arange", "from_host", "asarray",
                         "linspace", "eye")


def _make_fn(name, fn):
    try:
        params = inspect.signature(fn).parameters
        takes_device = "device" in params
    except (TypeError, ValueError):  # numpy ufuncs
        takes_device = False
    host_arg = _HOST_ARGS.get(name)
    host_pos = list(params).index(host_arg) if host_arg else None

    @functools.wraps(fn)
    def emulated(*args, **kwargs):
        if not takes_device and name in _CREATION_WITH_DEVICE:
            d = kwargs.pop("device", None)
            if d not in (None, 0):
                raise ValueError(f"{name}: the emulation has one device (0), got {d}")
        if host_arg is None:
            return _wrap(fn(*_unwrap(args, name), **_unwrap(kwargs, name)))
        if name in _INDEX_FNS:
            index = args[host_pos] if len(args) > host_pos else kwargs.get(host_arg)
            _check_index_surface(index, name)
        args = [_unwrap(a, name, host_ok=i == host_pos) for i, a in enumerate(args)]
        kwargs = {k: _unwrap(v, name, host_ok=k == host_arg) for k, v in kwargs.items()}
        return _wrap(fn(*args, **kwargs))
    return emulated


# ---- the CUDA backend's own functions (no CPU twin): host stand-ins, same arguments
# and results, so the Python layer's calls into them are exercised. The numbers
# are not Philox's, only a deterministic function of (seed, offset).
def _philox_rng(seed, offset):
    return np.random.default_rng([int(seed) & (2**64 - 1), int(offset) & (2**64 - 1)])


def _float_dtype(dtype):
    name = dtype if isinstance(dtype, str) else np.dtype(dtype).name
    return np.dtype("float32" if name == "bfloat16" else name)


def _draws(n: int) -> int:
    return max(4, -(-2 * n // 4) * 4)  # a multiple of 4, as the real samplers report


def philox_uniform(shape, dtype, seed, offset, device=None):
    shape = tuple(np.atleast_1d(shape)) if np.ndim(shape) else (int(shape),)
    a = _philox_rng(seed, offset).random(shape).astype(_float_dtype(dtype))
    return _E(a), _draws(a.size)


def philox_normal(shape, dtype, seed, offset, device=None):
    shape = tuple(np.atleast_1d(shape)) if np.ndim(shape) else (int(shape),)
    a = _philox_rng(seed, offset).standard_normal(shape).astype(_float_dtype(dtype))
    return _E(a), _draws(a.size)


def philox_bernoulli(shape, dtype, seed, offset, p=None, probs=None, value=1.0, device=None):
    if (p is None) == (probs is None):
        raise ValueError("philox_bernoulli: give exactly one of p and probs")
    shape = tuple(np.atleast_1d(shape)) if np.ndim(shape) else (int(shape),)
    u = _philox_rng(seed, offset).random(shape)
    prob = p if probs is None else _unwrap(probs, "philox_bernoulli")
    a = np.where(u < prob, value, 0.0).astype(_float_dtype(dtype))
    return _E(a), _draws(a.size)


def philox_dropout_mask(shape, dtype, p_drop, seed, offset, device=None):
    p_drop = float(p_drop)
    if not 0.0 <= p_drop <= 1.0:
        raise ValueError(f"dropout: probability has to be between 0 and 1, but got {p_drop}")
    value = 0.0 if p_drop == 1.0 else 1.0 / (1.0 - p_drop)
    return philox_bernoulli(shape, dtype, seed, offset, p=1.0 - p_drop, value=value)


def philox_words(n, seed, offset, device=None):
    a = _philox_rng(seed, offset).integers(0, 2**32, int(n), dtype=np.int64)
    return _E(a), _draws(int(n))


_CUDA_ONLY = {f.__name__: f for f in (philox_uniform, philox_normal, philox_bernoulli,
                                      philox_dropout_mask, philox_words)}


def _cuda_only_names() -> set:
    """Public functions of backend/cuda.py that the CPU backend lacks (the real
    backend's module is importable without a GPU)."""
    try:
        from nnforge.backend import cuda as real
    except Exception:  # a build where it cannot even import: nothing to mirror
        return set()
    return {n for n, v in vars(real).items()
            if callable(v) and not n.startswith("_") and not isinstance(v, type)
            and not hasattr(_cpu, n)}


def _missing(name):
    def fn(*args, **kwargs):
        raise NotImplementedError(f"{name}: a CUDA-only backend function that "
                                  "tests/emulated_cuda.py does not emulate yet")
    fn.__name__ = name
    return fn


def make_backend() -> types.ModuleType:
    """A module with every public function of the CPU backend, over EmulatedDeviceArray."""
    mod = types.ModuleType("nnforge.backend.emulated_cuda",
                           "EMULATED cuda backend (tests/emulated_cuda.py): the CPU backend "
                           "over opaque wrappers; checks the Python layer, not CUDA kernels")
    for name, value in vars(_cpu).items():
        if name.startswith("_") or isinstance(value, (type, types.ModuleType)):
            continue
        if callable(value):
            setattr(mod, name, _make_fn(name, value))

    def to_host(a):
        if type(a) is not _E:
            raise TypeError(f"to_host: expected a device array, got {type(a).__name__}")
        return a.numpy()

    def ensure_array(x):
        if type(x) is _E:
            return x
        raise TypeError(f"ensure_array: a CUDA op returned {type(x).__name__}, not a device "
                        "array: the Python layer computed on the host (emulated cuda)")

    def zeros_like(a):
        return _E(np.zeros_like(_unwrap(a, "zeros_like")))

    def result_dtype(*xs):
        return np.result_type(*(x.dtype if type(x) is _E else x for x in xs))

    def copy(a):  # DeviceArray copies are C-contiguous, as numpy's copy is
        return _E(np.array(_unwrap(a, "copy"), copy=True))

    mod.to_host, mod.ensure_array, mod.zeros_like = to_host, ensure_array, zeros_like
    mod.result_dtype, mod.copy = result_dtype, copy
    for name in _cuda_only_names() - {"result_dtype"}:
        setattr(mod, name, _CUDA_ONLY.get(name) or _missing(name))
    mod.array_type = _E
    mod.name = "cuda"
    mod.NOT_IMPLEMENTED = ()
    mod.EMULATED = True
    return mod


@pytest.fixture
def emulated_cuda(monkeypatch):
    """Makes device "cuda" the emulated backend for one test; yields that module."""
    mod = make_backend()
    monkeypatch.setitem(_backend_pkg._loaded, "cuda", mod)
    monkeypatch.setattr(_backend_pkg, "_check_cuda_usable", lambda: None)
    cuda = nf.cuda
    monkeypatch.setattr(cuda, "is_built", lambda: True)
    monkeypatch.setattr(cuda, "device_count", lambda: 1)
    monkeypatch.setattr(cuda, "is_available", lambda: True)
    monkeypatch.setattr(cuda, "current_device", lambda: 0)
    monkeypatch.setattr(cuda, "set_device", lambda device: None)
    monkeypatch.setattr(cuda, "synchronize", lambda device=None: None)
    monkeypatch.setattr(cuda, "_stats", lambda device: {
        "allocated": 0, "max_allocated": 0, "reserved": 0, "max_reserved": 0,
        "cached_blocks": 0})
    yield mod
