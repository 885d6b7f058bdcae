"""``Tensor``: a backend array plus what autograd needs to know about it.

``data`` is the backend array (a numpy array on the CPU). ``grad_fn`` is the
graph node that produced the tensor (None for leaves), ``grad`` is where
backward accumulates a leaf's gradient, and ``_version`` counts in-place
modifications so that backward can refuse values that changed after they
were saved.

Views (basic indexing, reshape, transpose, ...) share their base's storage
and version box, and also its ``_rebase_box``, which counts in-place ops on
the base that were recorded in the graph: they give the base a new
``grad_fn``, and a view made before one no longer tells how its values
depend on the graph; using it then raises instead of giving wrong gradients.
(``detach()`` shares the version box only: it has no graph to go stale.)

Math methods (``x.exp()``, ``x @ y``, ...) are attached from ``nnforge.ops``
by ``_methods.py``; this file keeps the core.
"""
from __future__ import annotations

import numpy as np

from . import dtypes as _dt
from .autograd.function import AccumulateGrad
from .autograd.grad_mode import is_grad_enabled
from .device import CPU, as_device


class Size(tuple):
    """A shape, as ``torch.Size``: a tuple with ``numel()``."""

    def numel(self) -> int:
        n = 1
        for s in self:
            n *= s
        return n

    def __repr__(self) -> str:
        return f"nnforge.Size({list(self)})"


