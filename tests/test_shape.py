"""Shape ops against numpy and PyTorch: reshape/view, flatten/unflatten,
squeeze/unsqueeze, permute/transpose/.T/.mT, expand, repeat, contiguous,
cat/stack/split/chunk/unbind/narrow, pad (all modes), flip and dtype casts;
forward over odd/size-1/empty/non-contiguous inputs, gradients, gradcheck."""
import numpy as np
import pytest

import nnforge as nf
from helpers import assert_close, check_op, requires_torch, torch

pytestmark = pytest.mark.filterwarnings("error")


def layouts_ok(shapes):
    """check_op's 'transposed' layout turns a 0-d input into shape (1,) (see test_pointwise)."""
    return all(len(s) > 0 for s in shapes)


def F():
    return torch.nn.functional


# ---------------------------------------------------------------- reshape / view
RESHAPES = [
    ((2, 3, 4), (6, 4)), ((2, 3, 4), (-1,)), ((2, 3, 4), (4, -1, 2)), ((6,), (1, 6, 1)),
    ((), (1,)), ((1,), ()), ((0, 3), (3, 0)), ((0, 3), (-1, 3)), ((2, 0), (0,)),
    ((5, 1), (5,)),
]


@pytest.mark.parametrize("shapes", RESHAPES, ids=str)
def test_reshape(shapes):
    src, dst = shapes
    check_op(lambda a: a.reshape(dst), lambda a: a.reshape(dst), lambda a: a.reshape(dst),
             shapes=[src], noncontig=layouts_ok([src]))
    check_op(lambda a: nf.reshape(a, *dst), lambda a: torch.reshape(a, dst),
             lambda a: a.reshape(dst), shapes=[src], noncontig=False)


@pytest.mark.parametrize("shapes", RESHAPES, ids=str)
def test_view_of_contiguous(shapes):
    src, dst = shapes
    out = check_op(lambda a: a.view(dst), lambda a: a.view(dst), lambda a: a.reshape(dst),
                   shapes=[src], noncontig=False)
    assert tuple(out.shape) == tuple(np.empty(src).reshape(dst).shape)


def test_view_shares_storage_and_reshape_of_noncontiguous_copies():
    x = nf.arange(6.0).reshape(2, 3)
    v = x.view(3, 2)
    v[0, 0] = 100.0
    assert x[0, 0].item() == 100.0
    r = x.t().reshape(-1)
    assert r.tolist() == [100.0, 3.0, 1.0, 4.0, 2.0, 5.0]


@pytest.mark.parametrize("make", [lambda x: x.t(), lambda x: x[:, :2], lambda x: x.permute(1, 0)],
                         ids=["t", "strided", "permute"])
def test_view_of_noncontiguous_raises_clearly(make):
    x = nf.arange(12.0).reshape(3, 4)
    with pytest.raises(RuntimeError, match=r"view: .*not compatible.*strides.*reshape"):
        make(x).view(-1)


def test_view_of_noncontiguous_that_needs_no_copy_works():
    # splitting a dim of a transposed tensor keeps it a view, as in PyTorch
    x = nf.arange(12.0).reshape(3, 4)
    v = x.t().view(2, 2, 3)
    assert v.tolist() == x.numpy().T.reshape(2, 2, 3).tolist()


def test_view_as_and_reshape_as():
    x, y = nf.arange(6.0), nf.zeros(2, 3)
    assert tuple(x.view_as(y).shape) == (2, 3) and tuple(x.reshape_as(y).shape) == (2, 3)


# ---------------------------------------------------------------- flatten / unflatten
@pytest.mark.parametrize("shape,start,end", [
    ((2, 3, 4), 0, -1), ((2, 3, 4), 1, 2), ((2, 3, 4), 0, 1), ((2, 3, 4), 2, 2), ((), 0, -1),
    ((2, 0, 3), 1, -1), ((1, 1), 0, 1),
])
def test_flatten(shape, start, end):
    def np_ref(a):
        if a.ndim == 0:
            return a.reshape(1)
        s, e = start % a.ndim, end % a.ndim
        return a.reshape(a.shape[:s] + (-1 if a.size else int(np.prod(a.shape[s:e + 1])),) + a.shape[e + 1:])
    check_op(lambda a: a.flatten(start, end), lambda a: a.flatten(start, end), np_ref,
             shapes=[shape], noncontig=layouts_ok([shape]))


