"""In-place ops: values, version counters, the checks that keep autograd
correct (saved values, leaves, views) and gradients through in-place edits."""
import numpy as np
import pytest

import nnforge as nf
from helpers import HAS_TORCH, assert_close, requires_torch

if HAS_TORCH:
    import torch


def _x():
    return np.array([[0.5, -1.5, 2.0], [1.25, -0.25, 3.0]], dtype=np.float32)


OTHER = np.array([[2.0, 0.5, -1.0], [4.0, 1.0, 0.25]], dtype=np.float32)

# name -> (args for the nnforge call, numpy reference of the result)
INPLACE = {
    "add_": ((nf.tensor(OTHER),), lambda x: x + OTHER),
    "add_scalar": ((2.5,), lambda x: x + 2.5),
    "sub_": ((nf.tensor(OTHER),), lambda x: x - OTHER),
    "mul_": ((nf.tensor(OTHER),), lambda x: x * OTHER),
    "mul_broadcast": ((nf.tensor([2.0, 3.0, 4.0]),), lambda x: x * [2.0, 3.0, 4.0]),
    "div_": ((nf.tensor(OTHER),), lambda x: x / OTHER),
    "pow_": ((2,), lambda x: x ** 2),
    "neg_": ((), lambda x: -x),
    "abs_": ((), np.abs),
    "exp_": ((), np.exp),
    "tanh_": ((), np.tanh),
    "sigmoid_": ((), lambda x: 1 / (1 + np.exp(-x))),
    "relu_": ((), lambda x: np.maximum(x, 0)),
    "clamp_": ((-1.0, 1.0), lambda x: np.clip(x, -1, 1)),
    "clip_": ((-1.0, 1.0), lambda x: np.clip(x, -1, 1)),
    "masked_fill_": ((nf.tensor([True, False, True]), 9.0), lambda x: np.where([1, 0, 1], 9.0, x)),
    "fill_": ((7.0,), lambda x: np.full_like(x, 7.0)),
    "zero_": ((), np.zeros_like),
    "copy_": ((nf.tensor(OTHER),), lambda x: OTHER),
    "copy_broadcast": ((nf.tensor([1, 2, 3]),), lambda x: np.broadcast_to([1.0, 2.0, 3.0], x.shape)),
}


def _method(name):
    return name.split("_scalar")[0].split("_broadcast")[0].rstrip("_") + "_"


@pytest.mark.parametrize("name", sorted(INPLACE))
def test_inplace_values_and_version(name):
    args, ref = INPLACE[name]
    x = nf.tensor(_x())
    data_before = x.data
    v0 = x._version
    out = getattr(x, _method(name))(*args)
    assert out is x
    assert x.data is data_before  # written into the same storage
    assert x._version == v0 + 1
    np.testing.assert_allclose(x.numpy(), ref(_x()), rtol=1e-6)


@pytest.mark.parametrize("name", ["log_", "sqrt_"])
def test_inplace_on_positive_values(name):
    x = nf.tensor([0.5, 2.0, 4.0])
    getattr(x, name)()
    np.testing.assert_allclose(x.numpy(), getattr(np, name[:-1])([0.5, 2.0, 4.0]), rtol=1e-6)
    assert x._version == 1


def test_clamp_keyword_bounds():
    x = nf.tensor([1.0, 2.0, 3.0])
    x.clamp_(min=1.5, max=2.5)
    assert x.tolist() == [1.5, 2.0, 2.5]
    x.clamp_(max=2.0)
    assert x.tolist() == [1.5, 2.0, 2.0]


def test_scatter_add_inplace():
    x = nf.zeros(2, 3)
    x.scatter_add_(1, nf.tensor([[0, 0, 2], [1, 1, 1]]), nf.ones(2, 3))
    assert x.tolist() == [[2.0, 0.0, 1.0], [0.0, 3.0, 0.0]]


