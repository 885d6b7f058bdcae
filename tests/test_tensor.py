"""The Tensor core: printing, conversions, metadata, Python protocols, casts,
.T/.mT and the new_* constructors."""
import numpy as np
import pytest

import nnforge as nf
from helpers import HAS_TORCH, assert_close, check_op, requires_torch

if HAS_TORCH:
    import torch


# ---------------------------------------------------------------- repr
def test_repr_shows_values():
    r = repr(nf.tensor([[1.5, -2.0], [3.25, 4.0]]))
    assert r.startswith("tensor(") and "1.5" in r and "-2." in r and "3.25" in r
    assert "dtype" not in r  # float32 is the default: not printed
    assert repr(nf.tensor(3.0)) == "tensor(3.)"
    assert repr(nf.tensor([1, 2])) == "tensor([1, 2])"
    assert "True" in repr(nf.tensor([True, False]))


def test_repr_names_non_default_dtype():
    assert "dtype=nnforge.float64" in repr(nf.tensor([1.0], dtype=nf.float64))
    assert "dtype=nnforge.int32" in repr(nf.tensor([1], dtype=nf.int32))
    assert "dtype=nnforge.float16" in repr(nf.ones(2, dtype=nf.float16))
    assert "dtype" not in repr(nf.tensor([1]))  # int64: default for ints
    assert "dtype" not in repr(nf.tensor([True]))


def test_repr_autograd_info():
    x = nf.ones(2, requires_grad=True)
    assert repr(x).endswith("requires_grad=True)")
    y = x * 2
    assert "grad_fn=<MulBackward>" in repr(y) and "requires_grad" not in repr(y)
    assert "grad_fn=<SumBackward>" in repr(y.sum())
    assert str(y) == repr(y)


def test_repr_empty_and_large():
    assert repr(nf.zeros(0)) == "tensor([])"
    assert repr(nf.zeros(2, 0, 3)) == "tensor([], size=(2, 0, 3))"
    big = repr(nf.arange(5000))
    assert "..." in big and len(big) < 400 and "4999" in big


def test_repr_multiline_is_aligned_like_torch():
    assert repr(nf.tensor([[1.0, 2.0], [3.0, 4.0]])) == "tensor([[1., 2.],\n        [3., 4.]])"


def test_format():
    loss = nf.tensor(1.23456)
    assert f"{loss:.3f}" == "1.235" and f"{nf.tensor(7):>3}" == "  7"
    assert f"{loss}" == format(loss.item())  # 0-d: the number, as in PyTorch
    assert f"{nf.tensor([1.0, 2.0])}" == repr(nf.tensor([1.0, 2.0]))
    with pytest.raises(TypeError):
        f"{nf.tensor([1.0, 2.0]):.2f}"


def test_repr_nan_inf():
    r = repr(nf.tensor([float("nan"), float("inf"), -float("inf")]))
    assert "nan" in r and "inf" in r and "-inf" in r


# ---------------------------------------------------------------- conversions
def test_item():
    assert nf.tensor(3.5).item() == 3.5 and isinstance(nf.tensor(3.5).item(), float)
    assert nf.tensor([[7]]).item() == 7 and isinstance(nf.tensor([7]).item(), int)
    assert nf.tensor([True]).item() is True
    with pytest.raises(ValueError, match=r"item.*one element.*\(2,\)"):
        nf.tensor([1.0, 2.0]).item()
    x = nf.tensor(2.0, requires_grad=True)
    assert (x * 3).item() == 6.0  # item works on tensors that require grad


def test_tolist():
    assert nf.tensor([[1, 2], [3, 4]]).tolist() == [[1, 2], [3, 4]]
    assert nf.tensor(2.5).tolist() == 2.5
    assert nf.tensor([0.5, 1.5]).tolist() == [0.5, 1.5]
    assert isinstance(nf.tensor([1]).tolist()[0], int)
    assert nf.zeros(2, 0).tolist() == [[], []]
    assert nf.tensor([1.0], requires_grad=True).tolist() == [1.0]


def test_numpy_refuses_requires_grad():
    x = nf.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"numpy.*requires grad.*detach\(\)"):
        x.numpy()
    assert x.detach().numpy().tolist() == [1.0, 1.0]
    assert x.numpy(force=True).tolist() == [1.0, 1.0]
    with pytest.raises(RuntimeError):
        (x * 2).numpy()


