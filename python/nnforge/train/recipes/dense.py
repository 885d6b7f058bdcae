"""Recipes for the dense families (perceptron, MLP, autoencoders, GAN) on bundled data."""
from __future__ import annotations

import time

from ... import nn, optim
from ...data import DataLoader, TensorDataset, digits_split
from ...ops.creation import from_numpy
from ...random import Generator, manual_seed
from ..loop import fit_classifier
from . import register


@register("mlp", "digits")
def mlp_digits(*, epochs: int = 40, batch_size: int = 32, lr: float = 0.01, momentum: float = 0.9,
               weight_decay: float = 5e-4, hidden: int = 256, seed: int = 0, progress: bool = True,
               log=print) -> dict:
    """An MLP 64-hidden-10 on the UCI digits (standardized pixels), stratified 25%
    hold-out (split seed 0); ``seed`` sets the initialization and the shuffling."""
    from ...models import MLP
    manual_seed(seed)
    x_tr, y_tr, x_te, y_te = digits_split(test_fraction=0.25, seed=0, standardize=True)
    log(f"digits: {len(x_tr)} training and {len(x_te)} test images of 8x8 pixels, 10 classes")
    train = DataLoader(TensorDataset(from_numpy(x_tr), from_numpy(y_tr)), batch_size=batch_size,
                       shuffle=True, generator=Generator().manual_seed(seed))
    test = DataLoader(TensorDataset(from_numpy(x_te), from_numpy(y_te)), batch_size=256)
    model = MLP(64, [hidden], 10)
    log(f"model: {model}")
    log(f"parameters: {sum(p.numel() for p in model.parameters()):,}; SGD lr={lr} "
        f"momentum={momentum} weight_decay={weight_decay}, batch {batch_size}, {epochs} epochs")
    opt = optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    t0 = time.perf_counter()
    history = fit_classifier(model, train, test, nn.CrossEntropyLoss(), opt, epochs,
                             progress=progress, log=log)
    log(f"final test accuracy {history['test_acc'][-1] * 100:.2f}% "
        f"after {time.perf_counter() - t0:.1f}s")
    history["model"] = model
    return history

