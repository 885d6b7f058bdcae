"""Every model family with ``model.to("cuda")`` on the EMULATED cuda device of
tests/emulated_cuda.py: the CPU backend behind opaque device arrays. This checks
that the Python layer (ops, nn, optim, models, train, io, peft) reaches device
data only through the backend and keeps every tensor on the model's device. It
does not test the CUDA kernels (tests/test_cuda_models.py does, on a GPU).

The emulated run computes with the same CPU functions, so the loss curves must
agree to float32 round-off (rtol 1e-6: contiguity after a device copy can change
numpy's summation blocking, nothing else differs).
"""
import numpy as np
import pytest

import nnforge as nf
from cuda_model_cases import CASES, CHECKS, compare
from emulated_cuda import EmulatedDeviceArray, emulated_cuda  # noqa: F401 (fixture)

RTOL, ATOL = 1e-6, 1e-7


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__)
def test_model_family_trains_like_cpu(emulated_cuda, case):  # noqa: F811
    compare(case, "cuda", RTOL, ATOL)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_beyond_training(emulated_cuda, check, tmp_path):  # noqa: F811
    kwargs = {"tmp_path": tmp_path} if "tmp_path" in check.__code__.co_varnames else {}
    check("cuda", (RTOL, ATOL), **kwargs)


# ------------------------------------------------------------------ the emulation itself
def test_emulated_arrays_refuse_host_use(emulated_cuda):  # noqa: F811
    """What makes the emulation worth running: device data cannot be used as numpy."""
    x = nf.tensor([[1.0, 2.0], [3.0, 4.0]], device="cuda")
    a = x.data
    assert type(a) is EmulatedDeviceArray and not isinstance(a, np.ndarray)
    assert (a.shape, a.dtype, a.ndim, a.size, a.dtype_name) == ((2, 2), np.float32, 2, 4, "float32")
    assert a.element_strides == (2, 1) and a.strides == (8, 4) and a.is_contiguous()
    for use in (lambda: np.asarray(a), lambda: np.add(a, 1), lambda: a + 1, lambda: a[0],
                lambda: bool(a), lambda: float(a), lambda: list(a), lambda: np.sum(a),
                lambda: np.ones(2) * a):
        with pytest.raises(TypeError):
            use()
    with pytest.raises(AttributeError):
        a.reshape(4)  # numpy methods do not exist on a device array either
    with pytest.raises(TypeError, match="host numpy array"):
        emulated_cuda.add(a, np.ones((2, 2), np.float32))  # a host operand: the layer leaked
    with pytest.raises(TypeError, match="computed on the host"):
        emulated_cuda.ensure_array(np.ones(2))
    np.testing.assert_array_equal(emulated_cuda.to_host(emulated_cuda.add(a, a)), [[2, 4], [6, 8]])
    v = emulated_cuda.transpose(a)  # views share the storage, as DeviceArray's do
    assert v.shares_storage(a) and not v.is_contiguous() and v.element_strides == (1, 2)


def test_emulated_backend_has_every_cpu_function(emulated_cuda):  # noqa: F811
    from nnforge.backend import cpu
    names = {n for n, v in vars(cpu).items() if callable(v) and not n.startswith("_")
             and not isinstance(v, type) and n != "builtins"}
    missing = sorted(n for n in names if not hasattr(emulated_cuda, n))
    assert not missing, missing
    assert emulated_cuda.name == "cuda" and nf.cuda.is_available()
    assert nf.device("cuda").backend is emulated_cuda


