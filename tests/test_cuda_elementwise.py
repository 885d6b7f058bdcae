"""CUDA elementwise, reduction and view kernels, each compared with its CPU
twin (the numpy backend) over shape grids with broadcasting, size 1, empty,
odd sizes (the vector loop's tail) and non-contiguous (transposed, sliced)
inputs, for every dtype the op takes. Marked `cuda`; skipped without a GPU."""
import numpy as np
import pytest

from cuda_support import assert_twin, cpu, dev, dev_view, gpu, needs_gpu, random_array, views

FLOATS = [np.float32, np.float64, np.float16]
INTS = [np.int64, np.int32, np.uint8]
ALL = FLOATS + INTS + [np.bool_]

SHAPES = [(), (1,), (7,), (1031,), (3, 4), (2, 3, 5), (0, 3), (4, 1, 6)]
PAIRS = [((), ()), ((5,), ()), ((), (5,)), ((1031,), (1031,)), ((3, 4), (4,)),
         ((2, 1, 5), (3, 1)), ((0, 3), (3,)), ((4, 5, 6), (4, 5, 6)), ((6, 1), (1, 7)),
         ((2, 3, 1, 4, 1, 2, 1, 3, 2), (3, 2))]  # 9 dims: merged back to <= 8

# name -> (dtypes, input range)
UNARY = {
    "negative": (FLOATS + [np.int64, np.int32], (-3, 3)),
    "absolute": (FLOATS + INTS, (-3, 3)),
    "square": (FLOATS + INTS, (-3, 3)),
    "sign": (FLOATS + [np.int64, np.int32], (-3, 3)),
    "relu": (FLOATS + INTS, (-3, 3)),
    "exp": (FLOATS, (-5, 5)),
    "expm1": (FLOATS, (-2, 2)),
    "log": (FLOATS, (0.01, 9)),
    "log1p": (FLOATS, (-0.9, 9)),
    "sqrt": (FLOATS, (0, 9)),
    "rsqrt": (FLOATS, (0.1, 9)),
    "reciprocal": (FLOATS, (0.5, 4)),
    "sin": (FLOATS, (-6, 6)),
    "cos": (FLOATS, (-6, 6)),
    "tanh": (FLOATS, (-5, 5)),
    "sigmoid": (FLOATS, (-30, 30)),
    "erf": ([np.float32, np.float64], (-3, 3)),
    "floor": (FLOATS, (-3, 3)),
    "ceil": (FLOATS, (-3, 3)),
    "round": (FLOATS, (-3, 3)),
    "isnan": (FLOATS, (-3, 3)),
    "isinf": (FLOATS, (-3, 3)),
    "isfinite": (FLOATS, (-3, 3)),
    "logical_not": (ALL, (-2, 2)),
}

BINARY = {
    "add": ALL, "multiply": ALL, "maximum": ALL, "minimum": ALL,
    "subtract": FLOATS + INTS, "divide": FLOATS + [np.int64, np.int32],
    "floor_divide": [np.float32, np.float64, np.int64, np.int32],
    "remainder": [np.float32, np.float64, np.int64, np.int32],
    "power": [np.float32, np.float64],
    "equal": ALL, "not_equal": ALL, "less": ALL, "less_equal": ALL, "greater": ALL,
    "greater_equal": ALL, "logical_and": ALL, "logical_or": ALL, "logical_xor": ALL,
}


def _with_specials(a):
    """Puts nan, inf and -inf into a float array (where it has room)."""
    if a.dtype.kind == "f" and a.size >= 4:
        flat = a.reshape(-1)
        flat[:3] = [np.nan, np.inf, -np.inf]
    return a


@needs_gpu
@pytest.mark.parametrize("op", sorted(UNARY))
def test_unary(rng, op):
    dtypes, (lo, hi) = UNARY[op]
    for dtype in dtypes:
        for shape in SHAPES:
            a = random_array(rng, shape, dtype, lo, hi)
            if op in ("isnan", "isinf", "isfinite", "negative", "absolute", "relu", "sign",
                      "floor", "ceil", "exp"):
                a = _with_specials(a)
            want = getattr(cpu, op)(a)
            for layout, host in views(a):
                got = getattr(gpu(), op)(dev_view(layout, host))
                assert_twin(got, want, rtol=1e-3 if dtype == np.float16 else None)


@needs_gpu
@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gelu_forward_and_backward(rng, dtype, approximate):
    for shape in SHAPES:
        x = random_array(rng, shape, dtype, -4, 4)
        g = random_array(rng, shape, dtype, -1, 1)
        assert_twin(gpu().gelu(dev(x), approximate), cpu.gelu(x, approximate))
        assert_twin(gpu().gelu_backward(dev(g), dev(x), approximate),
                    cpu.gelu_backward(g, x, approximate), rtol=1e-5, atol=1e-6)


