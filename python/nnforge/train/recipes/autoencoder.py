"""Recipes for the autoencoders on the UCI digits (8x8 pixels scaled to [0, 1]):

    nnforge train autoencoder --data digits            64-32-8-32-64, MSE
    nnforge train sparse_autoencoder --data digits     64-32 sigmoid code, KL sparsity
    nnforge train denoising_autoencoder --data digits  Gaussian noise in, clean target
    nnforge train vae --data digits                    -ELBO, samples from the prior

Each trains with Adam on the stratified 75% training split and reports the
test split's reconstruction MSE per pixel beside the baseline of predicting
every pixel's training mean; with ``out_dir`` it saves image grids there.
"""
from __future__ import annotations

import os
import time

import numpy as np

from ... import optim
from ...autograd.grad_mode import no_grad
from ...data import DataLoader, TensorDataset, datasets
from ...random import Generator, manual_seed
from . import register


# --------------------------------------------------------------------------- shared pieces
def digits_pixels(flatten: bool = True):
    """(train, test) digits as float32 tensors (N, 64), or (N, 1, 8, 8) when not
    ``flatten``, with pixels in [0, 1]."""
    return (datasets.digits("train", flatten=flatten).tensors[0],
            datasets.digits("test", flatten=flatten).tensors[0])


def mean_baseline_mse(x_train, x_test) -> float:
    """Per-pixel MSE on the test set of predicting each pixel's training mean."""
    mean = x_train.numpy().mean(0)
    return float(((x_test.numpy() - mean) ** 2).mean())


@no_grad()
def pixel_mse(x_hat, x) -> float:
    """Mean squared error per pixel."""
    return float(((x_hat - x) ** 2).mean())


def save_image_grid(images, path: str, nrow: int, title: str | None = None,
                    log=print) -> str | None:
    """``nf.viz.image_grid`` of images (N, 64) with pixels in [0, 1] (grey
    scale fixed to [0, 1]); returns the path, or None (with a note) when
    matplotlib is not installed."""
    from ... import viz
    if not viz.have_matplotlib():
        log(f"{os.path.basename(path)} not written: matplotlib is not installed "
            "(pip install 'nnforge[plot]')")
        return None
    return viz.image_grid(images, path, nrow=nrow, vmin=0.0, vmax=1.0, title=title)


def write_outputs(out_dir: str, name: str, history, model, lines=(), log=print) -> None:
    """history.json, learning_curves.png, summary.txt and the final weights
    (``{name}.safetensors``) into ``out_dir``."""
    from ...io import save
    from ..report import write_run_outputs
    os.makedirs(out_dir, exist_ok=True)
    write_run_outputs(out_dir, history, model=model, header=name, lines=lines, log=log)
    path = os.path.join(out_dir, f"{name}.safetensors")
    save(model.state_dict(), path)
    log(f"saved the final weights to {path}")


def train_autoencoder(model, name: str, *, epochs: int, batch_size: int, lr: float, seed: int,
                      progress: bool, log, evaluate, flatten: bool = True) -> dict:
    """Adam on ``model.loss(x)`` over the digits training split; after each epoch
    ``evaluate(model, x_test)`` returns a dict of test numbers (``test_mse``
    at least). Images come as (N, 64), or (N, 1, 8, 8) when not ``flatten``. Returns the per-epoch History (``loss`` and the other terms of
    ``model.loss`` are training means) with ``baseline_mse`` and ``model`` added."""
    from tqdm.auto import tqdm

    from ..fit import History
    log = log if log is not None else (lambda line: None)
    x_tr, x_te = digits_pixels(flatten)
    loader = DataLoader(TensorDataset(x_tr), batch_size=batch_size, shuffle=True,
                        generator=Generator().manual_seed(seed))
    opt = optim.Adam(model.parameters(), lr=lr)
    baseline = mean_baseline_mse(x_tr, x_te)
    log(f"{name}: digits, {len(x_tr)} training and {len(x_te)} test images of 8x8 pixels in "
        "[0, 1]")
    log(f"model: {model}")
    log(f"parameters: {sum(p.numel() for p in model.parameters()):,}; Adam lr={lr}, "
        f"batch {batch_size}, {epochs} epochs; baseline (per-pixel training mean) test MSE "
        f"{baseline:.4f}")
    history = History()
    bar = tqdm(range(1, epochs + 1), desc=name, unit="epoch", disable=not progress)
    for epoch in bar:
        t0 = time.perf_counter()
        model.train()
        sums, count = {}, 0
        for (x,) in loader:
            opt.zero_grad()
            loss, terms = model.loss(x)
            loss.backward()
            opt.step()
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + v * x.shape[0]
            count += x.shape[0]
        model.eval()
        row = {"epoch": epoch, **{k: v / count for k, v in sums.items()}, **evaluate(model, x_te)}
        row["epoch_time"] = time.perf_counter() - t0
        history.append(row)
        bar.set_postfix(loss=f"{row['loss']:.4f}", test_mse=f"{row['test_mse']:.4f}",
                        refresh=False)
        line = (f"epoch {epoch:3d}/{epochs}  "
                + "  ".join(f"{k} {v:.4f}" for k, v in row.items()
                            if k not in ("epoch", "epoch_time"))
                + f"  ({row['epoch_time']:.2f}s)")
        bar.write(line) if progress and log is print else log(line)
    bar.close()
    result = (f"{name}: test reconstruction MSE {history['test_mse'][-1]:.4f} per pixel, "
              f"{history['test_mse'][-1] / baseline:.2f}x the mean-image baseline ({baseline:.4f})")
    log(result)
    return {"history": history, "baseline_mse": baseline, "model": model, "lines": [result],
            **history}


