"""Batch normalization (csrc/cpu/batchnorm.cpp, ops/normalization.py,
nn/batchnorm.py): F.batch_norm in training and evaluation against a numpy
reference and PyTorch (output, input/weight/bias gradients, running
statistics), float64 gradcheck, the modules over several steps against
PyTorch's (momentum, momentum=None, affine=False, track_running_stats=False,
state_dict both ways), numerical stability, thread-count invariance, and errors."""
import numpy as np
import pytest

import nnforge as nf
from nnforge import nn
from nnforge._C import cpu as C
from nnforge.nn import functional as F

from helpers import assert_close, check_op, requires_torch, torch


def tf():
    return torch.nn.functional


def np_batch_norm(x, w=None, b=None, mean=None, var=None, eps=1e-5):
    """Training statistics when mean/var are None, else the given ones."""
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    if mean is None:
        mean, var = x.mean(axis=axes), x.var(axis=axes)
    y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
    if w is not None:
        y = y * w.reshape(shape) + b.reshape(shape)
    return y


SHAPES = [(5, 3), (4, 3, 6), (2, 3, 4, 5), (1, 2, 3, 3), (3, 4, 1, 1)]


# ---------------------------------------------------------------- F.batch_norm
@requires_torch
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_batch_norm_training_vs_numpy_and_torch(shape):
    c = shape[1]
    check_op(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
             lambda x, w, b: tf().batch_norm(x, None, None, w, b, training=True),
             lambda x, w, b: np_batch_norm(x, w, b), shapes=[shape, (c,), (c,)])


@requires_torch
@pytest.mark.parametrize("shape", SHAPES[:3], ids=str)
def test_batch_norm_training_without_affine(shape):
    check_op(lambda x: F.batch_norm(x, None, None, training=True),
             lambda x: tf().batch_norm(x, None, None, training=True),
             lambda x: np_batch_norm(x), shapes=[shape])


@requires_torch
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_batch_norm_eval_vs_numpy_and_torch(shape):
    c = shape[1]
    rng = np.random.default_rng(1)
    rm = rng.standard_normal(c)
    rv = rng.uniform(0.5, 2.0, c)
    for dtype in ("float32", "float64"):
        m, v = rm.astype(dtype), rv.astype(dtype)
        check_op(lambda x, w, b: F.batch_norm(x, nf.from_numpy(m.copy()),
                                              nf.from_numpy(v.copy()), w, b, eps=1e-3),
                 lambda x, w, b: tf().batch_norm(x, torch.from_numpy(m.copy()),
                                                 torch.from_numpy(v.copy()), w, b, eps=1e-3),
                 lambda x, w, b: np_batch_norm(x, w, b, m, v, eps=1e-3),
                 shapes=[shape, (c,), (c,)], dtype=dtype)


@requires_torch
@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (2, 3, 4, 5)], ids=str)
@pytest.mark.parametrize("momentum", [0.1, 0.5])
def test_running_stats_updated_like_torch(shape, momentum):
    c = shape[1]
    ours = [nf.zeros(c), nf.ones(c)]
    theirs = [torch.zeros(c), torch.ones(c)]
    rng = np.random.default_rng(2)
    for _ in range(4):
        x = (rng.standard_normal(shape) * 3 + 1).astype(np.float32)
        F.batch_norm(nf.from_numpy(x), *ours, training=True, momentum=momentum)
        tf().batch_norm(torch.from_numpy(x), *theirs, training=True, momentum=momentum)
    for a, b in zip(ours, theirs):
        assert_close(a, b, 1e-6, 1e-5)


def test_numerically_stable_variance():
    # A large mean and a small spread: E[x^2] - E[x]^2 in float32 would lose every digit.
    rng = np.random.default_rng(3)
    x = (1e4 + rng.standard_normal((16, 2, 32, 32)) * 1e-2).astype(np.float32)
    y = F.batch_norm(nf.from_numpy(x), None, None, training=True, eps=0.0).numpy()
    ref = np_batch_norm(x.astype(np.float64), eps=0.0)
    assert_close(y, ref, 2e-2, 1e-2)
    assert abs(y.std() - 1.0) < 1e-2


# ---------------------------------------------------------------- modules
def _copy_module(ours, theirs):
    ours.load_state_dict({k: v.detach().numpy().copy() for k, v in theirs.state_dict().items()})


