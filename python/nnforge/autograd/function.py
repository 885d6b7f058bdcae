"""``Function``: one differentiable op, forward and backward side by side.

A subclass writes ``forward(ctx, *args)`` and ``backward(ctx, *grad_outputs)``
as static methods over *backend arrays*: ``forward`` receives the arrays of its
tensor arguments (other arguments as they are) and returns an array or a tuple
of arrays; ``backward`` receives one gradient array per output and returns one
gradient (or None) per argument of ``forward``. ``Function.apply`` wraps arrays
into Tensors and, when any input requires grad, records the call as a graph
node — the ctx object itself is that node.

>>> import nnforge as nf
>>> class Square(nf.autograd.Function):
...     @staticmethod
...     def forward(ctx, x):
...         ctx.save_for_backward(x)
...         return ctx.backend.multiply(x, x)
...     @staticmethod
...     def backward(ctx, g):
...         x, = ctx.saved_tensors
...         return ctx.backend.multiply(g, ctx.backend.multiply(x, 2))
>>> x = nf.tensor([3.0], requires_grad=True)
>>> Square.apply(x).backward(nf.ones(1)); x.grad.tolist()
[6.0]
"""
from __future__ import annotations

from .grad_mode import is_grad_enabled


class Node:
    """A vertex of the backward graph.

    ``next_functions[i]`` is ``(node, output_nr)`` for the i-th argument of the
    op that needs a gradient, else None; gradients reaching this node are
    summed per output and handed to ``_run_backward``.
    """

    _freed = False
    next_functions: tuple = ()
    num_outputs = 1

    def _pre_hooks_for(self, output_nr):
        hooks = getattr(self, "_hooks", None)
        return hooks.get(output_nr) if hooks else None

    def register_prehook(self, output_nr: int, hook):
        if getattr(self, "_hooks", None) is None:
            self._hooks = {}
        lst = self._hooks.setdefault(output_nr, [])
        lst.append(hook)
        return _RemovableHandle(lst, hook)

    def name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        return f"<{self.name()}Backward>"


class _RemovableHandle:
    def __init__(self, hooks: list, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        try:
            self._hooks.remove(self._hook)
        except ValueError:
            pass


class Function(Node):
    """Base class of every differentiable op (see the module docstring)."""

    # View ops (reshape, transpose, basic slicing, ...) set this: their output
    # shares its version counter with the input, so in-place edits of either
    # are seen by both.
    is_view = False
    # Defaults until forward calls save_for_backward / mark_non_differentiable.
    _to_save = None
    _non_diff: frozenset = frozenset()

    @staticmethod
    def forward(ctx, *args):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError

    # -- called from forward
    def save_for_backward(self, *arrays) -> None:
        self._to_save = arrays

    def mark_non_differentiable(self, *arrays) -> None:
        self._non_diff = {id(a) for a in arrays}

    @property
    def saved_tensors(self) -> tuple:
        if self._freed:
            raise RuntimeError(
                f"{self.name()}: trying to backward through the graph a second time "
                "(or to read saved values after they were freed); pass retain_graph=True "
                "to the first backward() if you need to backward twice")
        for box, version, shape in getattr(self, "_saved_versions", ()):
            if box[0] != version:
                raise RuntimeError(
                    f"{self.name()}: one of the tensors needed for gradient computation "
                    f"(shape {shape}) has been modified by an in-place operation: "
                    f"it is at version {box[0]}, expected version {version}. "
                    "Clone it before modifying it in place.")
        return self._to_save

    def _release(self) -> None:
        self._to_save = None
        self._saved_versions = ()
        self._freed = True

    # -- the call
    @classmethod
    def apply(cls, *args):
        Tensor = _Tensor or _tensor_class()
        ctx = cls()
        grad_mode = is_grad_enabled()
        device = first = None
        record = False
        unpacked = []
        for a in args:
            if isinstance(a, Tensor):
                d = a.device
                if first is None:
                    first, device = a, d
                elif d is not device and d != device:
                    raise ValueError(f"{cls.__name__}: expected all tensors on one device, "
                                     f"got {device} and {d}")
                if grad_mode:
                    if a._view_epoch is not None:
                        a._check_view_fresh(cls.__name__)
                    record = record or a._requires_grad
                unpacked.append(a.data)
            else:
                unpacked.append(a)
        if first is None:
            raise TypeError(f"{cls.__name__}.apply: needs at least one Tensor argument")
        be = ctx.backend = device.backend
        if record:
            needs = tuple(isinstance(a, Tensor) and a._requires_grad for a in args)
        else:
            needs = (False,) * len(args)
        ctx.needs_input_grad = needs

        out = cls.forward(ctx, *unpacked)

        single = not isinstance(out, tuple)
        outs = (out,) if single else out
        non_diff = ctx._non_diff
        array_type = be.array_type
        results = []
        for i, o in enumerate(outs):
            if type(o) is not array_type:
                o = be.ensure_array(o)
            diff = record and id(o) not in non_diff
            t = Tensor._make(o, device, diff)
            if diff:
                t.grad_fn = ctx
                t._output_nr = i
            results.append(t)

        if cls.is_view:
            for t in results:
                t._as_view_of(first)

        if record:
            ctx.num_outputs = len(outs)
            ctx.next_functions = tuple(
                a._edge() if need else None for a, need in zip(args, needs))
            ctx._input_meta = tuple(
                (a.data.shape, a.data.dtype) if need else None for a, need in zip(args, needs))
            ctx._output_meta = tuple((o.data.shape, o.data.dtype) for o in results)
            saved = ctx._to_save
            if saved:
                # Keep each saved tensor's version box, not the tensor: an output
                # held by its own grad_fn would be a reference cycle, kept alive
                # (with its data) until the garbage collector runs.
                inputs = [a for a in args if isinstance(a, Tensor)]
                versions = []
                for s in saved:
                    for t in (*inputs, *results):
                        if t.data is s:
                            versions.append((t._version_box, t._version_box[0], tuple(t.shape)))
                            break
                ctx._saved_versions = versions
        elif ctx._to_save is not None:
            ctx._to_save = None

        return results[0] if single else tuple(results)


_Tensor = None


def _tensor_class():
    """nnforge.Tensor, imported on first use (tensor.py imports this module)."""
    global _Tensor
    if _Tensor is None:
        from ..tensor import Tensor
        _Tensor = Tensor
    return _Tensor


class AccumulateGrad(Node):
    """The node of a leaf tensor: adds the incoming gradient into ``leaf.grad``."""

    def __init__(self, leaf):
        import weakref
        self._leaf = weakref.ref(leaf)
        self.next_functions = ()
        leaf_data = leaf.data
        self._output_meta = ((leaf_data.shape, leaf_data.dtype),)

    @property
    def variable(self):
        return self._leaf()

    def name(self) -> str:
        return "AccumulateGrad"

    def accumulate(self, grad, owned: bool = False) -> None:
        """Adds ``grad`` into ``leaf.grad``. The first gradient becomes ``.grad``:
        the array itself when ``owned`` (the engine held the only reference to it,
        see engine.exclusive), else a copy, because a backward may hand one array
        to several inputs, or return a view of its incoming gradient or the
        user's ``gradient=`` array, and ``.grad`` must not alias any of them."""
        leaf = self._leaf()
        if leaf is None:
            return
        from ..tensor import Tensor
        be = leaf.device.backend
        if leaf.grad is None:
            leaf.grad = Tensor._make(grad if owned else be.copy(grad), leaf.device, False)
        else:
            be.add_(leaf.grad.data, grad)
            leaf.grad._bump_version()