def _reconstruction_eval(model, x_te) -> dict:
    with no_grad():
        return {"test_mse": pixel_mse(model(x_te), x_te)}


def _save_reconstructions(model, x_te, out_dir, name, log) -> None:
    """Three blocks of two rows: ten test digits, then their reconstructions."""
    with no_grad():
        recon = model.reconstruct(x_te[:30]) if hasattr(model, "reconstruct") else model(x_te[:30])
    rows = [block for i in range(0, 30, 10)
            for block in (x_te[i:i + 10].numpy(), recon[i:i + 10].numpy())]
    path = save_image_grid(np.concatenate(rows),
                           os.path.join(out_dir, f"{name}_reconstructions.png"), nrow=10,
                           title=f"{name}: test digits (odd rows), reconstructions (even rows)",
                           log=log)
    if path:
        log(f"saved {path}")


def _finish(result: dict, name: str, out_dir, log, flatten: bool = True) -> dict:
    """Writes the run's outputs (when ``out_dir``) and returns the result."""
    if out_dir:
        write_outputs(out_dir, name, result["history"], result["model"], result["lines"], log)
        _save_reconstructions(result["model"], digits_pixels(flatten)[1], out_dir, name, log)
    return result


# --------------------------------------------------------------------------- recipes
@register("autoencoder", "digits")
def autoencoder_digits(*, epochs: int = 60, batch_size: int = 64, lr: float = 3e-3,
                       hidden: int = 32, code: int = 8, seed: int = 0, out_dir: str | None = None,
                       progress: bool = True, log=print) -> dict:
    """An undercomplete autoencoder 64-32-8-32-64 on digits, squared error.

    ReLU hidden layers, a linear code of ``code`` units, sigmoid pixels. Logs
    the test split's reconstruction MSE per pixel against the mean-image
    baseline; with ``out_dir``: history.json, learning_curves.png,
    summary.txt, the weights and a grid of test digits and reconstructions.
    """
    from ...models import Autoencoder
    manual_seed(seed)
    model = Autoencoder(64, [hidden], code)
    result = train_autoencoder(model, "autoencoder", epochs=epochs, batch_size=batch_size, lr=lr,
                               seed=seed, progress=progress, log=log,
                               evaluate=_reconstruction_eval)
    return _finish(result, "autoencoder", out_dir, log)


@register("sparse_autoencoder", "digits")
def sparse_autoencoder_digits(*, epochs: int = 60, batch_size: int = 64, lr: float = 1e-2,
                              code: int = 32, sparsity: str = "kl", rho: float = 0.05,
                              beta: float | None = None, seed: int = 0,
                              out_dir: str | None = None, progress: bool = True,
                              log=print) -> dict:
    """A sparse autoencoder 64-32-64 on digits, KL (or L1) sparsity on the code.

    ``sparsity="kl"``: sigmoid code units whose mean activations are pulled to
    ``rho`` (beta 0.5); ``sparsity="l1"``: ReLU code units under an L1
    activity penalty (beta 0.1). Logs the test codes' mean activation and the
    fraction of units that are off (sigmoid below 0.1, ReLU at 0).
    """
    from ...models import SparseAutoencoder
    manual_seed(seed)
    model = SparseAutoencoder(64, (), code, sparsity=sparsity, rho=rho, beta=beta)
    off = 0.1 if sparsity == "kl" else 1e-6

    def evaluate(model, x_te):
        with no_grad():
            h = model.encode(x_te)
            return {"test_mse": pixel_mse(model.decode(h), x_te),
                    "test_mean_activation": float(h.mean()),
                    "test_frac_off": float((h < off).float().mean())}

    result = train_autoencoder(model, f"sparse_autoencoder ({sparsity})", epochs=epochs,
                               batch_size=batch_size, lr=lr, seed=seed, progress=progress,
                               log=log, evaluate=evaluate)
    line = (f"sparse codes on the test split: mean activation "
            f"{result['test_mean_activation'][-1]:.3f}"
            + (f" (target rho {rho})" if sparsity == "kl" else "")
            + f", {result['test_frac_off'][-1] * 100:.1f}% of the code units off")
    log(line)
    result["lines"].append(line)
    return _finish(result, "sparse_autoencoder", out_dir, log)


