"""Pooling (csrc/cpu/pool.cpp, ops/pool.py, nn/pooling.py): max, average and
adaptive pooling in 1-D and 2-D against plain numpy references and PyTorch
(forward, indices, gradients), float64 gradcheck, thread-count invariance,
the module reprs and argument errors, and the nnforge._C.cpu bindings'
own checks.

Ties in max pooling: the first maximum in row-major window order wins (its
index is returned), as in PyTorch; a NaN in a window wins over any number
(the last NaN's index)."""
import math

import numpy as np
import pytest

import nnforge as nf
from nnforge import nn
from nnforge._C import cpu as C
from nnforge.nn import functional as F

from helpers import assert_close, check_op, requires_torch, torch, torch_or_skip


def tf():
    return torch.nn.functional


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _out_size(n, k, s, p, d, ceil_mode):
    num = n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
    out = num // s + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


# ---------------------------------------------------------------- numpy references
def np_max_pool2d(x, k, s=None, p=0, d=1, ceil_mode=False):
    """(y, indices) by direct loops over every window in row-major order ("v > m or NaN")."""
    (kh, kw), (sh, sw) = _pair(k), _pair(k if s is None else s)
    (ph, pw), (dh, dw) = _pair(p), _pair(d)
    n, c, h, w = x.shape
    oh, ow = _out_size(h, kh, sh, ph, dh, ceil_mode), _out_size(w, kw, sw, pw, dw, ceil_mode)
    y = np.empty((n, c, oh, ow), x.dtype)
    idx = np.empty((n, c, oh, ow), np.int64)
    for a in range(n):
        for b in range(c):
            for i in range(oh):
                for j in range(ow):
                    taps = [(i * sh - ph + u * dh, j * sw - pw + v * dw)
                            for u in range(kh) for v in range(kw)]
                    taps = [(r, q) for r, q in taps if 0 <= r < h and 0 <= q < w]
                    m, mi = -np.inf, taps[0][0] * w + taps[0][1]
                    for r, q in taps:
                        val = x[a, b, r, q]
                        if val > m or np.isnan(val):
                            m, mi = val, r * w + q
                    y[a, b, i, j], idx[a, b, i, j] = m, mi
    return y, idx


def np_avg_pool2d(x, k, s=None, p=0, ceil_mode=False, count_include_pad=True, divisor=None):
    """PyTorch's windows and divisors: the window ends at the padded edge; the sum is over
    its part inside the input."""
    (kh, kw), (sh, sw), (ph, pw) = _pair(k), _pair(k if s is None else s), _pair(p)
    n, c, h, w = x.shape
    oh, ow = _out_size(h, kh, sh, ph, 1, ceil_mode), _out_size(w, kw, sw, pw, 1, ceil_mode)
    y = np.zeros((n, c, oh, ow), x.dtype)
    for i in range(oh):
        h0 = i * sh - ph
        h1 = min(h0 + kh, h + ph)
        for j in range(ow):
            w0 = j * sw - pw
            w1 = min(w0 + kw, w + pw)
            size = (h1 - h0) * (w1 - w0)
            a0, a1, b0, b1 = max(h0, 0), min(h1, h), max(w0, 0), min(w1, w)
            if a0 >= a1 or b0 >= b1:
                continue
            if divisor is None:
                divisor_ij = size if count_include_pad else (a1 - a0) * (b1 - b0)
            else:
                divisor_ij = divisor
            y[:, :, i, j] = x[:, :, a0:a1, b0:b1].sum(axis=(2, 3)) / divisor_ij
    return y


def np_adaptive_avg_pool2d(x, out):
    oh, ow = out
    h, w = x.shape[-2:]
    y = np.empty(x.shape[:-2] + (oh, ow), x.dtype)
    for i in range(oh):
        h0, h1 = (i * h) // oh, -(-((i + 1) * h) // oh)
        for j in range(ow):
            w0, w1 = (j * w) // ow, -(-((j + 1) * w) // ow)
            y[..., i, j] = x[..., h0:h1, w0:w1].mean(axis=(-2, -1))
    return y


