"""CUDA indexing family (csrc/cuda/indexing.cu, scan.cu through
backend/cuda_index.py and cuda_shape.py's getitem/setitem) against the CPU
twin (numpy): advanced getitem / setitem / index_add with integer arrays
(host and device, negative, repeated, broadcast, separated), boolean masks,
negative slice steps, strided bases; take, take_along_axis, put_along_axis,
gather, scatter_add (float32/float64/int64/float16); nonzero, cumsum,
cumprod (every axis, lines shorter and longer than a block, bool/int
inputs), flip, tile, pad (every mode), eye, linspace; IndexError for
out-of-range indices; the deterministic embedding backward; and Tensor-level
nn.Embedding, tensor/mask indexing, gather/scatter_add, cumsum on cuda vs
cpu. Marked `cuda`; skipped without a GPU."""
import numpy as np
import pytest

import nnforge as nf
from cuda_support import assert_twin, cpu, dev, dev_view, gpu, needs_gpu, views

DTYPES = ["float32", "float64", "int64", "bool"]


def _rand(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype in ("int64", "int32"):
        return rng.integers(-5, 6, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def _on(k, where):
    """An index tuple with its numpy arrays left on the host or moved to the device."""
    return tuple(dev(x) if where == "device" and isinstance(x, np.ndarray) else x for x in k)


A = _rand((4, 5, 6), "float32")
INDICES = [
    (np.array([0, 2, -1]),),
    (slice(None), np.array([[1, 1], [0, -5]])),
    (Ellipsis, np.array([5, 0, 5])),
    (np.array([0, 3]), slice(1, 4), np.array([1, 2])),        # separated: broadcast dims first
    (np.array([0, 3]), np.array([1, 2])),
    (1, slice(None), np.array([2, 2])),
    (np.array([[1], [2]]), None, np.array([1, 2, 3])),
    (A[:, :, 0] > 0,),                                          # 2-D mask
    (slice(None), A[0] > 0),
    (A > 0.5,),                                                 # full mask
    (slice(None), np.array([True, False, True, False, True])),
    (slice(None, None, -1), np.array([1])),
    (slice(None, None, -2),),                                   # negative step, basic
    (1, slice(4, 0, -2), slice(None, None, -1)),
    (np.array([], np.int64),),                                  # empty result
    (np.array([1, 2]), Ellipsis, None),
    (2, np.array(3)),
    (np.zeros(4, bool),),                                       # mask selecting nothing
]


@needs_gpu
@pytest.mark.parametrize("where", ["host", "device"])
@pytest.mark.parametrize("k", range(len(INDICES)))
def test_getitem_setitem_index_add(k, where):
    index = INDICES[k]
    a = A
    assert_twin(gpu().getitem(dev(a), _on(index, where)), cpu.getitem(a, index))
    shape = a[index].shape
    v = _rand(shape, "float32", seed=1)
    want = a.copy()
    want[index] = v  # these indices name each element once: numpy's result is the only one
    got = dev(a)
    gpu().setitem(got, _on(index, where), dev(v))
    assert_twin(got, want)
    want = a.copy()
    np.add.at(want, index, v)
    got = dev(a)
    gpu().index_add(got, _on(index, where), dev(v))
    assert_twin(got, want)


@needs_gpu
@pytest.mark.parametrize("k", [0, 1, 3, 7, 12])
def test_getitem_strided_base(k):
    index = INDICES[k]
    base = gpu().transpose(dev(np.ascontiguousarray(A.transpose(2, 1, 0))), (2, 1, 0))
    assert not base.is_contiguous()
    assert_twin(gpu().getitem(base, _on(index, "device")), A[index])


@needs_gpu
@pytest.mark.parametrize("dtype", DTYPES + ["float16"])
def test_getitem_setitem_dtypes(dtype):
    a = _rand((7, 3), dtype)
    idx = np.array([6, 0, -1, 3])
    assert_twin(gpu().getitem(dev(a), (dev(idx),)), a[idx])
    want = a.copy()
    want[idx[:3]] = a[0]
    got = dev(a)
    gpu().setitem(got, (dev(idx[:3]),), dev(a[0]))
    assert_twin(got, want)
    got = dev(a)
    gpu().setitem(got, (dev(a[:, 0] != 0),), 1)  # scalar value through a mask
    want = a.copy()
    want[a[:, 0] != 0] = 1
    assert_twin(got, want)


@needs_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "float16"])
@pytest.mark.parametrize("where", ["host", "device"])
def test_index_add_repeated(dtype, where):
    """Repeated indices accumulate (numpy's add.at): the host-sorted deterministic path
    (one index array in front) and the atomic path (index in the middle)."""
    rng = np.random.default_rng(3)
    dst = _rand((9, 4), dtype)
    idx = rng.integers(-9, 9, size=300)
    src = _rand((300, 4), dtype, seed=4)
    want = dst.copy()
    np.add.at(want, idx, src)
    got = dev(dst)
    gpu().index_add(got, _on((idx,), where), dev(src))
    tol = {"float16": (1e-2, 5e-2), "float32": (1e-5, 1e-4)}.get(dtype, (None, None))
    assert_twin(got, want, *tol)
    want = dst.T.copy()
    np.add.at(want, (slice(None), idx), src.T)
    got = dev(dst.T.copy())
    gpu().index_add(got, _on((slice(None), idx), where), dev(np.ascontiguousarray(src.T)))
    assert_twin(got, want, *tol)