def test_random_fills_bump_version_and_respect_generator():
    x = nf.zeros(1000)
    x.uniform_(2.0, 3.0)
    assert x._version == 1 and 2.0 <= x.numpy().min() and x.numpy().max() < 3.0
    x.normal_(5.0, 0.1)
    assert x._version == 2 and abs(x.numpy().mean() - 5.0) < 0.05
    x.bernoulli_(0.25)
    assert x._version == 3 and set(np.unique(x.numpy())) <= {0.0, 1.0}
    assert 0.15 < x.numpy().mean() < 0.35
    a = nf.zeros(5).uniform_(generator=nf.Generator().manual_seed(3))
    b = nf.zeros(5).uniform_(generator=nf.Generator().manual_seed(3))
    assert a.tolist() == b.tolist()
    with pytest.raises(TypeError, match="floating point"):
        nf.zeros(3, dtype=nf.int64).uniform_()


@pytest.mark.parametrize("fill", [lambda t: t.uniform_(), lambda t: t.normal_(),
                                  lambda t: t.bernoulli_(0.5), lambda t: t.fill_(1.0),
                                  lambda t: t.zero_()])
def test_overwriting_a_non_leaf_cuts_the_gradient_to_the_old_values(fill):
    x = nf.ones(3, requires_grad=True)
    h = x * 2
    fill(h)
    assert h.requires_grad and h._version == 1
    (h * 3).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 0.0]


def test_inplace_ops_on_int_tensors():
    x = nf.tensor([1, 2, 3])
    x.add_(2).mul_(3)
    assert x.tolist() == [9, 12, 15] and x.dtype is nf.int64
    with pytest.raises(RuntimeError, match="cannot be cast"):
        x.add_(0.5)
    with pytest.raises(RuntimeError, match="cannot be cast"):
        x.div_(2)
    assert x.tolist() == [9, 12, 15]  # a refused in-place op leaves the tensor alone
    x.fill_(4)
    assert x.tolist() == [4, 4, 4]
    x.copy_(nf.tensor([1.7, 2.2, -3.9]))  # copy_ casts, truncating as PyTorch does
    assert x.tolist() == [1, 2, -3]


def test_inplace_into_lower_precision_float():
    x = nf.ones(2, dtype=nf.float32)
    x.add_(nf.ones(2, dtype=nf.float64))
    assert x.dtype is nf.float32 and x.tolist() == [2.0, 2.0]


def test_inplace_result_of_broadcast_shape_raises():
    x = nf.zeros(3, 1)
    with pytest.raises(RuntimeError, match=r"add_.*\(3, 4\).*\(3, 1\)"):
        x.add_(nf.ones(3, 4))
    with pytest.raises(ValueError, match=r"copy_.*\(4,\).*\(3, 1\)"):
        x.copy_(nf.ones(4))


@pytest.mark.parametrize("op", [lambda t: t.add_(1), lambda t: t.fill_(1.0), lambda t: t.zero_(),
                                lambda t: t.copy_(nf.ones(3, 4)), lambda t: t.__setitem__(0, 1.0),
                                lambda t: t.uniform_()])
def test_writing_into_an_expanded_view_is_refused(op):
    base = nf.zeros(3, 1)
    with pytest.raises(RuntimeError, match=r"read-only.*clone\(\)"):
        op(base.expand(3, 4))
    assert base.tolist() == [[0.0]] * 3 and base._version == 0


def test_writing_into_a_read_only_numpy_array_is_refused():
    a = np.zeros(3, dtype=np.float32)
    a.flags.writeable = False
    with pytest.raises(RuntimeError, match="read-only"):
        nf.from_numpy(a).mul_(2)


def test_fill_with_tensor_value():
    x = nf.zeros(3)
    x.fill_(nf.tensor(2.5))
    assert x.tolist() == [2.5] * 3
    with pytest.raises(ValueError, match="0-d"):
        x.fill_(nf.ones(2))


