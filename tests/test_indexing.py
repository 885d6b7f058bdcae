"""Indexing against numpy and PyTorch: basic (ints, slices with steps, negative,
None, Ellipsis), integer arrays (repeated indices accumulate their gradients),
boolean masks and mixtures; index assignment; index_select, gather,
scatter_add, masked_select, take, nonzero and one_hot."""
import numpy as np
import pytest

import nnforge as nf
from helpers import assert_close, check_op, requires_torch, torch

pytestmark = pytest.mark.filterwarnings("error")

SHAPE = (4, 5, 6)


def convert(index, kind):
    """An index with its numpy arrays turned into nnforge or torch tensors."""
    def one(i):
        if isinstance(i, np.ndarray):
            return nf.from_numpy(i.copy()) if kind == "nf" else torch.from_numpy(i.copy())
        return i
    return tuple(one(i) for i in index) if isinstance(index, tuple) else one(index)


def check_index(index, shape=SHAPE, torch_ok=True, **kw):
    return check_op(lambda a: a[convert(index, "nf")],
                    (lambda a: a[convert(index, "torch")]) if torch_ok else None,
                    lambda a: a[index], shapes=[shape], **kw)


# ---------------------------------------------------------------- basic indexing (views)
BASIC = [
    1, -1, (1, 2), (-4, -1, 5), slice(1, 3), slice(None, None, 2), slice(-3, None),
    slice(3, 1), slice(10, 20), (slice(None), slice(1, 5, 3)), (Ellipsis, 0), (None, 1),
    (slice(1, None), None, -2), (Ellipsis, None), (0, Ellipsis, slice(0, 6, 4)), (),
    (Ellipsis,), (None, Ellipsis, None), (1, 2, 3),
]


@pytest.mark.parametrize("index", BASIC, ids=repr)
def test_basic_index(index):
    check_index(index)


@pytest.mark.parametrize("index", [slice(None, None, -1), (slice(None), slice(4, 0, -2))], ids=repr)
def test_negative_step_slices_like_numpy(index):
    # PyTorch refuses negative steps; numpy semantics are a superset
    check_index(index, torch_ok=False)


def test_basic_index_is_a_view():
    x = nf.zeros(3, 4)
    v = x[1, 1:3]
    v.fill_(2.0)
    assert x.numpy()[1].tolist() == [0.0, 2.0, 2.0, 0.0]


@pytest.mark.parametrize("index", [0, (slice(None), 0), (Ellipsis, -1), 3, slice(0, 1)], ids=repr)
def test_basic_index_of_small_shapes(index):
    check_index(index, shape=(4, 1) if index != 3 else (5,))


def test_index_of_0d_and_empty():
    check_op(lambda a: a[None], lambda a: a[None], lambda a: a[None], shapes=[()], noncontig=False,
             gradcheck=False)
    check_op(lambda a: a[...], lambda a: a[...], lambda a: a[...], shapes=[()], noncontig=False,
             gradcheck=False)
    check_index((slice(None), 1), shape=(0, 3))


# ---------------------------------------------------------------- advanced indexing (copies)
ADVANCED = [
    np.array([0, 2, 2, 0, 3]),                         # repeated: gradients accumulate
    np.array([-1, 0, -1]),
    np.array([[0, 1], [3, 3]]),                        # 2-D index array
    (np.array([1, 1, 3]), np.array([0, 0, 4])),        # pairs, repeated
    (slice(None), np.array([2, 0, 2])),
    (np.array([0, 1]), slice(None), np.array([1, 1])),  # separated: advanced dims go first
    (Ellipsis, np.array([0, 0, 5])),
    (1, np.array([4, 4]), slice(1, 3)),
    (np.array([2]), None, slice(None)),
    np.array([], dtype=np.int64),
    (slice(None), np.array([[1], [2]]), np.array([0, 5])),  # broadcast index arrays
]


@pytest.mark.parametrize("index", ADVANCED, ids=lambda i: repr(i).replace("\n", ""))
def test_integer_array_index(index):
    check_index(index)


def test_list_index_and_repeated_gradient_accumulates():
    x = nf.zeros(4, requires_grad=True)
    x[[0, 2, 2, 2]].sum().backward()
    assert x.grad.tolist() == [1.0, 0.0, 3.0, 0.0]
    check_op(lambda a: a[[1, 1, 0]], lambda a: a[[1, 1, 0]], lambda a: a[[1, 1, 0]], shapes=[(3, 2)])


