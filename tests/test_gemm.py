"""The CPU GEMM (nnforge._C.cpu.gemm, csrc/cpu/gemm/) against float64 numpy
references: a grid of sizes on every axis (0 to 1000) and random triples, all
four transpose combinations, sliced and reversed views, alpha/beta (beta = 0
never reads C, which may hold NaN), batched and broadcast shapes, the fused
bias + activation epilogue, both paths (B packed or read in place), every ISA
this CPU has, 1 vs 2 threads bit for bit, and argument errors. Then the
wiring: backend.cpu.matmul keeps numpy.matmul's semantics, and no float
matmul, Linear or their gradients call numpy's BLAS.

Tolerance: |C - C_ref| <= 2 (K + 2) eps (|A| |B| + |beta C|) elementwise, the
classic bound for a K-term sum (eps of the dtype: float32 2^-24, float64 2^-53).

AddressSanitizer (no out-of-bounds access on any path): build into a separate
virtual environment (not one that sees the editable install: its import hook
would win) and build directory, then run this file with the ASan runtime and
libstdc++ preloaded (Python itself is not instrumented; without libstdc++
ASan cannot intercept C++ exceptions) and the leak checker off:

    python -m venv /tmp/asan-venv
    /tmp/asan-venv/bin/pip install numpy pytest tqdm scikit-build-core pybind11
    /tmp/asan-venv/bin/pip install --no-build-isolation --no-deps \
        -C cmake.define.NNFORGE_CUDA=OFF -C build-dir=/tmp/asan-build \
        -C cmake.define.CMAKE_CXX_FLAGS="-fsanitize=address -fno-omit-frame-pointer" \
        -C cmake.define.CMAKE_MODULE_LINKER_FLAGS=-fsanitize=address .
    cp tests/test_gemm.py /tmp && cd /tmp && ASAN_OPTIONS=detect_leaks=0 \
        LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libstdc++.so)" \
        /tmp/asan-venv/bin/python -m pytest -q -p no:cacheprovider test_gemm.py
"""
import os
import subprocess
import sys

import numpy as np
import pytest

import nnforge as nf
from nnforge import _C
from nnforge.backend import cpu as backend

gemm = _C.cpu.gemm

SIZES = [0, 1, 2, 3, 7, 15, 16, 17, 31, 33, 63, 64, 65, 127, 129, 255, 257, 511, 1000]
DTYPES = [np.float32, np.float64]


def _available_isas():
    f = _C.cpu_features()
    isas = ["scalar"]
    if f["avx2"] and f["fma"]:
        isas.append("avx2")
    if all(f[k] for k in ("avx512f", "avx512bw", "avx512dq", "avx512vl", "fma")):
        isas.append("avx512")
    return isas


ISAS = _available_isas()


# ---------------------------------------------------------------- helpers
def operand(rng, rows, cols, dtype, trans=False, layout="contiguous"):
    """A rows x cols matrix: transposed storage (trans), or a sliced/reversed view."""
    if layout == "strided":  # every other row, every third column, offset by one
        big = rng.standard_normal((2 * rows + 1, 3 * cols + 2)).astype(dtype)
        return big[1::2, 2::3][:rows, :cols]
    if layout == "reversed":
        return rng.standard_normal((rows, cols)).astype(dtype)[::-1, ::-1]
    if trans:
        return rng.standard_normal((cols, rows)).astype(dtype).T
    return rng.standard_normal((rows, cols)).astype(dtype)