class Tensor:
    """An n-dimensional array that records operations for autograd.

    >>> import nnforge as nf
    >>> x = nf.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    >>> y = (x * x).sum()
    >>> y.backward()
    >>> x.grad
    tensor([[2., 4.],
            [6., 8.]])
    """

    __slots__ = ("data", "_requires_grad", "grad", "grad_fn", "_output_nr", "_version_box",
                 "_base", "_rebase_box", "_view_epoch", "_accumulator", "device", "_retains_grad",
                 "__weakref__")

    # ---------------------------------------------------------------- construction
    @classmethod
    def _make(cls, data, device, requires_grad: bool = False) -> "Tensor":
        """Wraps a backend array without copying or checking (internal)."""
        t = object.__new__(cls)
        t.data = data
        t._requires_grad = requires_grad
        t.grad = None
        t.grad_fn = None
        t._output_nr = 0
        t._version_box = [0]
        t._base = None
        t._rebase_box = [0]
        t._view_epoch = None
        t._accumulator = None
        t.device = device
        t._retains_grad = False
        return t

    @classmethod
    def _from_host(cls, array: np.ndarray, device=CPU, requires_grad: bool = False) -> "Tensor":
        device = as_device(device)
        return cls._make(device.backend.from_host(array), device, requires_grad)

    def __init__(self, *args, **kwargs):
        raise TypeError("construct tensors with nnforge.tensor(...), nnforge.zeros(...), "
                        "nnforge.from_numpy(...) and the like")

    # ---------------------------------------------------------------- metadata
    @property
    def shape(self) -> Size:
        return Size(self.data.shape)

    def size(self, dim: int | None = None):
        if dim is None:
            return Size(self.data.shape)
        return self.data.shape[_wrap_dim(dim, self.data.ndim, "size")]

    @property
    def ndim(self) -> int:
        return self.data.ndim

    def dim(self) -> int:
        return self.data.ndim

    def numel(self) -> int:
        return int(self.data.size)

    nelement = numel

    @property
    def dtype(self) -> _dt.dtype:
        return _dt.from_numpy_dtype(self.data.dtype)

    def element_size(self) -> int:
        return self.data.dtype.itemsize

    @property
    def itemsize(self) -> int:
        return self.data.dtype.itemsize

    @property
    def nbytes(self) -> int:
        return int(self.data.nbytes)

    def is_floating_point(self) -> bool:
        return self.data.dtype.kind in _dt.FLOAT_KINDS

    def is_contiguous(self) -> bool:
        return self.device.backend.is_contiguous(self.data)

    def stride(self, dim: int | None = None):
        """Strides in elements, as PyTorch reports them."""
        st = tuple(s // self.data.dtype.itemsize for s in self.data.strides)
        return st if dim is None else st[_wrap_dim(dim, self.data.ndim, "stride")]

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def _version(self) -> int:
        return self._version_box[0]

    def _bump_version(self) -> None:
        self._version_box[0] += 1

    def _as_view_of(self, base: "Tensor") -> None:
        """Makes this tensor a view of ``base``: same storage, same version box."""
        self._version_box = base._version_box
        self._rebase_box = base._rebase_box
        self._base = base if base._base is None else base._base
        self._view_epoch = base._rebase_box[0] if is_grad_enabled() else None

    def _check_view_fresh(self, op: str) -> None:
        """Raises if this is a view whose base was modified in place (with a
        recorded graph) after the view was made: its grad_fn is stale."""
        if self._view_epoch is not None and self._view_epoch != self._rebase_box[0]:
            raise RuntimeError(
                f"{op}: a view of shape {tuple(self.shape)} is used after its base tensor was "
                "modified by an in-place operation that autograd recorded; nnforge does not "
                "rebase views, so take the view again after the in-place operation")

    # ---------------------------------------------------------------- autograd
    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        self.requires_grad_(value)

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if self.grad_fn is not None:
            if not requires_grad:
                raise RuntimeError("requires_grad_: you can only change requires_grad of leaf "
                                   "tensors; use detach() to get a tensor that does not require grad")
            return self
        if requires_grad and self.data.dtype.kind not in _dt.FLOAT_KINDS:
            raise RuntimeError(f"requires_grad_: only floating point tensors can require "
                               f"gradients, got dtype {self.dtype.name}")
        self._requires_grad = bool(requires_grad)
        return self

    def _edge(self):
        """The graph edge a consumer of this tensor points to."""
        if self.grad_fn is not None:
            return (self.grad_fn, self._output_nr)
        acc = self._accumulator
        if acc is None:
            acc = self._accumulator = AccumulateGrad(self)
        return (acc, 0)

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None) -> None:
        """Accumulates the gradient of this tensor w.r.t. the graph's leaves (or only
        ``inputs``) into their ``.grad``."""
        from .autograd import backward
        backward([self], None if gradient is None else [gradient], retain_graph, create_graph,
                 inputs=inputs)

    def register_hook(self, hook):
        """Calls ``hook(grad)`` when this tensor's gradient is computed; a returned
        Tensor replaces the gradient. Returns a handle with ``remove()``."""
        if not self._requires_grad:
            raise RuntimeError("register_hook: cannot register a hook on a tensor that "
                               "does not require gradient")
        node, nr = self._edge()
        return node.register_prehook(nr, hook)

    def register_post_accumulate_grad_hook(self, hook):
        """Calls ``hook(tensor)`` on this leaf right after backward has added into
        its ``.grad`` (the tensor, not the gradient, is passed; the hook returns
        None). Returns a handle with ``remove()``."""
        if not self._requires_grad:
            raise RuntimeError("register_post_accumulate_grad_hook: cannot register a hook on "
                               "a tensor that does not require gradient")
        if self.grad_fn is not None:
            raise RuntimeError("register_post_accumulate_grad_hook: post accumulate grad hooks "
                               "cannot be registered on non-leaf tensors")
        from .autograd.function import _RemovableHandle
        node = self._edge()[0]
        hooks = getattr(node, "_post_accumulate_hooks", None)
        if hooks is None:
            hooks = node._post_accumulate_hooks = []
        hooks.append(hook)
        return _RemovableHandle(hooks, hook)

    def retain_grad(self) -> None:
        """Keeps ``.grad`` of a non-leaf tensor after backward."""
        if self.grad_fn is None or self._retains_grad:
            return
        import weakref  # the hook must not keep the tensor alive
        ref = weakref.ref(self)

        def _store(g):
            t = ref()
            if t is not None:
                if t.grad is None:
                    t.grad = Tensor._make(t.device.backend.copy(g.data), t.device)
                else:
                    t.grad = Tensor._make(t.device.backend.add(t.grad.data, g.data), t.device)
        self._retains_grad = self.register_hook(_store)  # the handle: truthy

    @property
    def retains_grad(self) -> bool:
        return bool(self._retains_grad)

    def detach(self) -> "Tensor":
        """A new tensor sharing this one's data, outside the graph."""
        t = Tensor._make(self.data, self.device, False)
        t._version_box = self._version_box
        return t

    def detach_(self) -> "Tensor":
        self.grad_fn = None
        self._requires_grad = False
        return self

    # ---------------------------------------------------------------- in-place machinery
    def _check_inplace(self, op: str) -> None:
        a = self.data
        flags = getattr(a, "flags", None)
        if (not flags.writeable) if flags is not None else any(  # a device array: stride 0
                st == 0 and n > 1 for st, n in zip(a.element_strides, a.shape)):
            raise RuntimeError(f"{op}: cannot write into this tensor of shape {tuple(self.shape)}: "
                               "its memory is read-only (an expand()ed view, whose elements share "
                               "memory, or a read-only numpy array); clone() it first")
        if not is_grad_enabled():
            return
        if self._requires_grad and self.grad_fn is None:
            raise RuntimeError(f"{op}: a leaf tensor that requires grad is being used in an "
                               "in-place operation; wrap it in nnforge.no_grad() or clone it")
        base = self._base
        if base is not None and (base._requires_grad or self._requires_grad):
            raise RuntimeError(f"{op}: in-place operations on a view of a tensor that requires "
                               "grad are not supported by nnforge; clone() the view first")

    def _inplace(self, op: str, fn, *args) -> "Tensor":
        """Runs the out-of-place ``fn(self, *args)`` and writes the result into
        this tensor's storage. When a graph is recorded, ``fn`` sees a copy of
        the old values (its backward may need them) and this tensor becomes the
        output of ``fn``'s node."""
        self._check_inplace(op)
        src = self
        if is_grad_enabled() and (self._requires_grad or any(
                isinstance(a, Tensor) and a._requires_grad for a in args)):
            if self._base is not None:
                # The view would join the graph while its base would not.
                raise RuntimeError(f"{op}: in-place operation on a view with an operand that "
                                   "requires grad is not supported by nnforge; write into the "
                                   "base tensor (e.g. base[index] = value) or clone() the view")
            src = Tensor._make(self.device.backend.copy(self.data), self.device, self._requires_grad)
            src.grad_fn, src._output_nr = self.grad_fn, self._output_nr
        out = fn(src, *args)
        if out.data.shape != self.data.shape:
            raise RuntimeError(f"{op}: the result has shape {tuple(out.shape)}, which cannot be "
                               f"written into the tensor of shape {tuple(self.shape)}")
        if _dt.from_numpy_dtype(out.data.dtype)._category > self.dtype._category:
            raise RuntimeError(f"{op}: result type {out.dtype.name} cannot be cast to the "
                               f"tensor's dtype {self.dtype.name}")
        self.device.backend.copyto(self.data, out.data)
        self._bump_version()
        if out.grad_fn is not None:
            self.grad_fn, self._output_nr = out.grad_fn, out._output_nr
            self._requires_grad = True
            self._rebase_box[0] += 1  # views made before this are now stale
            if self._retains_grad:  # .grad is the gradient of the newest values
                self._retains_grad.remove()
                self._retains_grad = False
                self.retain_grad()
        return self

    # ---------------------------------------------------------------- conversion
    def numpy(self, *, force: bool = False) -> np.ndarray:
        """The data as a numpy array (shared with the tensor on the CPU).
        ``force=True`` is ``detach().cpu().numpy()``: a host copy from any device."""
        if self.device.type != "cpu":
            if force:
                return self.device.backend.to_host(self.data)
            raise TypeError(f"numpy: can't convert {self.device} device type tensor to numpy. "
                            "Use Tensor.cpu() to copy the tensor to host memory first.")
        if self._requires_grad and not force:
            raise RuntimeError("numpy: can't call numpy() on a tensor that requires grad; "
                               "use tensor.detach().numpy()")
        return self.device.backend.to_host(self.data)

    def __array__(self, dtype=None, copy=None):
        """numpy's protocol: ``np.asarray(t)`` shares memory on the CPU, ``np.array(t)``
        (``copy=True``) copies."""
        a = self.device.backend.to_host(self.data)
        if dtype is not None and np.dtype(dtype) != a.dtype:
            if copy is False:
                raise ValueError(f"__array__: cannot convert {self.dtype.name} to {np.dtype(dtype)} "
                                 "without a copy")
            return a.astype(dtype)
        return a.copy() if copy else a

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item: only a tensor with one element can be converted to a "
                             f"Python scalar, got shape {tuple(self.shape)}")
        return self.device.backend.to_host(self.data).reshape(()).item()

    def tolist(self):
        return self.device.backend.to_host(self.data).tolist()

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __iter__(self):
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.data.shape[0]))

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise RuntimeError(f"bool: the truth value of a tensor with {self.data.size} "
                               "elements is ambiguous")
        return bool(self.item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.data.dtype.kind not in "iub" or self.data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __hash__(self) -> int:
        return id(self)

    # ---------------------------------------------------------------- copying
    def __deepcopy__(self, memo: dict) -> "Tensor":
        """A leaf with its own copy of the data (and of ``.grad``), as in PyTorch."""
        if id(self) in memo:
            return memo[id(self)]
        if self.grad_fn is not None:
            raise RuntimeError("deepcopy: only leaf tensors (made by the user, not recorded by "
                               "autograd) can be deep-copied; use t.detach().clone()")
        import copy
        new = type(self)._make(self.device.backend.copy(self.data), self.device, self._requires_grad)
        memo[id(self)] = new
        if self.grad is not None:
            new.grad = copy.deepcopy(self.grad, memo)
        return new

    def __reduce_ex__(self, protocol):
        """Pickles the values, dtype, device and requires_grad (not .grad or the graph),
        so tensors can cross process boundaries; checkpoints use safetensors instead."""
        host = np.array(self.device.backend.to_host(self.data))
        return (_rebuild_tensor, (type(self), host, str(self.device), self._requires_grad))

    def to(self, *args, **kwargs) -> "Tensor":
        """``to(device)``, ``to(dtype)``, ``to(device, dtype)`` or ``to(other_tensor)``;
        returns ``self`` when nothing changes. Differentiable."""
        device = kwargs.pop("device", None)
        dtype = kwargs.pop("dtype", None)
        kwargs.pop("non_blocking", None)
        copy = kwargs.pop("copy", False)
        if kwargs:
            raise TypeError(f"to: unexpected arguments {sorted(kwargs)}")
        for a in args:
            if isinstance(a, Tensor):
                device, dtype = a.device, a.dtype
            elif isinstance(a, (_dt.dtype, np.dtype)) or (
                    isinstance(a, type) and issubclass(a, (float, int, bool, np.generic))):
                dtype = a
            else:
                device = a
        from .ops import convert
        out = self
        if dtype is not None:
            out = convert.to_dtype(out, _dt.as_dtype(dtype))
        if device is not None:
            out = convert.to_device(out, as_device(device))
        if copy and out is self:
            out = self.clone()
        return out

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def cuda(self, device=None) -> "Tensor":
        return self.to("cuda" if device is None else f"cuda:{int(device)}")

    def type(self, dtype=None):
        if dtype is None:
            return f"nnforge.{self.dtype.name}"
        return self.to(dtype=dtype)

    def float(self) -> "Tensor":
        return self.to(dtype=_dt.float32)

    def double(self) -> "Tensor":
        return self.to(dtype=_dt.float64)

    def half(self) -> "Tensor":
        return self.to(dtype=_dt.float16)

    def bfloat16(self) -> "Tensor":
        return self.to(dtype=_dt.bfloat16)

    def long(self) -> "Tensor":
        return self.to(dtype=_dt.int64)

    def int(self) -> "Tensor":
        return self.to(dtype=_dt.int32)

    def bool(self) -> "Tensor":
        return self.to(dtype=_dt.bool_)

    # ---------------------------------------------------------------- printing
    def __repr__(self) -> str:
        arr = self.device.backend.to_host(self.data)
        if arr.dtype.kind == "V":  # bfloat16: numpy prints it like float32 (exactly)
            arr = arr.astype(np.float32)
        prefix = "tensor("
        if arr.size == 0:
            body = f"[], size={tuple(arr.shape)}" if arr.ndim > 1 else "[]"
        else:
            body = np.array2string(arr, separator=", ", prefix=prefix, precision=4,
                                   threshold=1000, edgeitems=3, suppress_small=False,
                                   floatmode="maxprec_equal" if arr.dtype.kind == "f" else "maxprec")
        extras = []
        if self.device.type != "cpu":
            extras.append(f"device='{self.device}'")
        default = (_dt.get_default_dtype().np, np.dtype(np.int64), np.dtype(np.bool_))
        if self.data.dtype not in default:
            extras.append(f"dtype={self.dtype!r}")
        if self.grad_fn is not None:
            extras.append(f"grad_fn=<{self.grad_fn.name()}Backward>")
        elif self._requires_grad:
            extras.append("requires_grad=True")
        return prefix + body + "".join(", " + e for e in extras) + ")"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        """A 0-d tensor formats as its number (``f"{loss:.4f}"``), as in PyTorch."""
        if self.data.ndim == 0:
            return format(self.item(), spec)
        return object.__format__(self, spec)


def _rebuild_tensor(cls, array, device, requires_grad):
    device = as_device(device)
    return cls._make(device.backend.from_host(array), device, requires_grad)


def _wrap_dim(dim: int, ndim: int, op: str) -> int:
    """Normalizes a possibly negative dim, with PyTorch's error on overflow."""
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"{op}: dimension out of range (expected to be in range of "
                         f"[{-n}, {n - 1}], but got {dim})")
    return dim + n if dim < 0 else dim