def test_device_mismatches_raise_clearly(emulated_cuda):  # noqa: F811
    x = nf.randn(2, 3, device="cuda", requires_grad=True)
    with pytest.raises(ValueError, match="one device"):
        x + nf.randn(2, 3)
    with pytest.raises(ValueError, match="one device"):
        nf.nn.functional.embedding(nf.tensor([0, 1]), nf.randn(3, 2, device="cuda"))
    with pytest.raises(ValueError, match="one device"):
        x.masked_fill(nf.tensor([[True, False, True]] * 2), 0.0)
    with pytest.raises(ValueError, match="one device"):
        x < nf.zeros(2, 3)
    with pytest.raises(RuntimeError, match="gradient 0 is on cpu"):
        (x * 2).backward(nf.ones(2, 3))
    y = x.detach()[nf.tensor([1, 0])]  # a CPU index tensor moves to the data, as in PyTorch
    assert y.is_cuda and y.shape == (2, 3)


def test_gradcheck_on_the_device(emulated_cuda):  # noqa: F811
    x = nf.randn(2, 3, dtype=nf.float64, device="cuda", requires_grad=True)
    w = nf.randn(4, 3, dtype=nf.float64, device="cuda", requires_grad=True)
    assert nf.autograd.gradcheck(lambda a, b: nf.nn.functional.linear(a, b).tanh(), (x, w))


def test_writing_into_an_expanded_device_view_raises(emulated_cuda):  # noqa: F811
    """numpy marks broadcast views read-only; a device array has no flags, so its stride-0
    dims (of size > 1) are what tells the in-place check."""
    e = nf.ones(1, 3, device="cuda").expand(4, 3)
    with pytest.raises(RuntimeError, match="read-only"):
        e.add_(1.0)
    y = nf.ones(3, device="cuda").unsqueeze(0)  # a size-1 dim may have any stride
    y.add_(1.0)
    assert y.tolist() == [[2.0, 2.0, 2.0]]


def test_random_draws_land_on_the_device(emulated_cuda):  # noqa: F811
    """Noise, sampling and dropout inside the models stay on the model's device (the
    values differ from the CPU's: the device has its own random stream)."""
    x = nf.rand(4, 16, device="cuda")
    dae = nf.models.DenoisingAutoencoder(16, [8], 4, noise="mask", noise_level=0.5).to("cuda")
    vae = nf.models.VAE(16, [8], latent_dim=3).to("cuda")
    gan = nf.models.GAN(16, latent_dim=4, g_hidden=(8,), d_hidden=(8,)).to("cuda")
    bert = nf.models.BERT(12, d_model=16, n_layer=1, n_head=2, dim_feedforward=32, max_len=8,
                          dropout=0.5).to("cuda")
    outs = [dae.corrupt(x), dae.loss(x)[0], vae(x)[0], vae.sample(3), gan.sample(2),
            bert(nf.tensor([[5, 6, 7, 0]], device="cuda")),
            nf.nn.functional.dropout(x, 0.3), nf.randn(2, 3, device="cuda"),
            nf.randint(0, 5, (3,), device="cuda"), nf.bernoulli(x)]
    for o in outs:
        assert o.is_cuda and type(o.data) is EmulatedDeviceArray
    assert [tuple(o.shape) for o in outs[3:5]] == [(3, 16), (2, 16)]


def test_load_with_map_location_puts_tensors_on_the_device(emulated_cuda, tmp_path):  # noqa: F811
    """io.load(map_location="cuda"): every tensor on the device, sharing kept,
    requires_grad kept; a plain safetensors file maps too."""
    from nnforge.io import load, save
    w = nf.arange(6.0).reshape(2, 3).requires_grad_()
    save({"a": w, "b": [w, nf.ones(2)]}, tmp_path / "c.safetensors")
    back = load(tmp_path / "c.safetensors", map_location="cuda")
    assert back["a"].device.type == "cuda" and back["b"][1].device.type == "cuda"
    assert back["a"] is back["b"][0] and back["a"].requires_grad
    np.testing.assert_array_equal(back["a"].numpy(force=True), w.numpy(force=True))
    nf.io.save_file({"x": nf.ones(3)}, tmp_path / "plain.safetensors")
    flat = load(tmp_path / "plain.safetensors", map_location=nf.device("cuda"))
    assert flat["x"].device.type == "cuda" and flat["x"].tolist() == [1.0, 1.0, 1.0]
