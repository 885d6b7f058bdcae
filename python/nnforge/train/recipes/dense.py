"""The recipe of the MLP classifier on the bundled digits (the README's main job);
the other dense families keep their recipes in modules of their own."""
from __future__ import annotations

from ... import nn, optim
from ...data import DataLoader, TensorDataset, digits_split
from ...ops.creation import from_numpy
from ...random import Generator, manual_seed
from ..checkpoint import read_weights
from ..fit import evaluate
from . import register
from ._classifier import train_digits_classifier


def _digits_arrays():
    # The data README's protocol: stratified 25% hold-out (split seed 0),
    # pixels standardized by the training part's statistics.
    return digits_split(test_fraction=0.25, seed=0, standardize=True)


def _loader(x, y, batch_size, generator=None):
    return DataLoader(TensorDataset(from_numpy(x), from_numpy(y)), batch_size=batch_size,
                      shuffle=generator is not None, generator=generator)


def evaluate_mlp_digits(checkpoint, *, batch_size: int | None = None, device=None,
                        progress: bool = True, log=print) -> dict:
    """Loss and accuracy of an mlp/digits checkpoint (or state_dict file) on the 25% hold-out."""
    from ...models import MLP
    _, _, x_te, y_te = _digits_arrays()
    weights, info = read_weights(checkpoint)
    if "layers.0.weight" not in weights:
        raise ValueError(f"evaluate mlp/digits: {checkpoint} holds no MLP weights "
                         f"(keys {sorted(weights)[:4]}...)")
    model = MLP(64, [int(weights["layers.0.weight"].shape[0])], 10)
    model.load_state_dict(weights)
    scores = evaluate(model, _loader(x_te, y_te, batch_size or 256), nn.CrossEntropyLoss(),
                      ["accuracy"], device=device)
    if log is not None:
        after = f" after epoch {info['epoch']}" if info.get("epoch") else ""
        log(f"mlp on digits, {checkpoint}{after}: test loss {scores['loss']:.4f}, "
            f"test accuracy {scores['accuracy'] * 100:.2f}% on {len(x_te)} images")
    return scores


@register("mlp", "digits", evaluate=evaluate_mlp_digits)
def mlp_digits(*, epochs: int = 40, batch_size: int = 32, lr: float = 0.01, momentum: float = 0.9,
               weight_decay: float = 5e-4, hidden: int = 256, seed: int = 0, device=None,
               out_dir=None, resume=None, progress: bool = True, log=print) -> dict:
    """An MLP 64-256-10 on the UCI digits with SGD; >= 97% test accuracy in 40 epochs.

    Standardized pixels, stratified 25% hold-out (split seed 0), evaluated
    after every epoch (reported only: no model selection, the result is the
    last epoch's); ``seed`` sets the initialization and the shuffling. With
    ``out_dir``: last/best checkpoints (best by the training loss: choosing by
    the hold-out would leak it), history.json, learning_curves.png and
    summary.txt. ``resume``: a checkpoint to continue.
    """
    from ...models import MLP
    log = log if log is not None else (lambda line: None)
    manual_seed(seed)
    x_tr, y_tr, x_te, y_te = _digits_arrays()
    log(f"digits: {len(x_tr)} training and {len(x_te)} test images of 8x8 pixels, 10 classes "
        "(the val_ columns score the test images after each epoch)")
    train = _loader(x_tr, y_tr, batch_size, Generator().manual_seed(seed))
    test = _loader(x_te, y_te, 256)
    model = MLP(64, [hidden], 10)
    log(f"model: {model}")
    log(f"parameters: {sum(p.numel() for p in model.parameters()):,}; SGD lr={lr} "
        f"momentum={momentum} weight_decay={weight_decay}, batch {batch_size}, {epochs} epochs")
    opt = optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    loss_fn = nn.CrossEntropyLoss()

    config = {"recipe": "mlp/digits", "hidden": hidden, "seed": seed, "lr": lr,
              "batch_size": batch_size, "momentum": momentum, "weight_decay": weight_decay}
    return train_digits_classifier(model, loss_fn, opt, train, test, name="mlp", config=config,
                                   epochs=epochs, seed=seed, input_shape=(1, 64), device=device,
                                   out_dir=out_dir, resume=resume, progress=progress, log=log)
