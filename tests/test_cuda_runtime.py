"""CUDA runtime: DeviceArray, host<->device copies, device copies, the caching
allocator, errors, Tensor.to / Module.to and autograd across devices.

The GPU tests are marked `cuda` and skip (with the reason) where no GPU is
visible; the CPU-only behaviour at the end runs everywhere.
"""
import gc

import numpy as np
import pytest

import nnforge as nf
from cuda_support import assert_twin, dev, gpu, needs_gpu

DTYPES = [np.float32, np.float64, np.float16, np.int64, np.int32, np.uint8, np.bool_]
MiB = 1 << 20


# ------------------------------------------------------------------ DeviceArray, copies
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(), (0,), (1,), (7,), (3, 5), (2, 0, 4), (2, 3, 4, 5)])
@needs_gpu
def test_round_trip_every_dtype(rng, shape, dtype):
    a = (rng.standard_normal(shape) * 5).astype(dtype)
    d = dev(a)
    assert d.shape == a.shape and d.dtype == a.dtype and d.ndim == a.ndim
    assert d.size == a.size and d.nbytes == a.nbytes and d.itemsize == a.itemsize
    assert d.strides == a.strides and d.is_contiguous()
    np.testing.assert_array_equal(gpu().to_host(d), a)




@needs_gpu
@pytest.mark.parametrize("nbytes", [MiB - 4, MiB + 4, 4 * MiB, 9 * MiB + 12])
def test_large_copies_go_through_pinned_staging(nbytes):
    """Above 1 MiB copies run through two 4 MiB pinned buffers: sizes around the
    threshold and across several chunks (with a partial last one)."""
    a = np.arange(nbytes // 4, dtype=np.float32)
    np.testing.assert_array_equal(gpu().to_host(dev(a)), a)


@needs_gpu
def test_non_contiguous_host_input_and_views_keep_storage_alive(rng):
    be = gpu()
    a = rng.standard_normal((6, 8)).astype(np.float32)
    d = be.from_host(a.T)  # a non-contiguous numpy array
    np.testing.assert_array_equal(be.to_host(d), a.T)
    base = dev(a)
    view = be.getitem(be.transpose(base), (slice(1, 7, 2),))
    assert not view.is_contiguous() and view.shares_storage(base)
    del base
    gc.collect()
    np.testing.assert_array_equal(be.to_host(view), a.T[1:7:2])


@needs_gpu
def test_as_strided_checks_bounds():
    d = dev(np.zeros(10, np.float32))
    assert d.as_strided([2, 5], [5, 1], 0).shape == (2, 5)
    with pytest.raises(IndexError, match="as_strided"):
        d.as_strided([3, 5], [5, 1], 0)
    with pytest.raises(ValueError, match="negative"):
        d.as_strided([2], [-1], 5)


@needs_gpu
@pytest.mark.parametrize("src_dtype", DTYPES)
@pytest.mark.parametrize("dst_dtype", [np.float32, np.int64, np.float16, np.bool_])
def test_copy_broadcasts_and_converts(rng, src_dtype, dst_dtype):
    be = gpu()
    src = (rng.standard_normal((3, 1)) * 4).astype(src_dtype)
    dst = be.zeros((2, 3, 5), dst_dtype)
    be.copyto(dst, dev(src))
    want = np.zeros((2, 3, 5), dst_dtype)
    np.copyto(want, src, casting="unsafe")
    assert_twin(dst, want)


@needs_gpu
def test_copy_into_a_strided_view_and_overlapping_copy():
    be = gpu()
    a = np.arange(24, dtype=np.float64).reshape(4, 6)
    d = dev(a)
    be.copyto(be.getitem(d, (slice(None), slice(0, 6, 2))), 7.5)
    a[:, ::2] = 7.5
    assert_twin(d, a)
    be.copyto(be.getitem(d, (slice(1, None),)), be.getitem(d, (slice(0, 3),)))  # overlaps
    a[1:] = a[:3].copy()
    assert_twin(d, a)


@needs_gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.int32, np.float16])
@pytest.mark.parametrize("start,end,step", [(0, 10, 1), (-3, 7, 2), (0.5, 3.0, 0.25), (5, 0, -1)])
def test_arange_full_fill(dtype, start, end, step):
    be = gpu()
    if np.dtype(dtype).kind in "iu" and any(isinstance(v, float) for v in (start, end, step)):
        pytest.skip("float steps with an integer dtype: numpy's own rounding")
    assert_twin(be.arange(start, end, step, dtype), np.arange(start, end, step, dtype=dtype))
    assert_twin(be.full((2, 3), 3, dtype), np.full((2, 3), 3, dtype))
    assert_twin(be.zeros((0, 4), dtype), np.zeros((0, 4), dtype))
    big = 2 ** 53 + 1
    assert gpu().to_host(be.full((), big, np.int64)) == big  # int64 fills are exact


