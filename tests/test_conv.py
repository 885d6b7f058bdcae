"""Convolution kernels (csrc/cpu/conv*.cpp via nnforge._C.cpu) and ops
(F.conv1d, conv2d, conv_transpose1d, conv_transpose2d): a numpy reference and
PyTorch for forward and every gradient, each algorithm and ISA, thread-count
independence, float64 gradcheck, and the errors."""
from __future__ import annotations

import numpy as np
import pytest

import nnforge as nf
from nnforge import _C
from nnforge.nn import functional as F

from helpers import HAS_TORCH, assert_close, check_op, requires_torch, run_gradcheck

if HAS_TORCH:
    import torch
    import torch.nn.functional as TF

K = _C.cpu


def _isas():
    feats = _C.cpu_features()
    isas = ["scalar"]
    if feats["avx2"] and feats["fma"]:
        isas.append("avx2")
    if all(feats[f] for f in ("avx512f", "avx512bw", "avx512dq", "avx512vl", "fma")):
        isas.append("avx512")
    return isas


ISAS = _isas()


# ---------------------------------------------------------------- numpy reference
def _patches(xp, i, j, oh, ow, stride, dilation):
    """xp's (N, C, oh, ow) window read by kernel tap (i, j)."""
    (sh, sw), (dh, dw) = stride, dilation
    return xp[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]


def np_conv2d(x, w, b, stride, padding, dilation, groups, out=None):
    """y = conv2d(x, w) + b; padding (top, bottom, left, right); out (OH, OW) or None."""
    n, c, h, wd = x.shape
    co, cg, kh, kw = w.shape
    pt, pb, pl, pr = padding
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    if out is None:
        out = ((h + pt + pb - dilation[0] * (kh - 1) - 1) // stride[0] + 1,
               (wd + pl + pr - dilation[1] * (kw - 1) - 1) // stride[1] + 1)
    cog = co // groups
    y = np.zeros((n, co) + tuple(out), dtype=np.float64)
    for g in range(groups):
        xs = xp[:, g * cg:(g + 1) * cg]
        for i in range(kh):
            for j in range(kw):
                y[:, g * cog:(g + 1) * cog] += np.einsum(
                    "nchw,oc->nohw", _patches(xs, i, j, *out, stride, dilation),
                    w[g * cog:(g + 1) * cog, :, i, j])
    if b is not None:
        y += b[None, :, None, None]
    return y


def np_conv2d_grads(x, w, dy, stride, padding, dilation, groups):
    """(dx, dw, db) of conv2d for upstream dy (the adjoint of np_conv2d)."""
    n, c, h, wd = x.shape
    co, cg, kh, kw = w.shape
    pt, pb, pl, pr = padding
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr))).astype(np.float64)
    dxp = np.zeros_like(xp)
    dw = np.zeros(w.shape)
    oh, ow = dy.shape[2:]
    cog = co // groups
    (sh, sw), (dh, dwl) = stride, dilation
    for g in range(groups):
        og = slice(g * cog, (g + 1) * cog)
        ig = slice(g * cg, (g + 1) * cg)
        for i in range(kh):
            for j in range(kw):
                rows = slice(i * dh, i * dh + sh * (oh - 1) + 1, sh)
                cols = slice(j * dwl, j * dwl + sw * (ow - 1) + 1, sw)
                dxp[:, ig, rows, cols] += np.einsum("nohw,oc->nchw", dy[:, og], w[og, :, i, j])
                dw[og, :, i, j] = np.einsum("nohw,nchw->oc", dy[:, og], xp[:, ig, rows, cols])
    dx = dxp[:, :, pt:pt + h, pl:pl + wd]
    return dx, dw, dy.sum(axis=(0, 2, 3))


