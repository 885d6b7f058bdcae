"""CUDA GEMM (csrc/cuda/gemm*.cu through _C.cuda.gemm and backend/cuda_linalg.py)
against a float64 numpy reference and the CPU backend's matmul/linear: shape
grids with odd sizes (1, 7, 129, 1000), every transpose (NN, NT, TN, TT as
strided views), sliced operands, broadcast batches, the bias/activation/
alpha/beta epilogue, every dtype on both kernels (SIMT; tensor cores for
bf16/fp16 and TF32), dispatch, and argument errors. Marked `cuda`; skipped
without a GPU (the CPU-only test at the end runs everywhere)."""
import itertools
import re

import numpy as np
import pytest

import nnforge as nf
from cuda_support import cpu, dev, gpu, needs_gpu

DTYPES = ["float32", "float64", "bfloat16", "float16"]
# Per-dtype tolerance: atol grows with sqrt(K) (a sum of K rounded products of
# U(-1, 1) values); rtol covers the output's own rounding.
TOL = {"float32": (1e-5, 2e-6), "float64": (1e-12, 1e-13), "bfloat16": (1.6e-2, 4e-3),
       "float16": (2e-3, 5e-4), "tf32": (4e-3, 1e-3)}
SIZES = [1, 7, 129]
BIG = [(1000, 129, 1000), (129, 1000, 7), (1000, 1000, 1000), (7, 1, 1000)]
TRANS = ["NN", "NT", "TN", "TT"]


def _C():
    return nf._C.cuda


def to_dev(a, dtype):
    """A host float array as a device array of `dtype` (bfloat16 through float32)."""
    if dtype == "bfloat16":
        return _C().astype(dev(np.asarray(a, np.float32)), "bfloat16")
    return dev(np.asarray(a, dtype))


def host(x):
    """A device array's values as float64 (bfloat16/float16 through float32)."""
    if x.dtype_name in ("bfloat16", "float16"):
        x = _C().astype(x, np.float32)
    return gpu().to_host(x).astype(np.float64)


def rounded(a, dtype):
    """`a` rounded to `dtype`, as float64 (what the kernel actually multiplies)."""
    return host(to_dev(a, dtype))


def operand(a, dtype, trans):
    """Device array with a's values; trans: stored transposed, seen through a view."""
    if not trans:
        return to_dev(a, dtype)
    return gpu().swap_last(to_dev(np.ascontiguousarray(np.swapaxes(a, -1, -2)), dtype))


def check(got, want, dtype, k):
    rtol, atol = TOL[dtype]
    np.testing.assert_allclose(host(got), want, rtol=rtol, atol=atol * max(1.0, np.sqrt(k)) * 2)


def rand(rng, *shape):
    return rng.uniform(-1, 1, size=shape)


@needs_gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans", TRANS)
@pytest.mark.parametrize("kernel", ["auto", "simt"])
def test_grid_every_transpose(dtype, trans, kernel):
    rng = np.random.default_rng(0)
    for m, n, k in list(itertools.product(SIZES, SIZES, SIZES)) + BIG:
        a, b = rand(rng, m, k), rand(rng, k, n)
        da, db = operand(a, dtype, trans[0] == "T"), operand(b, dtype, trans[1] == "T")
        out = _C().gemm(da, db, kernel=kernel)
        assert out.shape == (m, n) and out.dtype_name == dtype
        check(out, rounded(a, dtype) @ rounded(b, dtype), dtype, k)


@needs_gpu
@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float32"])
@pytest.mark.parametrize("trans", TRANS)
def test_tensor_core_kernel(dtype, trans):
    """Aligned layouts (dims multiples of 8) on the mma.sync kernel, forced; float32 is TF32
    there. Sizes that leave partial 128 x 128 tiles and partial K steps."""
    rng = np.random.default_rng(1)
    tol = "tf32" if dtype == "float32" else dtype
    for m, n, k in [(8, 8, 8), (136, 264, 40), (128, 128, 128), (1000, 520, 1000), (16, 1024, 8)]:
        a, b = rand(rng, m, k), rand(rng, k, n)
        da, db = operand(a, dtype, trans[0] == "T"), operand(b, dtype, trans[1] == "T")
        assert _C().gemm_kernel_for(da, db, allow_tf32=True) == "tensor_core"
        out = _C().gemm(da, db, kernel="tensor_core")
        check(out, rounded(a, dtype) @ rounded(b, dtype), tol, k)


