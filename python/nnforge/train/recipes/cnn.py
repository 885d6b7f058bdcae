"""Recipes for the convolutional networks on the UCI digits (8x8 pixels):

    nnforge train lenet --data digits             LeNet-5 on the digits enlarged to 32x32
    nnforge train resnet --data digits            a small ResNet (BatchNorm, 3 stages) at 8x8
    nnforge train rcnn --data digits              recurrent convolutional layers at 8x8
    nnforge train conv_autoencoder --data digits  conv encoder, transposed-conv decoder

The classifiers share one protocol: the data README's stratified 25% hold-out
(split seed 0), pixels in [0, 1] shifted and scaled by the training images'
mean and standard deviation (two numbers, not per pixel: a convolution
shares its weights across positions), Adam with a cosine learning-rate
decay over the run, the hold-out scored after every
epoch (reported only; the result is the last epoch's). LeNet-5 needs 32x32
inputs to keep its map sizes, so its digits are enlarged 4x by repeating
each pixel (nearest neighbour); the others run on the 8x8 images.

With ``out_dir`` a classifier writes checkpoints, history.json,
learning_curves.png, summary.txt, and what the network learned:
filters.png (first-layer filters), feature_maps.png (the first layer's maps
for a test digit) and confusion_matrix.png (on the hold-out).
"""
from __future__ import annotations

import os

import numpy as np

from ... import nn, optim
from ...autograd.grad_mode import no_grad
from ...data import DataLoader, TensorDataset, digits_split
from ...ops.creation import from_numpy
from ...random import Generator, _rng, manual_seed
from ..checkpoint import read_weights
from ..fit import evaluate
from . import register
from ._classifier import train_digits_classifier


# --------------------------------------------------------------------------- data
def _standardized_digits():
    """(x_train, y_train, x_test, y_test): digits as float32 (N, 1, 8, 8) images,
    standardized by the training images' overall mean and std."""
    x_tr, y_tr, x_te, y_te = digits_split(test_fraction=0.25, seed=0)
    mean, std = float(x_tr.mean()), float(x_tr.std())

    def images(x):
        return np.ascontiguousarray(((x - mean) / std).reshape(-1, 1, 8, 8), dtype=np.float32)
    return images(x_tr), y_tr, images(x_te), y_te


def _enlarge(x: np.ndarray, upsample: int) -> np.ndarray:
    """Nearest-neighbour enlarging: each pixel becomes an upsample x upsample block."""
    if upsample > 1:
        x = x.repeat(upsample, axis=2).repeat(upsample, axis=3)
    return np.ascontiguousarray(x)


class _DigitBatches:
    """collate_fn: stacks 8x8 samples, shifts each training image by a random
    -1, 0 or +1 pixel in each direction (filling with the background value:
    the digits are centred in their box, and a CNN should not care where),
    then enlarges the batch ``upsample`` times. Shifts come from nnforge's
    default generator, so ``resume`` restores them with the rest."""

    def __init__(self, upsample: int, shift: bool, background: float):
        self.upsample, self.shift, self.background = upsample, shift, background

    def __call__(self, samples):
        x = np.stack([s[0].numpy() for s in samples])
        y = np.array([int(s[1]) for s in samples], dtype=np.int64)
        if self.shift:
            n = len(x)
            padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)),
                            constant_values=self.background)
            offsets = _rng(None).integers(0, 3, size=(n, 2))
            x = np.stack([padded[i, :, dy:dy + 8, dx:dx + 8]
                          for i, (dy, dx) in enumerate(offsets)])
        return from_numpy(_enlarge(x.astype(np.float32), self.upsample)), from_numpy(y)


def _loader(x, y, batch_size, generator=None, *, upsample: int = 1, shift: bool = False,
            background: float = 0.0):
    return DataLoader(TensorDataset(from_numpy(x), from_numpy(y)), batch_size=batch_size,
                      shuffle=generator is not None, generator=generator,
                      collate_fn=_DigitBatches(upsample, shift, background))


# --------------------------------------------------------------------------- models
def _lenet(config):
    from ...models import LeNet5
    return LeNet5(10, 1, input_size=32, activation=config.get("activation", "relu"),
                  pooling=config.get("pooling", "max"))


def _resnet(config):
    from ...models import ResNet
    return ResNet(10, 1, widths=config.get("widths", (16, 32, 64)),
                  blocks=config.get("blocks", (1, 1, 1)))


def _rcnn(config):
    from ...models import RCNN
    return RCNN(10, 1, channels=config.get("channels", 32), layers=config.get("layers", 2),
                steps=config.get("steps", 3), dropout=config.get("dropout", 0.2))


