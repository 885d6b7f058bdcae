"""Bad input to an op raises a clear Python exception — the type PyTorch would
raise (or the one DESIGN.md asks for) — whose message names the op and the
shapes or values at fault. Nothing crashes, nothing is left half-modified."""
import re

import numpy as np
import pytest

import nnforge as nf
from nnforge.ops.linalg import linear
from nnforge.ops.shape import pad

pytestmark = pytest.mark.filterwarnings("error")


def x23():
    return nf.ones(2, 3)


def s(shape):
    """A shape as the messages print it, escaped for a regex."""
    return re.escape(str(tuple(shape)))


CASES = {
    # ---- broadcasting
    "add": (lambda: x23() + nf.ones(4, 3), ValueError, rf"add: shapes {s((2, 3))} and {s((4, 3))} are not broadcastable"),
    "sub": (lambda: nf.sub(x23(), nf.ones(5)), ValueError, rf"sub: shapes {s((2, 3))} and {s((5,))}"),
    "mul": (lambda: x23() * nf.ones(2), ValueError, rf"mul: shapes {s((2, 3))} and {s((2,))}"),
    "div": (lambda: x23() / nf.ones(3, 1, 2), ValueError, rf"div: shapes {s((2, 3))} and {s((3, 1, 2))}"),
    "pow": (lambda: x23() ** nf.ones(4), ValueError, rf"pow: shapes {s((2, 3))} and {s((4,))}"),
    "radd": (lambda: np.ones((4, 3)) + x23(), ValueError, rf"add: shapes {s((4, 3))} and {s((2, 3))}"),
    "maximum": (lambda: nf.maximum(x23(), nf.ones(4, 3)), ValueError, rf"maximum: shapes {s((2, 3))} and {s((4, 3))}"),
    "minimum": (lambda: nf.minimum(x23(), nf.ones(3, 2)), ValueError, rf"minimum: shapes {s((2, 3))} and {s((3, 2))}"),
    "eq": (lambda: x23() == nf.ones(4, 3), ValueError, rf"eq: shapes {s((2, 3))} and {s((4, 3))}"),
    "lt": (lambda: x23() < nf.ones(2), ValueError, rf"lt: shapes {s((2, 3))} and {s((2,))}"),
    "logical_or": (lambda: nf.logical_or(x23(), nf.ones(4)), ValueError, r"logical_or: shapes"),
    "where": (lambda: nf.where(nf.ones(2, 3).bool(), x23(), nf.ones(4, 3)), ValueError,
              rf"where: condition {s((2, 3))}, input {s((2, 3))} and other {s((4, 3))}"),
    "clamp": (lambda: nf.clamp(x23(), nf.ones(4)), ValueError, rf"clamp: input {s((2, 3))} and min {s((4,))}"),
    "masked_fill": (lambda: x23().masked_fill(nf.ones(4, 3).bool(), 0.0), ValueError,
                    rf"masked_fill: mask of shape {s((4, 3))} does not broadcast to input of shape {s((2, 3))}"),
    "masked_fill_grows": (lambda: nf.ones(3).masked_fill(nf.ones(2, 3).bool(), 0.0), ValueError,
                          rf"masked_fill: mask of shape {s((2, 3))}"),
    "masked_select": (lambda: nf.masked_select(x23(), nf.ones(4).bool()), ValueError,
                      rf"masked_select: mask {s((4,))} and input {s((2, 3))}"),
    # ---- operand types
    "add_str": (lambda: x23() + "a", TypeError, r"add: unsupported operand type str"),
    "mul_none": (lambda: x23() * None, TypeError, r"mul: unsupported operand type NoneType"),
    "exp_list": (lambda: nf.exp([1.0]), TypeError, r"exp: argument 'input' must be a Tensor, got list"),
    "neg_bool": (lambda: -nf.tensor([True]), TypeError, r"neg: .*bool"),
    "sub_bool": (lambda: nf.tensor([True]) - nf.tensor([False]), TypeError, r"sub: .*bool"),
    "where_cond": (lambda: nf.where(x23(), x23(), x23()), TypeError, r"where: condition must be a bool tensor, got float32"),
    "masked_fill_mask": (lambda: x23().masked_fill(x23(), 0.0), TypeError, r"masked_fill: mask must be a bool tensor"),
    "masked_fill_value": (lambda: x23().masked_fill(x23().bool(), nf.ones(2)), ValueError,
                          rf"masked_fill: value must be a 0-d tensor, got shape {s((2,))}"),
    "clamp_none": (lambda: nf.clamp(x23()), ValueError, r"clamp: at least one of 'min' and 'max'"),
    "div_mode": (lambda: nf.div(x23(), x23(), rounding_mode="up"), ValueError, r"div: rounding_mode .* got 'up'"),
    "float_only_mean": (lambda: nf.tensor([1, 2]).mean(), TypeError, r"mean: input dtype must be floating point, got int64"),
    "float_only_softmax": (lambda: nf.tensor([1, 2]).softmax(0), TypeError, r"softmax: .*floating point"),
    "float_only_var": (lambda: nf.tensor([1, 2]).var(), TypeError, r"var: .*floating point"),
    "float_only_std": (lambda: nf.tensor([1, 2]).std(), TypeError, r"std: .*floating point"),
    # ---- matrix products
    "matmul_inner": (lambda: x23() @ nf.ones(4, 3), ValueError, rf"matmul: shapes {s((2, 3))} and {s((4, 3))} cannot be multiplied \(3 != 4\)"),
    "matmul_vec": (lambda: nf.ones(3) @ nf.ones(4), ValueError, rf"matmul: shapes {s((3,))} and {s((4,))}"),
    "matmul_vec_mat": (lambda: nf.ones(3) @ nf.ones(4, 2), ValueError, rf"matmul: shapes {s((3,))} and {s((4, 2))}"),
    "matmul_0d": (lambda: x23() @ nf.tensor(1.0), ValueError, rf"matmul: both arguments need at least 1 dimension.*{s(())}"),
    "matmul_batch": (lambda: nf.ones(2, 3, 4) @ nf.ones(3, 4, 5), ValueError,
                     rf"matmul: batch dims of shapes {s((2, 3, 4))} and {s((3, 4, 5))} are not broadcastable"),
    "matmul_bool": (lambda: x23().bool() @ x23().bool().t(), TypeError, r"matmul: bool"),
    "matmul_type": (lambda: nf.matmul(x23(), [[1.0]]), TypeError, r"matmul: argument 'other' must be a Tensor, got list"),
    "mm_ndim": (lambda: nf.mm(nf.ones(2, 3, 4), nf.ones(4, 3)), ValueError, rf"mm: expects 2-D tensors, got shapes {s((2, 3, 4))} and {s((4, 3))}"),
    "mm_inner": (lambda: nf.mm(x23(), x23()), ValueError, rf"mm: shapes {s((2, 3))} and {s((2, 3))} cannot be multiplied"),
    "bmm_batch": (lambda: nf.bmm(nf.ones(2, 3, 4), nf.ones(3, 4, 5)), ValueError, rf"bmm: .*{s((2, 3, 4))} and {s((3, 4, 5))}"),
    "bmm_inner": (lambda: nf.bmm(nf.ones(2, 3, 4), nf.ones(2, 3, 4)), ValueError, r"bmm: shapes .* cannot be multiplied \(4 != 3\)"),
    "dot_len": (lambda: nf.dot(nf.ones(3), nf.ones(4)), ValueError, rf"dot: shapes {s((3,))} and {s((4,))}"),
    "dot_ndim": (lambda: nf.dot(x23(), x23()), ValueError, rf"dot: expects 1-D tensors, got shapes {s((2, 3))}"),
    "linear_in": (lambda: linear(x23(), nf.ones(5, 4)), ValueError,
                  rf"linear: input of shape {s((2, 3))} does not match weight of shape {s((5, 4))}"),
    "linear_bias": (lambda: linear(x23(), nf.ones(5, 3), nf.ones(4)), ValueError,
                    rf"linear: bias of shape {s((4,))} does not match weight of shape {s((5, 3))}"),
    "linear_weight": (lambda: linear(x23(), nf.ones(3)), ValueError, rf"linear: weight must be 2-D.*{s((3,))}"),
    # ---- cat / stack / split
    "cat_shapes": (lambda: nf.cat([x23(), nf.ones(2, 4)], 0), ValueError,
                   rf"cat: sizes of tensors must match except in dimension 0; tensor 0 has shape {s((2, 3))}, tensor 1 has shape {s((2, 4))}"),
    "cat_ndim": (lambda: nf.cat([x23(), nf.ones(3)], 0), ValueError, rf"cat: .*tensor 1 has shape {s((3,))}"),
    "cat_empty": (lambda: nf.cat([], 0), ValueError, r"cat: expected a non-empty list"),
    "cat_0d": (lambda: nf.cat([nf.tensor(1.0), nf.tensor(2.0)]), ValueError, r"cat: zero-dimensional"),
    "cat_type": (lambda: nf.cat(x23()), TypeError, r"cat: expected a list or tuple of tensors, got Tensor"),
    "cat_elem": (lambda: nf.cat([x23(), 3]), TypeError, r"cat: element 1 is int"),
    "cat_dim": (lambda: nf.cat([x23(), x23()], 2), IndexError, r"cat: dimension out of range .*got 2"),
    "stack_shapes": (lambda: nf.stack([x23(), nf.ones(4, 3)]), ValueError,
                     rf"stack: expects each tensor to be equal size, but got {s((2, 3))} at entry 0 and {s((4, 3))} at entry 1"),
    "stack_dim": (lambda: nf.stack([x23(), x23()], 4), IndexError, r"stack: dimension out of range"),
    "split_sections": (lambda: x23().split([1, 1], 1), ValueError, rf"split: sections \[1, 1\] do not sum to the size 3 of dimension 1 \(shape {s((2, 3))}\)"),
    "split_size": (lambda: x23().split(0, 1), ValueError, r"split: split_size must be positive, got 0"),
    "chunk": (lambda: x23().chunk(0), ValueError, r"chunk: chunks must be positive, got 0"),
    "narrow": (lambda: x23().narrow(1, 2, 2), IndexError, rf"narrow: start 2 and length 2 are out of range for dimension 1 of size 3 \(shape {s((2, 3))}\)"),
    "unbind_dim": (lambda: x23().unbind(2), IndexError, r"unbind: dimension out of range"),
    # ---- dims
    "sum_dim": (lambda: x23().sum(2), IndexError, r"sum: dimension out of range \(expected to be in range of \[-2, 1\], but got 2\)"),
    "sum_dup": (lambda: x23().sum((0, -2)), ValueError, r"sum: dim .* names a dimension twice"),
    "mean_dim": (lambda: x23().mean(-3), IndexError, r"mean: dimension out of range"),
    "max_dim": (lambda: x23().max(5), IndexError, r"max: dimension out of range"),
    "argmax_dim": (lambda: x23().argmax(2), IndexError, r"argmax: dimension out of range"),
    "softmax_dim": (lambda: x23().softmax(2), IndexError, r"softmax: dimension out of range"),
    "cumsum_dim": (lambda: x23().cumsum(3), IndexError, r"cumsum: dimension out of range"),
    "transpose_dim": (lambda: x23().transpose(0, 2), IndexError, r"transpose: dimension out of range"),
    "squeeze_dim": (lambda: x23().squeeze(3), IndexError, r"squeeze: dimension out of range"),
    "unsqueeze_dim": (lambda: x23().unsqueeze(4), IndexError, r"unsqueeze: dimension out of range .*\[-3, 2\]"),
    "flip_dim": (lambda: x23().flip(2), IndexError, r"flip: dimension out of range"),
    "flip_dup": (lambda: x23().flip((0, 0)), ValueError, r"flip: dim \(0, 0\) names a dimension twice"),
    "permute_len": (lambda: x23().permute(0), ValueError, rf"permute: got 1 dims \(0,\) for a tensor of shape {s((2, 3))}"),
    "permute_dup": (lambda: x23().permute(0, 0), ValueError, r"permute: dims \(0, 0\) repeat a dimension"),
    "t_3d": (lambda: nf.ones(2, 3, 4).t(), ValueError, rf"t: expects a tensor with <= 2 dimensions, got shape {s((2, 3, 4))}"),
    "mT_1d": (lambda: nf.ones(3).mT, ValueError, rf"mT: needs at least 2 dimensions, got shape {s((3,))}"),
    "flatten": (lambda: nf.ones(2, 3, 4).flatten(2, 1), ValueError, r"flatten: start_dim 2 comes after end_dim 1"),
    # ---- empty reductions
    "max_empty": (lambda: nf.ones(0).max(), IndexError, rf"max: cannot reduce an empty tensor of shape {s((0,))}"),
    "max_dim_empty": (lambda: nf.ones(0, 3).max(0), IndexError, rf"max: .*{s((0, 3))}"),
    "amax_empty": (lambda: nf.ones(0, 3).amax(0), IndexError, rf"amax: cannot reduce over a dimension of size 0 \(input shape {s((0, 3))}"),
    "argmin_empty": (lambda: nf.ones(3, 0).argmin(), IndexError, rf"argmin: .*{s((3, 0))}"),
    # ---- reshape / view / expand / repeat
    "reshape": (lambda: x23().reshape(4, 2), ValueError, rf"reshape: shape {s((4, 2))} is invalid for input of shape {s((2, 3))} \(6 elements\)"),
    "reshape_infer": (lambda: x23().reshape(-1, 4), ValueError, rf"reshape: shape {s((-1, 4))} is invalid for input of shape {s((2, 3))}"),
    "reshape_two_infer": (lambda: x23().reshape(-1, -1), ValueError, r"reshape: only one dimension can be inferred"),
    "reshape_negative": (lambda: x23().reshape(-2, 3), ValueError, r"reshape: invalid size -2"),
    "reshape_type": (lambda: x23().reshape(2.0, 3), TypeError, r"reshape: sizes must be integers, got float"),
    "view_size": (lambda: x23().view(5), ValueError, rf"view: shape {s((5,))} is invalid for input of shape {s((2, 3))}"),
    "view_noncontiguous": (lambda: x23().t().view(6), RuntimeError,
                           rf"view: shape {s((6,))} is not compatible with the input's shape {s((3, 2))} and strides {s((1, 3))}.*use \.reshape"),
    "unflatten": (lambda: x23().unflatten(1, (2, 2)), ValueError, rf"unflatten: shape {s((2, 2))} is invalid"),
    "expand": (lambda: x23().expand(4, 3), ValueError,
               rf"expand: the expanded size 4 must match the existing size 2 at non-singleton dimension 0; target sizes {s((4, 3))}, tensor shape {s((2, 3))}"),
    "expand_fewer": (lambda: x23().expand(3), ValueError, rf"expand: the number of sizes {s((3,))} must be >= .*{s((2, 3))}"),
    "expand_new_minus1": (lambda: x23().expand(-1, 2, 3), ValueError, r"expand: size -1 is not allowed in a new leading dimension"),
    "repeat_fewer": (lambda: x23().repeat(2), ValueError, rf"repeat: number of repeat dims 1 .*{s((2, 3))}"),
    "repeat_negative": (lambda: x23().repeat(-1, 1), ValueError, r"repeat: repeats must be non-negative, got \(-1, 1\)"),
    # ---- pad
    "pad_odd": (lambda: pad(x23(), (1,)), ValueError, rf"pad: padding \(1,\) must have an even length .*{s((2, 3))}"),
    "pad_long": (lambda: pad(x23(), (1,) * 6), ValueError, rf"pad: padding .* at most 2 \* ndim for an input of shape {s((2, 3))}"),
    "pad_reflect": (lambda: pad(nf.ones(1, 2, 3), (3, 0), mode="reflect"), ValueError,
                    rf"pad: reflect padding \(3, 0\) must be smaller than the size 3 of dimension 2 \(shape {s((1, 2, 3))}\)"),
    "pad_reflect_left": (lambda: pad(nf.ones(1, 4, 2), (0, 0, 1, 4), mode="reflect"), ValueError,
                         r"pad: reflect padding \(1, 4\) must be smaller than the size 4 of dimension 1"),
    "pad_circular": (lambda: pad(nf.ones(1, 2, 3), (4, 0), mode="circular"), ValueError, r"pad: circular padding \(4, 0\) must be at most the size 3"),
    "pad_mode": (lambda: pad(x23(), (1, 1), mode="zeros"), ValueError, r"pad: mode must be .* got 'zeros'"),
    "pad_crop": (lambda: pad(x23(), (-2, -2)), ValueError, rf"pad: padding \(-2, -2\) crops more than the input shape {s((2, 3))}"),
    "pad_negative_reflect": (lambda: pad(x23(), (-1, 0), mode="reflect"), ValueError, r"pad: negative padding .* only supported in constant mode"),
    "pad_empty_replicate": (lambda: pad(nf.ones(2, 0), (1, 1), mode="replicate"), ValueError,
                            rf"pad: cannot replicate-pad an empty dimension \(shape {s((2, 0))}\)"),
    "pad_value_mode": (lambda: pad(x23(), (1, 1), mode="reflect", value=2.0), ValueError, r"pad: padding mode 'reflect' does not take a value"),
    # ---- indexing
    "index_int": (lambda: x23()[2], IndexError, rf"index: index 2 is out of bounds for axis 0 with size 2 \(indexing a tensor of shape {s((2, 3))}\)"),
    "index_negative": (lambda: x23()[:, -4], IndexError, r"index: index -4 is out of bounds for axis 1 with size 3"),
    "index_too_many": (lambda: x23()[0, 0, 0], IndexError, rf"index: too many indices.*{s((2, 3))}"),
    "index_array": (lambda: x23()[[0, 5]], IndexError, rf"index: index 5 is out of bounds.*{s((2, 3))}"),
    "index_float": (lambda: x23()[1.5], IndexError, r"index: unsupported index of type float"),
    "index_str": (lambda: x23()["a"], IndexError, r"index: unsupported index of type str"),
    "index_float_tensor": (lambda: x23()[nf.tensor([0.0])], IndexError, r"index: tensors used as indices must be integer or bool, got float32"),
    "index_mask": (lambda: x23()[nf.ones(3).bool()], IndexError, rf"index: boolean index did not match.*{s((2, 3))}"),
    "setitem_shape": (lambda: x23().__setitem__(0, nf.ones(4)), ValueError,
                      rf"index_put: value of shape {s((4,))} cannot be assigned to the indexed part of a tensor of shape {s((2, 3))}"),
    "setitem_index": (lambda: x23().__setitem__(5, 1.0), IndexError, rf"index_put: index 5 is out of bounds.*{s((2, 3))}"),
    "index_select_range": (lambda: x23().index_select(1, nf.tensor([3])), IndexError,
                           rf"index_select: index 3 is out of bounds for dimension 1 with size 3 \(input shape {s((2, 3))}, index shape {s((1,))}\)"),
    "index_select_negative": (lambda: x23().index_select(1, nf.tensor([-1])), IndexError, r"index_select: index -1 is out of bounds"),
    "index_select_2d": (lambda: x23().index_select(1, nf.tensor([[0]])), IndexError, rf"index_select: index must be a 1-D integer tensor, got shape {s((1, 1))}"),
    "index_select_float": (lambda: x23().index_select(1, nf.tensor([0.0])), IndexError, r"index_select: .*dtype float32"),
    "gather_range": (lambda: x23().gather(1, nf.tensor([[3]])), IndexError,
                     rf"gather: index 3 is out of bounds for dimension 1 with size 3 \(input shape {s((2, 3))}, index shape {s((1, 1))}\)"),
    "gather_negative": (lambda: x23().gather(1, nf.tensor([[0, -1]])), IndexError, r"gather: index -1 is out of bounds for dimension 1"),
    "gather_ndim": (lambda: x23().gather(1, nf.tensor([0])), ValueError, rf"gather: index {s((1,))} must have as many dims as the input {s((2, 3))}"),
    "gather_size": (lambda: x23().gather(1, nf.zeros(3, 1, dtype=nf.int64)), ValueError,
                    rf"gather: index {s((3, 1))} is larger than the input {s((2, 3))} in dimension 0"),
    "gather_dtype": (lambda: x23().gather(1, nf.zeros(2, 1)), TypeError, r"gather: index must be an integer tensor, got float32"),
    "scatter_add_range": (lambda: x23().scatter_add(1, nf.tensor([[3]]), nf.ones(1, 1)), IndexError,
                          r"scatter_add: index 3 is out of bounds for dimension 1 with size 3"),
    "scatter_add_negative": (lambda: x23().scatter_add(0, nf.tensor([[-1]]), nf.ones(1, 1)), IndexError,
                             r"scatter_add: index -1 is out of bounds for dimension 0 with size 2"),
    "scatter_add_src": (lambda: x23().scatter_add(1, nf.tensor([[0, 1]]), nf.ones(1, 1)), ValueError,
                        rf"scatter_add: index {s((1, 2))} is larger than src {s((1, 1))} in dimension 1"),
    "one_hot_range": (lambda: nf.one_hot(nf.tensor([0, 3]), 3), IndexError,
                      rf"one_hot: class index 3 is out of range for num_classes=3 \(input shape {s((2,))}\)"),
    "one_hot_negative": (lambda: nf.one_hot(nf.tensor([-1]), 3), IndexError, r"one_hot: class index -1 is out of range"),
    "one_hot_dtype": (lambda: nf.one_hot(nf.tensor([1.0]), 3), TypeError, r"one_hot: expects an integer tensor of class indices, got float32"),
    "one_hot_infer_empty": (lambda: nf.one_hot(nf.tensor([], dtype=nf.int64)), ValueError, r"one_hot: cannot infer num_classes from an empty tensor"),
}