def test_numpy_shares_memory():
    t = nf.zeros(3)
    a = t.numpy()
    a[0] = 5.0
    assert t.tolist() == [5.0, 0.0, 0.0]
    t.add_(1)
    assert a.tolist() == [6.0, 1.0, 1.0]


def test_from_numpy_shares_memory_both_ways():
    a = np.zeros((2, 2), dtype=np.float32)
    t = nf.from_numpy(a)
    assert t.dtype is nf.float32 and t.shape == (2, 2)
    a[0, 0] = 3.0
    assert t[0, 0].item() == 3.0
    t[1, 1] = 7.0
    assert a[1, 1] == 7.0
    t.mul_(2)
    assert a.tolist() == [[6.0, 0.0], [0.0, 14.0]]


def test_from_numpy_keeps_dtype_and_layout():
    a = np.arange(12, dtype=np.float64).reshape(3, 4)
    t = nf.from_numpy(a[:, ::2])
    assert t.dtype is nf.float64 and t.shape == (3, 2) and not t.is_contiguous()
    assert t.stride() == (4, 2)
    np.testing.assert_array_equal(t.numpy(), a[:, ::2])
    assert nf.from_numpy(np.array([1, 2], dtype=np.int32)).dtype is nf.int32
    assert nf.from_numpy(np.array([True])).dtype is nf.bool


def test_from_numpy_errors():
    with pytest.raises(TypeError, match="from_numpy.*ndarray.*list"):
        nf.from_numpy([1, 2])
    with pytest.raises(TypeError, match="complex"):
        nf.from_numpy(np.zeros(2, dtype=np.complex64))


def test_array_protocol():
    t = nf.tensor([1.0, 2.0])
    np.testing.assert_array_equal(np.asarray(t), [1.0, 2.0])
    assert np.asarray(t, dtype=np.float64).dtype == np.float64
    assert np.asarray(nf.ones(2, requires_grad=True)).tolist() == [1.0, 1.0]


def test_np_array_copies_and_np_asarray_shares():
    t = nf.zeros(3)
    a = np.array(t)
    a[0] = 5.0
    assert t.tolist() == [0.0, 0.0, 0.0]
    b = np.asarray(t)
    b[1] = 7.0
    assert t.tolist() == [0.0, 7.0, 0.0]
    c = np.array(t, dtype=np.float64)
    assert c.dtype == np.float64 and c.tolist() == [0.0, 7.0, 0.0]


def test_numpy_defers_to_tensor_operators():
    t = nf.tensor([1.0, 2.0])
    out = np.float64(2.0) * t
    assert isinstance(out, nf.Tensor) and out.tolist() == [2.0, 4.0]
    out = np.ones(2, dtype=np.float32) + t
    assert isinstance(out, nf.Tensor) and out.tolist() == [2.0, 3.0]


# ---------------------------------------------------------------- metadata
def test_shape_size_dim_numel():
    t = nf.zeros(2, 3, 4)
    assert t.shape == (2, 3, 4) and isinstance(t.shape, nf.Size) and isinstance(t.shape, tuple)
    assert t.size() == (2, 3, 4) and t.size(1) == 3 and t.size(-1) == 4
    assert t.dim() == t.ndim == 3 and t.numel() == t.nelement() == 24
    assert t.shape.numel() == 24 and repr(t.shape) == "nnforge.Size([2, 3, 4])"
    assert nf.zeros(()).dim() == 0 and nf.zeros(()).numel() == 1 and nf.zeros(()).shape == ()
    assert nf.numel(t) == 24
    with pytest.raises(IndexError, match=r"size: dimension out of range.*\[-3, 2\].*3"):
        t.size(3)


def test_dtype_and_sizes_in_bytes():
    t = nf.zeros(2, 3, dtype=nf.float64)
    assert t.dtype is nf.float64 and t.element_size() == t.itemsize == 8 and t.nbytes == 48
    assert t.is_floating_point() and not nf.zeros(2, dtype=nf.int64).is_floating_point()
    assert t.device == nf.device("cpu") and t.device == "cpu" and not t.is_cuda