def _as_2d(fn):
    """A 2-D numpy reference applied to (N, C, L) as (N, C, 1, L)."""
    def run(x, *args, **kwargs):
        out = fn(x[:, :, None, :], *args, **kwargs)
        return tuple(o[:, :, 0, :] for o in out) if isinstance(out, tuple) else out[:, :, 0, :]
    return run


# ---------------------------------------------------------------- max pooling
# (shape, kernel, stride, padding, dilation, ceil_mode): batch 1, odd sizes,
# overlapping windows (kernel > stride), dilation, padding, ceil-mode edge windows.
MAX2D = [
    ((1, 1, 5, 5), 2, None, 0, 1, False),
    ((2, 3, 7, 6), 3, 2, 1, 1, False),
    ((1, 2, 7, 7), 3, 2, 1, 1, True),
    ((2, 2, 9, 8), (3, 2), (2, 1), (1, 1), (2, 1), False),
    ((1, 1, 6, 7), 2, 2, 1, 1, True),
    ((1, 2, 8, 9), 3, 1, 1, 2, True),
    ((2, 3, 5, 5), 2, 1, 0, 1, False),
    ((1, 1, 10, 11), 2, 3, 1, 3, True),
    ((1, 2, 6, 5), (1, 3), (1, 2), (0, 1), 1, False),
]


@requires_torch
@pytest.mark.parametrize("shape,k,s,p,d,ceil_mode", MAX2D, ids=str)
def test_max_pool2d_vs_numpy_and_torch(shape, k, s, p, d, ceil_mode):
    check_op(lambda x: F.max_pool2d(x, k, s, p, d, ceil_mode),
             lambda x: tf().max_pool2d(x, k, s, p, d, ceil_mode),
             lambda x: np_max_pool2d(x, k, s, p, d, ceil_mode)[0], shapes=[shape])


@requires_torch
@pytest.mark.parametrize("shape,k,s,p,d,ceil_mode", MAX2D, ids=str)
def test_max_pool2d_indices_equal_torch(shape, k, s, p, d, ceil_mode):
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    y, idx = F.max_pool2d(nf.from_numpy(x), k, s, p, d, ceil_mode, return_indices=True)
    ty, tidx = tf().max_pool2d(torch.from_numpy(x), k, s, p, d, ceil_mode, return_indices=True)
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
    np.testing.assert_array_equal(y.numpy(), ty.numpy())
    assert idx.dtype == nf.int64 and not idx.requires_grad
    np.testing.assert_array_equal(idx.numpy(), np_max_pool2d(x, k, s, p, d, ceil_mode)[1])


@requires_torch
@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 2, 1), (3, 1, 1), (2, 1, 0), (4, 3, 2)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_max_pool2d_vector_paths(k, s, p, dtype):
    # Rows wide enough for the vectorized interior loops (and their tails), both dtypes.
    shape = (2, 3, 21, 45)
    check_op(lambda x: F.max_pool2d(x, k, s, p), lambda x: tf().max_pool2d(x, k, s, p),
             lambda x: np_max_pool2d(x, k, s, p)[0], shapes=[shape], dtype=dtype,
             gradcheck=False, noncontig=False)
    x = np.random.default_rng(2).standard_normal(shape).astype(dtype)
    _, idx = F.max_pool2d(nf.from_numpy(x), k, s, p, return_indices=True)
    _, tidx = tf().max_pool2d(torch.from_numpy(x), k, s, p, return_indices=True)
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())