@needs_gpu
def test_embedding_backward_is_deterministic():
    rng = np.random.default_rng(5)
    idx = rng.integers(0, 50, size=20000)
    g = rng.standard_normal((20000, 64)).astype(np.float32)
    outs = []
    for _ in range(3):
        dw = gpu().zeros((50, 64), "float32")
        gpu().index_add(dw, dev(idx), dev(g))
        outs.append(gpu().to_host(dw))
    want = np.zeros((50, 64), np.float32)
    np.add.at(want, idx, g)
    np.testing.assert_allclose(outs[0], want, rtol=1e-4, atol=1e-3)
    assert np.array_equal(outs[0], outs[1]) and np.array_equal(outs[0], outs[2])


@needs_gpu
@pytest.mark.parametrize("where", ["host", "device"])
def test_out_of_range_raises_index_error(where):
    a = dev(A)
    for index in [(np.array([4]),), (np.array([-5]),), (slice(None), np.array([0, 5])),
                  (np.array([0, 1]), np.array([0, 1, 2])), (np.ones(3, bool),)]:
        with pytest.raises(IndexError):
            gpu().getitem(a, _on(index, where))
        with pytest.raises(IndexError):
            gpu().setitem(a, _on(index, where), 0.0)
    before = gpu().to_host(a)
    with pytest.raises(IndexError, match="index 9 is out of bounds for axis 0 with size 4"):
        gpu().index_add(a, _on((np.array([0, 9, 1]),), where), 1.0)
    np.testing.assert_array_equal(gpu().to_host(a), before)  # nothing was written
    with pytest.raises(ValueError):
        gpu().setitem(a, (dev(np.array([0, 1])),), dev(np.ones(3, np.float32)))


# ---------------------------------------------------------------- along an axis
@needs_gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_take_take_along_axis_gather(dtype, axis):
    rng = np.random.default_rng(6)
    x = _rand((3, 7), dtype)
    n = x.shape[axis]
    ishape = list(x.shape)
    ishape[axis] = 5
    idx = rng.integers(-n, n, size=ishape)
    for name, v in views(x):
        xd = dev_view(name, v)
        assert_twin(gpu().take_along_axis(xd, dev(idx), axis), cpu.take_along_axis(v, idx, axis))
        assert_twin(gpu().take_along_axis(xd, idx, axis), cpu.take_along_axis(v, idx, axis))
        one = rng.integers(0, n, size=[5 if d == axis % 2 else 1 for d in range(2)])
        assert_twin(gpu().take_along_axis(xd, dev(one), axis), cpu.take_along_axis(v, one, axis))
        assert_twin(gpu().gather(xd, axis, dev(idx)), cpu.gather(v, axis % 2, idx))
        small = [2, 2]
        small[axis % 2] = 6
        sidx = rng.integers(0, n, size=small)
        assert_twin(gpu().gather(xd, axis, dev(sidx)), cpu.gather(v, axis % 2, sidx))
        t = rng.integers(-n, n, size=(2, 3))
        for ax in (axis, None):
            assert_twin(gpu().take(xd, dev(t), ax), cpu.take(v, t, ax))
            assert_twin(gpu().take(xd, t, ax), cpu.take(v, t, ax))
        assert_twin(gpu().take(xd, np.array([], np.int64), axis),
                    cpu.take(v, np.array([], np.int64), axis))
        flags = np.array([True, False, True])  # numpy.take: 1, 0, 1 (not a mask)
        assert_twin(gpu().take(xd, flags, axis), cpu.take(v, flags, axis))
        assert_twin(gpu().take(xd, dev(flags), axis), cpu.take(v, flags, axis))


