"""Recipe for the GAN on the UCI digits:

    nnforge train gan --data digits

An MLP generator (z of 32 dims -> 64 pixels in [0, 1]) against an MLP
discriminator (LeakyReLU), alternating one discriminator and one generator
step per batch, non-saturating generator loss, Adam(betas=(0.5, 0.999)).

Quality check: a digits classifier trained here (an MLP, >= 97% on the test
split) labels the generator's samples. A good generator gives samples the
classifier is confident about (max softmax probability > 0.9) spread over all
ten classes; a collapsed one gives one or two classes, a poor one low
confidence. The same classifier's confidence on the real test digits is
logged beside it as the reference.
"""
from __future__ import annotations

import math
import os
import time

import numpy as np

from ... import nn, optim
from ...autograd.grad_mode import no_grad
from ...data import DataLoader, TensorDataset, datasets
from ...ops.creation import from_numpy
from ...random import Generator, manual_seed
from ..loop import evaluate, train_epoch
from . import register
from .autoencoder import save_image_grid, write_outputs


class Standardize(nn.Module):
    """(x - mean) / std per feature, with the training set's statistics as buffers
    (std floored at ``min_std`` so that nearly constant border pixels are not
    blown up)."""

    def __init__(self, x, min_std: float = 0.0):
        super().__init__()
        x = x.numpy()
        std = x.std(0)
        std[std <= min_std] = max(min_std, 1e-6) if min_std else 1.0
        self.register_buffer("mean", from_numpy(x.mean(0)))
        self.register_buffer("inv_std", from_numpy((1.0 / std).astype(np.float32)))

    def forward(self, x):
        return (x - self.mean) * self.inv_std


def train_digits_classifier(*, epochs: int = 30, hidden: int = 256, lr: float = 1e-3,
                            weight_decay: float = 1e-4, min_std: float = 0.0, seed: int = 0,
                            log=print):
    """An MLP 64-hidden-10 on digits, inputs standardized by the training
    split's pixel statistics (built into the model, so it takes pixels in
    [0, 1] as the generator makes them), AdamW, batch 64: returns (the model
    in eval mode, its test accuracy)."""
    from ...models import MLP
    manual_seed(seed)
    train, test = datasets.digits("train"), datasets.digits("test")
    model = nn.Sequential(Standardize(train.tensors[0], min_std), MLP(64, [hidden], 10))
    opt = optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    loader = DataLoader(train, batch_size=64, shuffle=True, generator=Generator().manual_seed(seed))
    for _ in range(epochs):
        train_epoch(model, loader, loss_fn, opt)
    _, acc = evaluate(model, DataLoader(test, batch_size=512), loss_fn)
    model.eval()
    log(f"digits classifier (standardized pixels, MLP 64-{hidden}-10): test accuracy "
        f"{acc * 100:.2f}%")
    return model, acc


@no_grad()
def sample_quality(images, classifier, threshold: float = 0.9) -> dict:
    """How a classifier sees a set of images (N, 64): the fraction labelled
    with max softmax probability above ``threshold``, the classes among those
    confident labels (count, histogram over 0..9) and the mean confidence."""
    probs = classifier(images).softmax(-1).numpy()
    conf, label = probs.max(1), probs.argmax(1)
    confident = conf > threshold
    hist = np.bincount(label[confident], minlength=probs.shape[1])
    return {"threshold": threshold, "confident_fraction": float(confident.mean()),
            "mean_confidence": float(conf.mean()), "classes_covered": int((hist > 0).sum()),
            "class_histogram": hist.tolist()}


