"""Bad input gives clear Python exceptions that name the op, the argument and
the shapes, and leaves no state behind (DESIGN.md, "Errors")."""
import numpy as np
import pytest

import nnforge as nf


def _fake_cuda(shape=(3,), dtype=np.float32):
    """A tensor that claims to live on cuda (its storage is a numpy array): enough
    to check the device checks, which run before any backend code."""
    return nf.Tensor._make(np.ones(shape, dtype=dtype), nf.device("cuda"))


# ---------------------------------------------------------------- shapes
@pytest.mark.parametrize("fn, match", [
    (lambda: nf.ones(2, 3) + nf.ones(4), r"add: shapes \(2, 3\) and \(4,\) are not broadcastable"),
    (lambda: nf.ones(2, 3) - nf.ones(3, 2), r"sub: shapes \(2, 3\) and \(3, 2\)"),
    (lambda: nf.ones(2, 3) * nf.ones(3, 2), r"mul: shapes \(2, 3\) and \(3, 2\)"),
    (lambda: nf.ones(2, 3) / nf.ones(5), r"div: shapes \(2, 3\) and \(5,\)"),
    (lambda: nf.ones(2, 3) @ nf.ones(4, 5), r"matmul: shapes \(2, 3\) and \(4, 5\).*3 != 4"),
    (lambda: nf.ones(3) @ nf.ones(4), r"matmul: shapes \(3,\) and \(4,\)"),
    (lambda: nf.ones(()) @ nf.ones(4), r"matmul: .*\(\) and \(4,\)"),
    (lambda: nf.ones(2, 3, 4) @ nf.ones(3, 4, 5), r"matmul: .*\(2, 3, 4\) and \(3, 4, 5\)"),
    (lambda: nf.mm(nf.ones(2, 3, 4), nf.ones(4, 3)), r"mm: .*2-D.*\(2, 3, 4\)"),
    (lambda: nf.bmm(nf.ones(2, 3, 4), nf.ones(3, 4, 5)), r"bmm: .*\(2, 3, 4\) and \(3, 4, 5\)"),
    (lambda: nf.ones(2, 3).reshape(4, 2), r"reshape: .*\(4, 2\).*\(2, 3\)"),
    (lambda: nf.ones(2, 3).expand(4, 3), r"expand: .*\(4, 3\).*\(2, 3\)"),
    (lambda: nf.cat([nf.ones(2, 3), nf.ones(2, 4)]), r"cat: .*\(2, 3\).*\(2, 4\)"),
    (lambda: nf.ones(2, 3).masked_fill(nf.ones(3, 2) > 0, 0.0), r"masked_fill: .*\(3, 2\).*\(2, 3\)"),
])
def test_shape_errors_name_op_and_shapes(fn, match):
    with pytest.raises(ValueError, match=match):
        fn()


def test_view_of_non_contiguous_tensor():
    with pytest.raises(RuntimeError, match=r"view: .*\(6,\).*\(3, 2\).*reshape"):
        nf.ones(2, 3).T.view(6)


def test_failed_binary_op_records_nothing():
    x = nf.ones(2, requires_grad=True)
    with pytest.raises(ValueError):
        x + nf.ones(3)
    (x * 2).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


# ---------------------------------------------------------------- dtypes
@pytest.mark.parametrize("fn, op", [
    (lambda: nf.ones(2, dtype=nf.int64, requires_grad=True), "ones"),
    (lambda: nf.zeros(2, dtype=nf.bool, requires_grad=True), "zeros"),
    (lambda: nf.arange(3, requires_grad=True), "arange"),
    (lambda: nf.tensor([1, 2], requires_grad=True), "tensor"),
    (lambda: nf.full((2,), 3, requires_grad=True), "full"),
    (lambda: nf.tensor([1, 2]).requires_grad_(), "requires_grad_"),
])
def test_requires_grad_on_non_float_names_op_and_dtype(fn, op):
    with pytest.raises(RuntimeError, match=f"{op}: only floating point tensors can require "
                                            "gradients, got (dtype )?(int64|bool)"):
        fn()


@pytest.mark.parametrize("fn, match", [
    (lambda: nf.zeros(2, dtype="complex64"), "zeros: .*complex64"),
    (lambda: nf.ones(2, dtype=np.complex128), "ones: .*complex128"),
    (lambda: nf.arange(3, dtype="bogus"), "arange: .*bogus"),
    (lambda: nf.randint(0, 3, (2,), dtype="bogus"), "randint: .*bogus"),
    (lambda: nf.tensor([1.0], dtype=np.complex64), "tensor: .*complex64"),
])
def test_unknown_dtypes(fn, match):
    with pytest.raises(TypeError, match=match):
        fn()