@requires_torch
@pytest.mark.parametrize("cls,shape", [("BatchNorm1d", (8, 4)), ("BatchNorm1d", (4, 4, 7)),
                                       ("BatchNorm2d", (3, 4, 5, 6)),
                                       ("BatchNorm2d", (1, 4, 3, 3))], ids=str)
@pytest.mark.parametrize("kwargs", [{}, {"momentum": None}, {"affine": False},
                                    {"track_running_stats": False}, {"momentum": 0.3, "eps": 1e-3},
                                    {"bias": False}],
                         ids=str)
def test_module_matches_torch_over_steps(cls, shape, kwargs):
    ours, theirs = getattr(nn, cls)(4, **kwargs), getattr(torch.nn, cls)(4, **kwargs)
    assert repr(ours) == repr(theirs)
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    if ours.affine:
        with torch.no_grad():
            theirs.weight.uniform_(0.5, 1.5)
            if theirs.bias is not None:
                theirs.bias.uniform_(-0.5, 0.5)
    _copy_module(ours, theirs)
    rng = np.random.default_rng(4)
    for step in range(3):
        x = (rng.standard_normal(shape) * 2 + 0.5).astype(np.float32)
        g = rng.standard_normal(shape).astype(np.float32)
        xo, xt = nf.from_numpy(x).requires_grad_(), torch.from_numpy(x).requires_grad_()
        yo, yt = ours(xo), theirs(xt)
        assert_close(yo.detach(), yt.detach(), 1e-5, 1e-4, msg=f"train step {step}")
        yo.backward(nf.from_numpy(g))
        yt.backward(torch.from_numpy(g))
        assert_close(xo.grad, xt.grad, 1e-4, 1e-3, msg="input grad")
        if ours.affine:
            assert_close(ours.weight.grad, theirs.weight.grad, 1e-4, 1e-3)
            if ours.bias is not None:
                assert_close(ours.bias.grad, theirs.bias.grad, 1e-4, 1e-3)
            ours.zero_grad()
            theirs.zero_grad()
    for name, buf in theirs.named_buffers():
        assert_close(getattr(ours, name), buf, 1e-6, 1e-5, msg=name)
    ours.eval()
    theirs.eval()
    x = rng.standard_normal(shape).astype(np.float32)
    xo, xt = nf.from_numpy(x).requires_grad_(), torch.from_numpy(x).requires_grad_()
    yo, yt = ours(xo), theirs(xt)
    assert_close(yo.detach(), yt.detach(), 1e-5, 1e-4, msg="eval")
    yo.sum().backward()
    yt.sum().backward()
    assert_close(xo.grad, xt.grad, 1e-4, 1e-3, msg="eval input grad")


@requires_torch
def test_state_dict_keys_and_loading_from_torch():
    theirs = torch.nn.BatchNorm2d(3)
    theirs(torch.randn(4, 3, 5, 5))
    ours = nn.BatchNorm2d(3)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    _copy_module(ours, theirs)
    assert ours.num_batches_tracked.dtype == nf.int64
    assert int(ours.num_batches_tracked.item()) == 1
    assert_close(ours.running_var, theirs.running_var, 0, 0)
    # an old checkpoint without num_batches_tracked still loads (as in PyTorch)
    sd = {k: v.numpy() for k, v in theirs.state_dict().items() if k != "num_batches_tracked"}
    nn.BatchNorm2d(3).load_state_dict(sd)


def test_module_reprs_and_buffers():
    bn = nn.BatchNorm2d(16)
    assert repr(bn) == ("BatchNorm2d(16, eps=1e-05, momentum=0.1, affine=True, bias=True, "
                        "track_running_stats=True)")  # PyTorch 2.13's repr
    assert [n for n, _ in bn.named_parameters()] == ["weight", "bias"]
    bn = nn.BatchNorm1d(3, affine=False, track_running_stats=False)
    assert list(bn.parameters()) == [] and bn.state_dict() == {}
    assert bn.running_mean is None
    x = nf.randn(6, 3)
    bn.eval()  # no running statistics: batch statistics in eval too
    assert_close(bn(x), np_batch_norm(x.numpy()), 1e-5, 1e-4)