# ------------------------------------------------------------------ allocator
@pytest.mark.skipif(not nf.cuda.is_built(), reason="nnforge was built without CUDA")
def test_allocator_size_classes():
    """Below 1 MiB: multiples of 512 B; from 1 MiB: multiples of 2 MiB (no GPU needed)."""
    rs = nf._C.cuda.round_size
    assert [rs(n) for n in (0, 1, 512, 513, MiB - 1)] == [512, 512, 512, 1024, MiB]
    assert [rs(n) for n in (MiB, 2 * MiB, 2 * MiB + 1, 5 * MiB)] == \
        [2 * MiB, 2 * MiB, 4 * MiB, 6 * MiB]


@needs_gpu
def test_allocator_stats_reuse_and_empty_cache():
    be = gpu()
    nf.cuda.synchronize()
    gc.collect()
    base_alloc = nf.cuda.memory_allocated()
    nf.cuda.reset_peak_memory_stats()
    a = be.empty((3 * MiB // 4,), np.float32)  # 3 MiB -> a 4 MiB block
    assert nf.cuda.memory_allocated() == base_alloc + 4 * MiB
    assert nf.cuda.max_memory_allocated() >= base_alloc + 4 * MiB
    reserved = nf.cuda.memory_reserved()
    assert reserved >= nf.cuda.memory_allocated()
    del a
    assert nf.cuda.memory_allocated() == base_alloc
    assert nf.cuda.memory_reserved() == reserved  # cached, not freed
    b = be.empty((3 * MiB // 4 - 100,), np.float32)  # same size class: reuses the block
    assert nf.cuda.memory_reserved() == reserved
    del b
    nf.cuda.empty_cache()
    assert nf.cuda.memory_reserved() <= reserved - 4 * MiB
    assert nf.cuda.max_memory_allocated() >= base_alloc + 4 * MiB
    nf.cuda.reset_peak_memory_stats()
    assert nf.cuda.max_memory_allocated() == nf.cuda.memory_allocated()


@needs_gpu
def test_out_of_memory_is_a_memory_error_and_the_device_still_works():
    be = gpu()
    with pytest.raises(MemoryError, match=r"out of memory: tried to allocate .* free of"):
        be.empty((1 << 48,), np.float32)  # 1 PiB
    assert_twin(be.add(dev(np.ones(3, np.float32)), 1.0), np.full(3, 2, np.float32))


def _ptr(a):
    return a.__cuda_array_interface__["data"][0]


def _settled_reserved():
    """memory_reserved after dropping garbage and every wholly free cached block."""
    gc.collect()
    nf.cuda.synchronize()
    nf.cuda.empty_cache()
    return nf.cuda.memory_reserved()


@needs_gpu
def test_large_block_is_split_then_merged_back():
    """A cached 256 MiB segment serves 64 MiB and 102 MiB requests without a new
    cudaMalloc (split); once both are freed the pieces merge into one whole
    segment again, which empty_cache can cudaFree. memory_allocated counts the
    rounded requests exactly, not the segment."""
    be = gpu()
    r0 = _settled_reserved()
    a0 = nf.cuda.memory_allocated()
    a = be.empty((256 * MiB // 4,), np.float32)
    assert nf.cuda.memory_reserved() == r0 + 256 * MiB
    assert nf.cuda.memory_allocated() == a0 + 256 * MiB
    del a
    assert nf.cuda.memory_allocated() == a0
    b = be.full((64 * MiB // 4,), 1.0, np.float32)
    c = be.full(((100 * MiB + 4) // 4,), 2.0, np.float32)   # 100 MiB + 4 B -> 102 MiB
    assert nf.cuda.memory_reserved() == r0 + 256 * MiB        # both carved from the segment
    assert nf.cuda.memory_allocated() == a0 + (64 + 102) * MiB
    assert nf.cuda.memory_stats()["cached_blocks"] >= 1       # the 90 MiB left over
    lo, hi = sorted([(_ptr(b), 64 * MiB), (_ptr(c), 102 * MiB)])
    assert lo[0] + lo[1] <= hi[0]                              # disjoint
    assert np.all(gpu().to_host(b) == 1.0) and np.all(gpu().to_host(c) == 2.0)
    del b, c
    assert nf.cuda.memory_allocated() == a0
    nf.cuda.empty_cache()
    assert nf.cuda.memory_reserved() == r0                     # merged whole, then freed


@needs_gpu
def test_split_blocks_never_overlap_under_random_reuse():
    """Random large allocations and frees (1..24 MiB, each array filled with its
    own value): every live array keeps its value through the splits and merges
    around it, allocated stays the sum of the rounded sizes, and everything
    merges back so that empty_cache returns to the starting reservation."""
    be = gpu()
    rng = np.random.default_rng(0)
    r0 = _settled_reserved()
    a0 = nf.cuda.memory_allocated()
    live = {}   # value -> (array, rounded bytes)
    for step in range(300):
        if live and (rng.random() < 0.45 or len(live) > 40):
            key = list(live)[rng.integers(len(live))]
            del live[key]
        else:
            n = int(rng.integers(MiB // 4, 24 * MiB // 4))
            live[float(step)] = (be.full((n,), float(step), np.float32),
                                 nf._C.cuda.round_size(4 * n))
        assert nf.cuda.memory_allocated() == a0 + sum(r for _, r in live.values())
        if step % 25 == 0:
            for value, (arr, _) in live.items():
                assert np.all(gpu().to_host(arr) == value), (step, value)
    spans = sorted((_ptr(arr), r) for arr, r in live.values())
    assert all(p + r <= q for (p, r), (q, _) in zip(spans, spans[1:]))
    for value, (arr, _) in live.items():
        assert np.all(gpu().to_host(arr) == value)
    live.clear()
    assert nf.cuda.memory_allocated() == a0
    nf.cuda.empty_cache()
    assert nf.cuda.memory_reserved() == r0


@needs_gpu
def test_device_count_and_launches_from_many_threads():
    """The device count is asked of the driver once per process and cached; it
    must come out the same from threads racing to ask first, and kernels
    launched from several threads at once (each checking its device index
    against the cached count) all compute right."""
    from concurrent.futures import ThreadPoolExecutor
    n = nf.cuda.device_count()
    x = np.arange(1000, dtype=np.float32)

    def work(i):
        out = gpu().add(dev(x), float(i))
        return nf.cuda.device_count(), gpu().to_host(out)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, range(32)))
    for i, (count, got) in enumerate(results):
        assert count == n
        np.testing.assert_array_equal(got, x + i)
    with pytest.raises(IndexError, match=rf"device index {n} is out of range \({n} CUDA"):
        nf._C.cuda.DeviceArray.empty([2], np.float32, n)


# ------------------------------------------------------------------ errors, device API
@needs_gpu
def test_argument_errors_name_the_op():
    c = nf._C.cuda
    f = dev(np.ones(3, np.float32))
    with pytest.raises(ValueError, match="unknown op 'nope'"):
        c.unary("nope", f)
    with pytest.raises(ValueError, match=r"add: operands have dtypes float32 and float64"):
        c.binary("add", f, dev(np.ones(3)))
    with pytest.raises(ValueError, match=r"not broadcastable"):
        c.binary("add", f, dev(np.ones(4, np.float32)))
    with pytest.raises(ValueError, match=r"exp: expected a floating-point array, got int64"):
        c.unary("exp", dev(np.ones(3, np.int64)))
    with pytest.raises(TypeError, match="complex128"):
        gpu().from_host(np.ones(2, np.complex128))
    with pytest.raises(IndexError, match="out of range"):
        c.DeviceArray.empty([2], np.float32, nf.cuda.device_count())


@needs_gpu
def test_device_api():
    assert nf.cuda.is_available() and nf.cuda.device_count() >= 1
    assert isinstance(nf.cuda.get_device_name(0), str) and nf.cuda.get_device_name()
    nf.cuda.set_device(0)
    assert nf.cuda.current_device() == 0
    nf.cuda.synchronize()
    nf.cuda.manual_seed(3)
    assert nf.cuda.initial_seed() == 3
    d = dev(np.ones((2, 3), np.float32))
    iface = d.__cuda_array_interface__
    assert iface["shape"] == (2, 3) and iface["typestr"] == "<f4" and iface["data"][0] != 0


# ------------------------------------------------------------------ tensors and modules
@needs_gpu
def test_tensor_to_cuda_and_back(rng):
    x = nf.tensor(rng.standard_normal((3, 4)).astype(np.float32))
    y = x.to("cuda")
    assert y.device == nf.device("cuda:0") and y.is_cuda and y.shape == x.shape
    assert y.stride() == (4, 1) and y.dtype == nf.float32
    with pytest.raises(TypeError, match=r"can't convert cuda.* to numpy. Use Tensor.cpu\(\)"):
        y.numpy()
    np.testing.assert_array_equal(y.cpu().numpy(), x.numpy())
    assert y.to("cuda") is y
    assert "device='cuda" in repr(y)
    assert y.sum().item() == pytest.approx(float(x.numpy().sum()), rel=1e-5)
    z = x.cuda().to(nf.float64)
    assert z.dtype == nf.float64 and z.device.type == "cuda"


@needs_gpu
def test_autograd_through_to_device(rng):
    a = rng.standard_normal((4, 3))
    x = nf.tensor(a, requires_grad=True)
    y = x.to("cuda")
    loss = (y * y).sum() + (y * 3.0).mean()
    assert loss.device.type == "cuda"
    loss.backward()
    assert x.grad.device.type == "cpu"
    np.testing.assert_allclose(x.grad.numpy(), 2 * a + 3.0 / a.size, rtol=1e-12)


@needs_gpu
def test_module_to_moves_parameters_and_buffers():
    m = nf.nn.Sequential(nf.nn.Linear(3, 4), nf.nn.BatchNorm1d(4))
    params = list(m.parameters())
    state = {k: v.numpy().copy() for k, v in m.state_dict().items()}
    m.to("cuda")
    assert [p for p in m.parameters()] == params  # same Parameter objects
    for name, t in m.state_dict().items():
        assert t.device.type == "cuda", name
        np.testing.assert_array_equal(t.cpu().numpy(), state[name])
    m.cpu()
    assert all(p.device.type == "cpu" for p in m.parameters())


# ------------------------------------------------------------------ without a GPU
@pytest.mark.skipif(nf.cuda.is_available(), reason="a GPU is visible")
def test_cpu_only_behaviour():
    """Without a CUDA build or a visible GPU: nothing pretends to work."""
    assert nf.cuda.is_available() is False
    assert nf.cuda.memory_allocated() == 0 and nf.cuda.memory_reserved() == 0
    nf.cuda.empty_cache()  # no-op
    nf.cuda.manual_seed(1)  # no-op, as in PyTorch
    reason = "built without CUDA" if not nf.cuda.is_built() else "no CUDA device visible"
    x = nf.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=f"device 'cuda': .*{reason}"):
        x.to("cuda")
    with pytest.raises(RuntimeError, match=reason):
        x.cuda()
    with pytest.raises(RuntimeError, match=reason):
        nf.nn.Linear(2, 2).to("cuda")
    with pytest.raises(RuntimeError, match=reason):
        nf.backend.get_backend("cuda")
    with pytest.raises(RuntimeError, match=reason):
        nf.cuda.synchronize()
    assert x.to("cpu") is x


def test_cuda_backend_module_imports_and_has_every_cpu_function():
    """The module imports in every build; each public CPU-backend function has a
    CUDA version written in one of the backend/cuda_*.py files, taking the same
    parameters; the stand-in for a missing one raises NotImplementedError naming it."""
    import inspect

    import nnforge.backend.cpu as cpu_be
    import nnforge.backend.cuda as cuda_be
    assert cuda_be.name == "cuda"
    assert cuda_be.NOT_IMPLEMENTED == ()
    for name, fn in vars(cpu_be).items():
        if not callable(fn) or name.startswith("_") or isinstance(fn, type) \
                or getattr(fn, "__module__", "") == "builtins":
            continue
        ours = getattr(cuda_be, name)
        assert ours.__module__.startswith("nnforge.backend.cuda"), (name, ours.__module__)
        want = list(inspect.signature(fn).parameters)
        got = list(inspect.signature(ours).parameters)
        # Positional use only for numpy's own functions and the CPU's numpy wrappers.
        if fn.__module__.startswith("nnforge.") and want != ["args", "kwargs"]:
            assert got[:len(want)] == want, (name, got, want)  # CUDA may add device=
    stand_in = cuda_be._not_yet("conv9d")
    with pytest.raises(NotImplementedError, match=r"conv9d: .*CUDA backend \(issue 8"):
        stand_in(None, None)
    if not nf.cuda.is_built():
        with pytest.raises(RuntimeError, match="built without CUDA"):
            cuda_be.zeros((2,), np.float32)


@needs_gpu
def test_leaf_gradient_adopted_without_copy_only_when_nothing_else_sees_it():
    """The engine takes a leaf's first gradient as .grad without a copy only when no
    other DeviceArray shares its memory: here y.grad (retained) and x.grad would be
    views of one upstream gradient, so x.grad must be its own copy."""
    x = nf.ones(2, 3, device="cuda", requires_grad=True)
    y = x.reshape(6)
    y.retain_grad()
    (y * nf.arange(6.0, device="cuda")).sum().backward()
    before = y.grad.numpy(force=True).copy()
    x.grad.add_(100.0)  # must not write through to y.grad
    np.testing.assert_array_equal(y.grad.numpy(force=True), before)
    np.testing.assert_array_equal(x.grad.numpy(force=True),
                                  np.arange(6.0, dtype=np.float32).reshape(2, 3) + 100.0)
    # A gradient nothing else holds is adopted: one whole, contiguous storage.
    z = nf.ones(4, device="cuda", requires_grad=True)
    (z * 3.0).sum().backward()
    assert z.grad.data.storage_use_count == 1
    np.testing.assert_array_equal(z.grad.numpy(force=True), np.full(4, 3.0, np.float32))