def test_wrong_argument_types():
    with pytest.raises(TypeError, match="exp: argument 'input' must be a Tensor, got list"):
        nf.exp([1.0, 2.0])
    with pytest.raises(TypeError, match="add: unsupported operand type str"):
        nf.ones(2) + "a"
    with pytest.raises(TypeError, match="mean: .*floating point.*int64"):
        nf.ones(2, dtype=nf.int64).mean()
    with pytest.raises(TypeError, match="copy_: src must be a Tensor"):
        nf.ones(2).copy_([1.0, 2.0])


def test_inplace_cast_error_names_op_and_dtypes():
    with pytest.raises(RuntimeError, match="mul_: result type float32 cannot be cast to .* int64"):
        nf.tensor([1, 2]).mul_(1.5)


# ---------------------------------------------------------------- indices and dims
@pytest.mark.parametrize("fn, match", [
    (lambda: nf.ones(2, 3)[5], r"index 5 is out of bounds.*size 2.*\(2, 3\)"),
    (lambda: nf.ones(2, 3)[0, 7], r"index 7 is out of bounds.*size 3.*\(2, 3\)"),
    (lambda: nf.ones(2, 3)[-3], r"index -3 is out of bounds.*\(2, 3\)"),
    (lambda: nf.ones(2, 3)[nf.tensor([0, 4])], r"index 4 is out of bounds.*\(2, 3\)"),
    (lambda: nf.ones(2, 3)[0, 0, 0], r"too many indices.*\(2, 3\)"),
    (lambda: nf.ones(2, 3)[nf.tensor([0.0])], "indices must be integer or bool, got float32"),
    (lambda: nf.ones(2, 3).gather(1, nf.tensor([[5]])), r"gather: index 5 .* size 3"),
    (lambda: nf.ones(2, 3).index_select(1, nf.tensor([3])), r"index_select: index 3 .* size 3"),
    (lambda: nf.ones(2, 3).narrow(1, 2, 5), r"narrow: .*size 3"),
])
def test_index_errors(fn, match):
    with pytest.raises(IndexError, match=match):
        fn()


@pytest.mark.parametrize("op, fn, bad, lo, hi", [
    ("sum", lambda t, d: t.sum(dim=d), 2, -2, 1),
    ("sum", lambda t, d: t.sum(dim=d), -3, -2, 1),
    ("mean", lambda t, d: t.mean(d), 5, -2, 1),
    ("softmax", lambda t, d: t.softmax(dim=d), 2, -2, 1),
    ("argmax", lambda t, d: t.argmax(dim=d), 3, -2, 1),
    ("max", lambda t, d: t.max(dim=d), 3, -2, 1),
    ("transpose", lambda t, d: t.transpose(0, d), 2, -2, 1),
    ("squeeze", lambda t, d: t.squeeze(d), 4, -2, 1),
    ("unsqueeze", lambda t, d: t.unsqueeze(d), 4, -3, 2),
    ("flatten", lambda t, d: t.flatten(d), 3, -2, 1),
    ("cat", lambda t, d: nf.cat([t, t], dim=d), 2, -2, 1),
    ("size", lambda t, d: t.size(d), 2, -2, 1),
    ("stride", lambda t, d: t.stride(d), -3, -2, 1),
])
def test_bad_dims_name_op_and_range(op, fn, bad, lo, hi):
    with pytest.raises(IndexError, match=rf"{op}: dimension out of range \(expected to be in "
                                         rf"range of \[{lo}, {hi}\], but got {bad}\)"):
        fn(nf.ones(2, 3), bad)


def test_repeated_dims():
    with pytest.raises(ValueError, match=r"permute: .*\(0, 0\)"):
        nf.ones(2, 3).permute(0, 0)
    with pytest.raises(ValueError, match=r"var: dim \(0, 0\) names a dimension twice"):
        nf.ones(2, 3).var(dim=(0, 0))