@pytest.mark.parametrize("make, shape, stride, contiguous", [
    (lambda: nf.zeros(2, 3, 4), (2, 3, 4), (12, 4, 1), True),
    (lambda: nf.zeros(2, 3).T, (3, 2), (1, 3), False),
    (lambda: nf.zeros(2, 3, 4).transpose(0, 2), (4, 3, 2), (1, 4, 12), False),
    (lambda: nf.zeros(4, 6)[:, ::2], (4, 3), (6, 2), False),
    (lambda: nf.zeros(4, 6)[1], (6,), (1,), True),
    (lambda: nf.zeros(4, 6)[1:3], (2, 6), (6, 1), True),
    (lambda: nf.zeros(3, 1).expand(3, 4), (3, 4), (1, 0), False),
    (lambda: nf.zeros(2, 3).T.contiguous(), (3, 2), (2, 1), True),
    (lambda: nf.zeros(5, dtype=nf.int16), (5,), (1,), True),
])
def test_stride_and_contiguity(make, shape, stride, contiguous):
    t = make()
    assert t.shape == shape and t.stride() == stride and t.is_contiguous() == contiguous
    assert t.stride(0) == stride[0] and t.stride(-1) == stride[-1]


@requires_torch
def test_strides_match_torch_for_views():
    a = np.arange(24.0, dtype=np.float32).reshape(2, 3, 4)
    for f in (lambda x: x.permute(2, 0, 1), lambda x: x[:, 1:, ::3], lambda x: x.mT,
              lambda x: x.unsqueeze(1), lambda x: x[..., 0], lambda x: x.flatten(0, 1)):
        assert f(nf.from_numpy(a)).stride() == f(torch.from_numpy(a)).stride()


def test_is_leaf_and_version():
    x = nf.ones(2, requires_grad=True)
    assert x.is_leaf and (x * 2).is_leaf is False and nf.ones(2).is_leaf
    t = nf.ones(2)
    assert t._version == 0
    t.add_(1)
    assert t._version == 1


# ---------------------------------------------------------------- Python protocols
def test_len_iter():
    t = nf.tensor([[1, 2], [3, 4], [5, 6]])
    assert len(t) == 3
    rows = list(t)
    assert len(rows) == 3 and rows[1].tolist() == [3, 4]
    assert [int(v) for v in nf.tensor([7, 8])] == [7, 8]
    with pytest.raises(TypeError, match="0-d"):
        len(nf.tensor(1.0))
    with pytest.raises(TypeError, match="0-d"):
        iter(nf.tensor(1.0))


def test_iteration_is_differentiable():
    x = nf.tensor([1.0, 2.0, 3.0], requires_grad=True)
    total = sum(v * v for v in x)
    total.backward()
    assert x.grad.tolist() == [2.0, 4.0, 6.0]


def test_bool_float_int_index():
    assert bool(nf.tensor([1.0])) is True and bool(nf.tensor(0)) is False
    assert float(nf.tensor([[2.5]])) == 2.5 and int(nf.tensor(-2.7)) == -2
    assert [10, 20, 30][nf.tensor(2)] == 30
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(nf.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="one element"):
        float(nf.tensor([1.0, 2.0]))
    with pytest.raises(TypeError, match="integer"):
        [1, 2][nf.tensor(1.0)]


def test_contains():
    t = nf.tensor([[1, 2], [3, 4]])
    assert 3 in t and 5 not in t and 2.0 in t
    assert nf.tensor(4) in t
    with pytest.raises(TypeError, match="in: expected a Tensor or a number"):
        "a" in t


def test_comparison_with_none_is_identity_false():
    t = nf.ones(2)
    assert (t == None) is False  # noqa: E711
    assert (t != None) is True  # noqa: E711
    assert t in [t] and t not in [None]


def test_tensors_are_hashable_by_identity():
    a, b = nf.ones(2), nf.ones(2)
    d = {a: 1, b: 2}
    assert d[a] == 1 and d[b] == 2


def test_construction_only_through_factories():
    with pytest.raises(TypeError, match="nnforge.tensor"):
        nf.Tensor([1.0])
    assert nf.is_tensor(nf.ones(1)) and not nf.is_tensor(np.ones(1))