@needs_gpu
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_tensor_core_odd_inner_sizes(dtype):
    """Contiguous dims that are not whole 16-byte chunks: the kernel's zero-filled tails
    (cp.async with fewer source bytes) when the strides still allow it, SIMT otherwise."""
    rng = np.random.default_rng(2)
    # a (m, k) inside a wider (m, 16) buffer: stride 16, k = 13 -> partial chunk along k
    wide_a, wide_b = rand(rng, 77, 16), rand(rng, 16, 40)
    a = gpu().getitem(to_dev(wide_a, dtype), (slice(None), slice(0, 13)))
    b = gpu().getitem(to_dev(wide_b, dtype), (slice(0, 13), slice(None)))
    assert _C().gemm_kernel_for(a, b) == "tensor_core"
    want = rounded(wide_a, dtype)[:, :13] @ rounded(wide_b, dtype)[:13]
    check(_C().gemm(a, b), want, dtype, 13)
    # row stride 7 elements: not 16-byte aligned rows -> SIMT
    a7 = to_dev(rand(rng, 5, 7), dtype)
    b7 = to_dev(rand(rng, 7, 9), dtype)
    assert _C().gemm_kernel_for(a7, b7) == "simt"
    with pytest.raises(ValueError, match="tensor_core"):
        _C().gemm(a7, b7, kernel="tensor_core")


@needs_gpu
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_wgmma_kernel(dtype):
    """The sm_90a wgmma kernel, by name (not yet the automatic choice): A (M, K) and B
    given as the transpose of an (N, K) array (both K-major, nn.Linear's layout), sizes
    with partial 128 x 128 tiles and partial 64-element K steps, bias + relu, a batch."""
    rng = np.random.default_rng(10)
    probe = to_dev(np.ones((8, 8)), dtype)
    try:
        _C().gemm_kernel_for(probe, gpu().swap_last(probe), kernel="wgmma")
    except ValueError as e:
        pytest.skip(f"wgmma unavailable here: {e}")
    for batch, m, n, k in [(1, 128, 128, 64), (1, 7, 9, 8), (1, 136, 264, 40),
                           (2, 300, 1000, 72), (1, 1000, 520, 1000)]:
        a, w, bias = rand(rng, batch, m, k), rand(rng, n, k), rand(rng, n)
        da, dw = to_dev(a, dtype), to_dev(w, dtype)
        db = gpu().swap_last(dw)
        assert _C().gemm_kernel_for(da, db, kernel="wgmma") == "wgmma"
        got = _C().gemm(da, db, kernel="wgmma")
        check(got, rounded(a, dtype) @ rounded(w, dtype).T, dtype, k)
        got = _C().gemm(da, db, bias=to_dev(bias, dtype), activation="relu", kernel="wgmma")
        want = np.maximum(rounded(a, dtype) @ rounded(w, dtype).T + rounded(bias, dtype), 0)
        check(got, want, dtype, k)


@needs_gpu
def test_float32_uses_simt_unless_tf32_allowed():
    a, b = to_dev(np.ones((64, 64)), "float32"), to_dev(np.ones((64, 64)), "float32")
    assert _C().gemm_kernel_for(a, b) == "simt"
    assert _C().gemm_kernel_for(a, b, allow_tf32=True) == "tensor_core"
    assert _C().gemm_kernel_for(to_dev(np.ones((64, 64)), "float64"),
                                to_dev(np.ones((64, 64)), "float64"), allow_tf32=True) == "simt"


@needs_gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_sliced_operands(dtype):
    """Every other column / row: no unit stride on one side, read element by element."""
    rng = np.random.default_rng(3)
    a, b = rand(rng, 33, 2 * 21), rand(rng, 2 * 21, 17)
    da = gpu().getitem(to_dev(a, dtype), (slice(None), slice(None, None, 2)))
    db = gpu().getitem(to_dev(b, dtype), (slice(None, None, 2), slice(None)))
    check(_C().gemm(da, db), rounded(a, dtype)[:, ::2] @ rounded(b, dtype)[::2], dtype, 21)


@needs_gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shapes", [((2, 3, 7, 5), (5, 9)), ((7, 5), (4, 5, 9)),
                                    ((2, 1, 130, 64), (1, 3, 64, 72)), ((3, 1, 8, 8), (3, 8, 8)),
                                    ((0, 7, 5), (5, 3)), ((2, 4, 0), (2, 0, 3))])
