"""CUDA convolution (csrc/cuda/conv_fwd.cu, conv_bwd.cu through
backend/cuda_conv.py) against its CPU twin (backend/cpu_conv.py): the CPU
kernel tests' shape grid (stride, asymmetric padding, dilation, groups incl.
depthwise, 1x1, conv1d-like H = 1, bias or not) in float32 and float64, the
transposed convolution's bias and smaller outputs, non-contiguous inputs,
ResNet-like shapes that cross tile edges and split the weight gradient, the
deterministic weight gradient, bfloat16/float16 (tensor cores, depthwise through
float32) on the same grid and on tile edges, empty batches,
argument errors; and Tensor-level F.conv2d / nn.Conv2d / nn.ConvTranspose2d /
nn.Conv1d / conv_transpose1d on device="cuda" against the same on the CPU,
forward and backward. Marked `cuda`; skipped without a GPU (the CPU-only test
at the end runs everywhere)."""
import numpy as np
import pytest

import nnforge as nf
from nnforge import nn
from nnforge.nn import functional as F
from cuda_support import cpu, dev, dev_view, gpu, needs_gpu, views
from test_conv import SHAPES

DTYPES = ["float32", "float64"]
# Per-element error of a float sum of L products of O(1) terms grows with L:
# the tolerance is EPS * L (atol) on top of a small relative one.
EPS = {"float32": 2e-6, "float64": 1e-14}
RTOL = {"float32": 1e-5, "float64": 1e-12}


def _check(got, want, dtype, depth):
    host = gpu().to_host(got)
    want = np.asarray(want)
    assert host.shape == want.shape, (host.shape, want.shape)
    assert host.dtype == want.dtype, (host.dtype, want.dtype)
    np.testing.assert_allclose(host, want, rtol=RTOL[dtype], atol=EPS[dtype] * max(depth, 8))


def _geometry(shape):
    n, c, h, w, co, k, s, p, d, g = shape
    return (n, c, h, w, co, k, tuple(s), tuple(p), tuple(d), g)