def _mask(shape, seed=0, p=0.5):
    return np.random.default_rng(seed).random(shape) < p


BOOL = [
    _mask(SHAPE), _mask(SHAPE[:1]), _mask(SHAPE[:2]), np.zeros(SHAPE, bool),
    (_mask(SHAPE[:1]), 1), (slice(None), _mask(SHAPE[1:2])), (Ellipsis, _mask(SHAPE[2:])),
    (_mask(SHAPE[:1], 3), slice(None), np.array([0, 5, 5])) if _mask(SHAPE[:1], 3).sum() in (1, 3)
    else (_mask(SHAPE[:1]), np.array([1])),
]


@pytest.mark.parametrize("index", BOOL, ids=lambda i: repr(i).replace("\n", "")[:60])
def test_bool_mask_index(index):
    check_index(index)


def test_bool_tensor_scalar_index():
    # x[True] adds a dim; x[False] adds an empty one (numpy and PyTorch agree)
    for flag in (True, False):
        check_op(lambda a: a[flag], lambda a: a[flag], lambda a: a[flag], shapes=[(2, 3)],
                 gradcheck=flag)


# ---------------------------------------------------------------- index assignment
SET_INDICES = [1, (slice(1, 3), 2), (Ellipsis, slice(None, None, 2)), np.array([0, 3]),
               _mask(SHAPE[:2]), (slice(None), np.array([1, 4]), 0)]


@pytest.mark.parametrize("index", SET_INDICES, ids=lambda i: repr(i).replace("\n", "")[:60])
def test_setitem_gradients(index):
    # y = x.clone(); y[index] = v: x gets the gradient outside the indexed part, v inside.
    target = np.zeros(SHAPE)[index].shape
    vshape = target[1:] if len(target) > 0 else ()

    def nf_fn(x, v):
        y = x.clone()
        y[convert(index, "nf")] = v
        return y

    def th_fn(x, v):
        y = x.clone()
        y[convert(index, "torch")] = v
        return y

    def np_fn(x, v):
        y = x.copy()
        y[index] = v
        return y
    check_op(nf_fn, th_fn, np_fn, shapes=[SHAPE, vshape], noncontig=len(vshape) > 0,
             gradcheck=len(vshape) > 0)


@pytest.mark.parametrize("value", [3.5, 2, True])
def test_setitem_python_scalar(value):
    x = nf.zeros(2, 3)
    x[:, 1] = value
    assert x.numpy()[:, 1].tolist() == [float(value)] * 2


def test_setitem_numpy_value_and_cast():
    x = nf.zeros(2, 3, dtype=nf.int64)
    x[0] = np.array([1.9, 2.0, -3.7])
    assert x.tolist() == [[1, 2, -3], [0, 0, 0]]


# ---------------------------------------------------------------- index_select / take
@pytest.mark.parametrize("dim,index", [(0, [3, 0, 0]), (1, [4]), (-1, [5, 0, 1, 5]), (1, [])])
def test_index_select(dim, index):
    idx = np.array(index, dtype=np.int64)
    check_op(lambda a: a.index_select(dim, nf.from_numpy(idx)),
             lambda a: a.index_select(dim, torch.from_numpy(idx)),
             lambda a: np.take(a, idx, axis=dim), shapes=[SHAPE])


def test_index_select_0d_index():
    idx = np.array(2)
    check_op(lambda a: nf.index_select(a, 1, nf.from_numpy(idx)),
             lambda a: torch.index_select(a, 1, torch.from_numpy(idx)),
             lambda a: np.take(a, [2], axis=1), shapes=[(3, 4)])


def test_take():
    idx = np.array([[0, 7], [11, 7]])
    check_op(lambda a: nf.take(a, nf.from_numpy(idx)), lambda a: torch.take(a, torch.from_numpy(idx)),
             lambda a: np.take(a, idx), shapes=[(3, 4)])


# ---------------------------------------------------------------- gather / scatter_add
def _gather_index(in_shape, idx_shape, dim, seed=0):
    return np.random.default_rng(seed).integers(0, in_shape[dim], idx_shape).astype(np.int64)