@requires_torch
def test_float64_module_and_gradcheck():
    bn = nn.BatchNorm2d(2).double()
    with nf.no_grad():
        bn.weight.copy_(nf.tensor([0.7, 1.3], dtype=nf.float64))
    x = nf.randn(3, 2, 3, 2, dtype=nf.float64, requires_grad=True)
    assert nf.autograd.gradcheck(lambda t: bn(t), (x,))
    bn.eval()
    assert nf.autograd.gradcheck(lambda t: bn(t), (x,))


# ---------------------------------------------------------------- threads
@pytest.mark.parametrize("shape", [(8, 16, 20, 20), (512, 96)], ids=str)
def test_thread_counts_give_identical_results(shape):
    rng = np.random.default_rng(5)
    x = rng.standard_normal(shape).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    results = []
    old = nf.get_num_threads()
    try:
        for threads in (1, 2):
            nf.set_num_threads(threads)
            bn = nn.BatchNorm1d(shape[1]) if len(shape) == 2 else nn.BatchNorm2d(shape[1])
            xt = nf.from_numpy(x).requires_grad_()
            y = bn(xt)
            y.backward(nf.from_numpy(g))
            results.append([a.numpy().copy() for a in (y.detach(), xt.grad, bn.weight.grad,
                                                       bn.bias.grad, bn.running_var)])
    finally:
        nf.set_num_threads(old)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- errors
def test_errors():
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        F.batch_norm(nf.randn(1, 3), None, None, training=True)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        nn.BatchNorm2d(3)(nf.randn(1, 3, 1, 1))
    nn.BatchNorm2d(3).eval()(nf.randn(1, 3, 1, 1))  # fine in evaluation
    with pytest.raises(ValueError, match=r"expected 4D input \(got 3D input\)"):
        nn.BatchNorm2d(3)(nf.randn(2, 3, 4))
    with pytest.raises(ValueError, match=r"expected 2D or 3D input \(got 4D input\)"):
        nn.BatchNorm1d(3)(nf.randn(2, 3, 4, 4))
    with pytest.raises(ValueError, match="running_mean of shape"):
        F.batch_norm(nf.randn(4, 3), nf.zeros(4), nf.ones(4), training=True)
    with pytest.raises(ValueError, match=r"of shape \(4,\) does not match input of shape"):
        nn.BatchNorm1d(4)(nf.randn(5, 3))
    with pytest.raises(ValueError, match="evaluation"):
        F.batch_norm(nf.randn(4, 3), None, None, training=False)
    with pytest.raises(ValueError, match="at least 2 dims"):
        F.batch_norm(nf.randn(4), None, None, training=True)
    with pytest.raises(TypeError, match="floating-point"):
        F.batch_norm(nf.ones(4, 3, dtype=nf.int64), None, None, training=True)


def test_bindings_reject_bad_arrays():
    x = np.zeros((4, 3, 5), np.float32)
    with pytest.raises(TypeError, match="numpy array"):
        C.batch_norm_forward_train([1.0], None, None, 1e-5)
    with pytest.raises(ValueError, match="3-D"):
        C.batch_norm_forward_train(x[0], None, None, 1e-5)
    with pytest.raises(ValueError, match="dtype"):
        C.batch_norm_forward_train(x.astype(np.int64), None, None, 1e-5)
    with pytest.raises(ValueError, match="C-contiguous"):
        C.batch_norm_forward_train(np.zeros((4, 3, 10), np.float32)[..., ::2], None, None, 1e-5)
    with pytest.raises(ValueError, match="weight has shape"):
        C.batch_norm_forward_train(x, np.ones(4, np.float32), None, 1e-5)
    with pytest.raises(ValueError, match="weight has dtype"):
        C.batch_norm_forward_train(x, np.ones(3, np.float64), None, 1e-5)
    with pytest.raises(ValueError, match="no values per channel"):
        C.batch_norm_forward_train(np.zeros((0, 3, 5), np.float32), None, None, 1e-5)
    with pytest.raises(ValueError, match="mean must not be None"):
        C.batch_norm_forward_eval(x, None, None, None, np.ones(3, np.float32), 1e-5)
    with pytest.raises(ValueError, match="does not match"):
        C.batch_norm_backward(np.zeros((4, 3, 6), np.float32), x, None, np.zeros(3, np.float32),
                              np.ones(3, np.float32), True, True, False, False)