@requires_torch
@pytest.mark.parametrize("k,s,p,d", [(2, 2, 0, 1), (3, 2, 1, 1), (3, 1, 1, 2)])
def test_max_pool_ties_first_index_wins(k, s, p, d):
    # Few distinct values: many ties; the first maximum in row-major window order wins.
    x = np.random.default_rng(3).integers(0, 3, (2, 2, 9, 10)).astype(np.float32)
    x[0, 0] = 1.0  # a whole plane of one value
    y, idx = F.max_pool2d(nf.from_numpy(x), k, s, p, d, return_indices=True)
    ty, tidx = tf().max_pool2d(torch.from_numpy(x), k, s, p, d, return_indices=True)
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
    np.testing.assert_array_equal(idx.numpy(), np_max_pool2d(x, k, s, p, d)[1])
    # and the gradient goes to that first position only
    xt = nf.from_numpy(x).requires_grad_()
    F.max_pool2d(xt, k, s, p, d).sum().backward()
    tx = torch.from_numpy(x).requires_grad_()
    tf().max_pool2d(tx, k, s, p, d).sum().backward()
    np.testing.assert_array_equal(xt.grad.numpy(), tx.grad.numpy())


@requires_torch
def test_max_pool_nan_propagates_like_torch():
    x = np.random.default_rng(4).standard_normal((1, 2, 8, 38)).astype(np.float32)
    x[0, 0, 1, 3] = np.nan
    x[0, 1, 4, 20] = x[0, 1, 4, 21] = np.nan
    for k, s, p in ((2, 2, 0), (3, 2, 1), (3, 1, 1)):
        y, idx = F.max_pool2d(nf.from_numpy(x), k, s, p, return_indices=True)
        ty, tidx = tf().max_pool2d(torch.from_numpy(x), k, s, p, return_indices=True)
        np.testing.assert_array_equal(y.numpy(), ty.numpy())  # NaN == NaN here
        np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
        assert np.isnan(y.numpy()).any()


@requires_torch
@pytest.mark.parametrize("shape,k,s,p,d,ceil_mode", [
    ((2, 3, 9), 2, None, 0, 1, False), ((1, 2, 10), 3, 2, 1, 1, True),
    ((2, 1, 11), 3, 1, 1, 2, False), ((3, 8), 2, 2, 1, 1, True),  # unbatched (C, L)
], ids=str)
def test_max_pool1d(shape, k, s, p, d, ceil_mode):
    ref = _as_2d(lambda x: np_max_pool2d(x, (1, k), (1, k if s is None else s), (0, p), (1, d),
                                         ceil_mode)[0])
    np_fn = (lambda x: ref(x[None])[0]) if len(shape) == 2 else ref
    check_op(lambda x: F.max_pool1d(x, k, s, p, d, ceil_mode),
             lambda x: tf().max_pool1d(x, k, s, p, d, ceil_mode), np_fn, shapes=[shape])
    x = np.random.default_rng(5).standard_normal(shape).astype(np.float32)
    _, idx = F.max_pool1d(nf.from_numpy(x), k, s, p, d, ceil_mode, return_indices=True)
    _, tidx = tf().max_pool1d(torch.from_numpy(x), k, s, p, d, ceil_mode, return_indices=True)
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())


@requires_torch
def test_max_pool2d_unbatched_and_empty_batch():
    check_op(lambda x: F.max_pool2d(x, 3, 2, 1), lambda x: tf().max_pool2d(x, 3, 2, 1),
             shapes=[(3, 7, 8)])
    y = F.max_pool2d(nf.zeros(0, 3, 8, 8), 2)
    assert tuple(y.shape) == (0, 3, 4, 4)


# ---------------------------------------------------------------- average pooling
# (shape, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
AVG2D = [
    ((1, 1, 5, 5), 2, None, 0, False, True, None),
    ((2, 3, 7, 6), 3, 2, 1, False, True, None),
    ((2, 3, 7, 6), 3, 2, 1, False, False, None),
    ((1, 2, 7, 7), 3, 2, 1, True, True, None),   # ceil-mode windows hanging over the padding
    ((1, 2, 7, 7), 3, 2, 1, True, False, None),
    ((1, 1, 6, 7), 2, 2, 1, True, True, None),
    ((1, 1, 6, 7), 2, 2, 1, True, False, None),
    ((2, 2, 9, 8), (3, 2), (2, 1), (1, 1), False, False, None),
    ((2, 3, 5, 5), 2, 1, 0, False, True, None),  # overlapping windows
    ((1, 2, 7, 7), 3, 2, 1, True, True, 5),      # divisor_override
    ((1, 2, 8, 5), (2, 3), (3, 2), (1, 1), True, False, 2),
]