def check(c, a, b, alpha=1.0, beta=0.0, c0=None, bias=None):
    """c against alpha a @ b + beta c0 + bias in float64, within the K-term bound."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    ref = alpha * np.matmul(a64, b64)
    bound = abs(alpha) * np.matmul(np.abs(a64), np.abs(b64))
    if beta != 0.0:
        ref = ref + beta * c0.astype(np.float64)
        bound = bound + np.abs(beta * c0.astype(np.float64))
    if bias is not None:
        ref = ref + bias.astype(np.float64)
        bound = bound + np.abs(bias.astype(np.float64))
    k = a.shape[-1]
    eps = np.finfo(c.dtype).eps / 2
    tol = 2 * (k + 2) * eps * bound + np.finfo(c.dtype).tiny
    assert c.shape == ref.shape and c.dtype == a.dtype
    err = np.abs(c.astype(np.float64) - ref)
    assert np.all(err <= tol), (
        f"max error {err.max():.3g} vs tolerance {tol.flat[np.argmax(err - tol)]:.3g} "
        f"for {a.shape} @ {b.shape} {a.dtype}")


def grid_triples():
    """Every size on each axis with the other two small, plus random triples."""
    triples = set()
    for s in SIZES:
        triples.update({(s, 5, 9), (7, s, 3), (4, 17, s), (s, s, 2) if s <= 257 else (s, 3, 2)})
    rng = np.random.default_rng(1234)
    while len(triples) < 100:
        m, n, k = (int(x) for x in rng.choice(SIZES, 3))
        if m * n * k <= 40_000_000:
            triples.add((m, n, k))
    return sorted(triples)


TRIPLES = grid_triples()


# ---------------------------------------------------------------- the product
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_grid_every_isa(isa, dtype):
    rng = np.random.default_rng(0)
    for i, (m, n, k) in enumerate(TRIPLES):
        ta, tb = i % 2 == 1, (i // 2) % 2 == 1  # the four transpose combinations in turn
        a = operand(rng, m, k, dtype, ta)
        b = operand(rng, k, n, dtype, tb)
        check(gemm(a, b, isa=isa), a, b)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("path", ["direct", "packed", "dot", "prepacked"])
@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
def test_transposes_and_paths(isa, path, ta, tb):
    rng = np.random.default_rng(1)
    for dtype in DTYPES:
        for m, n, k in [(1, 1, 1), (5, 70, 13), (33, 129, 65), (64, 64, 64), (127, 17, 300),
                        (13, 200, 1100), (300, 1, 20), (2, 257, 3), (1, 100, 4100), (7, 9, 31)]:
            a = operand(rng, m, k, dtype, ta)
            b = operand(rng, k, n, dtype, tb)
            check(gemm(a, b, isa=isa, path=path), a, b)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("layout", ["strided", "reversed"])
@pytest.mark.parametrize("path", ["auto", "direct", "packed", "dot", "prepacked"])
def test_non_contiguous_views(isa, layout, path):
    rng = np.random.default_rng(2)
    for dtype in DTYPES:
        for m, n, k in [(1, 9, 4), (7, 65, 33), (65, 31, 129), (16, 130, 17)]:
            a = operand(rng, m, k, dtype, layout=layout)
            b = operand(rng, k, n, dtype, layout=layout)
            assert not (a.flags.c_contiguous or b.flags.c_contiguous)
            check(gemm(a, b, isa=isa, path=path), a, b)
            # A strided output, written in place.
            big = np.full((2 * m + 1, 2 * n + 1), 7.0, dtype)
            out = big[::2, ::2][:m, :n]
            gemm(a, b, out, isa=isa, path=path)
            check(out, a, b)
            assert np.all(big[1::2] == 7.0) and np.all(big[:, 1::2] == 7.0)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("path", ["direct", "packed", "dot", "prepacked"])
def test_alpha_beta_and_nan_in_c(isa, path):
    rng = np.random.default_rng(3)
    for dtype in DTYPES:
        for m, n, k in [(1, 1, 1), (6, 64, 5), (17, 65, 1030), (40, 3, 7), (5, 9, 0), (3, 70, 20)]:
            a, b = operand(rng, m, k, dtype), operand(rng, k, n, dtype, trans=path == "dot")
            c0 = operand(rng, m, n, dtype)
            for alpha, beta in [(1.0, 1.0), (0.5, -2.0), (-1.5, 0.25), (2.0, 0.0)]:
                out = c0.copy()
                gemm(a, b, out, alpha=alpha, beta=beta, isa=isa, path=path)
                check(out, a, b, alpha, beta, c0)
            out = np.full((m, n), np.nan, dtype)  # beta = 0: C is never read
            gemm(a, b, out, alpha=1.5, isa=isa, path=path)
            check(out, a, b, 1.5)
            # C transposed in memory (column-major) takes the C^T = B^T A^T route.
            out = np.asfortranarray(c0.copy())
            gemm(a, b, out, alpha=0.5, beta=2.0, isa=isa, path=path)
            check(out, a, b, 0.5, 2.0, c0)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("activation", [None, "relu", "gelu_tanh"])
def test_bias_and_activation_epilogue(isa, activation):
    rng = np.random.default_rng(4)
    for dtype in DTYPES:
        for m, n, k, path in [(1, 1, 1, "auto"), (9, 70, 33, "direct"), (70, 130, 1100, "packed"),
                              (65, 3, 8, "packed"), (4, 5, 0, "auto"), (3, 70, 33, "dot"),
                              (2, 3000, 20, "direct")]:
            a, b = operand(rng, m, k, dtype), operand(rng, k, n, dtype, trans=path == "dot")
            bias = rng.standard_normal(2 * n).astype(dtype)[::2]  # a strided bias
            c = gemm(a, b, bias=bias, activation=activation, isa=isa, path=path)
            z = a.astype(np.float64) @ b.astype(np.float64) + bias
            if activation is None:
                check(c, a, b, bias=bias)
                continue
            if activation == "relu":
                ref = np.maximum(z, 0)
            else:
                ref = 0.5 * z * (1 + np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z ** 3)))
            rtol = 1e-5 if dtype == np.float32 else 1e-12
            scale = np.abs(a).astype(np.float64) @ np.abs(b) + np.abs(bias)
            assert np.allclose(c, ref, rtol=rtol, atol=rtol * (k + 2) * scale.max() + 1e-30)
    # ReLU keeps NaN (as numpy.maximum and torch.relu do).
    a = np.array([[np.nan, 1.0]], np.float32)
    assert np.isnan(gemm(a, np.ones((2, 2), np.float32), activation="relu", isa=isa)).all()


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("tile_rows", [0, 6, 8])
def test_prepacked_tiles(isa, tile_rows):
    """B packed whole once (gemm_pack_b + gemm_prepacked, the recurrent layers' per-step
    product) with each tile (8 rows: AVX-512's tall tile; elsewhere the standard one):
    row counts around the tile heights, odd widths, B = W^T or row-major, the epilogue."""
    rng = np.random.default_rng(7)
    for dtype in DTYPES:
        for m, n, k in [(1, 1, 1), (1, 513, 7), (5, 7, 3), (8, 48, 1), (32, 100, 65),
                        (33, 129, 17), (30, 2048, 9), (16, 49, 2100), (9, 24, 40)]:
            a = operand(rng, m, k, dtype)
            for tb in (False, True):
                b = operand(rng, k, n, dtype, tb)
                check(gemm(a, b, isa=isa, path="prepacked", tile_rows=tile_rows), a, b)
            c0 = operand(rng, m, n, dtype)
            bias = rng.standard_normal(n).astype(dtype)
            out = c0.copy()
            gemm(a, b, out, alpha=0.5, beta=1.0, bias=bias, isa=isa, path="prepacked",
                 tile_rows=tile_rows)
            check(out, a, b, 0.5, 1.0, c0, bias)
            relu = gemm(a, b, bias=bias, activation="relu", isa=isa, path="prepacked",
                        tile_rows=tile_rows)
            assert np.array_equal(relu, np.maximum(gemm(a, b, bias=bias, isa=isa,
                                                        path="prepacked",
                                                        tile_rows=tile_rows), 0))
    a, b = rng.standard_normal((4, 0)), rng.standard_normal((0, 5))  # k = 0: C = beta C
    out = np.ones((4, 5))
    gemm(a, b, out, beta=2.0, isa=isa, path="prepacked", tile_rows=tile_rows)
    assert np.all(out == 2.0)
    with pytest.raises(ValueError, match="tile_rows"):
        gemm(a, b, tile_rows=-1)


def test_gelu_epilogue_tails():
    """Large |x|: x for large positive, -0 or a tiny negative for large negative, no NaN."""
    x = np.array([[-1e4, -100.0, -20.0, -5.0, 0.0, 5.0, 20.0, 100.0, 1e4]])
    for dtype in DTYPES:
        c = gemm(x.T.astype(dtype), np.ones((1, 1), dtype), activation="gelu_tanh").ravel()
        z = x.ravel()
        assert np.all(np.isfinite(c))
        assert np.allclose(c[5:], z[5:], rtol=1e-6) and c[4] == 0
        assert np.all(np.abs(c[:4]) < 1e-5) and np.all(c[:4] <= 0)


def test_batched_and_broadcast():
    rng = np.random.default_rng(5)
    cases = [((3, 4, 5), (3, 5, 6)), ((3, 4, 5), (5, 6)), ((4, 5), (3, 5, 6)),
             ((2, 1, 4, 5), (3, 5, 6)), ((2, 1, 4, 5), (1, 3, 5, 6)), ((5,), (5,)),
             ((5,), (2, 5, 3)), ((2, 4, 5), (5,)), ((1, 4, 5), (7, 5, 2)), ((0, 4, 5), (5, 3)),
             ((2, 3, 0, 5), (5, 3)), ((6, 33, 65), (6, 65, 17)), ((2, 3, 70, 9), (2, 1, 9, 130))]
    for dtype in DTYPES:
        for sa, sb in cases:
            a = rng.standard_normal(sa).astype(dtype)
            b = rng.standard_normal(sb).astype(dtype)
            c = gemm(a, b)
            ref = np.matmul(a.astype(np.float64), b.astype(np.float64))
            assert c.shape == ref.shape and isinstance(c, np.ndarray)
            check(c, a, b)
            # Transposed batches (batch strides that do not collapse).
            at = np.ascontiguousarray(np.swapaxes(a, -1, -2)).swapaxes(-1, -2) if a.ndim > 1 else a
            check(gemm(at, b), at, b)
    # A batch of outputs given, accumulating.
    a, b = rng.standard_normal((4, 8, 16)), rng.standard_normal((4, 16, 8))
    out = rng.standard_normal((4, 8, 8))
    c0 = out.copy()
    gemm(a, b, out, beta=1.0)
    check(out, a, b, 1.0, 1.0, c0)


def test_threads_bit_identical():
    """Each element is computed by the same operations whatever the thread split."""
    rng = np.random.default_rng(6)
    shapes = [(300, 200, 150), (64, 4096, 64), (2, 3000, 500), (1000, 40, 300),
              (130, 70, 1100), (8, 64, 64, 64), (7, 2000, 300)]
    for isa in ISAS:
        for dtype in DTYPES:
            for shape in shapes:
                *batch, m, n, k = shape
                a = rng.standard_normal((*batch, m, k)).astype(dtype)
                b = rng.standard_normal((*batch, k, n)).astype(dtype)
                bt = np.ascontiguousarray(np.swapaxes(b, -1, -2)).swapaxes(-1, -2)  # B = W^T
                for bb, paths in [(b, ["auto", "direct", "packed", "prepacked"]),
                                  (bt, ["auto", "dot", "prepacked"])]:
                    for path in paths:
                        one = gemm(a, bb, isa=isa, path=path, threads=1)
                        two = gemm(a, bb, isa=isa, path=path, threads=2)
                        assert np.array_equal(one, two), (isa, dtype, shape, path)


def test_forced_isa_by_environment():
    """NNFORGE_ISA picks the kernels in a fresh process (best_isa reads it once)."""
    script = ("import numpy as np; from nnforge import _C; "
              "a = np.arange(12.0).reshape(3, 4); "
              "assert np.array_equal(_C.cpu.gemm(a, a.T), a @ a.T); "
              "print(_C.cpu.gemm_config()['isa'])")
    for isa in ISAS:
        env = dict(os.environ, NNFORGE_ISA=isa)
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                             text=True, check=True)
        assert out.stdout.strip() == isa


def test_config_reports_blocking():
    for dtype in ["float32", "float64"]:
        for isa in ISAS:
            cfg = _C.cpu.gemm_config(dtype, isa)
            assert cfg["isa"] == isa and cfg["mr"] > 0 and cfg["nr"] > 0
            assert cfg["mc"] % cfg["mr"] == 0 and cfg["nc"] % cfg["nr"] == 0 and cfg["kc"] > 0


# ---------------------------------------------------------------- errors
def test_bad_arguments_raise():
    f32 = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"gemm: a \(3, 4\) and b \(5, 2\)"):
        gemm(f32, np.ones((5, 2), np.float32))
    with pytest.raises(ValueError, match=r"gemm: a \(3, 4\) has dtype float32 and b \(4, 2\) "
                                         r"has dtype float64"):
        gemm(f32, np.ones((4, 2)))
    with pytest.raises(ValueError, match="int64"):
        gemm(np.ones((3, 4), np.int64), np.ones((4, 2), np.int64))
    out = np.zeros((3, 2), np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match=r"gemm: out \(shape \(3, 2\)\) is not writeable"):
        gemm(f32, np.ones((4, 2), np.float32), out)
    with pytest.raises(ValueError, match=r"out has shape \(2, 3\), expected \(3, 2\)"):
        gemm(f32, np.ones((4, 2), np.float32), np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="out has dtype float64"):
        gemm(f32, np.ones((4, 2), np.float32), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="broadcast view"):
        gemm(f32, np.ones((4, 2), np.float32),
             np.lib.stride_tricks.as_strided(np.zeros(2, np.float32), (3, 2), (0, 4)))
    with pytest.raises(ValueError, match=r"bias has shape \(3,\), expected \(2,\)"):
        gemm(f32, np.ones((4, 2), np.float32), bias=np.ones(3, np.float32))
    with pytest.raises(ValueError, match="not broadcastable"):
        gemm(np.ones((2, 3, 4)), np.ones((3, 4, 2)))
    with pytest.raises(ValueError, match="at least 1 dimension"):
        gemm(np.ones(()), np.ones((2, 2)))
    with pytest.raises(ValueError, match="beta != 0 needs an out"):
        gemm(f32, np.ones((4, 2), np.float32), beta=1.0)
    with pytest.raises(ValueError, match="activation must be"):
        gemm(f32, np.ones((4, 2), np.float32), activation="tanh")
    with pytest.raises(ValueError, match="isa must be"):
        gemm(f32, np.ones((4, 2), np.float32), isa="neon")
    with pytest.raises(TypeError, match="b must be a numpy array"):
        gemm(f32, [[1.0]])


def test_positional_fast_calls():
    rng = np.random.default_rng(12)
    for dtype in DTYPES:
        a, b = operand(rng, 5, 7, dtype), operand(rng, 7, 3, dtype)
        bias = rng.standard_normal(3).astype(dtype)
        assert np.array_equal(_C.cpu.matmul(a, b), gemm(a, b))
        assert np.array_equal(_C.cpu.matmul_bias(a, b, bias, "relu"),
                              gemm(a, b, bias=bias, activation="relu"))
        assert np.array_equal(_C.cpu.matmul_bias(a, b, None, None), gemm(a, b))
    with pytest.raises(ValueError, match="gemm: a"):
        _C.cpu.matmul(np.ones((2, 3), np.float32), np.ones((2, 3), np.float32))
    with pytest.raises(TypeError):
        _C.cpu.matmul([[1.0]], np.ones((1, 1)))


def test_output_overlapping_an_input_reads_a_copy():
    a = np.random.default_rng(7).standard_normal((6, 6))
    expect = a @ a
    gemm(a, a, a)  # out is a itself
    assert np.allclose(a, expect)


# ---------------------------------------------------------------- the wiring
def test_backend_matmul_matches_numpy_semantics():
    rng = np.random.default_rng(8)
    shapes = [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)),
              ((5, 2, 3), (3, 4)), ((2, 1, 2, 3), (4, 3, 2)), ((0, 3), (3, 2)), ((2, 0), (0, 3))]
    dtypes = [(np.float32, np.float32), (np.float64, np.float64), (np.float32, np.float64),
              (np.float16, np.float16), (np.int64, np.int64), (np.int32, np.float32)]
    for sa, sb in shapes:
        for da, db in dtypes:
            a = (rng.standard_normal(sa) * 3).astype(da)
            b = (rng.standard_normal(sb) * 3).astype(db)
            got, want = backend.matmul(a, b), np.matmul(a, b)
            assert isinstance(got, np.ndarray) and got.shape == np.shape(want)
            assert got.dtype == want.dtype
            assert np.allclose(got, want, rtol=1e-3 if want.dtype == np.float16 else 1e-5)


class _NoBlas:
    """np.matmul/np.dot/np.einsum/np.tensordot replaced by functions that raise."""

    def __init__(self, monkeypatch):
        def refuse(name):
            def fn(*args, **kwargs):
                raise AssertionError(f"numpy.{name} was called for a float product")
            return fn
        for name in ["matmul", "dot", "einsum", "tensordot", "inner", "vdot"]:
            monkeypatch.setattr(np, name, refuse(name))


@pytest.mark.parametrize("dtype", [nf.float32, nf.float64])
def test_no_numpy_blas_in_matmul_and_linear(monkeypatch, dtype):
    rng = np.random.default_rng(9)
    x_np = rng.standard_normal((4, 3, 8))
    w_np = rng.standard_normal((5, 8))
    b_np = rng.standard_normal(5)
    m_np = rng.standard_normal((8, 6))
    _NoBlas(monkeypatch)
    x = nf.tensor(x_np, dtype=dtype, requires_grad=True)
    w = nf.tensor(w_np, dtype=dtype, requires_grad=True)
    b = nf.tensor(b_np, dtype=dtype, requires_grad=True)
    m = nf.tensor(m_np, dtype=dtype, requires_grad=True)
    for act in [None, "relu", "gelu_tanh"]:
        y = nf.nn.functional.linear(x, w, b, activation=act)
        (y.sum() + (x @ m).sum() + nf.matmul(x[0, 0], m).sum()).backward()
    layer = nf.nn.Linear(8, 5).to(dtype=dtype)
    layer(x).sum().backward()
    assert x.grad is not None and w.grad is not None and m.grad is not None


def test_linear_activation_matches_composition():
    rng = np.random.default_rng(10)
    x_np, w_np = rng.standard_normal((6, 7)), rng.standard_normal((4, 7))
    b_np = rng.standard_normal(4)
    F = nf.nn.functional
    for act, ref_fn in [("relu", F.relu), ("gelu_tanh", lambda t: F.gelu(t, approximate="tanh"))]:
        grads = []
        for fused in [True, False]:
            x = nf.tensor(x_np, requires_grad=True)
            w = nf.tensor(w_np, requires_grad=True)
            b = nf.tensor(b_np, requires_grad=True)
            y = F.linear(x, w, b, activation=act) if fused else ref_fn(F.linear(x, w, b))
            (y * nf.tensor(np.arange(24.0).reshape(6, 4))).sum().backward()
            grads.append((y.detach().numpy(), x.grad.numpy(), w.grad.numpy(), b.grad.numpy()))
        for got, want in zip(*grads):
            assert np.allclose(got, want, rtol=1e-10, atol=1e-12)
        with nf.no_grad():  # the fully fused forward
            x, w, b = nf.tensor(x_np), nf.tensor(w_np), nf.tensor(b_np)
            assert np.allclose(F.linear(x, w, b, activation=act).numpy(), grads[1][0],
                               rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="linear: activation must be"):
        F.linear(nf.tensor(x_np), nf.tensor(w_np), activation="tanh")


def test_linear_gradcheck():
    rng = np.random.default_rng(11)
    x = nf.tensor(rng.standard_normal((3, 5)), requires_grad=True)
    w = nf.tensor(rng.standard_normal((4, 5)), requires_grad=True)
    b = nf.tensor(rng.standard_normal(4), requires_grad=True)
    F = nf.nn.functional
    for act in [None, "relu", "gelu_tanh"]:
        assert nf.autograd.gradcheck(lambda x, w, b: F.linear(x, w, b, activation=act),
                                     (x, w, b))
