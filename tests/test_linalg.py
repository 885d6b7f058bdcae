"""matmul (every 1-D and batched case), mm/bmm/dot, ``@`` and linear against
numpy and PyTorch: forward, gradients of both operands, gradcheck in float64."""
import numpy as np
import pytest

import nnforge as nf
from helpers import check_op, requires_torch, torch
from nnforge.ops.linalg import linear

pytestmark = pytest.mark.filterwarnings("error")

MATMUL_SHAPES = [
    ((4,), (4,)),                 # dot
    ((1,), (1,)),
    ((3,), (3, 5)),               # vector @ matrix
    ((4, 3), (3,)),               # matrix @ vector
    ((3,), (2, 3, 4)),            # vector @ batch
    ((2, 4, 3), (3,)),            # batch @ vector
    ((4, 3), (3, 5)),
    ((1, 1), (1, 1)),
    ((7, 5), (5, 3)),
    ((0, 3), (3, 4)),             # empty rows
    ((4, 0), (0, 3)),             # empty inner dim: zeros
    ((4, 3), (3, 0)),
    ((0,), (0,)),
    ((2, 4, 3), (2, 3, 5)),       # bmm
    ((2, 1, 4, 3), (3, 3, 5)),    # broadcast batch dims
    ((5, 4, 3), (3, 2)),          # batch @ matrix
    ((4, 3), (6, 3, 2)),          # matrix @ batch
    ((1, 4, 3), (6, 3, 2)),
    ((0, 2, 3), (3, 4)),          # empty batch
]


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul(shapes):
    check_op(lambda a, b: a @ b, lambda a, b: a @ b, np.matmul, shapes=shapes)


@pytest.mark.parametrize("shapes", [((3,), (3, 5)), ((2, 4, 3), (3,)), ((2, 1, 4, 3), (3, 3, 5))],
                         ids=str)
def test_matmul_float64_and_functional(shapes):
    check_op(nf.matmul, lambda a, b: torch.matmul(a, b), np.matmul, shapes=shapes, dtype="float64")


def test_matmul_one_operand_without_grad():
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    w = np.random.default_rng(1).standard_normal((4, 2)).astype(np.float32)
    check_op(lambda a, b: a @ b, lambda a, b: a @ b, np.matmul, inputs=[x, w],
             requires_grad=[False, True])
    check_op(lambda a, b: a @ b, lambda a, b: a @ b, np.matmul, inputs=[x, w],
             requires_grad=[True, False])


def test_matmul_with_numpy_array_is_a_type_error():
    # PyTorch refuses ndarray @ tensor too; the error names the op and the type.
    a = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    with pytest.raises(TypeError, match="matmul.*ndarray"):
        a @ nf.ones(3, 2)
    with pytest.raises(TypeError, match="matmul.*ndarray"):
        nf.ones(3, 2).T @ a


@pytest.mark.parametrize("lhs,rhs,expected", [
    ("int64", "int64", "int64"), ("int64", "float32", "float32"), ("float32", "float64", "float64"),
    ("int32", "int64", "int64"),
])
def test_matmul_promotes_mixed_dtypes(lhs, rhs, expected):
    # PyTorch requires equal dtypes here; we promote as for any binary op.
    a, b = np.arange(6).reshape(2, 3).astype(lhs), np.arange(6).reshape(3, 2).astype(rhs)
    out = nf.from_numpy(a) @ nf.from_numpy(b)
    assert out.dtype.name == expected
    np.testing.assert_array_equal(out.numpy(), a.astype(np.float64) @ b)


@pytest.mark.parametrize("shapes", [((4, 3), (3, 5)), ((1, 1), (1, 1)), ((0, 2), (2, 3))], ids=str)
def test_mm(shapes):
    check_op(nf.mm, lambda a, b: torch.mm(a, b), np.matmul, shapes=shapes)
    check_op(lambda a, b: a.mm(b), lambda a, b: a.mm(b), np.matmul, shapes=shapes)


@pytest.mark.parametrize("shapes", [((2, 4, 3), (2, 3, 5)), ((1, 1, 1), (1, 1, 2)), ((0, 2, 3), (0, 3, 1))],
                         ids=str)
def test_bmm(shapes):
    check_op(nf.bmm, lambda a, b: torch.bmm(a, b), np.matmul, shapes=shapes)


@pytest.mark.parametrize("n", [0, 1, 7])
def test_dot(n):
    check_op(nf.dot, lambda a, b: torch.dot(a, b), np.dot, shapes=[(n,), (n,)])
    check_op(lambda a, b: a.dot(b), lambda a, b: a.dot(b), np.dot, shapes=[(n,), (n,)])


# ---------------------------------------------------------------- linear
LINEAR_SHAPES = [
    ((4, 3), (5, 3), (5,)),
    ((3,), (5, 3), (5,)),          # a single sample
    ((2, 3, 4), (2, 4), (2,)),     # extra leading dims
    ((1, 1), (1, 1), (1,)),
    ((0, 3), (5, 3), (5,)),        # empty batch
    ((4, 0), (5, 0), (5,)),        # no input features: y = b
    ((4, 3), (0, 3), (0,)),        # no outputs
]


@pytest.mark.parametrize("shapes", LINEAR_SHAPES, ids=str)
def test_linear(shapes):
    def np_ref(x, w, b):
        return x @ w.T + b
    check_op(linear, lambda x, w, b: torch.nn.functional.linear(x, w, b), np_ref, shapes=shapes)


@pytest.mark.parametrize("shapes", [s[:2] for s in LINEAR_SHAPES], ids=str)
def test_linear_without_bias(shapes):
    check_op(linear, lambda x, w: torch.nn.functional.linear(x, w), lambda x, w: x @ w.T,
             shapes=shapes)


def test_linear_float64_and_zero_dim_bias():
    check_op(linear, lambda x, w, b: torch.nn.functional.linear(x, w, b),
             lambda x, w, b: x @ w.T + b, shapes=[(3, 4), (2, 4), ()], dtype="float64",
             noncontig=False, gradcheck=False)
    # (check_op's gradcheck turns a 0-d input into shape (1,); check the 0-d bias here)
    x, w = nf.randn(3, 4, dtype=nf.float64), nf.randn(2, 4, dtype=nf.float64)
    b = nf.tensor(0.5, dtype=nf.float64, requires_grad=True)
    assert nf.autograd.gradcheck(lambda bb: linear(x, w, bb), (b,))


def test_linear_does_not_modify_inputs():
    x, w, b = nf.ones(2, 3), nf.ones(4, 3), nf.ones(4)
    linear(x, w, b)
    assert x.tolist() == [[1.0] * 3] * 2 and b.tolist() == [1.0] * 4