@requires_torch
@pytest.mark.parametrize("shape,k,s,p,ceil_mode,cip,div", AVG2D, ids=str)
def test_avg_pool2d_vs_numpy_and_torch(shape, k, s, p, ceil_mode, cip, div):
    check_op(lambda x: F.avg_pool2d(x, k, s, p, ceil_mode, cip, div),
             lambda x: tf().avg_pool2d(x, k, s, p, ceil_mode, cip, div),
             lambda x: np_avg_pool2d(x, k, s, p, ceil_mode, cip, div), shapes=[shape])


@requires_torch
@pytest.mark.parametrize("k,s,p,cip", [(2, 2, 0, True), (3, 2, 1, True), (3, 2, 1, False),
                                       (3, 1, 1, False), (4, 3, 2, True)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_avg_pool2d_vector_paths(k, s, p, cip, dtype):
    check_op(lambda x: F.avg_pool2d(x, k, s, p, False, cip),
             lambda x: tf().avg_pool2d(x, k, s, p, False, cip),
             lambda x: np_avg_pool2d(x, k, s, p, False, cip), shapes=[(2, 3, 21, 45)],
             dtype=dtype, gradcheck=False, noncontig=False)


@requires_torch
@pytest.mark.parametrize("shape,k,s,p,ceil_mode,cip", [
    ((2, 3, 9), 2, None, 0, False, True), ((1, 2, 10), 3, 2, 1, True, False),
    ((2, 1, 11), 3, 2, 1, True, True), ((3, 8), 2, 1, 1, False, False),
], ids=str)
def test_avg_pool1d(shape, k, s, p, ceil_mode, cip):
    ref = _as_2d(lambda x: np_avg_pool2d(x, (1, k), (1, k if s is None else s), (0, p),
                                         ceil_mode, cip))
    np_fn = (lambda x: ref(x[None])[0]) if len(shape) == 2 else ref
    check_op(lambda x: F.avg_pool1d(x, k, s, p, ceil_mode, cip),
             lambda x: tf().avg_pool1d(x, k, s, p, ceil_mode, cip), np_fn, shapes=[shape])


# ---------------------------------------------------------------- adaptive pooling
@requires_torch
@pytest.mark.parametrize("shape,out", [
    ((2, 3, 7, 9), (3, 4)), ((1, 2, 5, 5), 1), ((1, 1, 4, 6), (6, 7)), ((2, 2, 8, 8), (None, 3)),
    ((3, 5, 6), 2),
], ids=str)
def test_adaptive_avg_pool2d(shape, out):
    o = (out, out) if isinstance(out, int) else tuple(shape[-2 + i] if v is None else v
                                                      for i, v in enumerate(out))
    check_op(lambda x: F.adaptive_avg_pool2d(x, out), lambda x: tf().adaptive_avg_pool2d(x, out),
             lambda x: np_adaptive_avg_pool2d(x, o), shapes=[shape])


@requires_torch
@pytest.mark.parametrize("shape,out", [((2, 3, 10), 4), ((1, 2, 5), 1), ((3, 7), 9)], ids=str)
def test_adaptive_avg_pool1d(shape, out):
    check_op(lambda x: F.adaptive_avg_pool1d(x, out), lambda x: tf().adaptive_avg_pool1d(x, out),
             lambda x: np_adaptive_avg_pool2d(x[..., None, :], (1, out))[..., 0, :],
             shapes=[shape])


@requires_torch
@pytest.mark.parametrize("shape,out", [((2, 3, 7, 9), (3, 4)), ((1, 2, 5, 5), 1),
                                       ((1, 1, 4, 6), (6, 7)), ((3, 6, 6), (4, None))], ids=str)
def test_adaptive_max_pool2d(shape, out):
    check_op(lambda x: F.adaptive_max_pool2d(x, out), lambda x: tf().adaptive_max_pool2d(x, out),
             shapes=[shape])
    x = np.random.default_rng(6).integers(0, 4, shape).astype(np.float32)  # ties
    y, idx = F.adaptive_max_pool2d(nf.from_numpy(x), out, return_indices=True)
    ty, tidx = tf().adaptive_max_pool2d(torch.from_numpy(x), out, return_indices=True)
    np.testing.assert_array_equal(y.numpy(), ty.numpy())
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())


@requires_torch
def test_adaptive_max_pool1d():
    check_op(lambda x: F.adaptive_max_pool1d(x, 4), lambda x: tf().adaptive_max_pool1d(x, 4),
             shapes=[(2, 3, 10)])


def test_global_pooling_is_adaptive_with_output_1():
    x = np.random.default_rng(7).standard_normal((2, 3, 7, 5)).astype(np.float64)
    y = F.adaptive_avg_pool2d(nf.from_numpy(x), 1).numpy()
    assert_close(y, x.mean(axis=(2, 3), keepdims=True), 1e-12, 1e-12)
    m = F.adaptive_max_pool2d(nf.from_numpy(x), 1).numpy()
    assert_close(m, x.max(axis=(2, 3), keepdims=True), 0, 0)


# ---------------------------------------------------------------- threads
@pytest.mark.parametrize("case", ["max", "max_idx", "avg", "avg_overlap", "adaptive_avg",
                                  "adaptive_max"])
def test_thread_counts_give_identical_results(case):
    x = nf.from_numpy(np.random.default_rng(8).standard_normal((4, 16, 30, 31)).astype(np.float32))
    fns = {
        "max": lambda t: F.max_pool2d(t, 2),
        "max_idx": lambda t: F.max_pool2d(t, 3, 2, 1, return_indices=True)[0],
        "avg": lambda t: F.avg_pool2d(t, 2),
        "avg_overlap": lambda t: F.avg_pool2d(t, 3, 2, 1, ceil_mode=True, count_include_pad=False),
        "adaptive_avg": lambda t: F.adaptive_avg_pool2d(t, (5, 7)),
        "adaptive_max": lambda t: F.adaptive_max_pool2d(t, (5, 7)),
    }
    results = []
    old = nf.get_num_threads()
    try:
        for threads in (1, 2):
            nf.set_num_threads(threads)
            xt = x.detach().requires_grad_()
            y = fns[case](xt)
            y.backward(nf.from_numpy(np.linspace(-1, 1, y.numel(), dtype=np.float32)
                                     .reshape(tuple(y.shape))))
            results.append((y.detach().numpy().copy(), xt.grad.numpy().copy()))
    finally:
        nf.set_num_threads(old)
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_float16_keeps_its_dtype():
    x = nf.from_numpy(np.random.default_rng(9).standard_normal((1, 2, 6, 6)).astype(np.float16))
    for y in (F.max_pool2d(x, 2), F.avg_pool2d(x, 2), F.adaptive_avg_pool2d(x, 3)):
        assert y.dtype == nf.float16 and tuple(y.shape)[-1] == 3


# ---------------------------------------------------------------- modules
@requires_torch
@pytest.mark.parametrize("make", [
    lambda m: m.MaxPool2d(2), lambda m: m.MaxPool2d(3, 2, 1, ceil_mode=True),
    lambda m: m.MaxPool2d((3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2)),
    lambda m: m.MaxPool1d(3, 2, 1), lambda m: m.AvgPool2d(2), lambda m: m.AvgPool2d(3, 2, 1),
    lambda m: m.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False, divisor_override=4),
    lambda m: m.AvgPool1d(3, 2, 1), lambda m: m.AvgPool1d(2),
    lambda m: m.AdaptiveAvgPool2d((3, 4)), lambda m: m.AdaptiveAvgPool2d(1),
    lambda m: m.AdaptiveAvgPool2d((None, 2)), lambda m: m.AdaptiveAvgPool1d(3),
    lambda m: m.AdaptiveMaxPool2d((2, 3)), lambda m: m.AdaptiveMaxPool1d(3),
])
def test_modules_match_torch(make):
    mod, tmod = make(nn), make(torch.nn)
    assert repr(mod) == repr(tmod)
    shape = (2, 3, 11) if "1d" in type(mod).__name__ else (2, 3, 9, 10)
    check_op(lambda x: mod(x), lambda x: tmod(x), shapes=[shape], gradcheck=False)