@needs_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "float16"])
@pytest.mark.parametrize("axis", [0, 1])
def test_scatter_add_put_along_axis(dtype, axis):
    rng = np.random.default_rng(7)
    x = _rand((5, 6), dtype)
    n = x.shape[axis]
    shape = [3, 3]
    shape[axis] = 8  # more indices than rows: repeats
    idx = rng.integers(-n, n, size=shape)
    src = _rand(shape, dtype, seed=8)
    want = x.copy()
    cpu.scatter_add(want, axis, idx, src)
    got = dev(x)
    gpu().scatter_add(got, axis, dev(idx), dev(src))
    tol = (1e-2, 2e-2) if dtype == "float16" else (None, None)
    assert_twin(got, want, *tol)
    uniq = np.take(np.argsort(rng.random(x.shape), axis=axis), range(3), axis=axis)
    vals = _rand(uniq.shape, dtype, seed=9)
    want = x.copy()
    cpu.put_along_axis(want, uniq, vals, axis)
    got = dev(x)
    gpu().put_along_axis(got, dev(uniq), dev(vals), axis)
    assert_twin(got, want)
    with pytest.raises(IndexError):
        gpu().scatter_add(dev(x), axis, dev(np.full(shape, n)), dev(src))


# ---------------------------------------------------------------- nonzero, scans, flip
@needs_gpu
@pytest.mark.parametrize("dtype", DTYPES + ["float16"])
@pytest.mark.parametrize("shape", [(1,), (7,), (5000,), (3, 70, 5), (300, 41), (0, 3)])
def test_nonzero(shape, dtype):
    x = _rand(shape, dtype)
    if dtype.startswith("float"):
        x[x < 0.3] = 0
    for name, v in views(x):
        got = gpu().nonzero(dev_view(name, v))
        want = cpu.nonzero(v)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert_twin(g, w.astype(np.int64))
    with pytest.raises(ValueError):
        gpu().nonzero(dev(np.array(1.0)))


@needs_gpu
@pytest.mark.parametrize("dtype", DTYPES + ["int32"])
@pytest.mark.parametrize("shape", [(1,), (7,), (300,), (5000,), (3, 70, 5), (2, 1000, 3), (40, 3)])
def test_cumsum_cumprod(shape, dtype):
    x = _rand(shape, dtype)
    if dtype.startswith("float"):
        x = np.clip(x, -1.05, 1.05).astype(dtype)  # cumprod stays finite
    for axis in list(range(-1, len(shape))) + [None]:
        for name, v in views(x):
            xd = dev_view(name, v)
            # float32 sums of thousands of terms: a tree order vs numpy's sequential one
            rtol, atol = (1e-4, 1e-3) if dtype == "float32" else (None, None)
            assert_twin(gpu().cumsum(xd, axis), cpu.cumsum(v, axis), rtol, atol)
            assert_twin(gpu().cumprod(xd, axis), cpu.cumprod(v, axis), rtol, atol)


@needs_gpu
def test_cumsum_reduced_floats_and_edges():
    x = _rand((4, 300), "float32")
    got = gpu().cumsum(nf._C.cuda.astype(dev(x), "float16"), 1)
    assert got.dtype_name == "float16"
    np.testing.assert_allclose(gpu().to_host(got), np.cumsum(x.astype(np.float16).astype(np.float32), 1),
                               rtol=1e-2, atol=5e-2)
    assert_twin(gpu().cumsum(dev(np.array(3.0)), 0), cpu.cumsum(np.array(3.0), 0))
    assert_twin(gpu().cumsum(dev(np.zeros((0, 4))), 1), cpu.cumsum(np.zeros((0, 4)), 1))


@needs_gpu
@pytest.mark.parametrize("dtype", DTYPES + ["float16"])
def test_flip(dtype):
    x = _rand((3, 4, 5), dtype)
    for name, v in views(x):
        xd = dev_view(name, v)
        for axis in [0, 1, 2, -1, (0, 2), (0, 1, 2), None]:
            assert_twin(gpu().flip(xd, axis), cpu.flip(v, axis))
    assert_twin(gpu().flip(dev(np.zeros((0, 3))), 0), np.zeros((0, 3)))


# ---------------------------------------------------------------- composed
@needs_gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_tile_pad_eye_linspace(dtype):
    x = _rand((2, 3), dtype)
    for reps in [2, (2, 1), (1, 3, 2), (0, 2), (1, 1)]:
        for name, v in views(x):
            assert_twin(gpu().tile(dev_view(name, v), reps), cpu.tile(v, reps))
    y = _rand((3, 4, 5), dtype)
    widths = ((0, 0), (1, 2), (3, 1))
    for mode in ["constant", "reflect", "replicate", "circular"]:
        value = True if dtype == "bool" else 2
        assert_twin(gpu().pad(dev(y), widths, mode, value), cpu.pad(y, widths, mode, value))
    for n, m in [(3, None), (3, 5), (5, 2), (0, 3)]:
        assert_twin(gpu().eye(n, m, dtype), cpu.eye(n, m, dtype))
    for args in [(0, 1, 5), (-2.5, 7, 11), (3, 3, 1), (0, 10, 0), (1, 2, 2), (0, 7, 4)]:
        if dtype != "bool":
            assert_twin(gpu().linspace(*args, dtype), cpu.linspace(*args, dtype))