@pytest.mark.parametrize("shape,dim,sizes", [
    ((2, 12), 1, (3, 4)), ((2, 12), -1, (2, -1, 3)), ((6, 2), 0, (6, 1)), ((2, 0), 1, (0, 5)),
])
def test_unflatten(shape, dim, sizes):
    check_op(lambda a: a.unflatten(dim, sizes), lambda a: a.unflatten(dim, sizes), None,
             shapes=[shape])


# ---------------------------------------------------------------- squeeze / unsqueeze
@pytest.mark.parametrize("shape,dim", [
    ((1, 3, 1, 2), None), ((1, 3, 1, 2), 0), ((1, 3, 1, 2), 1), ((1, 3, 1, 2), -2),
    ((1, 3, 1, 2), (0, 2)), ((1,), None), ((), None), ((), 0), ((1, 0, 1), None),
])
def test_squeeze(shape, dim):
    fn = (lambda a: a.squeeze()) if dim is None else (lambda a: a.squeeze(dim))

    def np_ref(a):
        if dim is None or a.ndim == 0:
            return np.squeeze(a)
        dims = dim if isinstance(dim, tuple) else (dim,)
        return np.squeeze(a, tuple(d for d in dims if a.shape[d] == 1))
    check_op(fn, fn, np_ref, shapes=[shape], noncontig=layouts_ok([shape]))


@pytest.mark.parametrize("shape,dim", [((3, 4), 0), ((3, 4), 2), ((3, 4), -1), ((3, 4), -3),
                                       ((), 0), ((), -1), ((0,), 1)])
def test_unsqueeze(shape, dim):
    check_op(lambda a: a.unsqueeze(dim), lambda a: a.unsqueeze(dim),
             lambda a: np.expand_dims(a, dim), shapes=[shape], noncontig=layouts_ok([shape]))


# ---------------------------------------------------------------- permute / transpose
@pytest.mark.parametrize("shape,dims", [((2, 3, 4), (2, 0, 1)), ((2, 3, 4), (-1, -2, -3)),
                                        ((1, 0, 3), (1, 2, 0)), ((5,), (0,)), ((), ())])
def test_permute(shape, dims):
    # (check_op's gradcheck and 'transposed' layout turn a 0-d input into shape (1,))
    check_op(lambda a: a.permute(*dims), (lambda a: a.permute(*dims)) if dims else None,
             lambda a: np.transpose(a, dims), shapes=[shape], noncontig=layouts_ok([shape]),
             gradcheck=layouts_ok([shape]))
    check_op(lambda a: nf.permute(a, dims), (lambda a: torch.permute(a, dims)) if dims else None,
             lambda a: np.transpose(a, dims), shapes=[shape], noncontig=False, gradcheck=False)


@pytest.mark.parametrize("shape,d0,d1", [((2, 3, 4), 0, 2), ((2, 3, 4), -1, 1), ((3, 3), 0, 0),
                                         ((0, 5), 0, 1), ((4,), 0, -1)])
def test_transpose(shape, d0, d1):
    check_op(lambda a: a.transpose(d0, d1), lambda a: a.transpose(d0, d1),
             lambda a: np.swapaxes(a, d0, d1), shapes=[shape])
    check_op(lambda a: nf.swapaxes(a, d0, d1), lambda a: torch.swapaxes(a, d0, d1),
             lambda a: np.swapaxes(a, d0, d1), shapes=[shape], noncontig=False)


@pytest.mark.parametrize("shape", [(3, 4), (5,), (1, 0)], ids=str)
def test_t(shape):
    check_op(lambda a: a.t(), lambda a: a.t(), lambda a: a.T, shapes=[shape])


@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 4), (1, 2, 3, 1)], ids=str)
def test_T_reverses_all_dims(shape):
    fn = (lambda a: a.T) if len(shape) == 2 else (lambda a: a.permute(*range(a.ndim - 1, -1, -1)))
    check_op(lambda a: a.T, fn, lambda a: a.T, shapes=[shape])


@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 4), (0, 2, 5)], ids=str)
def test_mT(shape):
    check_op(lambda a: a.mT, lambda a: a.mT, lambda a: np.swapaxes(a, -1, -2), shapes=[shape])


def test_transpose_is_a_view():
    x = nf.zeros(2, 3)
    x.t()[2, 1] = 5.0
    assert x[1, 2].item() == 5.0