@register("denoising_autoencoder", "digits")
def denoising_autoencoder_digits(*, epochs: int = 60, batch_size: int = 64, lr: float = 3e-3,
                                 noise: str = "gaussian", noise_level: float = 0.3,
                                 hidden: int = 64, code: int = 16, seed: int = 0,
                                 out_dir: str | None = None, progress: bool = True,
                                 log=print) -> dict:
    """A denoising autoencoder 64-64-16-64-64 on digits, corrupted in, clean out.

    ``noise``: "gaussian" (sigma ``noise_level``) or "mask" (each pixel zeroed
    with probability ``noise_level``). Logs the test split's error of the
    noisy input and of the denoised output, both against the clean digits, on
    one fixed draw of the noise; with ``out_dir`` also a grid of noisy,
    denoised and clean rows.
    """
    from ...models import DenoisingAutoencoder
    manual_seed(seed)
    model = DenoisingAutoencoder(64, [hidden], code, noise=noise, noise_level=noise_level)
    x_te = digits_pixels()[1]
    noisy_te = model.corrupt(x_te, generator=Generator().manual_seed(seed + 1))

    def evaluate(model, x_te):
        with no_grad():
            return {"test_mse": pixel_mse(model(x_te), x_te),
                    "noisy_mse": pixel_mse(noisy_te, x_te),
                    "denoised_mse": pixel_mse(model(noisy_te), x_te)}

    result = train_autoencoder(model, f"denoising_autoencoder ({noise})", epochs=epochs,
                               batch_size=batch_size, lr=lr, seed=seed, progress=progress,
                               log=log, evaluate=evaluate)
    line = (f"denoising the test split: noisy input MSE {result['noisy_mse'][-1]:.4f}, "
            f"denoised {result['denoised_mse'][-1]:.4f} (both against the clean digits)")
    log(line)
    result["lines"].append(line)
    _finish(result, "denoising_autoencoder", out_dir, log)
    if out_dir:
        with no_grad():
            denoised = model(noisy_te[:10])
        rows = np.concatenate([noisy_te[:10].numpy(), denoised.numpy(), x_te[:10].numpy()])
        path = save_image_grid(rows, os.path.join(out_dir, "denoising.png"), nrow=10,
                               title=f"{noise} noise {noise_level}: noisy, denoised, clean",
                               log=log)
        if path:
            log(f"saved {path}")
    return result


@register("vae", "digits")
def vae_digits(*, epochs: int = 60, batch_size: int = 64, lr: float = 2e-3, hidden: int = 128,
               latent: int = 8, seed: int = 0, out_dir: str | None = None, progress: bool = True,
               log=print) -> dict:
    """A variational autoencoder 64-128-(mu, logvar of 8)-128-64 on digits.

    Bernoulli pixels (binary cross-entropy on pixels in [0, 1]) and the
    closed-form KL to N(0, I). Logs the training and test ELBO (nats per
    image, one draw of z) and the test MSE of the decoded mean code; with
    ``out_dir`` also reconstructions and 100 samples from the prior.
    """
    from ...models import VAE
    manual_seed(seed)
    model = VAE(64, [hidden], latent)

    def evaluate(model, x_te):
        with no_grad():
            _, terms = model.loss(x_te)
            return {"test_mse": pixel_mse(model.reconstruct(x_te), x_te),
                    "test_elbo": terms["elbo"], "test_kl": terms["kl"]}

    result = train_autoencoder(model, "vae", epochs=epochs, batch_size=batch_size, lr=lr,
                               seed=seed, progress=progress, log=log, evaluate=evaluate)
    line = (f"vae: test ELBO {result['test_elbo'][0]:.2f} after epoch 1, "
            f"{result['test_elbo'][-1]:.2f} after epoch {len(result['test_elbo'])} "
            "(nats per image)")
    log(line)
    result["lines"].append(line)
    _finish(result, "vae", out_dir, log)
    if out_dir:
        samples = model.sample(100, generator=Generator().manual_seed(seed))
        path = save_image_grid(samples, os.path.join(out_dir, "vae_samples.png"), nrow=10,
                               title="vae: 100 samples from the prior", log=log)
        if path:
            log(f"saved {path}")
        result["samples_path"] = path
    return result