def test_batches_broadcast(dtype, shapes):
    rng = np.random.default_rng(4)
    a, b = rand(rng, *shapes[0]), rand(rng, *shapes[1])
    out = _C().gemm(to_dev(a, dtype), to_dev(b, dtype))
    want = np.matmul(rounded(a, dtype) if a.size else a, rounded(b, dtype) if b.size else b)
    assert out.shape == want.shape
    if want.size:
        check(out, want, dtype, a.shape[-1])


@needs_gpu
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_batch_dims_that_do_not_nest(dtype):
    """A batch transposed in its batch dims: copied to a contiguous broadcast first."""
    rng = np.random.default_rng(5)
    a = rand(rng, 4, 3, 16, 24)
    da = gpu().transpose(to_dev(np.ascontiguousarray(a.transpose(1, 0, 2, 3)), dtype),
                         (1, 0, 2, 3))
    b = rand(rng, 24, 8)
    check(_C().gemm(da, to_dev(b, dtype)), rounded(a, dtype) @ rounded(b, dtype), dtype, 24)


def _act(x, act):
    if act == "relu":
        return np.maximum(x, 0)
    if act == "gelu":
        from math import erf
        return 0.5 * x * (1 + np.vectorize(erf)(x / np.sqrt(2)))
    if act == "gelu_tanh":
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    return x


@needs_gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ["none", "relu", "gelu", "gelu_tanh"])
@pytest.mark.parametrize("kernel", ["auto", "simt"])
def test_epilogue(dtype, act, kernel):
    """out = act(alpha a @ b + beta out + bias) on both kernels, batched."""
    rng = np.random.default_rng(6)
    for m, n, k in [(7, 9, 5), (136, 200, 64), (129, 1, 1000)]:
        a, b, c, bias = rand(rng, 2, m, k), rand(rng, k, n), rand(rng, 2, m, n), rand(rng, n)
        out = to_dev(c, dtype)
        got = _C().gemm(to_dev(a, dtype), to_dev(b, dtype), out, alpha=0.5, beta=-2.0,
                        bias=to_dev(bias, dtype), activation=act, kernel=kernel)
        assert got.data_ptr == out.data_ptr
        pre = 0.5 * (rounded(a, dtype) @ rounded(b, dtype)) - 2.0 * rounded(c, dtype) + \
            rounded(bias, dtype)
        check(got, _act(pre, act), dtype, k)
        # no out: bias and activation only (the vector-store path of the SIMT epilogue)
        got = _C().gemm(to_dev(a, dtype), to_dev(b, dtype), bias=to_dev(bias, dtype),
                        activation=act, kernel=kernel)
        check(got, _act(rounded(a, dtype) @ rounded(b, dtype) + rounded(bias, dtype), act),
              dtype, k)


@needs_gpu
def test_out_aliasing_an_operand_is_computed_via_a_copy():
    rng = np.random.default_rng(7)
    a = rand(rng, 16, 16)
    da = to_dev(a, "float32")
    got = _C().gemm(da, da, da)
    np.testing.assert_allclose(host(got), a @ a, rtol=1e-5, atol=1e-5)


@needs_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
@pytest.mark.parametrize("shapes", [((5,), (5,)), ((5,), (5, 3)), ((4, 5), (5,)),
                                    ((2, 4, 5), (5,)), ((5,), (2, 5, 3)),
                                    ((3, 1, 4, 5), (2, 5, 6))])
def test_backend_matmul_matches_cpu(dtype, shapes):
    from nnforge.backend import cuda_linalg
    rng = np.random.default_rng(8)
    a, b = rand(rng, *shapes[0]).astype(dtype), rand(rng, *shapes[1]).astype(dtype)
    got = cuda_linalg.matmul(dev(a), dev(b))
    want = cpu.matmul(a, b)
    assert got.shape == want.shape and got.dtype == want.dtype
    rtol, atol = TOL[dtype]
    np.testing.assert_allclose(gpu().to_host(got).astype(np.float64), want.astype(np.float64),
                               rtol=rtol * 4, atol=atol * 10)


@needs_gpu
@pytest.mark.parametrize("act", [None, "relu", "gelu_tanh"])
@pytest.mark.parametrize("bias", ["none", "vector", "scalar"])
def test_backend_linear_matches_cpu(act, bias):
    from nnforge.backend import cuda_linalg
    rng = np.random.default_rng(9)
    x, w = rand(rng, 33, 20).astype(np.float32), rand(rng, 7, 20).astype(np.float32)
    b = {"none": None, "vector": rand(rng, 7).astype(np.float32),
         "scalar": np.asarray(0.25, np.float32)}[bias]
    got = cuda_linalg.linear(dev(x), dev(w), None if b is None else dev(b), act)
    want = cpu.linear(x, w, b, act)
    np.testing.assert_allclose(gpu().to_host(got), want, rtol=1e-5, atol=1e-5)
    got1 = cuda_linalg.linear(dev(x[0]), dev(w), None if b is None else dev(b), act)
    np.testing.assert_allclose(gpu().to_host(got1), want[0], rtol=1e-5, atol=1e-5)