# ---------------------------------------------------------------- copy, pickle
def test_deepcopy_of_leaves():
    import copy
    x = nf.tensor([1.0, 2.0], requires_grad=True)
    (x * 2).sum().backward()
    y = copy.deepcopy(x)
    assert y.tolist() == [1.0, 2.0] and y.requires_grad and y.is_leaf
    assert y.data is not x.data and y.grad.tolist() == [2.0, 2.0] and y.grad is not x.grad
    (y * 3).sum().backward()  # y's gradient is its own
    assert x.grad.tolist() == [2.0, 2.0] and y.grad.tolist() == [5.0, 5.0]
    plain = copy.deepcopy(nf.zeros(2, dtype=nf.int32))
    assert plain.dtype is nf.int32 and plain.tolist() == [0, 0]
    pair = copy.deepcopy([x, x])
    assert pair[0] is pair[1]  # memo respected
    with pytest.raises(RuntimeError, match="deepcopy: only leaf tensors"):
        copy.deepcopy(x * 2)


def test_pickle_roundtrip():
    import pickle
    for t in (nf.tensor([[1.5, 2.0]], dtype=nf.float64), nf.tensor([1, 2]), nf.tensor(True),
              nf.zeros(2, 3).T, nf.ones(3, requires_grad=True)):
        u = pickle.loads(pickle.dumps(t))
        assert u.dtype is t.dtype and u.shape == t.shape and u.tolist() == t.tolist()
        assert u.requires_grad == t.requires_grad and u.device == t.device
    assert pickle.loads(pickle.dumps(nf.device("cuda:1"))) == nf.device("cuda:1")


# ---------------------------------------------------------------- casts
@pytest.mark.parametrize("method, dtype", [
    ("float", nf.float32), ("double", nf.float64), ("half", nf.float16), ("long", nf.int64),
    ("int", nf.int32), ("bool", nf.bool)])
def test_cast_methods(method, dtype):
    t = getattr(nf.tensor([0.0, 1.5, -2.0]), method)()
    assert t.dtype is dtype
    np.testing.assert_array_equal(t.numpy(), np.array([0.0, 1.5, -2.0]).astype(dtype.np))


def test_to_variants():
    t = nf.tensor([1.0, 2.0])
    assert t.to(nf.float32) is t and t.to("cpu") is t and t.to(nf.device("cpu")) is t
    assert t.to(nf.float32, copy=True) is not t
    assert t.to(nf.float64).dtype is nf.float64
    assert t.to("cpu", nf.float64).dtype is nf.float64
    assert t.to(device="cpu", dtype=nf.int64).dtype is nf.int64
    assert t.to(nf.ones(1, dtype=nf.float64)).dtype is nf.float64
    assert t.to(float).dtype is nf.float32 and t.to(int).dtype is nf.int64
    assert t.to(np.float64).dtype is nf.float64 and t.to(np.dtype("int32")).dtype is nf.int32
    assert t.to(np.dtype("float64")).dtype is nf.float64 and t.to(bool).dtype is nf.bool
    assert t.cpu() is t
    assert t.type() == "nnforge.float32" and t.type(nf.float64).dtype is nf.float64
    with pytest.raises(TypeError, match="unexpected"):
        t.to(nf.float64, bogus=1)


def test_to_copy_does_not_share_memory():
    t = nf.tensor([1.0, 2.0])
    c = t.to(nf.float32, copy=True)
    c.add_(1)
    assert t.tolist() == [1.0, 2.0]
    d = t.double()
    d.add_(1)
    assert t.tolist() == [1.0, 2.0]


@pytest.mark.parametrize("src, dst", [("float32", "float64"), ("float64", "float32"),
                                      ("float32", "float16")])
def test_float_casts_are_differentiable(src, dst):
    check_op(lambda x: x.to(getattr(nf, dst)) * 3,
             (lambda x: x.to(getattr(torch, dst)) * 3) if HAS_TORCH else None,
             shapes=[(2, 3)], dtype=src, atol=1e-2 if "float16" in (src, dst) else None,
             rtol=1e-2 if "float16" in (src, dst) else None,
             gradcheck=dst == "float64")  # finite differences need a float64 output


def test_cast_gradient_comes_back_in_the_input_dtype():
    x = nf.tensor([1.0, 2.0], requires_grad=True)
    y = x.double()
    assert y.requires_grad and y.grad_fn is not None
    (y * y).sum().backward()
    assert x.grad.dtype is nf.float32 and x.grad.tolist() == [2.0, 4.0]


