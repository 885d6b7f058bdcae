"""CUDA Philox4x32-10 random numbers (csrc/cuda/philox.cu, philox.cuh through
backend/cuda_random.py and nf.cuda's generator state): a numpy Philox written
here from Salmon et al. (2011), checked against Random123's published
known-answer vectors; the device generator against it (the raw stream for
several seeds/offsets, exact uniforms for every dtype, Box-Muller normals,
Bernoulli and scaled dropout masks bit for bit); the stream state (offsets
advance by the draws used, manual_seed rewinds, get/set_rng_state replays);
uniformity and moments of large samples; Tensor-level rand/randn/bernoulli and
dropout / dropout2d on device="cuda" (the gradient mask is the forward mask).
The numpy reference test runs everywhere; the rest is marked `cuda` and
skipped without a GPU."""
import numpy as np
import pytest

import nnforge as nf
import nnforge.nn.functional as F
from cuda_support import dev, gpu, needs_gpu

M32 = np.uint64(0xFFFFFFFF)


# ---------------------------------------------------------------- numpy reference
def philox4x32_10(counter, key):
    """Philox4x32-10 of counters (4 arrays of 32-bit values) under a key (2 values):
    10 rounds of (hi0, lo0) = M0 c0, (hi1, lo1) = M1 c2,
    c = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0), the key bumped by (W0, W1) between."""
    m0, m1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
    w0, w1 = np.uint64(0x9E3779B9), np.uint64(0xBB67AE85)
    c0, c1, c2, c3 = (np.asarray(c, np.uint64) & M32 for c in counter)
    k0, k1 = np.uint64(key[0]) & M32, np.uint64(key[1]) & M32
    for _ in range(10):
        p0, p1 = m0 * c0, m1 * c2  # 32 x 32 -> 64 bits: exact in uint64
        c0, c1, c2, c3 = (p1 >> np.uint64(32)) ^ c1 ^ k0, p1 & M32, \
            (p0 >> np.uint64(32)) ^ c3 ^ k1, p0 & M32
        k0, k1 = (k0 + w0) & M32, (k1 + w1) & M32
    return np.stack([c0, c1, c2, c3], axis=-1)