@needs_gpu
def test_errors_name_the_op_and_shapes():
    a, b = to_dev(np.ones((3, 4)), "float32"), to_dev(np.ones((5, 6)), "float32")
    with pytest.raises(ValueError, match=r"gemm: a of shape \(3, 4\) and b of shape \(5, 6\)"):
        _C().gemm(a, b)
    with pytest.raises(TypeError, match="cuda.gemm: a and b must share"):
        _C().gemm(a, to_dev(np.ones((4, 2)), "float64"))
    with pytest.raises(ValueError, match=r"bias must have shape \(6,\)"):
        _C().gemm(to_dev(np.ones((3, 5)), "float32"), b, bias=to_dev(np.ones(5), "float32"))
    with pytest.raises(ValueError, match="beta != 0 needs out"):
        _C().gemm(to_dev(np.ones((3, 5)), "float32"), b, beta=1.0)
    with pytest.raises(ValueError, match="activation must be"):
        _C().gemm(to_dev(np.ones((3, 5)), "float32"), b, activation="tanh")
    with pytest.raises(ValueError, match=r"out has shape \(2, 2\)"):
        _C().gemm(to_dev(np.ones((3, 5)), "float32"), b, to_dev(np.ones((2, 2)), "float32"))
    with pytest.raises(TypeError, match="matmul: the CUDA GEMM takes"):
        from nnforge.backend import cuda_linalg
        cuda_linalg.matmul(dev(np.ones((2, 2), np.int64)), dev(np.ones((2, 2), np.int64)))


def test_bindings_exist_exactly_in_cuda_builds():
    """Runs everywhere: a CPU-only build binds no GEMM (and the backend refuses numpy input)."""
    assert hasattr(nf._C.cuda, "gemm") == nf._C.cuda.is_built()
    assert hasattr(nf._C.cuda, "gemm_kernel_for") == nf._C.cuda.is_built()
    from nnforge.backend import cuda_linalg
    with pytest.raises(TypeError, match="matmul: expected a CUDA DeviceArray"):
        cuda_linalg.matmul(np.ones((2, 2)), np.ones((2, 2)))


# ---- the sm_90a TMA + wgmma kernel (by name), csrc/cuda/gemm_wgmma.cu ----

def _wgmma_or_skip(dtype):
    """Skips where this device/build has no wgmma kernel (anything but compute capability
    9.0 with an sm_90a build); any other refusal of a valid layout fails the test."""
    probe = to_dev(np.ones((8, 8)), dtype)
    try:
        assert _C().gemm_kernel_for(probe, gpu().swap_last(probe), kernel="wgmma") == "wgmma"
    except ValueError as e:
        if "compute capability 9.0" not in str(e):
            raise
        pytest.skip(f"wgmma unavailable here: {e}")


def _b_operand(rng, k, n, dtype, b_major):
    """(values (k, n), device b): K-major = the transpose of an (n, k) array (nn.Linear's
    weight), N-major = a row-major (k, n) array (wgmma's transpose bit)."""
    if b_major == "K":
        w = rand(rng, n, k)
        return w.T, gpu().swap_last(to_dev(w, dtype))
    b = rand(rng, k, n)
    return b, to_dev(b, dtype)


# K-major B: K a multiple of 8 (a's and w's row strides), any M, N. N-major B: N a multiple
# of 8 too. Sizes leave partial 128-row/column tiles, partial 64-element K steps (K = 8, 40,
# 72, 1000), a lone 64-column half of an N-major box (N = 56, 200), K steps past the
# 5-stage ring (K = 1000: 16 steps).
WGMMA_SHAPES = {
    "K": [(129, 257, 72), (1, 1, 8), (7, 9, 8), (128, 128, 64), (136, 264, 40), (65, 130, 8),
          (1000, 520, 1000), (257, 129, 136)],
    "N": [(129, 264, 72), (7, 56, 8), (1, 8, 24), (128, 128, 64), (300, 200, 1000),
          (257, 136, 136), (64, 72, 8)],
}