# ---------------------------------------------------------------- expand / repeat
@pytest.mark.parametrize("shape,sizes", [
    ((3, 1), (3, 4)), ((3, 1), (-1, 4)), ((1,), (2, 3, 5)), ((), (4,)), ((2, 1, 3), (2, 0, 3)),
    ((1, 1), (1, 1)), ((3,), (2, 3)),
])
def test_expand(shape, sizes):
    def np_ref(a):
        tgt = tuple(a.shape[i - (len(sizes) - a.ndim)] if s == -1 else s for i, s in enumerate(sizes))
        return np.broadcast_to(a, tgt)
    check_op(lambda a: a.expand(*sizes), lambda a: a.expand(*sizes), np_ref, shapes=[shape],
             noncontig=layouts_ok([shape]))


def test_expand_as_and_broadcast_to():
    check_op(lambda a, b: a.expand_as(b), lambda a, b: a.expand_as(b),
             lambda a, b: np.broadcast_to(a, b.shape), shapes=[(3, 1), (2, 3, 4)],
             requires_grad=[True, False])
    check_op(lambda a: nf.broadcast_to(a, (2, 3)), lambda a: torch.broadcast_to(a, (2, 3)),
             lambda a: np.broadcast_to(a, (2, 3)), shapes=[(3,)])


@pytest.mark.parametrize("shape,reps", [
    ((2, 3), (2, 1)), ((2, 3), (1, 3)), ((2, 3), (2, 2, 2)), ((3,), (4,)), ((), (3,)),
    ((2, 3), (0, 2)), ((0, 2), (2, 3)), ((1, 1), (1, 1)),
])
def test_repeat(shape, reps):
    check_op(lambda a: a.repeat(*reps), lambda a: a.repeat(*reps), lambda a: np.tile(a, reps),
             shapes=[shape], noncontig=layouts_ok([shape]))


# ---------------------------------------------------------------- contiguous / clone / casts
@pytest.mark.parametrize("shape", [(3, 4), (0, 2), (1,), ()], ids=str)
def test_contiguous(shape):
    out = check_op(lambda a: a.contiguous(), lambda a: a.contiguous(), lambda a: a, shapes=[shape],
                   noncontig=layouts_ok([shape]))
    assert out.is_contiguous()


def test_contiguous_of_a_view_copies_and_keeps_gradients():
    x = nf.arange(6.0).reshape(2, 3).requires_grad_()
    y = x.t().contiguous()
    assert y.is_contiguous() and y.tolist() == [[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]]
    (y * nf.arange(6.0).reshape(3, 2)).sum().backward()
    assert x.grad.tolist() == [[0.0, 2.0, 4.0], [1.0, 3.0, 5.0]]


@pytest.mark.parametrize("src", ["float32", "float64"])
@pytest.mark.parametrize("dst", ["float32", "float64"])
def test_float_casts_are_differentiable(src, dst):
    # (gradcheck runs in float64, so only a cast to float64 has exact finite differences)
    out = check_op(lambda a: a.to(getattr(nf, dst)), lambda a: a.to(getattr(torch, dst)),
                   lambda a: a.astype(dst), shapes=[(3, 4)], dtype=src, gradcheck=dst == "float64")
    assert out.dtype.name == dst


@requires_torch
@pytest.mark.parametrize("dst", ["int64", "int32", "bool", "float32", "float64"])
@pytest.mark.parametrize("src", ["float32", "int64", "bool"])
def test_casts_match_torch(src, dst):
    a = np.array([[-2.7, -0.5, 0.0], [0.4, 1.0, 3.9]]).astype(src)
    assert_close(nf.from_numpy(a.copy()).to(getattr(nf, dst)),
                 torch.from_numpy(a.copy()).to(getattr(torch, dst)), check_dtype=True)


def test_cast_to_int_stops_the_gradient():
    x = nf.tensor([1.5, 2.5], requires_grad=True)
    assert not x.long().requires_grad and x.double().requires_grad


# ---------------------------------------------------------------- flip
@pytest.mark.parametrize("shape,dims", [((3, 4), (0,)), ((3, 4), (1,)), ((3, 4), (0, 1)),
                                        ((2, 3, 4), (-1, 0)), ((1,), (0,)), ((0, 3), (0, 1)),
                                        ((), ())])
def test_flip(shape, dims):
    check_op(lambda a: a.flip(dims), lambda a: a.flip(dims), lambda a: np.flip(a, dims),
             shapes=[shape], noncontig=layouts_ok([shape]))