# ---------------------------------------------------------------- Tensor level
def _tensor_ops(device, seed=0):
    rng = np.random.default_rng(seed)
    w0 = rng.standard_normal((6, 3)).astype(np.float32)
    x0 = rng.standard_normal((3, 4)).astype(np.float32)
    out = {}
    emb = nf.nn.Embedding(6, 3, padding_idx=2).to(device)
    with nf.no_grad():
        emb.weight.copy_(nf.tensor(w0, device=device))
    ids = nf.tensor([[0, 2, 5], [5, 5, 1]], device=device)
    y = emb(ids)
    (y * nf.tensor(rng.standard_normal((2, 3, 3)).astype(np.float32), device=device)).sum().backward()
    out["embedding"] = y.detach().cpu().numpy()
    out["embedding.grad"] = emb.weight.grad.cpu().numpy()
    x = nf.tensor(x0, device=device, requires_grad=True)
    mask = nf.tensor(x0 > 0, device=device)
    s = x[mask].sum() + x[nf.tensor([0, 2, 2, -1], device=device)].sum()
    s = s + (x[:, nf.tensor([1, 1], device=device)] * 2).sum()
    s = s + x[nf.tensor([0, 2], device=device), nf.tensor([3, 3], device=device)].sum()
    g = nf.gather(x, 1, nf.tensor([[0, 0], [1, 0], [2, 2]], device=device))
    s = s + (g * g).sum()
    s = s + nf.scatter_add(x, 0, nf.tensor([[0, 0, 1, 1], [0, 2, 2, 2]], device=device),
                           x * 3).sum()
    s = s + (nf.cumsum(x, 1) * nf.tensor(rng.standard_normal((3, 4)).astype(np.float32),
                                         device=device)).sum()
    s.backward()
    out["sum"] = s.detach().cpu().numpy()
    out["x.grad"] = x.grad.cpu().numpy()
    out["nonzero"] = nf.nonzero(mask).cpu().numpy()
    out["masked_select"] = nf.masked_select(x.detach(), mask).cpu().numpy()
    return out


@needs_gpu
def test_tensor_level_cuda_vs_cpu():
    want, got = _tensor_ops("cpu"), _tensor_ops("cuda")
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-5, err_msg=k)
    assert (want["embedding.grad"][2] == 0).all()  # padding row gets no gradient


@needs_gpu
def test_tensor_cumsum_axes_match_cpu():
    x0 = np.random.default_rng(1).standard_normal((5, 300, 3)).astype(np.float64)
    for dim in range(3):
        xc = nf.tensor(x0, requires_grad=True)
        xg = nf.tensor(x0, device="cuda", requires_grad=True)
        yc, yg = nf.cumsum(xc, dim), nf.cumsum(xg, dim)
        np.testing.assert_allclose(yg.detach().cpu().numpy(), yc.detach().numpy(), rtol=1e-12,
                                   atol=1e-11)
        (yc * yc).sum().backward()
        (yg * yg).sum().backward()
        np.testing.assert_allclose(xg.grad.cpu().numpy(), xc.grad.numpy(), rtol=1e-11, atol=1e-10)


@needs_gpu
def test_put_and_add_with_an_index_that_lives_in_the_destination():
    """x[x] = v reads the whole index before writing (numpy): the index is a view of the
    destination, so the kernel must not read entries another thread already overwrote
    (here they would become out-of-range values and the writes would be skipped)."""
    n = 1 << 16
    perm = np.random.default_rng(11).permutation(n).astype(np.int64)
    vals = np.arange(n, 2 * n, dtype=np.int64)
    want = perm.copy()
    want[perm] = vals
    got = dev(perm)
    gpu().setitem(got, (got,), dev(vals))
    assert_twin(got, want)
    want = perm.copy()
    np.add.at(want, perm, vals)
    got = dev(perm)
    gpu().index_add(got, (got,), dev(vals))
    assert_twin(got, want)
    x2 = perm.reshape(1, n)
    want = x2.copy()
    np.put_along_axis(want, x2, vals.reshape(1, n), axis=1)
    got = dev(x2)
    gpu().put_along_axis(got, got, dev(vals.reshape(1, n)), 1)
    assert_twin(got, want)
    want = x2.copy()
    cpu.scatter_add(want, 1, x2.copy(), vals.reshape(1, n))
    got = dev(x2)
    gpu().scatter_add(got, 1, got, dev(vals.reshape(1, n)))
    assert_twin(got, want)