# (N, C_in, H, W, C_out, kh, kw, stride, padding (t, b, l, r), dilation, groups)
SHAPES = [
    (2, 3, 9, 11, 4, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),      # odd sizes, pad 1
    (1, 4, 10, 7, 6, (3, 2), (2, 2), (0, 0, 0, 0), (1, 1), 2),      # batch 1, stride 2, groups 2
    (2, 4, 9, 9, 4, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 4),       # depthwise
    (2, 4, 12, 12, 8, (3, 3), (2, 2), (2, 2, 2, 2), (2, 2), 4),     # depthwise x2, dilation 2
    (3, 8, 7, 7, 5, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),       # 1x1 pointwise
    (2, 1, 28, 28, 6, (5, 5), (1, 1), (2, 2, 2, 2), (1, 1), 1),     # LeNet's first layer
    (1, 3, 5, 5, 2, (5, 5), (1, 1), (0, 0, 0, 0), (1, 1), 1),       # kernel = input
    (2, 6, 8, 8, 6, (3, 3), (3, 3), (1, 1, 1, 1), (1, 1), 6),       # depthwise, stride 3
    (2, 2, 17, 30, 4, (3, 3), (1, 1), (0, 1, 2, 1), (1, 2), 2),     # asymmetric padding
    (2, 3, 6, 40, 5, (1, 4), (1, 3), (0, 0, 1, 2), (1, 1), 1),      # 1-D like, stride 3
    (2, 6, 9, 9, 6, (2, 2), (1, 1), (0, 1, 0, 1), (1, 1), 3),       # even kernel, 'same'-like
    (1, 2, 11, 9, 4, (3, 3), (2, 1), (4, 4, 3, 3), (1, 1), 1),      # pad > kernel extent
    # auto forward runs the implicit GEMM (stride 1, C_out/G <= 32): LeNet's C3,
    # and C_out not a multiple of the kernel's channel block (8 or 16)
    (2, 6, 14, 14, 16, (5, 5), (1, 1), (0, 0, 0, 0), (1, 1), 1),
    (2, 3, 10, 13, 20, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
]


def _algorithms(shape):
    n, c, h, w, co, k, s, p, d, g = shape
    algos = ["auto", "im2col"]
    if c == g:
        algos.append("direct")
    if k == (1, 1) and s == (1, 1) and p == (0, 0, 0, 0):
        algos.append("pointwise")
    return algos


def _case(shape, dtype, seed=0):
    n, c, h, w, co, k, s, p, d, g = shape
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((co, c // g) + k).astype(dtype)
    b = rng.standard_normal(co).astype(dtype)
    return x, wt, b


@pytest.mark.parametrize("shape", SHAPES, ids=[str(i) for i in range(len(SHAPES))])
@pytest.mark.parametrize("isa", ISAS)
def test_kernels_vs_numpy(shape, isa):
    """Every algorithm that applies, float32 and float64, against the numpy reference."""
    n, c, h, w, co, k, s, p, d, g = shape
    for dtype, tol in ((np.float64, 1e-10), (np.float32, 2e-4)):
        x, wt, b = _case(shape, dtype)
        y_ref = np_conv2d(x, wt, b, s, p, d, g)
        dy = np.random.default_rng(1).standard_normal(y_ref.shape).astype(dtype)
        dx_ref, dw_ref, db_ref = np_conv2d_grads(x, wt, dy, s, p, d, g)
        for algo in _algorithms(shape):
            opts = dict(isa=isa, algorithm=algo)
            y = K.conv2d_forward(x, wt, b, s, p, d, g, **opts)
            assert y.dtype == dtype
            assert_close(y, y_ref, tol, tol, msg=f"forward {algo}")
            dx = K.conv2d_backward_input(dy, wt, None, (h, w), s, p, d, g, **opts)
            assert_close(dx, dx_ref, tol, tol, msg=f"backward_input {algo}")
            dw, db = K.conv2d_backward_weight(x, dy, k, s, p, d, g, True, True, **opts)
            assert_close(dw, dw_ref, tol * 10, tol, msg=f"backward_weight {algo}")
            assert_close(db, db_ref, tol * 10, tol, msg=f"bias grad {algo}")


@pytest.mark.parametrize("isa", ISAS)
def test_implicit_forward_matches_im2col(isa):
    """The implicit-GEMM forward (auto, stride 1, few output channels) against the
    im2col path and numpy, float32 with a tolerance relative to the magnitude:
    groups, dilation, uneven padding, several channel blocks."""
    rng = np.random.default_rng(5)
    for (n, c, h, w, co, k, p, d, g) in [(3, 6, 13, 11, 30, (3, 3), (1, 2, 0, 1), (1, 1), 2),
                                         (2, 4, 12, 15, 8, (3, 2), (2, 2, 1, 1), (2, 3), 1),
                                         (2, 2, 9, 9, 32, (1, 3), (0, 0, 1, 1), (1, 1), 1)]:
        x = rng.standard_normal((n, c, h, w)).astype(np.float32) * 3
        wt = rng.standard_normal((co, c // g) + k).astype(np.float32)
        b = rng.standard_normal(co).astype(np.float32)
        ref = np_conv2d(x.astype(np.float64), wt.astype(np.float64), b.astype(np.float64),
                        (1, 1), p, d, g)
        y = K.conv2d_forward(x, wt, b, (1, 1), p, d, g, isa=isa)
        y2 = K.conv2d_forward(x, wt, b, (1, 1), p, d, g, isa=isa, algorithm="im2col")
        scale = np.abs(ref).max()
        assert y.shape == ref.shape
        assert np.abs(y - ref).max() <= 1e-5 * scale
        assert np.abs(y - y2).max() <= 1e-5 * scale


def test_backward_input_bias_and_partial_outputs():
    """The input-gradient kernel adds a per-channel bias (conv_transpose's) and takes
    an output smaller than the padded input allows (output_padding >= stride)."""
    rng = np.random.default_rng(3)
    w = rng.standard_normal((4, 3, 3, 3))
    bias = rng.standard_normal(3)
    dy = rng.standard_normal((2, 4, 5, 5))
    for algo in ("im2col", "auto"):
        dx = K.conv2d_backward_input(dy, w, bias, (12, 12), (1, 1), (0, 0, 0, 0), (2, 2), 1,
                                     algorithm=algo)
        x0 = np.zeros((2, 3, 12, 12))
        ref, _, _ = np_conv2d_grads(x0, w, dy, (1, 1), (0, 0, 0, 0), (2, 2), 1)
        assert_close(dx, ref + bias[None, :, None, None], 1e-10, 1e-10)
    wd = rng.standard_normal((3, 1, 3, 3))
    dyd = rng.standard_normal((2, 3, 5, 5))
    dx = K.conv2d_backward_input(dyd, wd, bias, (12, 12), (1, 1), (0, 0, 0, 0), (2, 2), 3,
                                 algorithm="direct")
    ref, _, _ = np_conv2d_grads(np.zeros((2, 3, 12, 12)), wd, dyd, (1, 1), (0, 0, 0, 0), (2, 2), 3)
    assert_close(dx, ref + bias[None, :, None, None], 1e-10, 1e-10)


@pytest.mark.parametrize("shape", [SHAPES[0], SHAPES[2], SHAPES[4], SHAPES[5], SHAPES[8],
                                   SHAPES[13]],
                         ids=["im2col", "depthwise", "pointwise", "lenet", "groups", "implicit"])
def test_thread_count_gives_identical_bits(shape):
    n, c, h, w, co, k, s, p, d, g = shape
    x, wt, b = _case((8,) + shape[1:], np.float32)
    dy = np.random.default_rng(2).standard_normal(
        K.conv2d_forward(x, wt, b, s, p, d, g).shape).astype(np.float32)
    runs = []
    for threads in (1, 2, 3):
        opts = dict(threads=threads)
        runs.append((K.conv2d_forward(x, wt, b, s, p, d, g, **opts),
                     K.conv2d_backward_input(dy, wt, None, (h, w), s, p, d, g, **opts),
                     *K.conv2d_backward_weight(x, dy, k, s, p, d, g, True, True, **opts)))
    for other in runs[1:]:
        for a, e in zip(other, runs[0]):
            np.testing.assert_array_equal(a, e)


def test_weight_grad_large_batch_slices():
    """Many (sample, block) items: the partial dW copies add up to the reference."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((20, 3, 16, 16))
    w = rng.standard_normal((5, 3, 3, 3))
    dy = rng.standard_normal((20, 5, 16, 16))
    _, dw_ref, db_ref = np_conv2d_grads(x, w, dy, (1, 1), (1, 1, 1, 1), (1, 1), 1)
    dw, db = K.conv2d_backward_weight(x, dy, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, True, True)
    assert_close(dw, dw_ref, 1e-9, 1e-10)
    assert_close(db, db_ref, 1e-9, 1e-10)
    dw_only, none = K.conv2d_backward_weight(x, dy, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1)
    assert none is None
    np.testing.assert_array_equal(dw_only, dw)


def test_algorithm_choice():
    assert K.conv2d_algorithm((8, 256, 28, 28), (64, 256, 1, 1), (1, 1), (0,) * 4, (1, 1), 1) \
        == "pointwise"
    assert K.conv2d_algorithm((8, 128, 28, 28), (128, 1, 3, 3), (1, 1), (1,) * 4, (1, 1), 128) \
        == "direct"
    assert K.conv2d_algorithm((8, 64, 56, 56), (64, 64, 3, 3), (1, 1), (1,) * 4, (1, 1), 1) \
        == "im2col"


def test_empty_batch():
    x = np.zeros((0, 3, 5, 5), np.float32)
    w = np.ones((2, 3, 3, 3), np.float32)
    assert K.conv2d_forward(x, w, None, (1, 1), (0,) * 4, (1, 1), 1).shape == (0, 2, 3, 3)
    dw, db = K.conv2d_backward_weight(x, np.zeros((0, 2, 3, 3), np.float32), (3, 3), (1, 1),
                                      (0,) * 4, (1, 1), 1, True, True)
    assert not dw.any() and not db.any()


def test_binding_rejects_bad_arrays():
    x = np.zeros((2, 3, 8, 8), np.float32)
    w = np.zeros((4, 3, 3, 3), np.float32)
    geo = ((1, 1), (0, 0, 0, 0), (1, 1), 1)
    with pytest.raises(TypeError, match="x must be a numpy array"):
        K.conv2d_forward([[1.0]], w, None, *geo)
    with pytest.raises(ValueError, match="float32 or float64"):
        K.conv2d_forward(x.astype(np.int32), w, None, *geo)
    with pytest.raises(ValueError, match="weight has dtype float64"):
        K.conv2d_forward(x, w.astype(np.float64), None, *geo)
    with pytest.raises(ValueError, match="must have 4 dims"):
        K.conv2d_forward(x[0], w, None, *geo)
    with pytest.raises(ValueError, match="C-contiguous"):
        K.conv2d_forward(np.zeros((2, 3, 8, 16), np.float32)[..., ::2], w, None, *geo)
    with pytest.raises(ValueError, match="needs 3 input channels"):
        K.conv2d_forward(np.zeros((2, 5, 8, 8), np.float32), w, None, *geo)
    with pytest.raises(ValueError, match="bias of shape"):
        K.conv2d_forward(x, w, np.zeros(3, np.float32), *geo)
    with pytest.raises(ValueError, match="larger than the padded input"):
        K.conv2d_forward(np.zeros((2, 3, 2, 8), np.float32), w, None, *geo)
    with pytest.raises(ValueError, match="stride must be positive"):
        K.conv2d_forward(x, w, None, (0, 1), (0,) * 4, (1, 1), 1)
    with pytest.raises(ValueError, match="padding must be non-negative"):
        K.conv2d_forward(x, w, None, (1, 1), (0, -1, 0, 0), (1, 1), 1)
    with pytest.raises(ValueError, match="groups"):
        K.conv2d_forward(x, w, None, (1, 1), (0,) * 4, (1, 1), 2)
    with pytest.raises(ValueError, match="algorithm must be"):
        K.conv2d_forward(x, w, None, *geo, algorithm="winograd")
    with pytest.raises(ValueError, match="direct algorithm needs one input channel"):
        K.conv2d_forward(x, w, None, *geo, algorithm="direct")
    with pytest.raises(ValueError, match="pointwise algorithm needs"):
        K.conv2d_forward(x, w, None, *geo, algorithm="pointwise")
    with pytest.raises(ValueError, match="isa must be"):
        K.conv2d_forward(x, w, None, *geo, isa="neon")
    with pytest.raises(ValueError, match="threads must be"):
        K.conv2d_forward(x, w, None, *geo, threads=-1)
    dy = np.zeros((2, 4, 6, 6), np.float32)
    with pytest.raises(ValueError, match="does not fit the input size"):
        K.conv2d_backward_input(dy, w, None, (5, 5), *geo)
    with pytest.raises(ValueError, match="has 4 channels, weight"):
        K.conv2d_backward_input(dy, w[:3], None, (8, 8), *geo)
    with pytest.raises(ValueError, match="differ in batch size"):
        K.conv2d_backward_weight(x[:1], dy, (3, 3), *geo)
    with pytest.raises(ValueError, match="does not fit the input size"):
        K.conv2d_backward_weight(x, np.zeros((2, 4, 7, 6), np.float32), (3, 3), *geo)


# ---------------------------------------------------------------- ops vs PyTorch
def _pads4(padding, k, d):
    if padding == "same":
        tot = [dd * (kk - 1) for dd, kk in zip(d, k)]
        return (tot[0] // 2, tot[0] - tot[0] // 2, tot[1] // 2, tot[1] - tot[1] // 2)
    if padding == "valid":
        return (0, 0, 0, 0)
    p = (padding, padding) if isinstance(padding, int) else padding
    return (p[0], p[0], p[1], p[1])


# (x shape, w shape, stride, padding, dilation, groups)
OP_CASES = [
    ((2, 3, 7, 6), (4, 3, 3, 3), 1, 1, 1, 1),
    ((1, 4, 7, 7), (4, 2, 3, 2), (2, 1), (1, 0), 1, 2),
    ((2, 3, 6, 5), (3, 1, 3, 3), 1, "same", (2, 1), 3),
    ((2, 2, 6, 7), (3, 2, 2, 4), 1, "same", 1, 1),          # even kernel: asymmetric 'same'
    ((1, 2, 6, 6), (3, 2, 3, 3), 2, "valid", 1, 1),
    ((2, 4, 5, 5), (2, 4, 1, 1), 1, 0, 1, 1),
    ((3, 5, 5), (2, 3, 3, 3), 1, 1, 1, 1),                   # unbatched
]


@requires_torch
@pytest.mark.parametrize("case", OP_CASES, ids=[str(i) for i in range(len(OP_CASES))])
def test_conv2d_op(case):
    xs, ws, s, p, d, g = case

    def np_fn(x, w, b):
        k = ws[2:]
        dd = (d, d) if isinstance(d, int) else d
        ss = (s, s) if isinstance(s, int) else s
        xb = x if x.ndim == 4 else x[None]
        y = np_conv2d(xb, w, b, ss, _pads4(p, k, dd), dd, g)
        return (y if x.ndim == 4 else y[0]).astype(x.dtype)

    check_op(lambda x, w, b: F.conv2d(x, w, b, s, p, d, g),
             lambda x, w, b: TF.conv2d(x, w, b, s, p, d, g), np_fn,
             shapes=[xs, ws, (ws[0],)])


@requires_torch
@pytest.mark.parametrize("case", [
    ((2, 3, 9), (4, 3, 3), 1, 1, 1, 1),
    ((1, 4, 11), (2, 2, 4), 2, 0, 2, 2),
    ((3, 8), (3, 3, 2), 1, "same", 3, 1),
    ((2, 2, 8), (2, 1, 3), 1, "valid", 1, 2),
], ids=["plain", "strided-dilated-groups", "unbatched-same", "valid-depthwise"])
def test_conv1d_op(case):
    xs, ws, s, p, d, g = case
    check_op(lambda x, w, b: F.conv1d(x, w, b, s, p, d, g),
             lambda x, w, b: TF.conv1d(x, w, b, s, p, d, g), shapes=[xs, ws, (ws[0],)])


@requires_torch
@pytest.mark.parametrize("case", [
    # (x shape, w shape (C_in, C_out/g, kh, kw), stride, padding, output_padding, groups, dilation)
    ((2, 4, 4, 3), (4, 3, 3, 3), 2, 1, 1, 1, 1),
    ((1, 4, 3, 4), (4, 1, 3, 2), (2, 3), 0, (1, 2), 2, 1),
    ((2, 2, 4, 4), (2, 2, 3, 3), 1, 1, 1, 1, 2),            # output_padding < dilation
    ((2, 3, 4, 4), (3, 1, 3, 3), 2, 1, 0, 3, 1),            # depthwise
    ((3, 3, 3), (3, 2, 2, 2), 2, 0, 0, 1, 1),               # unbatched
], ids=["pad-outpad", "groups", "dilation", "depthwise", "unbatched"])
def test_conv_transpose2d_op(case):
    xs, ws, s, p, op, g, d = case
    check_op(lambda x, w, b: F.conv_transpose2d(x, w, b, s, p, op, g, d),
             lambda x, w, b: TF.conv_transpose2d(x, w, b, s, p, op, g, d),
             shapes=[xs, ws, (ws[1] * g,)])


@requires_torch
def test_conv_transpose1d_op():
    check_op(lambda x, w, b: F.conv_transpose1d(x, w, b, 2, 1, 1, 2, 1),
             lambda x, w, b: TF.conv_transpose1d(x, w, b, 2, 1, 1, 2, 1),
             shapes=[(2, 4, 5), (4, 3, 3), (6,)])


@requires_torch
def test_larger_shapes_float32_vs_torch():
    """Benchmark-like shapes (every algorithm) in float32 against PyTorch."""
    rng = np.random.default_rng(5)
    for xs, ws, p, g in [((4, 16, 20, 20), (24, 16, 3, 3), 1, 1),
                         ((4, 32, 14, 14), (16, 32, 1, 1), 0, 1),
                         ((4, 32, 14, 14), (32, 1, 3, 3), 1, 32),
                         ((4, 1, 28, 28), (6, 1, 5, 5), 2, 1)]:
        x, w, b = (rng.standard_normal(s).astype(np.float32) for s in (xs, ws, ws[:1]))
        tx, tw, tb = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
        ty = TF.conv2d(tx, tw, tb, 1, p, 1, g)
        gy = rng.standard_normal(ty.shape).astype(np.float32)
        ty.backward(torch.from_numpy(gy))
        nx, nw, nb = (nf.from_numpy(a).requires_grad_() for a in (x, w, b))
        ny = F.conv2d(nx, nw, nb, 1, p, 1, g)
        ny.backward(nf.from_numpy(gy))
        assert_close(ny, ty, 1e-4, 1e-4)
        for a, e in ((nx, tx), (nw, tw), (nb, tb)):
            assert_close(a.grad, e.grad, 1e-3, 1e-4)


def test_gradcheck_float64_small():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((1, 2, 5, 4))
    w = rng.standard_normal((2, 1, 2, 3))
    b = rng.standard_normal(2)
    run_gradcheck(lambda x, w, b: F.conv2d(x, w, b, (2, 1), (1, 1), (1, 2), 2), [x, w, b])
    wt = rng.standard_normal((2, 2, 3, 2))
    run_gradcheck(lambda x, w, b: F.conv_transpose2d(x, w, b, 2, 1, 1, 1, 1),
                  [x, wt, rng.standard_normal(2)])


def test_only_needed_gradients_are_computed(monkeypatch):
    from nnforge.backend import cpu as be
    calls = []
    for name in ("conv2d_backward_input", "conv2d_backward_weight"):
        real = getattr(be, name)
        monkeypatch.setattr(be, name, (lambda real, name: lambda *a, **k:
                                       calls.append((name, a[-2:])) or real(*a, **k))(real, name))
    x = nf.randn(2, 3, 6, 6, requires_grad=True)
    w = nf.randn(4, 3, 3, 3)
    F.conv2d(x, w, nf.randn(4)).sum().backward()
    assert [c[0] for c in calls] == ["conv2d_backward_input"]
    assert x.grad is not None
    calls.clear()
    w.requires_grad_()
    F.conv2d(x.detach(), w).sum().backward()
    assert calls == [("conv2d_backward_weight", (True, False))]


def test_float16_runs_in_float32():
    x = nf.randn(2, 3, 6, 6).to(nf.float16)
    w = nf.randn(4, 3, 3, 3).to(nf.float16)
    y = F.conv2d(x, w, padding=1)
    assert y.dtype == nf.float16
    ref = F.conv2d(x.to(nf.float32), w.to(nf.float32), padding=1)
    assert_close(y, ref, 2e-2, 2e-2)


def test_op_thread_counts_identical():
    x = nf.randn(8, 6, 12, 12)
    w = nf.randn(6, 3, 3, 3)
    old = nf.get_num_threads()
    try:
        outs = []
        for t in (1, 2):
            nf.set_num_threads(t)
            outs.append(F.conv2d(x, w, stride=1, padding=1, groups=2).numpy())
        np.testing.assert_array_equal(outs[0], outs[1])
    finally:
        nf.set_num_threads(old)


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize("call, exc, match", [
    (lambda: F.conv2d(nf.randn(2, 4, 9, 9), nf.randn(8, 3, 5, 5)), ValueError,
     r"conv2d: weight of shape \(8, 3, 5, 5\) needs input with 3 channels \(groups=1\), got "
     r"input of shape \(2, 4, 9, 9\)"),
    (lambda: F.conv2d(nf.randn(2, 3, 4, 4), nf.randn(8, 3, 5, 5)), ValueError,
     r"kernel size \(5, 5\) .* larger than the padded input size \(4, 4\)"),
    (lambda: F.conv2d(nf.randn(2, 4, 9, 9), nf.randn(6, 1, 3, 3), groups=3), ValueError,
     "needs input with 3 channels"),
    (lambda: F.conv2d(nf.randn(2, 4, 9, 9), nf.randn(5, 2, 3, 3), groups=2), ValueError,
     "not divisible by groups=2"),
    (lambda: F.conv2d(nf.randn(4, 9, 9, 1, 1), nf.randn(5, 4, 3, 3)), ValueError,
     "expected 3-D .* or 4-D"),
    (lambda: F.conv2d(nf.randn(2, 4, 9, 9), nf.randn(5, 4, 3)), ValueError, "weight must be 4-D"),
    (lambda: F.conv2d(nf.randn(2, 4, 9, 9), nf.randn(5, 4, 3, 3), stride=2, padding="same"),
     ValueError, "'same' is not supported for strided"),
    (lambda: F.conv2d(nf.randn(2, 4, 9, 9), nf.randn(5, 4, 3, 3), padding="full"), ValueError,
     "padding must be"),
    (lambda: F.conv2d(nf.randn(2, 4, 9, 9), nf.randn(5, 4, 3, 3), nf.randn(4)), ValueError,
     r"bias of shape \(4,\)"),
    (lambda: F.conv2d(nf.randn(2, 4, 9, 9), nf.randn(5, 4, 3, 3), stride=0), ValueError,
     "stride must be positive"),
    (lambda: F.conv2d(nf.randn(2, 4, 9, 9), nf.randn(5, 4, 3, 3), padding=(1, 2, 3)),
     ValueError, "tuple of 2 ints"),
    (lambda: F.conv2d(nf.randn(2, 4, 9, 9), nf.randn(5, 4, 3, 3), groups=0), ValueError,
     "groups must be a positive int"),
    (lambda: F.conv2d(nf.randn(2, 4, 9, 9), nf.randn(5, 4, 3, 3).double()), TypeError,
     "same dtype"),
    (lambda: F.conv2d(nf.ones(2, 4, 9, 9, dtype=nf.int64), nf.randn(5, 4, 3, 3)), TypeError,
     "floating-point"),
    (lambda: F.conv2d(np.zeros((2, 4, 9, 9)), nf.randn(5, 4, 3, 3)), TypeError, "Tensor"),
    (lambda: F.conv1d(nf.randn(2, 4, 2), nf.randn(5, 4, 3)), ValueError, "larger than the padded"),
    (lambda: F.conv1d(nf.randn(2, 4, 9, 9), nf.randn(5, 4, 3)), ValueError, "expected 2-D"),
    (lambda: F.conv_transpose2d(nf.randn(2, 4, 5, 5), nf.randn(3, 2, 3, 3)), ValueError,
     "needs input with 3 channels"),
    (lambda: F.conv_transpose2d(nf.randn(2, 4, 5, 5), nf.randn(4, 2, 3, 3), stride=2,
                                output_padding=2), ValueError, "output_padding"),
    (lambda: F.conv_transpose2d(nf.randn(2, 4, 5, 5), nf.randn(4, 2, 3, 3), groups=3),
     ValueError, "not divisible by groups=3"),
    (lambda: F.conv_transpose2d(nf.randn(2, 4, 1, 1), nf.randn(4, 2, 1, 1), padding=1),
     ValueError, "is not positive"),
    (lambda: F.conv_transpose2d(nf.randn(2, 4, 5, 5), nf.randn(4, 2, 3, 3), padding="same"),
     ValueError, "padding must be an int"),
])
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