@pytest.mark.parametrize("shape", [(1,), (1, 1), (), (3,)], ids=str)
def test_flip_returns_a_copy(shape):
    # np.flip of a size-1 dim is still C-contiguous, so an "ascontiguous" flip aliased its input
    x = nf.zeros(*shape)
    y = nf.flip(x, tuple(range(len(shape))))
    assert tuple(y.shape) == shape
    y.fill_(7.0)
    assert (x.numpy() == 0).all()


# ---------------------------------------------------------------- cat / stack
CAT_CASES = [
    ([(2, 3), (4, 3)], 0), ([(2, 3), (2, 1), (2, 5)], 1), ([(2, 3), (2, 3)], -1),
    ([(2, 0), (2, 3)], 1), ([(0, 3), (0, 3)], 0), ([(1,), (1,), (1,)], 0),
    ([(2, 3, 4), (2, 1, 4)], -2), ([(3,)], 0),
]


@pytest.mark.parametrize("case", CAT_CASES, ids=str)
def test_cat(case):
    shapes, dim = case
    check_op(lambda *xs: nf.cat(xs, dim), lambda *xs: torch.cat(xs, dim),
             lambda *xs: np.concatenate(xs, dim), shapes=shapes)


def test_cat_aliases_and_skips_legacy_empty_1d():
    a, b = nf.ones(2, 3), nf.zeros(1, 3)
    for fn in (nf.cat, nf.concat, nf.concatenate):
        assert tuple(fn([a, b]).shape) == (3, 3)
    assert tuple(nf.cat([a, nf.zeros(0)], 0).shape) == (2, 3)  # as in PyTorch


@requires_torch
def test_cat_promotes_dtypes_like_torch():
    a, b = np.ones((2, 2), np.int64), np.ones((1, 2), np.float32)
    assert_close(nf.cat([nf.from_numpy(a), nf.from_numpy(b)]),
                 torch.cat([torch.from_numpy(a), torch.from_numpy(b)]), check_dtype=True)


def test_cat_gradient_only_to_inputs_that_need_it():
    check_op(lambda a, b: nf.cat([a, b], 1), lambda a, b: torch.cat([a, b], 1),
             lambda a, b: np.concatenate([a, b], 1), shapes=[(2, 3), (2, 2)],
             requires_grad=[False, True])


STACK_CASES = [([(2, 3), (2, 3)], 0), ([(2, 3), (2, 3), (2, 3)], 2), ([(2, 3)], -1),
               ([(), ()], 0), ([(0, 3), (0, 3)], 1), ([(4,), (4,)], -2)]


@pytest.mark.parametrize("case", STACK_CASES, ids=str)
def test_stack(case):
    shapes, dim = case
    check_op(lambda *xs: nf.stack(xs, dim), lambda *xs: torch.stack(xs, dim),
             lambda *xs: np.stack(xs, dim), shapes=shapes, noncontig=layouts_ok(shapes))


# ---------------------------------------------------------------- split / chunk / unbind / narrow
@pytest.mark.parametrize("shape,arg,dim", [
    ((5, 3), 2, 0), ((5, 3), 5, 0), ((5, 3), 7, 0), ((5, 3), [1, 4], 0), ((5, 3), [3, 0], 1),
    ((5, 3), 1, -1), ((0, 3), 2, 0), ((4, 6), [2, 2, 2], 1), ((2, 0), 3, 1),
])
def test_split(shape, arg, dim):
    def np_ref(a):
        if isinstance(arg, list):
            return tuple(np.split(a, np.cumsum(arg)[:-1], axis=dim))
        n = a.shape[dim]
        return tuple(np.split(a, range(arg, n, arg), axis=dim)) if n else (a,)
    check_op(lambda a: a.split(arg, dim), lambda a: a.split(arg, dim), np_ref, shapes=[shape])


@pytest.mark.parametrize("shape,chunks,dim", [((5, 3), 2, 0), ((6, 3), 3, 0), ((5, 3), 5, 0),
                                              ((5, 3), 7, 0), ((4, 7), 3, -1), ((1,), 2, 0),
                                              ((0, 3), 2, 0), ((0, 3), 1, 0), ((2, 0), 3, 1)])
def test_chunk(shape, chunks, dim):
    check_op(lambda a: a.chunk(chunks, dim), lambda a: a.chunk(chunks, dim), None, shapes=[shape])
    check_op(lambda a: nf.chunk(a, chunks, dim), lambda a: torch.chunk(a, chunks, dim), None,
             shapes=[shape], noncontig=False, gradcheck=False)