# ---------------------------------------------------------------- autograd misuse
def test_backward_errors():
    y = nf.ones(2, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match=r"backward: .*scalar outputs.*shape \(2,\)"):
        y.backward()
    with pytest.raises(ValueError, match=r"backward: gradient 0 has shape \(3,\).*\(2,\)"):
        y.backward(nf.ones(3))
    with pytest.raises(TypeError, match="backward: gradient 0 must be a Tensor"):
        y.backward([1.0, 1.0])
    with pytest.raises(RuntimeError, match="backward: element 0 of tensors does not require grad"):
        nf.ones(2).sum().backward()
    with pytest.raises(ValueError, match="backward: got 2 tensors but 1 gradients"):
        nf.autograd.backward([y, y], [nf.ones(2)])
    with pytest.raises(NotImplementedError, match="create_graph"):
        y.sum().backward(create_graph=True)


def test_grad_errors():
    x = nf.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="grad: input 0 does not require grad"):
        nf.autograd.grad((x * 2).sum(), nf.ones(2))
    with pytest.raises(RuntimeError, match=r"grad: input 1 \(shape \(3,\)\) was not used"):
        nf.autograd.grad((x * 2).sum(), [x, nf.ones(3, requires_grad=True)])


# ---------------------------------------------------------------- devices
@pytest.mark.parametrize("fn, op", [
    (lambda c: nf.ones(3) + c, "Add"),
    (lambda c: nf.ones(3) * c, "Mul"),
    (lambda c: c - nf.ones(3), "Sub"),
    (lambda c: nf.cat([nf.ones(3), c]), "cat"),
])
def test_device_mismatch_names_op_and_devices(fn, op):
    devices = "(cpu and cuda|cuda and cpu)"
    with pytest.raises(ValueError, match=f"{op}: expected all tensors on one device, got {devices}"):
        fn(_fake_cuda())


def test_index_on_other_device():
    idx = nf.Tensor._make(np.array([0]), nf.device("cuda"))
    with pytest.raises(ValueError, match="index: index is on cuda but the tensor is on cpu"):
        nf.ones(3)[idx]


def test_matmul_device_mismatch_message():
    with pytest.raises(ValueError, match="device"):
        nf.ones(3) @ _fake_cuda()


def test_where_device_mismatch_message():
    with pytest.raises(ValueError, match="device") as info:
        nf.where(nf.ones(3) > 0, nf.ones(3), _fake_cuda())
    assert "broadcastable" not in str(info.value)


@pytest.mark.parametrize("spec, match", [
    ("tpu", "device: expected one of cpu, cuda.*'tpu'"),
    ("cuda:x", "device: invalid device string 'cuda:x'"),
    ("cpu:1", "device: cpu has no index 1"),
])
def test_bad_device_strings(spec, match):
    with pytest.raises(ValueError, match=match):
        nf.device(spec)
    with pytest.raises(ValueError, match=match):
        nf.zeros(2, device=spec)


def test_device_equality_and_str():
    assert nf.device("cpu") == "cpu" and nf.device("cpu:0") == nf.device("cpu")
    assert nf.device("cuda:1") != nf.device("cuda:0") and nf.device("cuda") == "cuda:0"
    assert str(nf.device("cuda", 1)) == "cuda:1" and repr(nf.device("cpu")) == "device(type='cpu')"
    assert nf.device("cpu") != "not a device"
    assert len({nf.device("cpu"), nf.device("cpu:0")}) == 1


# ---------------------------------------------------------------- conversions
def test_conversion_errors():
    with pytest.raises(ValueError, match=r"item: .*one element.*\(2,\)"):
        nf.ones(2).item()
    with pytest.raises(RuntimeError, match="bool: the truth value of a tensor with 2 elements is ambiguous"):
        bool(nf.ones(2))
    with pytest.raises(RuntimeError, match="numpy: .*requires grad"):
        nf.ones(2, requires_grad=True).numpy()
    with pytest.raises(TypeError, match="len\\(\\) of a 0-d tensor"):
        len(nf.tensor(1.0))
    with pytest.raises(RuntimeError, match="requires_grad_: you can only change requires_grad of leaf"):
        (nf.ones(2, requires_grad=True) * 2).requires_grad_(False)


def test_creation_errors():
    with pytest.raises(ValueError, match=r"zeros: negative dimension -1 in size \(2, -1\)"):
        nf.zeros(2, -1)
    with pytest.raises(TypeError, match="ones: size must be a sequence of ints"):
        nf.ones(2.5)
    with pytest.raises(ValueError, match="arange: step must be nonzero"):
        nf.arange(0, 1, 0)
    with pytest.raises(ValueError, match="linspace: number of steps must be non-negative, got -1"):
        nf.linspace(0, 1, -1)
    with pytest.raises(TypeError, match="from_numpy: expected a numpy.ndarray, got list"):
        nf.from_numpy([1.0])