def _case(shape, dtype, seed=0):
    n, c, h, w, co, k, s, p, d, g = _geometry(shape)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((co, c // g) + tuple(k)).astype(dtype)
    b = rng.standard_normal(co).astype(dtype)
    return x, wt, b


def _all_passes(shape, dtype, x, wt, b, xd, wd, bd, use_bias):
    """Forward, input gradient (with conv_transpose's bias when use_bias) and
    weight/bias gradients of one case, each against the CPU twin."""
    n, c, h, w, co, k, s, p, d, g = _geometry(shape)
    bias, bias_d = (b, bd) if use_bias else (None, None)
    y_want = cpu.conv2d_forward(x, wt, bias, s, p, d, g)
    k_fwd = (c // g) * k[0] * k[1]
    _check(gpu().conv2d_forward(xd, wd, bias_d, s, p, d, g), y_want, dtype, k_fwd)
    dy = np.random.default_rng(7).standard_normal(y_want.shape).astype(dtype)
    bx = np.random.default_rng(8).standard_normal(c).astype(dtype) if use_bias else None
    dx_want = cpu.conv2d_backward_input(dy, wt, bx, (h, w), s, p, d, g)
    dx = gpu().conv2d_backward_input(dev(dy), wd, None if bx is None else dev(bx), (h, w), s, p,
                                     d, g)
    _check(dx, dx_want, dtype, (co // g) * k[0] * k[1])
    for need_w, need_b in [(True, use_bias), (False, True)]:
        want = cpu.conv2d_backward_weight(x, dy, k, s, p, d, g, need_w, need_b)
        got = gpu().conv2d_backward_weight(xd, dev(dy), k, s, p, d, g, need_w, need_b)
        for gv, wv in zip(got, want):
            assert (gv is None) == (wv is None)
            if wv is not None:
                _check(gv, wv, dtype, n * y_want.shape[2] * y_want.shape[3])


# ---------------------------------------------------------------- array level
@needs_gpu
@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=[str(i) for i in range(len(SHAPES))])
def test_passes_match_cpu_on_the_cpu_grid(shape, dtype, use_bias):
    x, wt, b = _case(shape, dtype)
    _all_passes(shape, dtype, x, wt, b, dev(x), dev(wt), dev(b), use_bias)


@needs_gpu
@pytest.mark.parametrize("shape", [SHAPES[0], SHAPES[2], SHAPES[8], SHAPES[9]],
                         ids=["pad1", "depthwise", "asymmetric", "conv1d-like"])
def test_non_contiguous_inputs(shape):
    """Transposed and sliced views of x, w and b give the contiguous results."""
    x, wt, b = _case(shape, "float32", seed=3)
    for name, xv in views(x):
        for wname, wv in views(wt):
            bv = dict(views(b))["sliced"]
            _all_passes(shape, "float32", xv, wv, bv, dev_view(name, xv), dev_view(wname, wv),
                        dev_view("sliced", bv), True)


@needs_gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_backward_input_bias_and_partial_outputs(dtype):
    """conv_transpose2d's forward: a bias per input channel, and an output (dy)
    smaller than the padded input allows (output_padding >= stride)."""
    rng = np.random.default_rng(3)
    for w_shape, g in [((4, 3, 3, 3), 1), ((3, 1, 3, 3), 3), ((6, 2, 2, 3), 2)]:
        w = rng.standard_normal(w_shape).astype(dtype)
        c_in = w_shape[1] * g
        bias = rng.standard_normal(c_in).astype(dtype)
        dy = rng.standard_normal((2, w_shape[0], 5, 5)).astype(dtype)
        for stride, size in [((1, 1), (12, 12)), ((2, 3), (14, 17))]:
            want = cpu.conv2d_backward_input(dy, w, bias, size, stride, (0, 0, 0, 0), (2, 2), g)
            got = gpu().conv2d_backward_input(dev(dy), dev(w), dev(bias), size, stride,
                                              (0, 0, 0, 0), (2, 2), g)
            _check(got, want, dtype, w_shape[0] * 9)


# ResNet-like layers, batch cut down: several row tiles, channel tiles past 64
# (partial last tiles), and a weight gradient split over R.
RESNET = [
    (2, 3, 64, 64, 64, (7, 7), (2, 2), (3, 3, 3, 3), (1, 1), 1),     # stem
    (4, 64, 28, 28, 64, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),    # basic block
    (4, 64, 28, 28, 128, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1),   # downsampling 3x3
    (4, 64, 28, 28, 128, (1, 1), (2, 2), (0, 0, 0, 0), (1, 1), 1),   # downsampling 1x1
    (2, 256, 14, 14, 72, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),   # bottleneck 1x1, Cout 72
    (2, 96, 15, 15, 96, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 96),   # depthwise, odd plane
    (3, 40, 9, 11, 80, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 4),     # groups of 10 -> 20
]


@needs_gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", RESNET, ids=["stem", "block", "down3", "down1", "bottleneck",
                                               "depthwise", "groups"])
def test_larger_shapes(shape, dtype):
    x, wt, b = _case(shape, dtype, seed=5)
    _all_passes(shape, dtype, x, wt, b, dev(x), dev(wt), dev(b), True)


@needs_gpu
def test_weight_grad_deterministic_and_split():
    """A weight gradient summed over many splits of R (64 samples of 32x32):
    bit-identical across runs, and right."""
    shape = (64, 16, 32, 32, 24, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1)
    x, wt, _ = _case(shape, "float32", seed=9)
    dy = np.random.default_rng(10).standard_normal((64, 24, 32, 32)).astype(np.float32)
    geo = ((3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1)
    xd, dyd = dev(x), dev(dy)
    runs = [gpu().conv2d_backward_weight(xd, dyd, *geo, True, True) for _ in range(3)]
    for k in range(2):
        first = gpu().to_host(runs[0][k])
        for other in runs[1:]:
            np.testing.assert_array_equal(gpu().to_host(other[k]), first)
    want = cpu.conv2d_backward_weight(x.astype(np.float64), dy.astype(np.float64), *geo,
                                      True, True)
    for got, w64 in zip(runs[0], want):
        np.testing.assert_allclose(gpu().to_host(got), w64, rtol=1e-4, atol=2e-3)


# ---------------------------------------------------------------- bfloat16 / float16
# Tensor cores (conv_tc.cu) on sm_80+, except depthwise / thin groups (Cg < 8 and
# Cog < 8), which run float32 SIMT and round once. Either way each result is
# round(s) with s the float32 sum of the exact products of the rounded inputs,
# as the CPU twin computes it (float32, then rounded) up to the summation order.
# So |got - want32| <= u |want32| + delta, with u the dtype's unit roundoff
# (bfloat16 2^-8, float16 2^-11; rtol a little above it) and delta the float32
# order difference, below EPS["float32"] * depth for O(1) inputs (atol).
REDUCED = ["bfloat16", "float16"]
R_RTOL = {"bfloat16": 2.0 ** -8 * 1.05, "float16": 2.0 ** -11 * 1.05}


def _np_dtype(name):
    from nnforge.dtypes import BFLOAT16_NP
    return BFLOAT16_NP if name == "bfloat16" else np.dtype(np.float16)


def _rounded(a, dtype):
    """(a rounded to dtype on the host, its float32 values)."""
    r = np.asarray(a, np.float32).astype(_np_dtype(dtype))
    return r, r.astype(np.float32)


def _check_reduced(got, want32, dtype, depth):
    assert got.dtype_name == dtype, (got.dtype_name, dtype)
    host = np.asarray(gpu().to_host(got)).astype(np.float32)
    assert host.shape == want32.shape, (host.shape, want32.shape)
    np.testing.assert_allclose(host, want32, rtol=R_RTOL[dtype],
                               atol=EPS["float32"] * max(depth, 8))


def _reduced_passes(shape, dtype, seed=0, use_bias=True, view=None):
    """Forward, input gradient (+ per-input-channel bias) and weight/bias
    gradients in `dtype` against the CPU twin in float32 on the rounded values."""
    n, c, h, w, co, k, s, p, d, g = _geometry(shape)
    x, wt, b = _case(shape, "float32", seed)
    rng = np.random.default_rng(seed + 1)
    (xh, x32), (wh, w32), (bh, b32) = (_rounded(a, dtype) for a in (x, wt, b))
    put = dev if view is None else (lambda a: dev_view(view, a))
    xd, wd, bd = put(xh), put(wh), put(bh)
    bias32, bias_d = (b32, bd) if use_bias else (None, None)
    y32 = cpu.conv2d_forward(x32, w32, bias32, s, p, d, g)
    _check_reduced(gpu().conv2d_forward(xd, wd, bias_d, s, p, d, g), y32, dtype,
                   (c // g) * k[0] * k[1])
    dyh, dy32 = _rounded(rng.standard_normal(y32.shape), dtype)
    bxh, bx32 = _rounded(rng.standard_normal(c), dtype)
    dx32 = cpu.conv2d_backward_input(dy32, w32, bx32 if use_bias else None, (h, w), s, p, d, g)
    dx = gpu().conv2d_backward_input(put(dyh), wd, put(bxh) if use_bias else None, (h, w), s,
                                     p, d, g)
    _check_reduced(dx, dx32, dtype, (co // g) * k[0] * k[1])
    dw32, db32 = cpu.conv2d_backward_weight(x32, dy32, k, s, p, d, g, True, True)
    dw, db = gpu().conv2d_backward_weight(xd, put(dyh), k, s, p, d, g, True, use_bias)
    depth = n * y32.shape[2] * y32.shape[3]
    _check_reduced(dw, dw32, dtype, depth)
    assert (db is None) == (not use_bias)
    if use_bias:
        _check_reduced(db, db32, dtype, depth)


@needs_gpu
@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("dtype", REDUCED)
@pytest.mark.parametrize("shape", SHAPES, ids=[str(i) for i in range(len(SHAPES))])
def test_reduced_passes_match_cpu_on_the_cpu_grid(shape, dtype, use_bias):
    """Every geometry of the CPU grid: shapes with 8+ input or output channels per
    group on the tensor cores (LeNet's C3 6 -> 16, 3 -> 20: channels padded to 8),
    the rest (depthwise, thin groups, < 8 channels both sides) through float32."""
    _reduced_passes(shape, dtype, use_bias=use_bias)


# Tensor-core tile edges: channel counts not multiples of 8 or 16 (padding inside
# a 16-byte vector, a partial 32-deep stage), columns past the 64- and 128-wide
# tiles, rows past 128, groups with 10 / 20 / 12 channels, strided input
# gradients (zero taps), dilation, and weight gradients split over R with more
# than 64 output channels (the 128 x 128 weight-gradient tile).
TC_EDGES = RESNET + [
    (2, 10, 6, 7, 20, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
    (3, 24, 9, 9, 17, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1),
    (2, 72, 8, 8, 130, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),
    (2, 36, 11, 10, 24, (3, 3), (1, 1), (2, 2, 2, 2), (2, 2), 3),
    (1, 9, 13, 13, 66, (5, 3), (2, 1), (2, 1, 0, 1), (1, 1), 1),
    (8, 64, 28, 28, 96, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
]


@needs_gpu
@pytest.mark.parametrize("dtype", REDUCED)
@pytest.mark.parametrize("shape", TC_EDGES, ids=["stem", "block", "down3", "down1", "bottleneck",
                                                 "depthwise", "groups", "c10", "c24-co17-s2",
                                                 "co130", "groups12-dil2", "c9-5x3", "co96-split"])
def test_reduced_tile_edges_and_resnet_shapes(shape, dtype):
    _reduced_passes(shape, dtype, seed=5)


@needs_gpu
@pytest.mark.parametrize("view", ["transposed", "sliced"])
def test_reduced_non_contiguous_inputs(view):
    _reduced_passes(SHAPES[0], "bfloat16", seed=3, view=view)


@needs_gpu
def test_reduced_weight_grad_deterministic():
    """bfloat16 weight gradients split over R: fp32 partials summed in a fixed
    order, bit-identical across runs."""
    shape = (16, 32, 16, 16, 48, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1)
    x, _, _ = _case(shape, "float32", seed=9)
    dy = np.random.default_rng(10).standard_normal((16, 48, 16, 16))
    xd, dyd = dev(_rounded(x, "bfloat16")[0]), dev(_rounded(dy, "bfloat16")[0])
    geo = ((3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1)
    runs = [gpu().conv2d_backward_weight(xd, dyd, *geo, True, True) for _ in range(3)]
    for k in range(2):
        first = np.asarray(gpu().to_host(runs[0][k])).astype(np.float32)
        for other in runs[1:]:
            np.testing.assert_array_equal(np.asarray(gpu().to_host(other[k])).astype(np.float32),
                                          first)


@needs_gpu
def test_reduced_empty_batch():
    xh = _rounded(np.zeros((0, 16, 5, 5)), "bfloat16")[0]
    wh = _rounded(np.ones((8, 16, 3, 3)), "bfloat16")[0]
    dyh = _rounded(np.zeros((0, 8, 3, 3)), "bfloat16")[0]
    geo = ((1, 1), (0, 0, 0, 0), (1, 1), 1)
    y = gpu().conv2d_forward(dev(xh), dev(wh), None, *geo)
    assert tuple(y.shape) == (0, 8, 3, 3) and y.dtype_name == "bfloat16"
    dx = gpu().conv2d_backward_input(dev(dyh), dev(wh), None, (5, 5), *geo)
    assert tuple(dx.shape) == (0, 16, 5, 5)
    dw, db = gpu().conv2d_backward_weight(dev(xh), dev(dyh), (3, 3), *geo, True, True)
    assert tuple(dw.shape) == (8, 16, 3, 3) and tuple(db.shape) == (8,)
    assert not np.asarray(gpu().to_host(dw)).astype(np.float32).any()
    assert not np.asarray(gpu().to_host(db)).astype(np.float32).any()


@needs_gpu
def test_empty_batch():
    x = np.zeros((0, 3, 5, 5), np.float32)
    w = np.ones((2, 3, 3, 3), np.float32)
    geo = ((1, 1), (0, 0, 0, 0), (1, 1), 1)
    y = gpu().conv2d_forward(dev(x), dev(w), None, *geo)
    assert tuple(y.shape) == (0, 2, 3, 3)
    dx = gpu().conv2d_backward_input(dev(np.zeros((0, 2, 3, 3), np.float32)), dev(w), None,
                                     (5, 5), *geo)
    assert tuple(dx.shape) == (0, 3, 5, 5)
    dw, db = gpu().conv2d_backward_weight(dev(x), dev(np.zeros((0, 2, 3, 3), np.float32)),
                                          (3, 3), *geo, True, True)
    assert tuple(dw.shape) == (2, 3, 3, 3) and tuple(db.shape) == (2,)
    assert not gpu().to_host(dw).any() and not gpu().to_host(db).any()


@needs_gpu
def test_argument_errors():
    x = dev(np.zeros((2, 3, 8, 8), np.float32))
    w = dev(np.zeros((4, 3, 3, 3), np.float32))
    geo = ((1, 1), (0, 0, 0, 0), (1, 1), 1)
    with pytest.raises(TypeError, match="conv2d_forward"):
        gpu().conv2d_forward(dev(np.zeros((2, 3, 8, 8), np.int64)), w, None, *geo)
    with pytest.raises(ValueError, match=r"weight of shape \(4, 3, 3, 3\)"):
        gpu().conv2d_forward(dev(np.zeros((2, 4, 8, 8), np.float32)), w, None, *geo)
    with pytest.raises(ValueError, match="bias"):
        gpu().conv2d_forward(x, w, dev(np.zeros(3, np.float32)), *geo)
    with pytest.raises(ValueError, match="larger than the padded input"):
        gpu().conv2d_forward(dev(np.zeros((2, 3, 2, 2), np.float32)), w, None, *geo)
    with pytest.raises(ValueError, match="contiguous"):
        nf._C.cuda.conv2d_forward(gpu().swap_last(x), w, None, *geo)
    with pytest.raises(ValueError, match="does not fit the input size"):
        gpu().conv2d_backward_weight(x, dev(np.zeros((2, 4, 7, 6), np.float32)), (3, 3), *geo)
    with pytest.raises(ValueError, match="channels"):
        gpu().conv2d_backward_input(dev(np.zeros((2, 5, 6, 6), np.float32)), w, None, (8, 8),
                                    *geo)
    with pytest.raises(ValueError, match="must be positive"):
        gpu().conv2d_forward(x, w, None, (0, 1), (0, 0, 0, 0), (1, 1), 1)


# ---------------------------------------------------------------- tensor level
def _pair(module_fn, x_shape, seed=0, dtype=nf.float32):
    """The module (or function of x) on the CPU and on CUDA with the same weights:
    (outputs, input grads, parameter grads) of both, for sum(y * g)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(np.float32)
    results = []
    for device in ("cpu", "cuda"):
        nf.manual_seed(0)
        m = module_fn()
        m = m.to(dtype).to(device) if isinstance(m, nn.Module) else m
        xt = nf.tensor(x, dtype=dtype, device=device, requires_grad=True)
        y = m(xt)
        g = np.random.default_rng(seed + 1).standard_normal(tuple(y.shape)).astype(np.float32)
        (y * nf.tensor(g, dtype=dtype, device=device)).sum().backward()
        params = m.named_parameters() if isinstance(m, nn.Module) else []
        results.append((y.numpy(force=True), xt.grad.numpy(force=True),
                        {k: p.grad.numpy(force=True) for k, p in params}))
    return results


def _assert_pair(results, rtol=1e-4, atol=1e-4):
    results = [(np.asarray(y, np.float64), np.asarray(gx, np.float64),
                {k: np.asarray(v, np.float64) for k, v in gp.items()}) for y, gx, gp in results]
    (y_c, gx_c, gp_c), (y_g, gx_g, gp_g) = results
    np.testing.assert_allclose(y_g, y_c, rtol=rtol, atol=atol)
    np.testing.assert_allclose(gx_g, gx_c, rtol=rtol, atol=atol)
    assert gp_c.keys() == gp_g.keys()
    for k in gp_c:
        np.testing.assert_allclose(gp_g[k], gp_c[k], rtol=rtol, atol=atol, err_msg=k)


@needs_gpu
@pytest.mark.parametrize("kwargs, x_shape", [
    (dict(in_channels=3, out_channels=8, kernel_size=3, padding=1), (2, 3, 9, 11)),
    (dict(in_channels=4, out_channels=6, kernel_size=(3, 2), stride=2, groups=2, bias=False),
     (1, 4, 10, 7)),
    (dict(in_channels=6, out_channels=6, kernel_size=3, padding="same", dilation=2, groups=6),
     (2, 6, 8, 8)),
    (dict(in_channels=5, out_channels=70, kernel_size=1), (3, 5, 7, 7)),
    (dict(in_channels=2, out_channels=3, kernel_size=(2, 4), padding="same"), (2, 2, 6, 7)),
], ids=["pad1", "strided-groups-nobias", "depthwise-same-dilated", "pointwise-70", "even-same"])
def test_nn_conv2d_cuda_vs_cpu(kwargs, x_shape):
    _assert_pair(_pair(lambda: nn.Conv2d(**kwargs), x_shape))


@needs_gpu
def test_nn_conv2d_float64_and_unbatched():
    _assert_pair(_pair(lambda: nn.Conv2d(3, 4, 3, padding=1), (2, 3, 6, 5), dtype=nf.float64),
                 rtol=1e-10, atol=1e-10)
    _assert_pair(_pair(lambda: nn.Conv2d(3, 4, 3, stride=2), (3, 7, 7)))


@needs_gpu
@pytest.mark.parametrize("dtype", [nf.bfloat16, nf.float16], ids=["bfloat16", "float16"])
def test_nn_conv2d_reduced_cuda_vs_cpu(dtype):
    """nn.Conv2d in bfloat16/float16 on the tensor cores vs the CPU (float32 inside,
    rounded): the two sides' outputs and gradients are roundings of float32 values
    that differ in summation order only, so within a couple of units in the last
    place (2^-7 relative for bfloat16) of values of size ~sqrt(depth)."""
    tol = dict(rtol=2e-2, atol=5e-2) if dtype == nf.bfloat16 else dict(rtol=3e-3, atol=1e-2)
    _assert_pair(_pair(lambda: nn.Conv2d(16, 24, 3, padding=1), (2, 16, 9, 11), dtype=dtype),
                 **tol)
    _assert_pair(_pair(lambda: nn.Conv2d(12, 12, 3, stride=2, groups=3), (2, 12, 8, 8),
                       dtype=dtype), **tol)


@needs_gpu
def test_functional_conv2d_non_contiguous_input():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 8, 9)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    out = []
    for device in ("cpu", "cuda"):
        xt = nf.tensor(x, device=device, requires_grad=True)
        wt = nf.tensor(w, device=device, requires_grad=True)
        y = F.conv2d(xt.transpose(2, 3), wt, None, stride=(1, 2), padding=(2, 0))
        y.sum().backward()
        out.append([t.numpy(force=True) for t in (y, xt.grad, wt.grad)])
    for a, b in zip(*out):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4)


@needs_gpu
@pytest.mark.parametrize("kwargs, x_shape", [
    (dict(in_channels=4, out_channels=3, kernel_size=3, stride=2, padding=1, output_padding=1),
     (2, 4, 4, 3)),
    (dict(in_channels=4, out_channels=2, kernel_size=(3, 2), stride=(2, 3), output_padding=(1, 2),
          groups=2), (1, 4, 3, 4)),
    (dict(in_channels=3, out_channels=3, kernel_size=3, stride=2, padding=1, groups=3),
     (2, 3, 4, 4)),
], ids=["pad-outpad", "groups", "depthwise"])
def test_nn_conv_transpose2d_cuda_vs_cpu(kwargs, x_shape):
    _assert_pair(_pair(lambda: nn.ConvTranspose2d(**kwargs), x_shape))


@needs_gpu
def test_nn_conv_transpose2d_output_padding_past_stride():
    """output_padding >= stride (allowed when < dilation): the input gradient's
    forward conv gives extra rows that the op cuts off."""
    _assert_pair(_pair(lambda: nn.ConvTranspose2d(2, 2, 3, stride=1, padding=1,
                                                  output_padding=1, dilation=2), (2, 2, 4, 4)))


@needs_gpu
@pytest.mark.parametrize("kwargs, x_shape", [
    (dict(in_channels=3, out_channels=4, kernel_size=3, padding=1), (2, 3, 9)),
    (dict(in_channels=4, out_channels=2, kernel_size=4, stride=2, dilation=2, groups=2),
     (1, 4, 11)),
    (dict(in_channels=3, out_channels=3, kernel_size=2, padding="same", dilation=3), (3, 8)),
], ids=["plain", "strided-dilated-groups", "unbatched-same"])
def test_nn_conv1d_cuda_vs_cpu(kwargs, x_shape):
    _assert_pair(_pair(lambda: nn.Conv1d(**kwargs), x_shape))


@needs_gpu
def test_conv_transpose1d_cuda_vs_cpu():
    rng = np.random.default_rng(6)
    w = rng.standard_normal((4, 3, 3)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    _assert_pair(_pair(lambda: (lambda x: F.conv_transpose1d(
        x, nf.tensor(w, device=x.device), nf.tensor(b, device=x.device), 2, 1, 1, 2, 1)),
        (2, 4, 5)))


# ---------------------------------------------------------------- everywhere
def test_conv_names_implemented_in_cuda_backend():
    """Runs without a GPU: the CUDA backend defines the conv kernels itself (none of
    them falls back to the NotImplementedError stand-in)."""
    from nnforge.backend import cuda as cuda_be
    for name in ("conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight"):
        assert name not in cuda_be.NOT_IMPLEMENTED
        assert getattr(cuda_be, name).__module__ == "nnforge.backend.cuda_conv"