@requires_torch
def test_module_return_indices():
    x = np.random.default_rng(10).standard_normal((2, 3, 8, 8)).astype(np.float32)
    for mod, tmod in ((nn.MaxPool2d(2, return_indices=True),
                       torch.nn.MaxPool2d(2, return_indices=True)),
                      (nn.AdaptiveMaxPool2d(3, return_indices=True),
                       torch.nn.AdaptiveMaxPool2d(3, return_indices=True))):
        (y, i), (ty, ti) = mod(nf.from_numpy(x)), tmod(torch.from_numpy(x))
        np.testing.assert_array_equal(i.numpy(), ti.numpy())
        np.testing.assert_array_equal(y.numpy(), ty.numpy())


def test_module_repr_strings():
    assert repr(nn.MaxPool2d(2)) == \
        "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)"
    assert repr(nn.AvgPool1d(2)) == "AvgPool1d(kernel_size=(2,), stride=(2,), padding=(0,))"
    assert repr(nn.AdaptiveAvgPool2d((1, 1))) == "AdaptiveAvgPool2d(output_size=(1, 1))"


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize("call,error,match", [
    (lambda x: F.max_pool2d(x, 5), ValueError, "too small"),                 # kernel > input
    (lambda x: F.max_pool2d(x, 7, padding=1), ValueError, "too small"),      # > padded input
    (lambda x: F.avg_pool2d(x, 3, padding=2), ValueError, "at most half"),
    (lambda x: F.max_pool2d(x, 2, padding=2), ValueError, "at most half"),
    (lambda x: F.max_pool2d(x, 0), ValueError, "kernel_size must be positive"),
    (lambda x: F.max_pool2d(x, 2, stride=0), ValueError, "stride must be positive"),
    (lambda x: F.max_pool2d(x, 2, dilation=0), ValueError, "dilation must be positive"),
    (lambda x: F.max_pool2d(x, (2, 2, 2)), ValueError, "tuple of 2"),
    (lambda x: F.max_pool2d(x, 2.5), TypeError, "kernel_size"),
    (lambda x: F.max_pool2d(x[0, 0], 2), ValueError, "3-D or 4-D"),
    (lambda x: F.max_pool1d(x, 2), ValueError, "2-D or 3-D"),
    (lambda x: F.avg_pool2d(x, 2, divisor_override=0), ValueError, "divisor must be not zero"),
    (lambda x: F.max_pool2d(x.long(), 2), TypeError, "floating-point"),
    (lambda x: F.adaptive_avg_pool2d(x, (2, 2, 2)), ValueError, "output_size"),
    (lambda x: F.adaptive_avg_pool2d(x, -1), ValueError, "output_size"),
    (lambda x: F.max_pool2d([1.0], 2), TypeError, "Tensor"),
])
def test_bad_arguments_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call(nf.randn(1, 2, 4, 4))


