"""Autoencoders on the real digits: plain, sparse, denoising and variational.

Quality bars on the stratified 25% hold-out: test reconstruction MSE per pixel
below half of the baseline that predicts every pixel's training mean; the
denoiser's output well closer to the clean digits than its noisy input; the
VAE's test ELBO improving, and its samples saved."""
import numpy as np
import pytest

import nnforge as nf
from nnforge.models import (VAE, Autoencoder, DenoisingAutoencoder, SparseAutoencoder,
                            kl_sparsity, vae_loss)
from nnforge.train.recipes import autoencoder as recipes

EPOCHS = 30  # the recipes' default is 60; the bars hold with margin at 30


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These models' matrices are at most 128 wide: one thread is the fastest
    setting for them, and it keeps the test's time steady on a loaded machine
    (two threads wait on each other when a core is busy elsewhere)."""
    previous = nf.get_num_threads()
    nf.set_num_threads(1)
    yield
    nf.set_num_threads(previous)


def _quiet(*_):
    pass


# ----------------------------------------------------------------------------- pieces
def test_shapes_and_layout():
    ae = Autoencoder(64, [32], 8)
    x = nf.rand(5, 64)
    assert ae.encode(x).shape == (5, 8) and ae(x).shape == (5, 64)
    assert ae(nf.rand(5, 8, 8)).shape == (5, 64)  # images are flattened
    out = ae(x).detach().numpy()
    assert out.min() >= 0 and out.max() <= 1  # sigmoid pixels
    assert [m.out_features for m in ae.modules() if isinstance(m, nf.nn.Linear)] == [32, 8, 32, 64]
    with pytest.raises(ValueError, match="activation"):
        Autoencoder(64, [32], 8, activation="swish?")
    with pytest.raises(ValueError, match="sparsity"):
        SparseAutoencoder(sparsity="l2")
    with pytest.raises(ValueError, match="noise"):
        DenoisingAutoencoder(noise="salt")


def test_kl_sparsity_matches_its_formula_and_vanishes_at_rho():
    rng = np.random.default_rng(0)
    h = rng.uniform(0.01, 0.99, size=(16, 5)).astype(np.float32)
    rho = 0.05
    rho_hat = h.mean(0)
    expected = np.sum(rho * np.log(rho / rho_hat) + (1 - rho) * np.log((1 - rho) / (1 - rho_hat)))
    assert kl_sparsity(nf.tensor(h), rho).item() == pytest.approx(expected, rel=1e-5)
    assert kl_sparsity(nf.full((4, 3), rho), rho).item() == pytest.approx(0.0, abs=1e-6)
    # its gradient pushes a too-active unit down
    code = nf.tensor(h, requires_grad=True)
    kl_sparsity(code, rho).backward()
    assert (code.grad.numpy() > 0).all()
    with pytest.raises(ValueError, match="rho"):
        kl_sparsity(nf.tensor(h), 1.5)


def test_corruption_statistics():
    x = nf.full((200, 64), 0.5)
    gen = nf.Generator().manual_seed(0)
    masked = DenoisingAutoencoder(noise="mask", noise_level=0.3).corrupt(x, generator=gen).numpy()
    assert set(np.unique(masked)) <= {0.0, 0.5}
    assert (masked == 0).mean() == pytest.approx(0.3, abs=0.02)
    noisy = DenoisingAutoencoder(noise="gaussian", noise_level=0.2).corrupt(x, generator=gen)
    assert float((noisy - x).numpy().std()) == pytest.approx(0.2, rel=0.05)


def test_vae_reparameterization_and_kl():
    vae = VAE(64, [32], latent_dim=4)
    mu = nf.tensor([[1.0, -2.0, 0.0, 0.5]]).expand(20000, 4)
    logvar = nf.tensor([[0.0, 1.0, -1.0, 2.0]]).expand(20000, 4)
    z = vae.reparameterize(mu, logvar).numpy()
    np.testing.assert_allclose(z.mean(0), [1.0, -2.0, 0.0, 0.5], atol=0.05)
    np.testing.assert_allclose(z.std(0), np.exp(np.array([0.0, 1.0, -1.0, 2.0]) / 2), rtol=0.03)
    # KL(N(mu, sigma^2) || N(0, 1)) = 1/2 sum (sigma^2 + mu^2 - 1 - log sigma^2), per sample
    m, lv = np.array([[0.3, -1.0]]), np.array([[0.5, -0.2]])
    _, _, kl = vae_loss(nf.zeros(1, 2), nf.zeros(1, 2), nf.tensor(m), nf.tensor(lv))
    assert kl.item() == pytest.approx(0.5 * np.sum(np.exp(lv) + m ** 2 - 1 - lv), rel=1e-5)
    assert vae.sample(7).shape == (7, 64)


def test_vae_loss_and_gradients_match_pytorch():
    torch = pytest.importorskip("torch")
    vae = VAE(64, [32], latent_dim=4)
    rng = np.random.default_rng(0)
    x_np = rng.uniform(0, 1, size=(16, 64)).astype(np.float32)
    eps_np = rng.standard_normal((16, 4)).astype(np.float32)

    x, eps = nf.tensor(x_np), nf.tensor(eps_np)
    mu, logvar = vae.encode(x)
    logits = vae.decode(mu + (logvar * 0.5).exp() * eps)
    loss, recon, kl = vae_loss(logits, x, mu, logvar)
    loss.backward()

    tm = torch.nn.ModuleDict({
        "encoder": torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU()),
        "fc_mu": torch.nn.Linear(32, 4), "fc_logvar": torch.nn.Linear(32, 4),
        "decoder": torch.nn.Sequential(torch.nn.Linear(4, 32), torch.nn.ReLU(),
                                       torch.nn.Linear(32, 64))})
    tm.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in vae.state_dict().items()})
    tx, teps = torch.from_numpy(x_np), torch.from_numpy(eps_np)
    h = tm["encoder"](tx)
    tmu, tlv = tm["fc_mu"](h), tm["fc_logvar"](h)
    tlogits = tm["decoder"](tmu + torch.exp(0.5 * tlv) * teps)
    trecon = torch.nn.functional.binary_cross_entropy_with_logits(tlogits, tx, reduction="sum") / 16
    tkl = -0.5 * torch.sum(1 + tlv - tmu ** 2 - tlv.exp()) / 16
    (trecon + tkl).backward()

    assert recon.item() == pytest.approx(trecon.item(), rel=1e-5)
    assert kl.item() == pytest.approx(tkl.item(), rel=1e-4, abs=1e-6)
    tgrads = dict(tm.named_parameters())
    for name, p in vae.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tgrads[name].grad.numpy(), rtol=1e-4,
                                   atol=1e-5, err_msg=name)


# ----------------------------------------------------------------------------- training
def test_autoencoder_reconstructs_test_digits(tmp_path):
    result = recipes.autoencoder_digits(epochs=EPOCHS, progress=False, log=_quiet,
                                        out_dir=str(tmp_path))
    assert result["test_mse"][-1] < 0.5 * result["baseline_mse"]
    assert result["loss"][-1] < result["loss"][0]
    names = {p.name for p in tmp_path.iterdir()}
    assert {"history.json", "summary.txt", "autoencoder.safetensors"} <= names
    if nf.viz.have_matplotlib():
        assert "autoencoder_reconstructions.png" in names


@pytest.mark.parametrize("sparsity", ["kl", "l1"])
def test_sparse_autoencoder_codes_are_sparse(sparsity):
    result = recipes.sparse_autoencoder_digits(epochs=EPOCHS, sparsity=sparsity, progress=False,
                                               log=_quiet)
    assert result["test_mse"][-1] < 0.5 * result["baseline_mse"]
    if sparsity == "kl":
        # sigmoid units pulled from ~0.5 towards rho = 0.05
        assert result["test_mean_activation"][-1] < 0.15
    assert result["test_frac_off"][-1] > 0.5  # most code units are off for a given digit


@pytest.mark.parametrize("noise", ["gaussian", "mask"])
def test_denoising_autoencoder_removes_noise(noise, tmp_path):
    result = recipes.denoising_autoencoder_digits(epochs=EPOCHS, noise=noise, progress=False,
                                                  log=_quiet, out_dir=str(tmp_path))
    assert result["denoised_mse"][-1] < 0.5 * result["noisy_mse"][-1]
    assert result["test_mse"][-1] < 0.5 * result["baseline_mse"]
    if nf.viz.have_matplotlib():
        assert (tmp_path / "denoising.png").exists()


def test_vae_elbo_improves_and_samples_are_saved(tmp_path):
    result = recipes.vae_digits(epochs=EPOCHS, progress=False, log=_quiet, out_dir=str(tmp_path))
    elbo = result["test_elbo"]
    assert all(np.isfinite(elbo))
    assert elbo[-1] > elbo[0] + 3.0  # nats per image
    assert result["elbo"][-1] > result["elbo"][0]  # the training ELBO too
    assert result["test_kl"][-1] > 1.0  # the code is used (no posterior collapse)
    assert result["test_mse"][-1] < 0.5 * result["baseline_mse"]
    if nf.viz.have_matplotlib():
        assert result["samples_path"] and (tmp_path / "vae_samples.png").exists()


@pytest.mark.parametrize("name", ["autoencoder", "vae"])
def test_docstring_examples(name):
    import doctest
    import importlib
    module = importlib.import_module(f"nnforge.models.{name}")
    assert doctest.testmod(module).failed == 0
