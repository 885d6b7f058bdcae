"""The backward engine: reverse-mode differentiation over the recorded graph.

Iterative, never recursive (a 10,000-op chain is fine): a first pass counts,
for every node reachable from the roots, how many edges lead into it; nodes
then run in topological order (Kahn's algorithm), each once, after all the
gradients flowing into it have been summed. Gradients that arrive broadcast
are summed back to the shape of the input they belong to.

Two hooks for code that must act during backward (DistributedDataParallel's
gradient all-reduce): a leaf's post-accumulate-grad hooks run right after its
``.grad`` is updated (``Tensor.register_post_accumulate_grad_hook``), and
``queue_callback(fn)`` runs ``fn()`` once the current backward has finished.

A leaf's first gradient becomes its ``.grad`` without a copy when nothing but
the engine can reach that memory (``exclusive``); otherwise it is copied, so
``.grad`` never aliases another input's gradient, a view of one, the user's
``gradient=`` array, a saved tensor or anything a hook kept.
"""
from __future__ import annotations

import sys
import threading

from .function import AccumulateGrad

_state = threading.local()  # per thread: the callback lists of the backwards running


def queue_callback(callback) -> None:
    """Runs ``callback()`` after the backward pass that is running now has
    finished (PyTorch's ``Variable._execution_engine.queue_callback``): call it
    from a hook. Callbacks run in the order queued; one may queue another."""
    stack = getattr(_state, "callbacks", None)
    if not stack:
        raise RuntimeError("queue_callback: no backward pass is running; call it from a "
                           "hook during backward")
    stack[-1].append(callback)


def accumulate_leaf(node, grad, owned: bool = False) -> None:
    """Adds ``grad`` into the leaf's ``.grad`` (taking the array itself as the
    first ``.grad`` when ``owned``), then runs the leaf's post-accumulate-grad
    hooks with the leaf tensor."""
    node.accumulate(grad, owned)
    hooks = getattr(node, "_post_accumulate_hooks", None)
    if hooks:
        leaf = node.variable
        if leaf is not None:
            for hook in list(hooks):
                hook(leaf)


# ---------------------------------------------------------------- gradient ownership
# CPython counts references; the counts below are taken by the same two helpers on
# objects known to have one holder, so they hold on any CPython version (elsewhere,
# e.g. PyPy, there is no sys.getrefcount and every first gradient is copied).
_getrefcount = getattr(sys, "getrefcount", None)


def _refs_of_first(holder):
    return _getrefcount(holder[0])


def _refs_of_base(a):
    return _getrefcount(a.base)


class _OneHolder:
    __slots__ = ("base",)


def _one_holder_counts():
    if _getrefcount is None:
        return None, None
    probe = _OneHolder()
    probe.base = object()
    return _refs_of_first([object()]), _refs_of_base(probe)


_ONE_IN_LIST, _ONE_AS_BASE = _one_holder_counts()


def exclusive(holder) -> bool:
    """Whether ``holder[0]`` (an array in the engine's gradient buffer ``holder``)
    can become a leaf's ``.grad`` without a copy: the list holds the only reference
    to it and, when it is a view, it is the only reference to the whole array it
    views, so no other tensor, saved value, hook or user variable can reach that
    memory; and it is C-contiguous and writeable (the layout a copy would have)."""
    if _getrefcount is None or _refs_of_first(holder) != _ONE_IN_LIST:
        return False
    a = holder[0]
    flags = getattr(a, "flags", None)
    if flags is None:  # a CUDA DeviceArray: no other array may share its memory
        return (getattr(a, "storage_use_count", 0) == 1 and a.offset == 0
                and a.nbytes == a.storage_nbytes and a.is_contiguous())
    if not (flags.c_contiguous and flags.writeable):
        return False
    if a.base is None:
        return True
    if _refs_of_base(a) != _ONE_AS_BASE:
        return False
    base = a.base
    return type(base) is type(a) and base.base is None and base.nbytes == a.nbytes


def _topological_order(roots):
    """Nodes reachable from ``roots``, each after every node that feeds it."""
    roots = list(dict.fromkeys(roots))  # two outputs of one node are one root
    deps = {}
    seen = set(roots)
    stack = list(roots)
    while stack:
        node = stack.pop()
        for edge in node.next_functions:
            if edge is None:
                continue
            child = edge[0]
            deps[child] = deps.get(child, 0) + 1
            if child not in seen:
                seen.add(child)
                stack.append(child)
    ready = [n for n in roots if n not in deps]
    order = []
    while ready:
        node = ready.pop()
        order.append(node)
        for edge in node.next_functions:
            if edge is None:
                continue
            child = edge[0]
            deps[child] -= 1
            if deps[child] == 0:
                ready.append(child)
    return order


def sum_to_shape(be, grad, shape, op_name):
    """Reduces a gradient produced for a broadcast result back to ``shape``."""
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    if lead < 0:
        raise RuntimeError(f"{op_name} backward: gradient of shape {grad.shape} cannot be "
                           f"reduced to input shape {shape}")
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1)
    if axes:
        grad = be.sum(grad, axis=axes, keepdims=True)
    if lead:
        grad = be.reshape(grad, grad.shape[lead:])
    if grad.shape != shape:
        raise RuntimeError(f"{op_name} backward: gradient of shape {grad.shape} does not "
                           f"match input shape {shape}")
    return grad