@needs_gpu
@pytest.mark.parametrize("op", sorted(BINARY))
def test_binary(rng, op):
    for dtype in BINARY[op]:
        for sa, sb in PAIRS:
            lo = 0.5 if op in ("power", "floor_divide", "remainder") else -3
            a = random_array(rng, sa, dtype, lo, 3)
            b = random_array(rng, sb, dtype, lo, 3)
            if op in ("floor_divide", "remainder") and np.dtype(dtype).kind in "iu":
                b = np.where(b == 0, 1, b).astype(dtype)
                a = random_array(rng, sa, dtype, -7, 7)
                b = np.where(random_array(rng, sb, np.bool_), -b, b).astype(dtype)
            want = getattr(cpu, op)(a, b)
            for la, ha in views(a):
                for lb, hb in views(b)[:2]:
                    got = getattr(gpu(), op)(dev_view(la, ha), dev_view(lb, hb))
                    assert_twin(got, want, rtol=2e-3 if dtype == np.float16 else None)


@needs_gpu
@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.bool_, np.float16])
def test_binary_with_python_scalars_keeps_the_array_dtype(rng, dtype):
    a = random_array(rng, (3, 5), dtype, 1, 3)
    for scalar in (2, 0.5, True):
        for op in ("add", "multiply", "maximum", "greater"):
            assert_twin(getattr(gpu(), op)(dev(a), scalar), getattr(cpu, op)(a, scalar))
            assert_twin(getattr(gpu(), op)(scalar, dev(a)), getattr(cpu, op)(scalar, a))


@needs_gpu
def test_maximum_minimum_propagate_nan():
    a = np.array([np.nan, 1.0, 2.0, np.nan], np.float32)
    b = np.array([0.0, np.nan, 1.0, np.nan], np.float32)
    assert_twin(gpu().maximum(dev(a), dev(b)), np.maximum(a, b))
    assert_twin(gpu().minimum(dev(a), dev(b)), np.minimum(a, b))


@needs_gpu
@pytest.mark.parametrize("dtype", ALL)
def test_where_clip_astype(rng, dtype):
    for sa, sb in PAIRS[:8]:
        cond = random_array(rng, sa, np.bool_)
        a = random_array(rng, sa, dtype)
        b = random_array(rng, sb, dtype)
        assert_twin(gpu().where(dev(cond), dev(a), dev(b)), cpu.where(cond, a, b))
    a = random_array(rng, (4, 6), dtype)
    if dtype != np.bool_:
        assert_twin(gpu().clip(dev(a), 0, 2), cpu.clip(a, 0, 2))
    for to in ALL:
        assert_twin(gpu().astype(dev(a), to), cpu.astype(a, to))


@needs_gpu
def test_add_in_place_into_a_view(rng):
    a = random_array(rng, (4, 6), np.float32)
    d = dev(a)
    gpu().add_(gpu().transpose(d), dev(np.ones(4, np.float32)))
    a.T[...] += 1
    assert_twin(d, a)


# ------------------------------------------------------------------ reductions
REDUCE_AXES = [((), None), ((7,), None), ((7,), 0), ((3, 4), 1), ((3, 4), 0), ((3, 4), None),
               ((2, 3, 5), (0, 2)), ((2, 3, 5), 1), ((4, 2000), 1), ((2000, 3), 0),
               ((3, 0, 2), 2), ((2, 3, 4, 5), (1, 3))]


@needs_gpu
@pytest.mark.parametrize("op", ["sum", "mean", "prod", "amax", "amin", "any", "all", "var"])
def test_reductions(rng, op):
    dtypes = ALL if op not in ("var",) else FLOATS + [np.int64, np.int32]
    for dtype in dtypes:
        if op in ("sum", "mean", "prod", "var") and dtype in (np.float16, np.uint8, np.bool_):
            continue  # numpy accumulates these in their own (narrow) type; see the next test
        for shape, axis in REDUCE_AXES:
            a = random_array(rng, shape, dtype, 0.5 if op == "prod" else -3,
                             1.5 if op == "prod" else 3)
            for keepdims in (False, True):
                kw = {"ddof": 1} if op == "var" else {}
                if op in ("amax", "amin") and 0 in shape:
                    continue
                want = getattr(cpu, op)(a, axis=axis, keepdims=keepdims, **kw)
                for layout, host in views(a):
                    got = getattr(gpu(), op)(dev_view(layout, host), axis=axis,
                                             keepdims=keepdims, **kw)
                    assert_twin(got, want, rtol=1e-4 if op in ("var", "prod") else None,
                                atol=1e-4 if dtype == np.float32 else None)