@needs_gpu
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("b_major", ["K", "N"])
def test_wgmma_tma_tails_match_cpu(dtype, b_major):
    """M/N/K tails (TMA zero-fills boxes past the edges; the epilogue stores only inside)
    against the CPU backend's float32 matmul of the same rounded values."""
    _wgmma_or_skip(dtype)
    rng = np.random.default_rng(20)
    for m, n, k in WGMMA_SHAPES[b_major]:
        a = rand(rng, m, k)
        b, db = _b_operand(rng, k, n, dtype, b_major)
        da = to_dev(a, dtype)
        assert _C().gemm_kernel_for(da, db, kernel="wgmma") == "wgmma"
        got = _C().gemm(da, db, kernel="wgmma")
        assert got.shape == (m, n) and got.dtype_name == dtype
        ra, rb = rounded(a, dtype), rounded(np.ascontiguousarray(b), dtype)
        want = cpu.matmul(ra.astype(np.float32), rb.astype(np.float32)).astype(np.float64)
        check(got, want, dtype, k)


@needs_gpu
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("b_major", ["K", "N"])
def test_wgmma_batched_and_broadcast(dtype, b_major):
    """Batches through the 3-D tensor maps: both operands batched, a shared (broadcast,
    batch stride 0) B, a shared A; a batch of 5 items with 2 K steps each runs the stage
    ring across items (its phases carry over)."""
    _wgmma_or_skip(dtype)
    rng = np.random.default_rng(21)
    m, n, k = 129, 136, 72
    a3 = rand(rng, 5, m, k)
    if b_major == "K":
        w3 = rand(rng, 5, n, k)
        b3, db3 = np.swapaxes(w3, -1, -2), gpu().swap_last(to_dev(w3, dtype))
    else:
        b3 = rand(rng, 5, k, n)
        db3 = to_dev(b3, dtype)
    b2, db2 = _b_operand(rng, k, n, dtype, b_major)
    ra3 = rounded(a3, dtype)
    rb3 = rounded(np.ascontiguousarray(b3), dtype)
    rb2 = rounded(np.ascontiguousarray(b2), dtype)
    cases = [(to_dev(a3, dtype), db3, ra3 @ rb3),                 # both batched
             (to_dev(a3, dtype), db2, ra3 @ rb2),                 # B broadcast
             (to_dev(a3[0], dtype), db3, ra3[0] @ rb3),           # A broadcast
             (to_dev(a3[:, None], dtype), db3, ra3[:, None] @ rb3)]  # (5, 1, m, k) x (5, k, n)
    for da, db, want in cases:
        assert _C().gemm_kernel_for(da, db, kernel="wgmma") == "wgmma"
        got = _C().gemm(da, db, kernel="wgmma")
        assert got.shape == want.shape
        check(got, want, dtype, k)


@needs_gpu
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("act", ["none", "relu", "gelu", "gelu_tanh"])
def test_wgmma_epilogue(dtype, act):
    """act(alpha a @ b + beta out + bias) written in place (the scalar path: beta != 0), and
    act(a @ b + bias) into a new array (the paired-store path), batched, both B layouts."""
    _wgmma_or_skip(dtype)
    rng = np.random.default_rng(22)
    for b_major, (m, n, k) in [("K", (129, 257, 72)), ("N", (136, 200, 64))]:
        a, c, bias = rand(rng, 2, m, k), rand(rng, 2, m, n), rand(rng, n)
        b, db = _b_operand(rng, k, n, dtype, b_major)
        ra, rb = rounded(a, dtype), rounded(np.ascontiguousarray(b), dtype)
        rbias = rounded(bias, dtype)
        out = to_dev(c, dtype)
        got = _C().gemm(to_dev(a, dtype), db, out, alpha=0.5, beta=-2.0,
                        bias=to_dev(bias, dtype), activation=act, kernel="wgmma")
        assert got.data_ptr == out.data_ptr
        check(got, _act(0.5 * (ra @ rb) - 2.0 * rounded(c, dtype) + rbias, act), dtype, k)
        got = _C().gemm(to_dev(a, dtype), db, bias=to_dev(bias, dtype), activation=act,
                        kernel="wgmma")
        check(got, _act(ra @ rb + rbias, act), dtype, k)


@needs_gpu
def test_wgmma_empty_k_runs_the_epilogue_only():
    """K == 0: no tensor maps, no loads; out = act(beta out + bias)."""
    _wgmma_or_skip("bfloat16")
    rng = np.random.default_rng(23)
    c, bias = rand(rng, 9, 16), rand(rng, 16)
    a, b = to_dev(np.zeros((9, 0)), "bfloat16"), to_dev(np.zeros((0, 16)), "bfloat16")
    out = to_dev(c, "bfloat16")
    got = _C().gemm(a, b, out, beta=2.0, bias=to_dev(bias, "bfloat16"), kernel="wgmma")
    check(got, 2.0 * rounded(c, "bfloat16") + rounded(bias, "bfloat16"), "bfloat16", 1)