def _wrap(be_array, device):
    from ..tensor import Tensor
    return Tensor._make(be_array, device, False)


def _apply_hooks(hooks, grad, device):
    for hook in list(hooks):
        out = hook(_wrap(grad, device))
        if out is not None:
            data = getattr(out, "data", None)
            if data is None or data.shape != grad.shape:
                got = tuple(data.shape) if data is not None else type(out).__name__
                raise RuntimeError(f"hook {getattr(hook, '__name__', hook)!r} returned {got}; "
                                   f"a hook must return None or a Tensor of the gradient's "
                                   f"shape {tuple(grad.shape)}")
            if data.dtype != grad.dtype:
                data = device.backend.astype(data, grad.dtype)
            grad = data
    return grad


def run_backward(roots, root_grads, retain_graph=False, capture=None, device=None):
    """Runs backward from ``roots`` (a list of (node, output_nr)) seeded with
    ``root_grads`` (backend arrays).

    Without ``capture``, gradients accumulate into the leaves' ``.grad``. With
    ``capture`` — a list of (node, output_nr) — nothing accumulates; the
    gradients reaching those outputs are returned instead (autograd.grad), and
    only nodes that lead to them run.
    """
    stack = getattr(_state, "callbacks", None)
    if stack is None:
        stack = _state.callbacks = []
    stack.append([])
    try:
        results = _run_graph(roots, root_grads, retain_graph, capture, device)
    except BaseException:
        stack.pop()
        raise
    callbacks = stack[-1]
    try:
        while callbacks:  # a callback may queue another
            callbacks.pop(0)()
    finally:
        stack.pop()
    return results


def _run_graph(roots, root_grads, retain_graph, capture, device):
    order = _topological_order([n for n, _ in roots])
    buffers = {}
    for (node, nr), g in zip(roots, root_grads):
        buf = buffers.setdefault(node, [None] * node.num_outputs)
        buf[nr] = g if buf[nr] is None else device.backend.add(buf[nr], g)

    needed = None
    results = None
    if capture is not None:
        targets = {}
        for i, key in enumerate(capture):
            targets.setdefault(key, []).append(i)
        target_nodes = {n for n, _ in capture}
        needed = set()
        for node in reversed(order):
            if node in target_nodes or any(
                    e is not None and e[0] in needed for e in node.next_functions):
                needed.add(node)
        results = [None] * len(capture)

    for node in order:
        buf = buffers.pop(node, None)
        if buf is None or (needed is not None and node not in needed):
            if not retain_graph and not isinstance(node, AccumulateGrad):
                node._release()
            continue
        hooks = getattr(node, "_hooks", None)
        if hooks:
            for nr, hs in hooks.items():
                if buf[nr] is not None and hs:
                    buf[nr] = _apply_hooks(hs, buf[nr], device)
        if needed is not None:
            for nr, g in enumerate(buf):
                for i in targets.get((node, nr), ()):
                    results[i] = g
            if isinstance(node, AccumulateGrad) or node in target_nodes and not any(
                    e is not None and e[0] in needed for e in node.next_functions):
                if not retain_graph and not isinstance(node, AccumulateGrad):
                    node._release()
                continue
        if isinstance(node, AccumulateGrad):
            owned = exclusive(buf)  # before anything else takes a reference to buf[0]
            accumulate_leaf(node, buf.pop(), owned)
            continue
        _run_node(node, buf, buffers)
        if not retain_graph:
            node._release()
    return results


def _run_node(node, buf, buffers):
    be = node.backend
    name = node.name()
    if node._freed:
        raise RuntimeError(
            f"{name}: trying to backward through the graph a second time (or to read saved "
            "values after they were freed); pass retain_graph=True to the first backward() "
            "if you need to backward twice")
    for i, g in enumerate(buf):
        if g is None:  # an output nobody used: its gradient is zero
            shape, dt = node._output_meta[i]
            buf[i] = be.zeros(shape, dt)
    grads = node.backward(node, *buf)
    if not isinstance(grads, tuple):
        grads = (grads,)
    edges = node.next_functions
    if len(grads) != len(edges):
        raise RuntimeError(f"{name}.backward returned {len(grads)} gradients, "
                           f"expected {len(edges)} (one per forward argument)")
    metas = node._input_meta
    for i, edge in enumerate(edges):
        g = grads[i]
        if edge is None or g is None:
            continue
        shape, dt = metas[i]
        if type(g) is not be.array_type:
            g = be.ensure_array(g)
        if g.shape != shape:
            g = sum_to_shape(be, g, shape, name)
        if g.dtype != dt:
            g = be.astype(g, dt)
        child, nr = edge
        cbuf = buffers.get(child)
        if cbuf is None:
            cbuf = buffers[child] = [None] * child.num_outputs
        cbuf[nr] = g if cbuf[nr] is None else be.add(cbuf[nr], g)