@register("gan", "digits")
def gan_digits(*, epochs: int = 300, batch_size: int = 32, lr: float = 1e-3, latent: int = 32,
               decay: float = 0.3, seed: int = 0, n_samples: int = 500, classifier=None,
               out_dir: str | None = None, progress: bool = True, log=print) -> dict:
    """An MLP GAN on digits (non-saturating loss); its samples labelled by a digits classifier.

    ``epochs`` passes over the 1347 training digits, the learning rate
    decaying linearly to 0 over the last ``decay`` fraction of them; then
    ``n_samples`` samples are checked with the digits classifier
    (``classifier``: a trained one to reuse, else one is trained first).

    Per epoch it logs both losses, the discriminator's mean D(x) and D(G(z))
    and its accuracy (real scored > 0, fake < 0): a discriminator stuck at 100%
    starves the generator of gradient. At the end it logs, for confidence
    thresholds 0.5, 0.7 and 0.9, the fraction of samples and of real test
    digits the classifier labels above it."""
    from tqdm.auto import tqdm

    from ...models import GAN, discriminator_loss, generator_loss
    clf_acc = None
    if classifier is None:
        classifier, clf_acc = train_digits_classifier(seed=seed, log=log)
    manual_seed(seed)
    x_train = datasets.digits("train").tensors[0]
    loader = DataLoader(TensorDataset(x_train), batch_size=batch_size, shuffle=True,
                        drop_last=True, generator=Generator().manual_seed(seed))
    gan = GAN(64, latent)
    opt_d = optim.Adam(gan.discriminator.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_g = optim.Adam(gan.generator.parameters(), lr=lr, betas=(0.5, 0.999))
    keep = epochs * (1.0 - decay)  # epochs at the full rate, then linear decay to 0

    def factor(e):
        return 1.0 if e < keep else max(0.0, (epochs - e) / (epochs - keep))

    schedules = [optim.lr_scheduler.LambdaLR(o, factor) for o in (opt_d, opt_g)]
    log(f"gan: digits, {len(x_train)} training images in [0, 1]")
    log(f"generator: {gan.generator}")
    log(f"discriminator: {gan.discriminator}")
    log(f"Adam lr={lr} betas=(0.5, 0.999), decaying to 0 over the last {decay:.0%} of "
        f"{epochs} epochs; batch {batch_size}, z of {latent}")
    history = {"d_loss": [], "g_loss": [], "d_real": [], "d_fake": [], "d_acc": [],
               "classifier_acc": clf_acc}
    bar = tqdm(range(1, epochs + 1), desc="gan", unit="epoch", disable=not progress)
    for epoch in bar:
        t0 = time.perf_counter()
        gan.train()
        sums = dict.fromkeys(("d_loss", "g_loss", "d_real", "d_fake", "d_acc"), 0.0)
        steps = 0
        for (real,) in loader:
            n = real.shape[0]
            # Discriminator step: real -> 1, fake -> 0; the fakes are detached
            # so this step leaves the generator's gradients alone.
            fake = gan.generator(gan.noise(n))
            real_logits = gan.discriminator(real)
            fake_logits = gan.discriminator(fake.detach())
            d_loss = discriminator_loss(real_logits, fake_logits)
            opt_d.zero_grad()
            d_loss.backward()
            opt_d.step()
            # Generator step: the non-saturating loss -log D(G(z)) through the
            # updated discriminator.
            g_loss = generator_loss(gan.discriminator(fake))
            opt_g.zero_grad()
            g_loss.backward()
            opt_g.step()
            with no_grad():
                sums["d_loss"] += d_loss.item()
                sums["g_loss"] += g_loss.item()
                sums["d_real"] += float(real_logits.sigmoid().mean())
                sums["d_fake"] += float(fake_logits.sigmoid().mean())
                sums["d_acc"] += 0.5 * (float((real_logits > 0).float().mean())
                                        + float((fake_logits < 0).float().mean()))
            steps += 1
        for sched in schedules:
            sched.step()
        for k, v in sums.items():
            history[k].append(v / steps)
        if not (math.isfinite(history["d_loss"][-1]) and math.isfinite(history["g_loss"][-1])):
            log(f"epoch {epoch}: a loss is not finite; stopping")
            break
        bar.set_postfix(d_loss=f"{history['d_loss'][-1]:.3f}",
                        g_loss=f"{history['g_loss'][-1]:.3f}", refresh=False)
        line = (f"epoch {epoch:3d}/{epochs}  d_loss {history['d_loss'][-1]:.4f}  "
                f"g_loss {history['g_loss'][-1]:.4f}  D(x) {history['d_real'][-1]:.3f}  "
                f"D(G(z)) {history['d_fake'][-1]:.3f}  D acc {history['d_acc'][-1] * 100:.1f}%  "
                f"({time.perf_counter() - t0:.2f}s)")
        bar.write(line) if progress and log is print else log(line)
    bar.close()

    gan.eval()
    samples = gan.sample(n_samples, generator=Generator().manual_seed(seed + 1))
    real_test = datasets.digits("test").tensors[0]
    quality = {t: sample_quality(samples, classifier, t) for t in (0.5, 0.7, 0.9)}
    reference = {t: sample_quality(real_test, classifier, t) for t in (0.5, 0.7, 0.9)}
    history.update({"samples": samples, "quality": quality, "reference_quality": reference,
                    "gan": gan, "classifier": classifier})
    lines = []
    for t in quality:
        lines.append(f"confidence > {t}: {quality[t]['confident_fraction'] * 100:5.1f}% of "
                     f"{n_samples} samples (real test digits: "
                     f"{reference[t]['confident_fraction'] * 100:5.1f}%), "
                     f"{quality[t]['classes_covered']} of 10 classes, per class "
                     f"{quality[t]['class_histogram']}")
        log(lines[-1])
    if out_dir:
        per_epoch = {k: v for k, v in history.items() if isinstance(v, list)}
        write_outputs(out_dir, "gan", per_epoch, gan, lines, log)
        path = save_image_grid(samples[:100], os.path.join(out_dir, "gan_samples.png"), nrow=10,
                               log=log)
        if path:
            log(f"saved {path} (100 samples)")
        history["samples_path"] = path
    return history