@needs_gpu
def test_wgmma_refusals_name_the_rule():
    """Layouts TMA/wgmma cannot take are refused with the rule they break (on any GPU:
    the layout check comes before the device check)."""
    rng = np.random.default_rng(24)
    f16 = lambda *s: to_dev(rand(rng, *s), "float16")  # noqa: E731
    with pytest.raises(ValueError, match="wgmma' takes bfloat16 or float16 operands, got float32"):
        _C().gemm(to_dev(np.ones((8, 8)), "float32"), to_dev(np.ones((8, 8)), "float32"),
                  kernel="wgmma")
    # a stored transposed (M-major)
    with pytest.raises(ValueError, match=r"needs a K-major a \(last stride 1\), got a's strides \(1, 16\)"):
        _C().gemm(gpu().swap_last(f16(16, 16)), f16(16, 16), kernel="wgmma")
    # b with no unit stride: every other row and column of a wider array
    b = gpu().getitem(f16(32, 32), (slice(None, None, 2), slice(None, None, 2)))
    with pytest.raises(ValueError, match="needs b with stride 1 along K .* got b's strides \\(64, 2\\)"):
        _C().gemm(f16(8, 16), b, kernel="wgmma")
    # rows of 7 elements (14 bytes): not 16-byte multiples
    with pytest.raises(ValueError, match="needs a's stride between rows to be a positive multiple "
                                         "of 8 elements .*got 7"):
        _C().gemm(f16(5, 7), gpu().swap_last(f16(9, 7)), kernel="wgmma")
    with pytest.raises(ValueError, match="needs b's stride between rows .*got 9"):
        _C().gemm(f16(5, 8), f16(8, 9), kernel="wgmma")
    # a start one element (2 bytes) into a buffer
    a = gpu().getitem(f16(8, 17), (slice(None), slice(1, 17)))
    with pytest.raises(ValueError, match="needs a 16-byte aligned start of a"):
        _C().gemm(a, f16(16, 8), kernel="wgmma")
    # the automatic choice never picks wgmma (until it is verified on a GPU)
    assert _C().gemm_kernel_for(f16(64, 64), gpu().swap_last(f16(64, 64))) != "wgmma"


@needs_gpu
def test_wgmma_refused_off_sm90():
    """Where the wgmma kernel is unavailable, a valid layout is refused naming the device's
    compute capability (elsewhere it is accepted: see the tests above)."""
    probe = to_dev(np.ones((8, 8)), "bfloat16")
    try:
        name = _C().gemm_kernel_for(probe, gpu().swap_last(probe), kernel="wgmma")
    except ValueError as e:
        assert re.search(r"needs a compute capability 9\.0 device and a build with sm_90a "
                         r"\(cuda:\d+ is \d+\.\d+\)", str(e)), str(e)
    else:
        assert name == "wgmma"


# ------------------------------------------------- small-M tiles (gemm_simt.cu)
# The SIMT kernel picks its row tile from M: 32 x 128 for M <= 32, 64 x 128 for
# M <= 64, else 128 x 128 (double: 32 x 64, 64 x 64), and halves it while the
# blocks fill at most half the multiprocessors. These run each tile at its row
# edges (M = 1, 7, 32, 33, 64, 65) with column and depth tails, every transpose,
# batches and the epilogue, against the CPU backend (float32/float64) or the
# rounded float64 product (bfloat16/float16 on the SIMT kernel).
SMALL_M = [1, 7, 32, 33, 64, 65]


def _twin(a, b, dtype):
    """The CPU backend's product in float32/float64, else float64 of the rounded operands."""
    if dtype in ("float32", "float64"):
        return cpu.matmul(np.asarray(a, dtype), np.asarray(b, dtype)).astype(np.float64)
    return rounded(a, dtype) @ rounded(b, dtype)


@needs_gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans", TRANS)
def test_small_m_tiles_every_transpose(dtype, trans):
    rng = np.random.default_rng(20)
    for m, n, k in itertools.product(SMALL_M, [1, 127, 129, 300], [1, 9, 257]):
        a, b = rand(rng, m, k), rand(rng, k, n)
        da, db = operand(a, dtype, trans[0] == "T"), operand(b, dtype, trans[1] == "T")
        out = _C().gemm(da, db, kernel="simt")
        assert out.shape == (m, n) and out.dtype_name == dtype
        check(out, _twin(a, b, dtype), dtype, k)