# ---------------------------------------------------------------- operators
def test_augmented_assignment_is_in_place():
    x = nf.tensor([1.0, 2.0])
    alias = x
    x += 1
    x -= 0.5
    x *= 4
    x /= 2
    x **= 2
    assert x is alias and x._version == 5
    np.testing.assert_allclose(x.numpy(), ((np.array([1.0, 2.0]) + 0.5) * 2) ** 2)


def test_augmented_assignment_on_leaf_requiring_grad_raises():
    x = nf.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        x += 1


# ---------------------------------------------------------------- autograd checks
def test_inplace_on_leaf_requiring_grad_raises_but_works_under_no_grad():
    w = nf.ones(3, requires_grad=True)
    for op in (lambda: w.add_(1), lambda: w.mul_(2), lambda: w.zero_(), lambda: w.fill_(1.0),
               lambda: w.copy_(nf.zeros(3)), lambda: w.uniform_()):
        with pytest.raises(RuntimeError, match="leaf"):
            op()
    assert w._version == 0 and w.tolist() == [1.0, 1.0, 1.0]
    with nf.no_grad():
        w.sub_(0.5)
        w.mul_(4)
    assert w.tolist() == [2.0, 2.0, 2.0]
    assert w.is_leaf and w.requires_grad and w.grad_fn is None
    (w * w).sum().backward()
    assert w.grad.tolist() == [4.0, 4.0, 4.0]


def test_modifying_a_saved_output_raises_at_backward():
    x = nf.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()  # Exp saves its output
    y.add_(1)
    with pytest.raises(RuntimeError,
                       match=r"Exp.*modified by an in-place operation.*version 1.*version 0"):
        y.sum().backward()


def test_modifying_sigmoid_output_raises():
    x = nf.tensor([1.0, 2.0], requires_grad=True)
    y = x.sigmoid()
    y.mul_(2)
    with pytest.raises(RuntimeError, match="Sigmoid.*in-place"):
        y.sum().backward()


def test_modifying_a_saved_input_raises():
    x = nf.tensor([1.0, 2.0], requires_grad=True)
    h = x * 1
    y = h * h  # Mul saves h
    h.add_(1)
    with pytest.raises(RuntimeError, match="Mul.*in-place"):
        y.sum().backward()


def test_modifying_an_unsaved_value_is_fine():
    x = nf.tensor([1.0, 2.0], requires_grad=True)
    h = x * 1
    y = h + 1  # Add saves nothing
    h.mul_(3)
    y.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]


def test_modifying_a_saved_tensor_under_no_grad_also_raises():
    x = nf.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()
    with nf.no_grad():
        y.zero_()
    with pytest.raises(RuntimeError, match="in-place"):
        y.sum().backward()


def _non_leaf_chain(lib):
    x = lib.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y2 = lib.tensor([0.5, 4.0, -1.0], requires_grad=True)
    y = x * 2
    y.mul_(y2)
    y.add_(1)
    y.pow_(2)
    y.sub_(x)
    y.div_(y2 + 3)
    y.clamp_(-20.0, 20.0)
    y.tanh_()
    (y * lib.tensor([1.0, 2.0, 3.0])).sum().backward()
    return y, x.grad, y2.grad


@requires_torch
def test_inplace_chain_on_non_leaf_matches_torch():
    for got, expected in zip(_non_leaf_chain(nf), _non_leaf_chain(torch)):
        assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_inplace_chain_on_non_leaf_gradcheck():
    def f(x, y2):
        y = x * 2
        y.mul_(y2)
        y.add_(1)
        y.sigmoid_()
        return y

    x = nf.randn(4, dtype=nf.float64, requires_grad=True)
    y2 = nf.randn(4, dtype=nf.float64, requires_grad=True)
    assert nf.autograd.gradcheck(f, (x, y2))


def test_inplace_makes_a_plain_tensor_part_of_the_graph():
    w = nf.tensor([1.0, 2.0], requires_grad=True)
    buf = nf.zeros(2)
    buf.add_(w * 3)
    assert buf.requires_grad and not buf.is_leaf
    (buf * buf).sum().backward()
    assert w.grad.tolist() == [18.0, 36.0]