# name -> (builder from a config dict, upsampling factor of the 8x8 digits)
_CLASSIFIERS = {"lenet": (_lenet, 4), "resnet": (_resnet, 1), "rcnn": (_rcnn, 1)}


# --------------------------------------------------------------------------- training
def train_classifier(name: str, config: dict, *, epochs: int, batch_size: int, lr: float,
                     weight_decay: float, seed: int, device, out_dir, resume, progress: bool,
                     log, augment: bool = True) -> dict:
    """Trains ``_CLASSIFIERS[name]`` with Adam on the digits and returns the
    history as a dict (plus "history", "model", "test_acc", "test_loss")."""
    build, upsample = _CLASSIFIERS[name]
    log = log if log is not None else (lambda line: None)
    manual_seed(seed)
    x_tr, y_tr, x_te, y_te = _standardized_digits()
    side = 8 * upsample
    how = f", enlarged {upsample}x to {side}x{side} by pixel repetition" if upsample > 1 else ""
    log(f"digits: {len(x_tr)} training and {len(x_te)} test images of 8x8 pixels{how}, "
        "10 classes (the val_ columns score the test images after each epoch)"
        + ("; training images shifted by up to 1 pixel at random" if augment else ""))
    train = _loader(x_tr, y_tr, batch_size, Generator().manual_seed(seed), upsample=upsample,
                    shift=augment, background=float(x_tr.min()))
    test = _loader(x_te, y_te, 256, upsample=upsample)
    model = build(config)
    log(f"model: {model}")
    log(f"Adam lr={lr} weight_decay={weight_decay} with cosine decay to 0 over {epochs} "
        f"epochs, batch {batch_size}")
    opt = optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    # Cosine annealing (Loshchilov and Hutter 2017): lr_e = lr (1 + cos(pi e / E)) / 2,
    # large steps early, small ones at the end, so the last epoch's model is a settled one.
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    loss_fn = nn.CrossEntropyLoss()
    config = {"recipe": f"{name}/digits", "seed": seed, "lr": lr, "batch_size": batch_size,
              "weight_decay": weight_decay, "augment": augment, **config}
    result = train_digits_classifier(model, loss_fn, opt, train, test, name=name,
                                     config=config, epochs=epochs, seed=seed,
                                     input_shape=(1, 1, side, side), scheduler=sched,
                                     device=device, out_dir=out_dir, resume=resume,
                                     progress=progress, log=log)
    if out_dir is not None:
        save_cnn_plots(model, _enlarge(x_te, upsample), y_te, out_dir, name, log)
    return result


def save_cnn_plots(model, x_te, y_te, out_dir: str, name: str, log=print) -> dict:
    """filters.png, feature_maps.png and confusion_matrix.png in ``out_dir`` (a note
    instead when matplotlib is missing); returns {name: path}."""
    from ... import viz
    from ..metrics import confusion_matrix
    if not viz.have_matplotlib():
        log("filters.png, feature_maps.png, confusion_matrix.png not written: matplotlib is "
            "not installed (pip install 'nnforge[plot]')")
        return {}
    model.eval()
    device = next(iter(model.parameters())).device
    with no_grad():
        logits = model(from_numpy(x_te).to(device))
    cm = confusion_matrix(logits, y_te, 10)
    first, _ = viz._first_conv(model, "save_cnn_plots")
    paths = {
        "filters": viz.plot_filters(model, os.path.join(out_dir, "filters.png"),
                                    title=f"{name}: first-layer filters ({first})"),
        "feature_maps": viz.plot_feature_maps(
            model, first, from_numpy(x_te[:1]).to(device), os.path.join(out_dir, "feature_maps.png"),
            title=f"{name}: {first} on a test digit (a {int(y_te[0])})"),
        "confusion_matrix": viz.plot_confusion_matrix(
            cm, os.path.join(out_dir, "confusion_matrix.png"),
            title=f"{name}: hold-out confusion ({np.trace(cm) / cm.sum() * 100:.1f}% correct)"),
    }
    log(f"wrote {', '.join(os.path.basename(p) for p in paths.values())} to {out_dir}")
    return paths


def _evaluator(name: str):
    def evaluate_digits(checkpoint, *, batch_size: int | None = None, device=None,
                        progress: bool = True, log=print) -> dict:
        weights, info = read_weights(checkpoint)
        config = (info.get("extra") or {}) if info else {}
        build, upsample = _CLASSIFIERS[name]
        model = build(config)
        model.load_state_dict(weights)
        _, _, x_te, y_te = _standardized_digits()
        scores = evaluate(model, _loader(x_te, y_te, batch_size or 256, upsample=upsample),
                          nn.CrossEntropyLoss(),
                          ["accuracy"], device=device)
        if log is not None:
            after = f" after epoch {info['epoch']}" if info.get("epoch") else ""
            log(f"{name} on digits, {checkpoint}{after}: test loss {scores['loss']:.4f}, "
                f"test accuracy {scores['accuracy'] * 100:.2f}% on {len(x_te)} images")
        return scores
    evaluate_digits.__doc__ = f"Loss and accuracy of a {name}/digits checkpoint on the hold-out."
    return evaluate_digits