@pytest.mark.parametrize("shape,dim", [((3, 4), 0), ((3, 4), 1), ((3, 4), -1), ((1, 2), 0),
                                       ((2, 0), 0)])
def test_unbind(shape, dim):
    check_op(lambda a: a.unbind(dim), lambda a: a.unbind(dim),
             lambda a: tuple(np.moveaxis(a, dim, 0)), shapes=[shape])


@requires_torch
def test_unbind_of_empty_dim_gives_no_tensors():
    assert nf.zeros(0, 3).unbind(0) == () == torch.zeros(0, 3).unbind(0)


@pytest.mark.parametrize("shape,dim,start,length", [((5, 3), 0, 1, 3), ((5, 3), 1, 0, 3),
                                                    ((5, 3), -1, 2, 1), ((5, 3), 0, -2, 2),
                                                    ((5, 3), 0, 5, 0), ((5, 3), 0, 0, 0)])
def test_narrow(shape, dim, start, length):
    def np_ref(a):
        s = start % a.shape[dim] if start < 0 else start
        return np.take(a, range(s, s + length), axis=dim)
    check_op(lambda a: a.narrow(dim, start, length), lambda a: a.narrow(dim, start, length),
             np_ref, shapes=[shape])


# ---------------------------------------------------------------- pad
def np_pad(a, pad, mode, value=0.0):
    """PyTorch's pad order (last dim first) on numpy, negatives cropping."""
    widths = [(0, 0)] * a.ndim
    for i in range(len(pad) // 2):
        widths[a.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    crop = tuple(slice(max(-lo, 0), a.shape[d] - max(-hi, 0)) for d, (lo, hi) in enumerate(widths))
    a = a[crop]
    widths = [(max(lo, 0), max(hi, 0)) for lo, hi in widths]
    np_mode = {"replicate": "edge", "circular": "wrap"}.get(mode, mode)
    if mode == "constant":
        return np.pad(a, widths, mode="constant", constant_values=value)
    return np.pad(a, widths, mode=np_mode)


PAD_CASES = [
    ((2, 3, 5), (1, 2)), ((2, 3, 5), (0, 0)), ((2, 3, 5), (2, 0)), ((1, 2, 4, 5), (1, 1, 2, 0)),
    ((2, 3, 5), (4, 4)), ((1, 2, 3, 4), (3, 0, 0, 2)), ((2, 2, 2, 3, 4), (1, 1, 1, 0, 0, 1)),
]


@pytest.mark.parametrize("case", PAD_CASES, ids=str)
@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad(mode, case):
    shape, pad = case
    size = shape[-len(pad) // 2:]
    if mode == "reflect" and any(p >= s for p, s in zip(pad[::-1], np.repeat(size, 2))):
        pytest.skip("reflect padding must be smaller than the dim")
    if mode == "circular" and any(p > s for p, s in zip(pad[::-1], np.repeat(size, 2))):
        pytest.skip("circular padding must be at most the dim")
    check_op(lambda a: F_pad(a, pad, mode), lambda a: F().pad(a, pad, mode=mode),
             lambda a: np_pad(a, pad, mode), shapes=[shape])


def F_pad(a, pad, mode, value=None):
    from nnforge.ops.shape import pad as nf_pad
    return nf_pad(a, pad, mode=mode, value=value)


@pytest.mark.parametrize("pad", [(1, 2), (-1, 2), (-2, -1), (0, 0, -1, 1), (2, -3, 1, 0),
                                 (-5, 0), (1, 1, 1, 1, 1, 1)], ids=str)
@pytest.mark.parametrize("value", [0.0, -2.5])
def test_pad_constant_negative_crops(pad, value):
    check_op(lambda a: F_pad(a, pad, "constant", value),
             lambda a: F().pad(a, pad, mode="constant", value=value),
             lambda a: np_pad(a, pad, "constant", value), shapes=[(2, 3, 5)])


@pytest.mark.parametrize("shape", [(0, 3), (2, 0)], ids=str)
def test_pad_constant_of_empty(shape):
    check_op(lambda a: F_pad(a, (1, 2, 0, 1), "constant", 1.0),
             lambda a: F().pad(a, (1, 2, 0, 1), value=1.0),
             lambda a: np_pad(a, (1, 2, 0, 1), "constant", 1.0), shapes=[shape])