@requires_torch
@pytest.mark.parametrize("op", ["fill_", "zero_", "copy_", "copy_broadcast"])
def test_overwriting_inplace_ops_gradients_match_torch(op):
    def run(lib):
        a = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        b = lib.tensor([4.0, 5.0, 6.0], requires_grad=True)
        x = a * a
        if op == "fill_":
            x.fill_(2.0)
        elif op == "zero_":
            x.zero_()
        elif op == "copy_":
            x.copy_(b * 2)
        else:
            x.copy_((b[1] * 3).reshape(1))
        (x * lib.tensor([1.0, 2.0, 3.0]) + a).sum().backward()
        return x, a.grad, b.grad

    for got, expected in zip(run(nf), run(torch)):
        if expected is None:
            assert got is None or not got.numpy().any()
        else:
            assert_close(got, expected)


def test_fill_with_tensor_requiring_grad():
    v = nf.tensor(2.0, requires_grad=True)
    x = nf.zeros(3)
    x.fill_(v)
    (x * nf.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert v.grad.item() == 6.0


# ---------------------------------------------------------------- views
def test_views_share_the_version_counter():
    base = nf.zeros(2, 3)
    views = [base[0], base[:, 1:], base.T, base.reshape(6), base.view(3, 2), base.transpose(0, 1),
             base.unsqueeze(0), base.flatten()]
    base.add_(1)
    for v in views:
        assert v._version == base._version == 1
    views[0].mul_(5)
    assert base._version == 2 and base.numpy()[0].tolist() == [5.0, 5.0, 5.0]
    assert views[1].numpy().tolist() == [[5.0, 5.0], [1.0, 1.0]]


def test_modifying_base_of_a_saved_view_raises_at_backward():
    x = nf.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    base = x * 1
    v = base[0]
    y = v * v  # saves the view
    with nf.no_grad():
        base.add_(1)
    with pytest.raises(RuntimeError, match="in-place"):
        y.sum().backward()


def test_modifying_a_view_of_a_saved_base_raises_at_backward():
    base = nf.tensor([[1.0, 2.0], [3.0, 4.0]])
    x = nf.tensor([1.0, 1.0], requires_grad=True)
    y = base * x  # saves base
    base[0].mul_(2)  # base does not require grad, so this is allowed
    with pytest.raises(RuntimeError, match="in-place"):
        y.sum().backward()


def test_inplace_on_view_of_tensor_requiring_grad_raises():
    x = nf.ones(2, 2, requires_grad=True)
    h = x * 2
    with pytest.raises(RuntimeError, match="view"):
        h[0].add_(1)


def test_view_made_before_a_recorded_inplace_on_its_base_is_refused():
    # PyTorch rebases the view onto the base's new history; nnforge refuses
    # rather than give the view's consumers gradients from the old history.
    x = nf.ones(4, requires_grad=True)
    h = x * 1
    v = h[0:2]
    h.mul_(2)
    assert v.tolist() == [2.0, 2.0]  # the values are current ...
    with pytest.raises(RuntimeError, match="view.*in-place.*take the view again"):
        v.sum()  # ... but the graph is not
    with nf.no_grad():
        assert v.sum().item() == 4.0  # no graph: fine
    h[0:2].sum().backward()  # a view taken afterwards is fine
    assert x.grad.tolist() == [2.0, 2.0, 0.0, 0.0]


def test_view_of_plain_base_that_joins_the_graph_is_refused():
    base = nf.zeros(4)
    v = base[:2]
    w = nf.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    base.add_(w)
    with pytest.raises(RuntimeError, match="view"):
        v * 3


def test_inplace_on_view_with_operand_requiring_grad_is_refused():
    base = nf.zeros(4)
    w = nf.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="view"):
        base[:2].add_(w)
    assert base.tolist() == [0.0] * 4