@pytest.mark.parametrize("name", CASES)
def test_bad_input_raises_a_clear_error(name):
    fn, exc, pattern = CASES[name]
    with pytest.raises(exc, match=pattern):
        fn()


def test_failed_index_assignment_leaves_the_tensor_unchanged():
    x = nf.arange(6.0).reshape(2, 3)
    with pytest.raises(ValueError, match="index_put"):
        x[0] = nf.ones(4)
    with pytest.raises(IndexError, match="index_put"):
        x[[0, 7]] = 1.0
    assert x.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]] and x._version == 0


def test_failed_in_place_op_leaves_the_tensor_unchanged():
    x = nf.ones(2, 3)
    with pytest.raises(ValueError, match="add"):
        x.add_(nf.ones(4, 3))
    with pytest.raises(IndexError, match="scatter_add"):
        x.scatter_add_(1, nf.tensor([[5]]), nf.ones(1, 1))
    assert x.tolist() == [[1.0] * 3] * 2


@pytest.mark.parametrize("fn", [
    lambda: nf.ones(2, 3) + nf.ones(4, 3), lambda: nf.ones(3) @ nf.ones(4),
    lambda: nf.cat([nf.ones(2, 3), nf.ones(2, 4)]), lambda: nf.ones(2)[5],
], ids=["add", "matmul", "cat", "index"])
def test_errors_are_not_chained_to_numpy_internals(fn):
    # the message is ours: no "During handling of the above exception" numpy traceback
    with pytest.raises(Exception) as info:
        fn()
    assert info.value.__cause__ is None and info.value.__suppress_context__ or info.value.__context__ is None