def stream(n, seed, offset):
    """The first n 32-bit draws of the stream (seed, offset): block b has counter
    (b low, b high, offset low, offset high) and key (seed low, seed high)."""
    blocks = np.arange((n + 3) // 4, dtype=np.uint64)
    off, sd = np.uint64(offset), np.uint64(seed)
    counter = (blocks & M32, blocks >> np.uint64(32), np.full_like(blocks, off & M32),
               np.full_like(blocks, off >> np.uint64(32)))
    return philox4x32_10(counter, (sd & M32, sd >> np.uint64(32))).reshape(-1)[:n]


def ref_uniform(n, dtype, seed, offset):
    if dtype == "float64":
        w = stream(2 * n, seed, offset).reshape(-1, 2)
        m = ((w[:, 0] >> np.uint64(5)) << np.uint64(26)) | (w[:, 1] >> np.uint64(6))
        return m.astype(np.float64) * 2.0 ** -53
    bits = {"float32": 24, "float16": 11, "bfloat16": 8}[dtype]
    w = stream(n, seed, offset)
    return (w >> np.uint64(32 - bits)).astype(np.float64) * 2.0 ** -bits


def ref_normal(n, dtype, seed, offset):
    """Box-Muller in float64 from the kernel's uniforms."""
    if dtype == "float64":
        w = stream(2 * n + 2, seed, offset)[:4 * ((n + 1) // 2)].reshape(-1, 4)
        hi = lambda a, b: ((a >> np.uint64(5)) << np.uint64(26)) | (b >> np.uint64(6))
        u1 = (hi(w[:, 0], w[:, 1]) + np.uint64(1)).astype(np.float64) * 2.0 ** -53
        u2 = hi(w[:, 2], w[:, 3]).astype(np.float64) * 2.0 ** -53
    else:
        w = stream(n + 1, seed, offset)[:2 * ((n + 1) // 2)].reshape(-1, 2)
        u1 = ((w[:, 0] >> np.uint64(8)) + np.uint64(1)).astype(np.float64) * 2.0 ** -24
        u2 = (w[:, 1] >> np.uint64(8)).astype(np.float64) * 2.0 ** -24
    r = np.sqrt(-2.0 * np.log(u1))
    return np.stack([r * np.cos(2 * np.pi * u2), r * np.sin(2 * np.pi * u2)], -1).reshape(-1)[:n]


def draws_used(n, per_element=1):
    return 4 * ((n * per_element + 3) // 4)


# Random123's kat_vectors for philox4x32_10: (counter, key, output).
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


def test_numpy_philox_matches_random123_known_answers():
    for counter, key, want in KAT:
        got = philox4x32_10(tuple([c] for c in counter), key)[0]
        assert [int(v) for v in got] == list(want)


def test_numpy_stream_layout():
    """Block b of the stream is Philox of counter (b, offset) under key seed."""
    seed, offset = 0x0123456789ABCDEF, (1 << 33) + 12
    s = stream(10, seed, offset)
    assert s.shape == (10,)
    b2 = philox4x32_10(([2], [0], [12], [2]), (0x89ABCDEF, 0x01234567))[0]
    np.testing.assert_array_equal(s[8:10], b2[:2])


# ---------------------------------------------------------------- device generator
def _host(a):
    if a.dtype_name == "bfloat16":
        a = nf._C.cuda.astype(a, "float32")
    return gpu().to_host(a)


@needs_gpu
def test_device_philox_known_answers():
    for counter, key, want in KAT:
        assert tuple(nf._C.cuda.philox4x32_10(list(counter), list(key))) == want


@needs_gpu
@pytest.mark.parametrize("seed,offset", [(0, 0), (42, 0), (42, 4), (2**64 - 1, 2**40 + 8),
                                         (123456789, 2**32 - 4)])
@pytest.mark.parametrize("n", [1, 3, 4, 5, 1000, 1_000_003])
def test_raw_stream_matches_numpy(n, seed, offset):
    words, draws = gpu().philox_words(n, seed, offset)
    assert draws == draws_used(n)
    np.testing.assert_array_equal(gpu().to_host(words), stream(n, seed, offset).astype(np.int64))


@needs_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
@pytest.mark.parametrize("shape", [(), (1,), (7,), (3, 5, 11), (1000, 1001)], ids=str)
def test_uniform_exact_and_in_unit_interval(shape, dtype):
    n = int(np.prod(shape))
    out, draws = gpu().philox_uniform(shape, dtype, 7, 40)
    assert out.dtype_name == dtype and tuple(out.shape) == shape
    assert draws == draws_used(n, 2 if dtype == "float64" else 1)
    got = _host(out).reshape(-1).astype(np.float64)
    np.testing.assert_array_equal(got, ref_uniform(n, dtype, 7, 40))
    assert (got >= 0).all() and (got < 1).all()


@needs_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
@pytest.mark.parametrize("n", [1, 2, 3, 5, 4096 + 3])
def test_normal_box_muller_matches_numpy(n, dtype):
    out, draws = gpu().philox_normal((n,), dtype, 99, 8)
    assert draws == draws_used(n, 2 if dtype == "float64" else 1)
    want = ref_normal(n, dtype, 99, 8)
    # float32 math: log/sincospi within a few ulp, times r <= 5.8
    tol = {"float64": (1e-13, 1e-13), "float32": (2e-6, 5e-6),
           "float16": (1e-3, 1e-3), "bfloat16": (8e-3, 8e-3)}[dtype]
    np.testing.assert_allclose(_host(out).astype(np.float64), want, rtol=tol[0], atol=tol[1])


@needs_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
@pytest.mark.parametrize("p_drop", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_dropout_mask_exact(p_drop, dtype):
    n = 10_001
    mask, draws = gpu().philox_dropout_mask((n,), dtype, p_drop, 5, 16)
    assert draws == draws_used(n) and mask.dtype_name == dtype
    keep = stream(n, 5, 16).astype(np.float64) * 2.0 ** -32 < 1.0 - p_drop
    scale = 0.0 if p_drop == 1.0 else 1.0 / (1.0 - p_drop)
    got = _host(mask).astype(np.float64)
    np.testing.assert_array_equal(got != 0, keep)
    np.testing.assert_allclose(got[keep], scale, rtol={"float64": 1e-15, "float32": 1e-7,
                                                       "float16": 1e-3, "bfloat16": 8e-3}[dtype])


@needs_gpu
def test_bernoulli_with_probability_array():
    probs = np.random.default_rng(0).uniform(0, 1, (33, 17))
    for dtype in ("float32", "float64"):
        out, _ = gpu().philox_bernoulli(probs.shape, dtype, 11, 0, probs=dev(probs.astype(dtype)))
        u = stream(probs.size, 11, 0).astype(np.float64) * 2.0 ** -32
        want = (u.reshape(probs.shape) < probs.astype(dtype).astype(np.float64))
        np.testing.assert_array_equal(gpu().to_host(out), want.astype(dtype))
    with pytest.raises(ValueError, match="give exactly one of p and probs"):
        gpu().philox_bernoulli((2,), "float32", 0, 0)
    with pytest.raises(TypeError, match="samples need a floating point dtype"):
        gpu().philox_uniform((2,), "int64", 0, 0)


@needs_gpu
def test_sample_statistics():
    """Moments of 4M samples, 5 standard errors wide, and a 64-bin chi-square."""
    n = 1 << 22
    u = gpu().to_host(gpu().philox_uniform((n,), "float32", 3, 0)[0]).astype(np.float64)
    assert abs(u.mean() - 0.5) < 5 * np.sqrt(1 / 12 / n)
    assert abs(u.var() - 1 / 12) < 5 * np.sqrt(1 / 180 / n)
    counts = np.bincount((u * 64).astype(np.int64), minlength=64)
    chi2 = ((counts - n / 64) ** 2 / (n / 64)).sum()
    assert chi2 < 120  # 63 degrees of freedom: p < 1e-5 above this
    z = gpu().to_host(gpu().philox_normal((n,), "float32", 3, 1 << 30)[0]).astype(np.float64)
    assert abs(z.mean()) < 5 / np.sqrt(n) and abs(z.std() - 1) < 5 / np.sqrt(2 * n)
    assert abs(np.mean(z ** 3)) < 5 * np.sqrt(15 / n)  # no skew
    for p in (0.1, 0.5, 0.8):
        m = gpu().to_host(gpu().philox_dropout_mask((n,), "float32", p, 9, 0)[0])
        kept = (m != 0).mean()
        assert abs(kept - (1 - p)) < 5 * np.sqrt(p * (1 - p) / n)
        assert abs(m.mean() - 1) < 5 * np.sqrt(p / (1 - p) / n)  # inverted dropout keeps E[x]


# ---------------------------------------------------------------- generator state
@needs_gpu
def test_offsets_advance_and_manual_seed_rewinds():
    nf.cuda.manual_seed(1234)
    a = nf.rand(5, device="cuda")
    b = nf.rand(3, device="cuda")
    c = nf.randn(2, dtype=nf.float64, device="cuda")
    np.testing.assert_array_equal(a.cpu().numpy().astype(np.float64),
                                  ref_uniform(5, "float32", 1234, 0))
    np.testing.assert_array_equal(b.cpu().numpy().astype(np.float64),
                                  ref_uniform(3, "float32", 1234, 8))  # 5 draws -> offset 8
    np.testing.assert_allclose(c.cpu().numpy(), ref_normal(2, "float64", 1234, 12), rtol=1e-13)
    assert nf.cuda.get_rng_state().numpy()[8:].view("<u8")[0] == 16
    nf.cuda.manual_seed(1234)
    np.testing.assert_array_equal(nf.rand(5, device="cuda").cpu().numpy(), a.cpu().numpy())
    state = nf.cuda.get_rng_state()
    x = nf.rand(100, device="cuda").cpu().numpy()
    y = nf.rand(100, device="cuda").cpu().numpy()
    assert not np.array_equal(x, y)  # never the same counters twice
    nf.cuda.set_rng_state(state)
    np.testing.assert_array_equal(nf.rand(100, device="cuda").cpu().numpy(), x)
    assert nf.cuda.initial_seed() == 1234


@needs_gpu
def test_tensor_rand_randn_bernoulli_on_device():
    nf.cuda.manual_seed(0)
    r = nf.rand(4, 5, device="cuda", requires_grad=True)
    assert r.device.type == "cuda" and r.requires_grad and r.dtype == nf.float32
    h = nf.randn(6, dtype=nf.float16, device="cuda")
    assert h.dtype == nf.float16 and np.isfinite(h.cpu().numpy()).all()
    probs = nf.tensor([[0.0, 1.0, 0.5]] * 400, device="cuda")
    s = nf.bernoulli(probs).cpu().numpy()
    assert (s[:, 0] == 0).all() and (s[:, 1] == 1).all() and 0.4 < s[:, 2].mean() < 0.6
    # an explicit generator draws on the host from it, as on the CPU
    g1, g2 = nf.Generator().manual_seed(5), nf.Generator().manual_seed(5)
    np.testing.assert_array_equal(nf.rand(7, generator=g1, device="cuda").cpu().numpy(),
                                  nf.rand(7, generator=g2).numpy())


# ---------------------------------------------------------------- dropout
@needs_gpu
@pytest.mark.parametrize("dtype", [nf.float32, nf.float64, nf.float16])
@pytest.mark.parametrize("p", [0.2, 0.5])
def test_dropout_forward_backward_share_the_mask(p, dtype):
    nf.cuda.manual_seed(77)
    x0 = np.random.default_rng(0).uniform(1, 2, (64, 257))
    x = nf.tensor(x0, dtype=dtype, device="cuda", requires_grad=True)
    y = F.dropout(x, p)
    g = np.random.default_rng(1).uniform(1, 2, x0.shape)
    y.backward(nf.tensor(g, dtype=dtype, device="cuda"))
    yh, gh = y.detach().cpu().numpy().astype(np.float64), x.grad.cpu().numpy().astype(np.float64)
    xh = x.detach().cpu().numpy().astype(np.float64)
    mask = yh / xh  # 0 or 1 / (1 - p)
    np.testing.assert_array_equal(yh != 0, gh != 0)  # the gradient mask is the forward mask
    rtol = 2e-3 if dtype == nf.float16 else 1e-6
    np.testing.assert_allclose(gh[yh != 0], (g * mask)[yh != 0], rtol=rtol)
    np.testing.assert_allclose(mask[yh != 0], 1 / (1 - p), rtol=rtol)
    # the mask is the stream's draw at the start after manual_seed
    keep = stream(x0.size, 77, 0).astype(np.float64) * 2.0 ** -32 < 1 - p
    np.testing.assert_array_equal((yh != 0).reshape(-1), keep)
    # the next call continues the stream: a different mask
    assert not np.array_equal(F.dropout(x, p).detach().cpu().numpy() != 0, yh != 0)


@needs_gpu
def test_dropout_edge_cases_and_modules():
    x = nf.ones(8, 9, device="cuda")
    assert F.dropout(x, 0.5, training=False) is x
    assert (F.dropout(x, 1.0).cpu().numpy() == 0).all()
    np.testing.assert_array_equal(F.dropout(x, 0.0).cpu().numpy(), 1.0)
    inplace = nf.ones(4, 4, device="cuda")
    out = F.dropout(inplace, 0.5, inplace=True)
    assert out is inplace and set(np.unique(out.cpu().numpy())) <= {0.0, 2.0}
    drop = nf.nn.Dropout(0.25).to("cuda")
    y = drop(nf.ones(1000, 100, device="cuda")).cpu().numpy()
    assert abs((y == 0).mean() - 0.25) < 0.01
    drop.eval()
    np.testing.assert_array_equal(drop(nf.ones(3, device="cuda")).cpu().numpy(), 1.0)


@needs_gpu
def test_dropout2d_drops_whole_channels():
    nf.cuda.manual_seed(3)
    x = nf.ones(16, 32, 5, 5, device="cuda", requires_grad=True)
    y = F.dropout2d(x, 0.5)
    y.sum().backward()
    yh = y.detach().cpu().numpy()
    per_channel = yh.reshape(16, 32, 25)
    assert ((per_channel == per_channel[:, :, :1]).all())  # one draw per (sample, channel)
    assert set(np.unique(yh)) == {0.0, 2.0}
    np.testing.assert_array_equal(x.grad.cpu().numpy(), yh)  # d(sum)/dx = the mask
    keep = stream(16 * 32, 3, 0).astype(np.float64) * 2.0 ** -32 < 0.5
    np.testing.assert_array_equal(per_channel[:, :, 0].reshape(-1) != 0, keep)


def test_nf_manual_seed_seeds_the_gpu_stream_too():
    """As torch.manual_seed: one call seeds the CPU generator and the GPU stream
    (pure Python state, so this runs without a GPU)."""
    nf.cuda.manual_seed(123)
    nf.manual_seed(7)
    assert nf.cuda.initial_seed() == 7
    assert nf.initial_seed() == 7
    state = nf.cuda.get_rng_state()
    nf.manual_seed(8)
    assert bytes(nf.cuda.get_rng_state().numpy()) != bytes(state.numpy())