@needs_gpu
def test_narrow_sums_accumulate_wider():
    """float16 sums accumulate in float32 (numpy's pairwise float16 sum is the less
    accurate one); uint8/bool sums give int64 (numpy: uint64 / int64)."""
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 1, (8, 3000)).astype(np.float16)
    got = gpu().to_host(gpu().sum(dev(a), axis=1))
    assert got.dtype == np.float16
    np.testing.assert_allclose(got, a.astype(np.float64).sum(axis=1), rtol=2e-3)
    b = rng.integers(0, 255, (5, 7)).astype(np.uint8)
    assert_twin(gpu().sum(dev(b), axis=0), b.sum(axis=0).astype(np.int64))


@needs_gpu
@pytest.mark.parametrize("op", ["argmax", "argmin"])
@pytest.mark.parametrize("dtype", ALL)
def test_arg_reductions_first_occurrence_and_nan(rng, op, dtype):
    for shape, axis in [((7,), None), ((3, 4), 1), ((3, 4), 0), ((4, 2000), 1),
                        ((2, 3, 5), None), ((2, 3, 5), 2)]:
        a = random_array(rng, shape, dtype, -2, 2)  # few distinct values: ties
        for keepdims in (False, True):
            want = getattr(cpu, op)(a, axis=axis, keepdims=keepdims)
            for layout, host in views(a):
                got = getattr(gpu(), op)(dev_view(layout, host), axis=axis, keepdims=keepdims)
                assert_twin(got, want)
    if np.dtype(dtype).kind == "f":
        a = np.array([[1, np.nan, 3, np.nan], [2, 2, 1, 0]], dtype)
        assert_twin(getattr(gpu(), op)(dev(a), axis=1), getattr(cpu, op)(a, axis=1))
        assert_twin(gpu().amax(dev(a), axis=1), cpu.amax(a, axis=1))


@needs_gpu
def test_empty_reductions():
    a = np.zeros((3, 0), np.float32)
    assert_twin(gpu().sum(dev(a), axis=1), cpu.sum(a, axis=1))
    assert_twin(gpu().mean(dev(a), axis=1), cpu.mean(a, axis=1))
    with pytest.raises(ValueError, match="zero-size"):
        gpu().amax(dev(a), axis=1)


# ------------------------------------------------------------------ views and shapes
@needs_gpu
def test_reshape_transpose_views_and_copies(rng):
    be = gpu()
    a = random_array(rng, (4, 6, 5), np.float32)
    d = dev(a)
    for shape in [(24, 5), (4, 30), (-1,), (2, 2, 6, 5), (120, 1)]:
        r = be.reshape(d, shape)
        assert r.shares_storage(d)
        assert_twin(r, a.reshape(shape))
    t = be.transpose(d, (2, 0, 1))
    assert_twin(t, a.transpose(2, 0, 1))
    assert_twin(be.reshape(t, (5, 24)), a.transpose(2, 0, 1).reshape(5, 24))  # needs a copy
    assert_twin(be.view(t, (5, 4, 6)), a.transpose(2, 0, 1).reshape(5, 4, 6))
    with pytest.raises(ValueError, match="view"):
        be.view(t, (5, 24))
    assert_twin(be.moveaxis(d, 0, -1), np.moveaxis(a, 0, -1))
    assert_twin(be.swap_last(d), np.swapaxes(a, -1, -2))
    assert_twin(be.broadcast_to(dev(a[:1]), (3, 6, 5)), np.broadcast_to(a[:1], (3, 6, 5)))
    assert_twin(be.expand_dims(d, (0, 2)), np.expand_dims(a, (0, 2)))
    assert_twin(be.squeeze(dev(a[:, :1])), np.squeeze(a[:, :1]))
    assert_twin(be.ascontiguous(t), np.ascontiguousarray(a.transpose(2, 0, 1)))
    assert be.is_contiguous(be.ascontiguous(t)) and not be.is_contiguous(t)


@needs_gpu
@pytest.mark.parametrize("index", [0, -1, (1, 2), (slice(1, 3),), (slice(None, None, 2), 1),
                                   (Ellipsis, 3), (None, 1, slice(0, 4, 3)),
                                   (slice(5, 2),), (2, Ellipsis, None)])
def test_basic_indexing(rng, index):
    a = random_array(rng, (4, 6, 5), np.float64)
    d = dev(a)
    assert_twin(gpu().getitem(d, index), cpu.getitem(a, index))
    gpu().setitem(d, index, 9.0)
    cpu.setitem(a, index, 9.0)
    assert_twin(d, a)


@needs_gpu
def test_concatenate_stack(rng):
    xs = [random_array(rng, (2, k, 3), np.float32) for k in (1, 4, 2)]
    assert_twin(gpu().concatenate([dev(x) for x in xs], axis=1), np.concatenate(xs, axis=1))
    ys = [random_array(rng, (3, 2), np.int64) for _ in range(3)]
    for axis in (0, 1, -1):
        assert_twin(gpu().stack([dev(y) for y in ys], axis=axis), np.stack(ys, axis=axis))