def test_view_of_a_detached_alias_is_not_affected_by_the_graph():
    x = nf.ones(3, requires_grad=True)
    h = x * 1
    v = h.detach()[:2]
    h.mul_(2)
    assert (v * 3).tolist() == [6.0, 6.0]  # same storage, but no graph to go stale


def test_views_under_no_grad_stay_usable():
    x = nf.ones(3, requires_grad=True)
    h = x * 1
    with nf.no_grad():
        v = h[:2]
    h.add_(1)
    assert (v * 2).tolist() == [4.0, 4.0]


def test_detached_tensor_sees_inplace_edits_and_shares_version():
    x = nf.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()
    d = y.detach()
    d.zero_()
    assert y.tolist() == [0.0, 0.0] and y._version == 1
    with pytest.raises(RuntimeError, match="in-place"):
        y.sum().backward()


# ---------------------------------------------------------------- setitem
def test_setitem_values():
    x = nf.zeros(3, 4)
    x[0] = 1.0
    x[1, 1:3] = nf.tensor([2.0, 3.0])
    x[:, -1] = nf.tensor([7.0, 8.0, 9.0])
    x[nf.tensor([2, 2])] = 5.0
    x[x > 8.5] = -1.0
    expected = np.zeros((3, 4))
    expected[0] = 1
    expected[1, 1:3] = [2, 3]
    expected[:, -1] = [7, 8, 9]
    expected[2] = 5
    expected[expected > 8.5] = -1
    np.testing.assert_array_equal(x.numpy(), expected)
    assert x._version == 5


def _setitem_case(lib, index_kind):
    x = lib.tensor([[1.0, -2.0, 3.0], [0.5, 4.0, -1.0], [2.0, 2.0, 2.0]], requires_grad=True)
    v = lib.tensor([10.0, 20.0, 30.0], requires_grad=True)
    y = x * x
    if index_kind == "int":
        y[1] = v * 2
    elif index_kind == "slice":
        y[:, 1] = v.exp()
    elif index_kind == "step":
        y[::2, 0] = v[:2]
    elif index_kind == "int_tensor":
        y[lib.tensor([2, 0])] = v  # broadcast over the selected rows
    elif index_kind == "pair":
        y[lib.tensor([0, 2, 1]), lib.tensor([2, 0, 0])] = v
    elif index_kind == "mask":
        y[y > 3] = v[0]
    elif index_kind == "scalar":
        y[0, 0] = 5.0
    (y * lib.tensor([1.0, 2.0, 3.0])).sum().backward()
    return y, x.grad, v.grad


@requires_torch
@pytest.mark.parametrize("index_kind", ["int", "slice", "step", "int_tensor", "pair", "mask", "scalar"])
def test_setitem_gradients_match_torch(index_kind):
    for got, expected in zip(_setitem_case(nf, index_kind), _setitem_case(torch, index_kind)):
        if expected is None:
            assert got is None or not got.numpy().any()
        else:
            assert_close(got, expected, rtol=1e-5)


def test_setitem_gradcheck():
    def f(x, v):
        y = x * 1
        y[1:, 0] = v
        y[0] = y[0] + v[0]  # (y[0] * v[0] would save a view that the assignment then changes)
        return y

    x = nf.randn(3, 2, dtype=nf.float64, requires_grad=True)
    v = nf.randn(2, dtype=nf.float64, requires_grad=True)
    assert nf.autograd.gradcheck(f, (x, v))


def test_setitem_on_leaf_requiring_grad_raises():
    x = nf.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        x[0] = 1.0
    with nf.no_grad():
        x[0] = 1.0
    assert x.tolist() == [1.0, 0.0, 0.0]


def test_setitem_errors():
    x = nf.zeros(2, 3)
    with pytest.raises(IndexError, match=r"\(2, 3\)"):
        x[5] = 1.0
    with pytest.raises(ValueError, match=r"index_put.*\(4,\).*\(2, 3\)"):
        x[0] = nf.ones(4)
    assert x._version == 0 and not x.numpy().any()