# --------------------------------------------------------------------------- recipes
@register("lenet", "digits", evaluate=_evaluator("lenet"))
def lenet_digits(*, epochs: int = 40, batch_size: int = 32, lr: float = 2e-3,
                 weight_decay: float = 0.0, activation: str = "relu", pooling: str = "max",
                 augment: bool = True, seed: int = 0, device=None, out_dir=None, resume=None, progress: bool = True,
                 log=print) -> dict:
    """LeNet-5 (ReLU, max pooling) on the digits enlarged to 32x32; >= 98% test accuracy.

    See this module's docstring for the data protocol and the files written
    with ``out_dir``; ``augment``: random 1-pixel shifts of the training
    images; ``resume`` continues from a checkpoint.
    """
    return train_classifier("lenet", {"activation": activation, "pooling": pooling},
                            epochs=epochs, batch_size=batch_size, lr=lr,
                            weight_decay=weight_decay, seed=seed, device=device, out_dir=out_dir,
                            resume=resume, progress=progress, log=log, augment=augment)


@register("resnet", "digits", evaluate=_evaluator("resnet"))
def resnet_digits(*, epochs: int = 30, batch_size: int = 32, lr: float = 2e-3,
                  weight_decay: float = 1e-4, augment: bool = True, seed: int = 0, device=None, out_dir=None,
                  resume=None, progress: bool = True, log=print) -> dict:
    """A small ResNet (3 stages of one BasicBlock, 16-32-64 maps) at 8x8; >= 98% test accuracy.

    See this module's docstring for the data protocol and the files written
    with ``out_dir``; ``augment``: random 1-pixel shifts of the training
    images; ``resume`` continues from a checkpoint.
    """
    return train_classifier("resnet", {"widths": [16, 32, 64], "blocks": [1, 1, 1]},
                            epochs=epochs, batch_size=batch_size, lr=lr,
                            weight_decay=weight_decay, seed=seed, device=device, out_dir=out_dir,
                            resume=resume, progress=progress, log=log, augment=augment)


@register("rcnn", "digits", evaluate=_evaluator("rcnn"))
def rcnn_digits(*, epochs: int = 30, batch_size: int = 32, lr: float = 2e-3,
                weight_decay: float = 1e-4, steps: int = 3, augment: bool = True, seed: int = 0, device=None,
                out_dir=None, resume=None, progress: bool = True, log=print) -> dict:
    """A recurrent CNN (two RCLs of 32 maps, 3 steps each) at 8x8; >= 98% test accuracy.

    See this module's docstring for the data protocol and the files written
    with ``out_dir``; ``augment``: random 1-pixel shifts of the training
    images; ``resume`` continues from a checkpoint.
    """
    return train_classifier("rcnn", {"channels": 32, "layers": 2, "steps": steps,
                                     "dropout": 0.2},
                            epochs=epochs, batch_size=batch_size, lr=lr,
                            weight_decay=weight_decay, seed=seed, device=device, out_dir=out_dir,
                            resume=resume, progress=progress, log=log, augment=augment)


@register("conv_autoencoder", "digits")
def conv_autoencoder_digits(*, epochs: int = 40, batch_size: int = 64, lr: float = 3e-3,
                            decoder: str = "transpose", seed: int = 0, out_dir: str | None = None,
                            progress: bool = True, log=print) -> dict:
    """A convolutional autoencoder 1x8x8 -> 16x4x4 -> 32x2x2 -> back, squared error.

    ``decoder``: "transpose" (ConvTranspose2d) or "upsample" (nearest
    Upsample + Conv2d). Logs the test reconstruction MSE per pixel against
    the mean-image baseline; with ``out_dir``: history, curves, summary, the
    weights and a grid of test digits with their reconstructions.
    """
    from ...models import ConvAutoencoder
    from .autoencoder import _finish, _reconstruction_eval, train_autoencoder
    manual_seed(seed)
    model = ConvAutoencoder(1, (16, 32), decoder=decoder)
    result = train_autoencoder(model, "conv_autoencoder", epochs=epochs, batch_size=batch_size,
                               lr=lr, seed=seed, progress=progress, log=log,
                               evaluate=_reconstruction_eval, flatten=False)
    return _finish(result, "conv_autoencoder", out_dir, log, flatten=False)
