"""A leaf's first gradient becomes its .grad without a copy only when nothing else can
reach that memory (autograd/engine.py ``exclusive``). These tests try every way a
gradient array can be shared -- one array handed to two inputs, views of the incoming
gradient, the user's ``gradient=`` array, saved tensors, globals, hooks, broadcasts --
and check that .grad never aliases it: writing into .grad (or into the other array)
afterwards must not change the other side. They also check that fresh gradients
(layer norm, linear, a weight used twice) are taken without a copy."""
import numpy as np
import pytest

import nnforge as nf
from nnforge.autograd import engine
from nnforge.autograd.function import AccumulateGrad


@pytest.fixture
def owned_log(monkeypatch):
    """The ``owned`` flag of every AccumulateGrad.accumulate call, in order."""
    log = []
    orig = AccumulateGrad.accumulate

    def spy(self, grad, owned=False):
        log.append(owned)
        return orig(self, grad, owned)
    monkeypatch.setattr(AccumulateGrad, "accumulate", spy)
    return log


def _leaf(*shape, seed=0):
    rng = np.random.default_rng(seed)
    return nf.from_numpy(rng.standard_normal(shape).astype(np.float32)).requires_grad_()


def _independent(a, b):
    """Writing into a leaves b unchanged (and the other way round)."""
    a_np, b_np = a.numpy(), b.numpy()
    assert not np.shares_memory(a_np, b_np)
    before = b_np.copy()
    a += 1.0
    np.testing.assert_array_equal(b.numpy(), before)


def test_add_both_leaves_then_second_backward_accumulates_into_one():
    a, b = _leaf(3, 4), _leaf(3, 4, seed=1)
    g = np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32)
    (a + b).backward(nf.from_numpy(g))
    np.testing.assert_array_equal(a.grad.numpy(), g)
    np.testing.assert_array_equal(b.grad.numpy(), g)
    (a * 3.0).sum().backward()  # accumulates in place into a.grad
    np.testing.assert_allclose(a.grad.numpy(), g + 3.0)
    np.testing.assert_array_equal(b.grad.numpy(), g)
    _independent(b.grad, a.grad)


def test_same_leaf_twice():
    x = _leaf(5)
    (x + x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full(5, 2.0, np.float32))
    y = _leaf(2, 3)
    (y * y + y).backward(nf.ones(2, 3))
    np.testing.assert_allclose(y.grad.numpy(), 2 * y.detach().numpy() + 1, rtol=1e-6)


@pytest.mark.parametrize("view", [
    lambda x: x.reshape(3, 2),
    lambda x: x.view(6),
    lambda x: x.flatten(),
    lambda x: x.unsqueeze(0),
    lambda x: x.T,
    lambda x: x.clone(),
    lambda x: x + 0.0,
    lambda x: x * 1.0,
    lambda x: x,
])
def test_user_gradient_is_never_aliased(view):
    """backward(gradient=G) through an identity-like op: later writes into G do not
    change x.grad, and writes into x.grad do not change G."""
    x = _leaf(2, 3)
    y = view(x)
    g_np = np.arange(y.numel(), dtype=np.float32).reshape(tuple(y.shape))
    g = nf.from_numpy(g_np)
    y.backward(g)
    expected = x.grad.numpy().copy()
    assert not np.shares_memory(x.grad.numpy(), g_np)
    g_np += 100.0
    np.testing.assert_array_equal(x.grad.numpy(), expected)
    before = g_np.copy()
    x.grad += 1.0
    np.testing.assert_array_equal(g_np, before)


def test_reshape_sum_and_view_of_a_fresh_gradient(owned_log):
    x = _leaf(2, 3)
    x.reshape(6).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones((2, 3), np.float32))
    x.grad += 1.0  # the sum's broadcast ones are read-only and shared: copied
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 3), 2.0, np.float32))
    # the reshape of an exclusively held fresh gradient is taken as it is
    owned_log.clear()
    z = _leaf(4, 6)
    (z.reshape(6, 4) * 2.0).backward(nf.ones(6, 4))
    assert owned_log == [True]
    np.testing.assert_array_equal(z.grad.numpy(), np.full((4, 6), 2.0, np.float32))


def test_retain_graph_double_backward_accumulates(owned_log):
    x, w, b = _leaf(4, 6), _leaf(6, seed=1), _leaf(6, seed=2)
    y = nf.nn.functional.layer_norm(x, (6,), w, b)
    g = nf.from_numpy(np.random.default_rng(3).standard_normal((4, 6)).astype(np.float32))
    y.backward(g, retain_graph=True)
    assert owned_log == [True, True, True]  # fresh kernel outputs: no copies
    first = [t.grad.numpy().copy() for t in (x, w, b)]
    y.backward(g)
    for t, f in zip((x, w, b), first):
        np.testing.assert_allclose(t.grad.numpy(), 2 * f, rtol=1e-6, atol=1e-6)


def test_fresh_gradients_are_taken_without_copy(owned_log):
    lin = nf.nn.Linear(5, 3)
    x = _leaf(4, 5)
    lin(x).backward(nf.ones(4, 3))
    assert owned_log and all(owned_log)
    # a weight used twice: the engine's sum of the two gradients is its own
    owned_log.clear()
    w = _leaf(3)
    ((w * 2.0) + (w * 3.0)).backward(nf.ones(3))
    assert owned_log == [True]
    np.testing.assert_array_equal(w.grad.numpy(), np.full(3, 5.0, np.float32))