@needs_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("m", SMALL_M)
def test_small_m_tiles_unaligned_and_strided(dtype, m):
    """Layouts that leave the vector loads/stores: operands starting one element in
    (misaligned runs), every other column/row (no unit stride), and an `out` that is a
    column slice of a wider array (row stride not a multiple of the store vector)."""
    rng = np.random.default_rng(21)
    k, n = 37, 131
    wa, wb = rand(rng, m, 2 * k + 1), rand(rng, 2 * k + 1, n + 1)
    da, db = to_dev(wa, dtype), to_dev(wb, dtype)
    # misaligned start, unit stride kept
    a1 = gpu().getitem(da, (slice(None), slice(1, k + 1)))
    b1 = gpu().getitem(db, (slice(1, k + 1), slice(1, n + 1)))
    check(_C().gemm(a1, b1, kernel="simt"), _twin(wa[:, 1:k + 1], wb[1:k + 1, 1:], dtype),
          dtype, k)
    # no unit stride on either operand
    a2 = gpu().getitem(da, (slice(None), slice(0, 2 * k, 2)))
    b2 = gpu().getitem(db, (slice(0, 2 * k, 2), slice(0, n + 1, 2)))
    check(_C().gemm(a2, b2, kernel="simt"), _twin(wa[:, :2 * k:2], wb[:2 * k:2, ::2], dtype),
          dtype, k)
    # out: a (m, n) column slice of an (m, n + 3) array, beta = 1 reads it in place
    c = rand(rng, m, n + 3)
    dc = to_dev(c, dtype)
    view = gpu().getitem(dc, (slice(None), slice(2, n + 2)))
    _C().gemm(a1, b1, view, beta=1.0, kernel="simt")
    want = c.copy()
    want[:, 2:n + 2] += _twin(wa[:, 1:k + 1], wb[1:k + 1, 1:], dtype)
    check(dc, want, dtype, k)  # the columns outside the view are untouched


@needs_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
@pytest.mark.parametrize("act", ["none", "relu", "gelu", "gelu_tanh"])
def test_small_m_tiles_batched_epilogue(dtype, act):
    """out = act(alpha a @ b + beta out + bias) over a batch, small M, both store paths
    (beta != 0: element stores; no out: vector stores), and a broadcast A."""
    rng = np.random.default_rng(22)
    for m, n, k in [(1, 129, 33), (7, 8, 1), (32, 260, 64), (33, 129, 15), (64, 128, 200),
                    (65, 131, 9)]:
        a, b, c, bias = rand(rng, 3, m, k), rand(rng, 3, k, n), rand(rng, 3, m, n), rand(rng, n)
        out = to_dev(c, dtype)
        got = _C().gemm(to_dev(a, dtype), to_dev(b, dtype), out, alpha=0.5, beta=-2.0,
                        bias=to_dev(bias, dtype), activation=act, kernel="simt")
        prod = np.stack([_twin(a[i], b[i], dtype) for i in range(3)])
        pre = 0.5 * prod - 2.0 * rounded(c, dtype) + rounded(bias, dtype)
        check(got, _act(pre, act), dtype, k)
        got = _C().gemm(to_dev(a, dtype), to_dev(b, dtype), bias=to_dev(bias, dtype),
                        activation=act, kernel="simt")
        check(got, _act(prod + rounded(bias, dtype), act), dtype, k)
        # A broadcast over B's batch (batch stride 0)
        got = _C().gemm(to_dev(a[0], dtype), to_dev(b, dtype), kernel="simt")
        check(got, np.stack([_twin(a[0], b[i], dtype) for i in range(3)]), dtype, k)


