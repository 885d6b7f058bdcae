"""Backward-time hooks for DistributedDataParallel: Tensor.register_post_accumulate_grad_hook
(after a leaf's .grad is updated) and autograd.queue_callback (after the whole backward),
compared with PyTorch's order of events where it is installed."""
import numpy as np
import pytest

import nnforge as nf
from helpers import HAS_TORCH, requires_torch

if HAS_TORCH:
    import torch


def _events(lib, queue):
    """Order of events of a two-layer chain: post-accumulate hooks and a queued callback."""
    w1 = lib.tensor([1.0, 2.0], requires_grad=True)
    w2 = lib.tensor([3.0, -1.0], requires_grad=True)
    events = []

    def post(name):
        def hook(t):
            events.append((name, t.grad.tolist()))
            if name == "w2":  # queued from a hook, as DDP does
                queue(lambda: events.append(("done", w1.grad.tolist())))
        return hook
    w1.register_post_accumulate_grad_hook(post("w1"))
    w2.register_post_accumulate_grad_hook(post("w2"))
    ((w1 * 2).exp() * w2).sum().backward()
    return events


def test_post_accumulate_hook_sees_grad_and_callback_runs_last():
    events = _events(nf, nf.autograd.queue_callback)
    names = [e[0] for e in events]
    # w2 is nearer the loss: its gradient is ready first; the callback runs after both.
    assert names == ["w2", "w1", "done"]
    np.testing.assert_allclose(events[0][1], np.exp([2.0, 4.0]), rtol=1e-6)
    np.testing.assert_allclose(events[1][1], 2 * np.exp([2.0, 4.0]) * [3.0, -1.0], rtol=1e-6)
    assert events[2][1] == events[1][1]


@requires_torch
def test_event_order_matches_torch():
    ours = _events(nf, nf.autograd.queue_callback)
    theirs = _events(torch, torch.autograd.Variable._execution_engine.queue_callback)
    assert [e[0] for e in ours] == [e[0] for e in theirs]
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a[1], b[1], rtol=1e-5)


def test_post_accumulate_hook_runs_after_accumulation_and_removes():
    w = nf.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    handle = w.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.tolist()))
    (w * 3).sum().backward()
    (w * 3).sum().backward()  # accumulates: the hook sees the sum
    assert seen == [[3.0, 3.0], [6.0, 6.0]]
    handle.remove()
    (w * 3).sum().backward()
    assert len(seen) == 2


def test_post_accumulate_hook_with_backward_inputs():
    w = nf.tensor([1.0], requires_grad=True)
    v = nf.tensor([2.0], requires_grad=True)
    seen = []
    w.register_post_accumulate_grad_hook(lambda t: seen.append("w"))
    v.register_post_accumulate_grad_hook(lambda t: seen.append("v"))
    (w * v).sum().backward(inputs=[w])
    assert seen == ["w"] and v.grad is None


def test_post_accumulate_hook_errors():
    with pytest.raises(RuntimeError, match="does not require gradient"):
        nf.tensor([1.0]).register_post_accumulate_grad_hook(lambda t: None)
    x = nf.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="non-leaf"):
        (x * 2).register_post_accumulate_grad_hook(lambda t: None)


def test_queue_callback_outside_backward_raises():
    with pytest.raises(RuntimeError, match="no backward pass is running"):
        nf.autograd.queue_callback(lambda: None)


def test_callbacks_are_dropped_when_backward_fails():
    x = nf.tensor([1.0], requires_grad=True)
    ran = []

    def boom(g):
        nf.autograd.queue_callback(lambda: ran.append(1))
        raise ValueError("hook failed")
    y = x * 2
    y.register_hook(boom)
    with pytest.raises(ValueError, match="hook failed"):
        y.sum().backward()
    assert ran == []
    (x * 2).sum().backward()  # the engine is usable again, nothing stale queued
    assert ran == [] and x.grad.tolist() == [2.0]


def test_callback_may_queue_another_and_nested_backward_has_its_own():
    x = nf.tensor([1.0], requires_grad=True)
    order = []

    def inner_backward():
        z = nf.tensor([1.0], requires_grad=True)
        z.register_hook(lambda g: nf.autograd.queue_callback(lambda: order.append("inner")))
        (z * 1).sum().backward()
        order.append("after inner")
        nf.autograd.queue_callback(lambda: order.append("chained"))

    x.register_hook(lambda g: nf.autograd.queue_callback(inner_backward))
    (x * 2).sum().backward()
    assert order == ["inner", "after inner", "chained"]