GATHER = [((3, 4), (3, 4), 0), ((3, 4), (2, 6), 1), ((3, 4), (5, 2), 0), ((2, 3, 4), (2, 3, 1), -1),
          ((3, 4), (0, 4), 0), ((5,), (7,), 0), ((3, 1), (3, 3), 1)]


@pytest.mark.parametrize("case", GATHER, ids=str)
def test_gather(case):
    in_shape, idx_shape, dim = case
    idx = _gather_index(in_shape, idx_shape, dim)

    def np_ref(a):
        grid = list(np.indices(idx.shape, sparse=True))
        grid[dim] = idx
        return a[tuple(grid)]
    check_op(lambda a: a.gather(dim, nf.from_numpy(idx)),
             lambda a: a.gather(dim, torch.from_numpy(idx)), np_ref, shapes=[in_shape])


@pytest.mark.parametrize("larger_src", [False, True])
@pytest.mark.parametrize("case", GATHER, ids=str)
def test_scatter_add(case, larger_src):
    in_shape, idx_shape, dim = case
    idx = _gather_index(in_shape, idx_shape, dim)
    # src may be larger than index (its extra part is unused); PyTorch's backward
    # rejects that case, so it is checked against numpy and gradcheck only
    src_shape = tuple(n + larger_src for n in idx_shape)

    def np_ref(a, s):
        out = a.copy()
        grid = list(np.indices(idx.shape, sparse=True))
        grid[dim] = idx
        np.add.at(out, tuple(grid), s[tuple(slice(0, n) for n in idx.shape)])
        return out
    check_op(lambda a, s: a.scatter_add(dim, nf.from_numpy(idx), s),
             None if larger_src else (lambda a, s: a.scatter_add(dim, torch.from_numpy(idx), s)),
             np_ref, shapes=[in_shape, src_shape])


def test_scatter_add_in_place():
    x = nf.zeros(3)
    x.scatter_add_(0, nf.tensor([0, 0, 2]), nf.tensor([1.0, 2.0, 3.0]))
    assert x.tolist() == [3.0, 0.0, 3.0]


# ---------------------------------------------------------------- masked_select / nonzero / one_hot
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 1), (3, 4)), ((0, 2), (2,))],
                         ids=str)
def test_masked_select(shapes):
    x_shape, m_shape = shapes
    mask = _mask(m_shape, 5)
    x = np.random.default_rng(1).standard_normal(x_shape).astype(np.float32)

    def np_ref(a, m):
        a2, m2 = np.broadcast_arrays(a, m)
        return a2[m2]
    check_op(nf.masked_select, lambda a, m: torch.masked_select(a, m), np_ref, inputs=[x, mask])


@pytest.mark.parametrize("shape", [(3, 4), (5,), (2, 0), (), (2, 2, 3)], ids=str)
def test_nonzero(shape):
    x = np.random.default_rng(0).integers(0, 2, shape).astype(np.float32)
    check_op(nf.nonzero, lambda a: torch.nonzero(a),
             lambda a: np.argwhere(a) if a.ndim else np.zeros((int(a != 0), 0), np.int64),
             inputs=[x], grad=False)
    check_op(lambda a: nf.nonzero(a, as_tuple=True), lambda a: torch.nonzero(a, as_tuple=True),
             lambda a: np.nonzero(np.atleast_1d(a)), inputs=[x], grad=False)


@pytest.mark.parametrize("labels,num_classes", [([0, 2, 1, 2], -1), ([[1], [0]], 3), ([3], 5),
                                                ([], 4), (2, 3)])
def test_one_hot(labels, num_classes):
    lab = np.array(labels, dtype=np.int64)
    n = num_classes if num_classes > 0 else lab.max() + 1
    check_op(lambda a: nf.one_hot(a, num_classes),
             lambda a: torch.nn.functional.one_hot(a, num_classes),
             lambda a: np.eye(n, dtype=np.int64)[a], inputs=[lab], grad=False)


@requires_torch
def test_getitem_with_int_tensor_and_numpy_int():
    x = np.arange(12.0).reshape(3, 4)
    a, t = nf.from_numpy(x), torch.from_numpy(x)
    assert_close(a[nf.tensor(2)], t[torch.tensor(2)])
    assert_close(a[np.int64(1), np.int32(2)], t[1, 2])
    assert_close(a[nf.tensor([True, False, True])], t[torch.tensor([True, False, True])])