def _split(x, s, axis_k):
    """Device (r, K) (axis_k = 1) or (K, r) (axis_k = 0) array as S slices along K, the
    view rnn.cu's split-K passes: (S, r, K/S) or (S, K/S, r), batch stride K/S columns."""
    if axis_k == 1:
        r, kk = x.shape
        return gpu().transpose(gpu().reshape(x, (r, s, kk // s)), (1, 0, 2))
    kk, r = x.shape
    return gpu().reshape(x, (s, kk // s, r)) if x.element_strides[1] == 1 else \
        gpu().transpose(gpu().reshape(gpu().swap_last(x), (r, s, kk // s)), (1, 2, 0))


@needs_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_lstm_step_shapes(dtype):
    """The LSTM's per-step products at B = 64, H = 1024 (the 64-row tile): forward
    h (64, 1024) @ W_hh^T (1024, 4096) (W_hh stored (4096, 1024)) with b_hh, whole and
    split along K in S = 4 (as rnn.cu does on 132 SMs) and 2 / 8; backward
    dG (64, 4096) @ W_hh (4096, 1024), split in S = 16 and 4."""
    rng = np.random.default_rng(23)
    h, w, dg, bias = rand(rng, 64, 1024), rand(rng, 4096, 1024), rand(rng, 64, 4096), \
        rand(rng, 4096)
    dh_, dw_, ddg = to_dev(h, dtype), to_dev(w, dtype), to_dev(dg, dtype)
    wt = gpu().swap_last(dw_)  # (1024, 4096), columns contiguous along K
    got = _C().gemm(dh_, wt, bias=to_dev(bias, dtype), kernel="simt")
    check(got, _twin(h, w.T, dtype) + bias, dtype, 1024)
    for s in (2, 4, 8):
        got = _C().gemm(_split(dh_, s, 1), _split(wt, s, 0), kernel="simt")
        ks = 1024 // s
        want = np.stack([_twin(h[:, i * ks:(i + 1) * ks], w.T[i * ks:(i + 1) * ks], dtype)
                         for i in range(s)])
        assert got.shape == (s, 64, 4096)
        check(got, want, dtype, ks)
    check(_C().gemm(ddg, dw_, kernel="simt"), _twin(dg, w, dtype), dtype, 4096)
    for s in (4, 16):
        got = _C().gemm(_split(ddg, s, 1), _split(dw_, s, 0), kernel="simt")
        ks = 4096 // s
        want = np.stack([_twin(dg[:, i * ks:(i + 1) * ks], w[i * ks:(i + 1) * ks], dtype)
                         for i in range(s)])
        check(got, want, dtype, ks)


@needs_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_lstm_layer_b64_h1024_matches_cpu(dtype):
    """The whole LSTM layer at the benchmark's B = 64, H = 1024 (2 steps): the per-step
    products run on the 64-row tile, split along K; forward and every gradient against
    the CPU twin (tolerance as tests/test_cuda_rnn.py: relative to the largest value)."""
    from nnforge.backend import cpu_rnn
    rng = np.random.default_rng(24)
    T, B, I, H = 2, 64, 16, 1024
    r = lambda *s: rng.uniform(-0.05, 0.05, s).astype(dtype)  # noqa: E731
    args = [r(T, B, I), r(B, H), r(B, H), r(4 * H, I), r(4 * H, H), r(4 * H), r(4 * H), None]
    want = cpu_rnn.rnn_layer_forward("lstm", *args, None, False, False)
    got = gpu().rnn_layer_forward("lstm", *[None if v is None else dev(v) for v in args],
                                  None, False, False)
    rtol, atol = (1e-10, 1e-11) if dtype == "float64" else (2e-4, 2e-5)

    def close(g, w_):
        scale = max(1.0, float(np.abs(w_).max()))
        np.testing.assert_allclose(gpu().to_host(g), w_, rtol=rtol, atol=atol * scale)

    for g, w_ in zip(got[:3], want[:3]):
        close(g, w_)
    dy, dh, dc = r(T, B, H), r(B, H), r(B, H)
    gw = cpu_rnn.rnn_layer_backward(want[3], dy, dh, dc, True, True)
    gg = gpu().rnn_layer_backward(got[3], dev(dy), dev(dh), dev(dc), True, True)
    for g, w_ in zip(gg, gw):
        if w_ is not None:
            close(g, w_)


@needs_gpu
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_wgmma_k1_outer_product(dtype):
    """K == 1: a (M, 1) cut from a wider array (row stride 8), b a contiguous (1, N) row,
    which only the N-major tensor map can take (its K-major rows would be 1 element apart)."""
    _wgmma_or_skip(dtype)
    rng = np.random.default_rng(25)
    wide, b = rand(rng, 130, 8), rand(rng, 1, 136)
    da = gpu().getitem(to_dev(wide, dtype), (slice(None), slice(0, 1)))
    db = to_dev(b, dtype)
    assert _C().gemm_kernel_for(da, db, kernel="wgmma") == "wgmma"
    check(_C().gemm(da, db, kernel="wgmma"), rounded(wide, dtype)[:, :1] @ rounded(b, dtype),
          dtype, 1)