def test_cast_to_int_is_not_differentiable():
    x = nf.tensor([1.7, -2.2], requires_grad=True)
    i = x.long()
    assert i.dtype is nf.int64 and not i.requires_grad and i.tolist() == [1, -2]
    assert not x.bool().requires_grad


def test_to_unknown_device():
    with pytest.raises(ValueError, match="device.*tpu"):
        nf.ones(2).to("tpu")


@pytest.mark.skipif(nf.cuda.is_available(), reason="checks the message of a build without CUDA")
def test_to_cuda_without_cuda_is_a_clear_error():
    with pytest.raises(RuntimeError, match="cuda"):
        nf.ones(2).to("cuda")


# ---------------------------------------------------------------- .T, .mT
def test_T_and_mT():
    a = np.arange(24.0, dtype=np.float32).reshape(2, 3, 4)
    t = nf.from_numpy(a)
    np.testing.assert_array_equal(t[0].T.numpy(), a[0].T)
    np.testing.assert_array_equal(t.T.numpy(), a.T)  # reverses all dims, as PyTorch
    np.testing.assert_array_equal(t.mT.numpy(), a.swapaxes(-1, -2))
    assert nf.ones(3).T.shape == (3,)
    with pytest.raises((ValueError, IndexError, RuntimeError)):
        nf.ones(3).mT


def test_T_is_a_view_and_differentiable():
    x = nf.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    y = x.T
    assert y._version_box is x._version_box
    (y * nf.tensor([[1.0], [2.0], [3.0]])).sum().backward()
    assert x.grad.tolist() == [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]
    check_op(lambda t: t.mT * 2, (lambda t: t.mT * 2) if HAS_TORCH else None,
             lambda a: a.swapaxes(-1, -2) * 2, shapes=[(2, 3, 4)])


# ---------------------------------------------------------------- new_*
def test_new_constructors_inherit_dtype_and_device():
    base = nf.ones(2, dtype=nf.float64)
    for t, value in ((base.new_zeros(3, 2), 0.0), (base.new_ones((3, 2)), 1.0),
                     (base.new_full((3, 2), 4), 4.0)):
        assert t.dtype is nf.float64 and t.shape == (3, 2) and t.device == base.device
        assert (t.numpy() == value).all()
    assert base.new_empty(5).shape == (5,) and base.new_empty(5).dtype is nf.float64
    n = base.new_tensor([1, 2])
    assert n.dtype is nf.float64 and n.tolist() == [1.0, 2.0]
    assert base.new_zeros(2, dtype=nf.int64).dtype is nf.int64
    assert base.new_zeros(2, requires_grad=True).requires_grad
    assert not nf.ones(2, requires_grad=True).new_zeros(2).requires_grad


def test_new_tensor_copies():
    a = np.zeros(2, dtype=np.float32)
    n = nf.ones(1).new_tensor(a)
    a[0] = 1.0
    assert n.tolist() == [0.0, 0.0]


@requires_torch
def test_new_constructors_match_torch():
    for name, args in (("new_zeros", (2, 3)), ("new_ones", ((4,),)), ("new_full", ((2,), 1.5))):
        for dt in ("float64", "int32"):
            got = getattr(nf.ones(1, dtype=getattr(nf, dt)), name)(*args)
            expected = getattr(torch.ones(1, dtype=getattr(torch, dt)), name)(*args)
            assert_close(got, expected, check_dtype=True)


# ---------------------------------------------------------------- clone, contiguous
def test_clone_copies_and_is_differentiable():
    x = nf.tensor([1.0, 2.0], requires_grad=True)
    c = x.clone()
    assert c.data is not x.data and c.requires_grad and not c.is_leaf
    (c * 3).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]
    p = nf.tensor([1.0])
    q = p.clone()
    q.add_(1)
    assert p.tolist() == [1.0]


def test_contiguous():
    t = nf.zeros(2, 3)
    assert t.contiguous() is t
    tt = t.T.contiguous()
    assert tt.is_contiguous() and tt.shape == (3, 2)
    check_op(lambda a: a.T.contiguous() * 2, (lambda a: a.T.contiguous() * 2) if HAS_TORCH else None,
             shapes=[(3, 4)])