def test_broadcast_and_expand():
    x, y = _leaf(3, 1), _leaf(3, 4, seed=1)
    (x + y).backward(nf.ones(3, 4))
    np.testing.assert_array_equal(x.grad.numpy(), np.full((3, 1), 4.0, np.float32))
    np.testing.assert_array_equal(y.grad.numpy(), np.ones((3, 4), np.float32))
    _independent(x.grad, y.grad)
    _independent(y.grad, x.grad)
    z = _leaf(1, 3)
    e = z.expand(4, 3)
    e.backward(nf.ones(4, 3))
    np.testing.assert_array_equal(z.grad.numpy(), np.full((1, 3), 4.0, np.float32))
    assert z.grad.numpy().flags.writeable
    z.grad += 1.0
    np.testing.assert_array_equal(z.grad.numpy(), np.full((1, 3), 5.0, np.float32))


def test_hooks_that_keep_or_return_arrays():
    x = _leaf(3)
    kept = []
    x.register_hook(lambda g: kept.append(g))
    (x * 2.0).backward(nf.ones(3))
    seen = kept[0].numpy().copy()
    x.grad += 1.0
    np.testing.assert_array_equal(kept[0].numpy(), seen)

    held = nf.from_numpy(np.full(3, 7.0, np.float32))
    y = _leaf(3)
    y.register_hook(lambda g: held)
    (y * 2.0).backward(nf.ones(3))
    np.testing.assert_array_equal(y.grad.numpy(), np.full(3, 7.0, np.float32))
    y.grad += 1.0
    np.testing.assert_array_equal(held.numpy(), np.full(3, 7.0, np.float32))

    # a hook returning a new tensor nobody keeps: the value is still right
    u = _leaf(3)
    u.register_hook(lambda g: g * 10.0)
    (u * 2.0).backward(nf.ones(3))
    np.testing.assert_array_equal(u.grad.numpy(), np.full(3, 20.0, np.float32))


def test_retain_grad_on_a_non_leaf():
    x = _leaf(2, 2)
    h = x * 2.0
    h.retain_grad()
    (h + x).backward(nf.ones(2, 2))
    np.testing.assert_array_equal(h.grad.numpy(), np.ones((2, 2), np.float32))
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 2), 3.0, np.float32))
    _independent(x.grad, h.grad)


_GLOBAL_GRAD = np.full(3, 5.0, np.float32)


class _ReturnsHeldArrays(nf.autograd.Function):
    """Backward returns arrays that something else still holds: a global, a ctx
    attribute, a saved tensor, the incoming gradient twice and a view of it."""

    @staticmethod
    def forward(ctx, a, b, c, d, e):
        ctx.kept = np.full(3, 2.0, np.float32)
        ctx.save_for_backward(np.full(3, 3.0, np.float32))
        return a + b + c + d + e

    @staticmethod
    def backward(ctx, g):
        saved, = ctx.saved_tensors
        return _GLOBAL_GRAD, ctx.kept, saved, g, g[:]


def test_custom_backward_returning_held_arrays():
    leaves = [_leaf(3, seed=i) for i in range(5)]
    out = _ReturnsHeldArrays.apply(*leaves)
    out.backward(nf.ones(3), retain_graph=True)
    for t in leaves:
        t.grad += 1.0
    np.testing.assert_array_equal(_GLOBAL_GRAD, np.full(3, 5.0, np.float32))
    np.testing.assert_array_equal(out.grad_fn.kept, np.full(3, 2.0, np.float32))
    np.testing.assert_array_equal(out.grad_fn.saved_tensors[0], np.full(3, 3.0, np.float32))
    expected = [6.0, 3.0, 4.0, 2.0, 2.0]
    for t, v in zip(leaves, expected):
        np.testing.assert_array_equal(t.grad.numpy(), np.full(3, v, np.float32))


class _SliceOfBigTemp(nf.autograd.Function):
    @staticmethod
    def forward(ctx, a):
        return a * 1.0

    @staticmethod
    def backward(ctx, g):
        big = np.zeros(1000, np.float32)
        big[:3] = g
        return big[:3]


def test_small_view_of_a_large_temporary_is_copied(owned_log):
    x = _leaf(3)
    _SliceOfBigTemp.apply(x).backward(nf.ones(3))
    assert owned_log == [False]  # taking it would keep the 1000-element array alive
    assert x.grad.numpy().base is None
    np.testing.assert_array_equal(x.grad.numpy(), np.ones(3, np.float32))


def test_exclusive_rule_directly():
    fresh = np.zeros(4)
    holder = [fresh]
    assert not engine.exclusive(holder)  # `fresh` is a second reference
    del fresh
    assert engine.exclusive(holder)
    assert engine.exclusive([np.zeros(4).reshape(2, 2)])
    assert not engine.exclusive([np.zeros((4, 4))[:, :2]])  # not contiguous
    assert not engine.exclusive([np.broadcast_to(np.zeros(1), (3,))])  # read-only
    base = np.zeros(4)
    assert not engine.exclusive([base.reshape(2, 2)])  # the base is held here too
    assert not engine.exclusive([nf.zeros(3)])  # not an array


def test_inputs_argument_and_post_accumulate_hook_still_work():
    x, w = _leaf(3), _leaf(3, seed=1)
    calls = []
    w.register_post_accumulate_grad_hook(lambda t: calls.append(t.grad.numpy().copy()))
    g = nf.ones(3)
    (x * w).backward(g, inputs=[x])
    assert w.grad is None and calls == []
    np.testing.assert_allclose(x.grad.numpy(), w.detach().numpy())
    (x * w).backward(g)
    np.testing.assert_allclose(calls[0], x.detach().numpy())
    np.testing.assert_array_equal(g.numpy(), np.ones(3, np.float32))