@requires_torch
@pytest.mark.parametrize("k,p", [(5, 0), (7, 1), (3, 2)])
def test_torch_rejects_the_same_geometries(k, p):
    with pytest.raises(RuntimeError):
        tf().max_pool2d(torch.randn(1, 2, 4, 4), k, padding=p)
    with pytest.raises(ValueError):
        F.max_pool2d(nf.randn(1, 2, 4, 4), k, padding=p)


def test_bindings_reject_bad_arrays():
    x = np.zeros((1, 2, 4, 4), np.float32)
    args = ((2, 2), (2, 2), (0, 0), (1, 1), False, True)
    with pytest.raises(TypeError, match="numpy array"):
        C.max_pool2d_forward([1.0], *args)
    with pytest.raises(ValueError, match="dtype"):
        C.max_pool2d_forward(x.astype(np.int32), *args)
    with pytest.raises(ValueError, match="4-D"):
        C.max_pool2d_forward(x[0], *args)
    with pytest.raises(ValueError, match="C-contiguous"):
        C.max_pool2d_forward(np.zeros((1, 2, 4, 8), np.float32)[..., ::2], *args)
    with pytest.raises(ValueError, match="at most half"):
        C.max_pool2d_forward(x, (2, 2), (2, 2), (2, 0), (1, 1), False, False)
    with pytest.raises(ValueError, match="kernel_size"):
        C.max_pool2d_forward(x, (-1, 2), (2, 2), (0, 0), (1, 1), False, False)
    with pytest.raises(ValueError, match="too small"):
        C.avg_pool2d_forward(x, (5, 5), (1, 1), (0, 0), False, True, 0)
    with pytest.raises(ValueError, match="divisor_override"):
        C.avg_pool2d_forward(x, (2, 2), (2, 2), (0, 0), False, True, -3)
    # backward: indices outside the plane, mismatched shapes, a gradient of the wrong size
    gy = np.ones((1, 2, 2, 2), np.float32)
    with pytest.raises(IndexError, match="outside"):
        C.max_pool2d_backward(gy, np.full((1, 2, 2, 2), 16, np.int64), (4, 4))
    with pytest.raises(ValueError, match="indices"):
        C.max_pool2d_backward(gy, np.zeros((1, 2, 2, 3), np.int64), (4, 4))
    with pytest.raises(ValueError, match="dtype"):
        C.max_pool2d_backward(gy, np.zeros((1, 2, 2, 2), np.int32), (4, 4))
    with pytest.raises(ValueError, match="expected output size"):
        C.avg_pool2d_backward(gy, (6, 6), (2, 2), (2, 2), (0, 0), False, True, 0)
    with pytest.raises(ValueError, match="empty"):
        C.adaptive_avg_pool2d_forward(np.zeros((1, 1, 0, 3), np.float32), (2, 2))
    with pytest.raises(ValueError, match="output_size"):
        C.adaptive_max_pool2d_forward(x, (-1, 2), False)


def test_max_backward_indices_bounds_checked_in_range():
    # A valid scatter through the binding: every index inside its plane, repeats summed.
    gy = np.arange(8, dtype=np.float64).reshape(1, 2, 2, 2)
    idx = np.array([0, 0, 5, 15, 1, 1, 1, 1], np.int64).reshape(1, 2, 2, 2)
    gx = C.max_pool2d_backward(gy, idx, (4, 4))
    assert gx[0, 0].ravel()[0] == 1.0 and gx[0, 0].ravel()[5] == 2.0
    assert gx[0, 0].ravel()[15] == 3.0 and gx[0, 1].ravel()[1] == 4 + 5 + 6 + 7
    assert math.isclose(gx.sum(), gy.sum())


def test_window_entirely_in_padding_is_an_error():
    # PyTorch returns -inf and indices unrelated to the window here; we refuse the geometry.
    with pytest.raises(ValueError, match="every tap in the padding"):
        F.max_pool2d(nf.randn(1, 2, 1, 11), (2, 3), 1, 1, 2, ceil_mode=True)
    with pytest.raises(ValueError, match="every tap in the padding"):
        F.max_pool1d(nf.randn(1, 2, 1), 2, 1, 1, 2, ceil_mode=True)
