"""The recipe of the MLP classifier on the bundled digits (the README's main job);
the other dense families keep their recipes in modules of their own."""
from __future__ import annotations

import time

from ... import nn, optim
from ...data import DataLoader, TensorDataset, digits_split
from ...ops.creation import from_numpy
from ...random import Generator, manual_seed
from ..callbacks import ModelCheckpoint
from ..checkpoint import read_weights, resume as resume_from
from ..fit import evaluate, fit
from ..report import write_run_outputs
from . import register


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
    ``out_dir``: last/best checkpoints (best by the hold-out loss), history.json,
    learning_curves.png and summary.txt. ``resume``: a checkpoint to continue.
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

    callbacks = []
    config = {"recipe": "mlp/digits", "hidden": hidden, "seed": seed, "lr": lr,
              "batch_size": batch_size, "momentum": momentum, "weight_decay": weight_decay}
    if out_dir is not None:
        # "Best" is judged on the training loss: the val_ columns here are the
        # held-out test split, and choosing a checkpoint by it would leak the test set.
        callbacks.append(ModelCheckpoint(out_dir, monitor="loss", extra=config))
    start, history = 0, None
    if resume is not None:
        state = resume_from(resume, model, opt, loader=train, callbacks=callbacks)
        start, history = state.epoch, state.history
        log(f"resumed from {resume} after epoch {start}")
    if device is not None:
        model.to(device)

    t0 = time.perf_counter()
    history = fit(model, loss_fn, opt, train, val_loader=test, epochs=epochs,
                  callbacks=callbacks, metrics=["accuracy"], device=device, progress=progress,
                  log=log, start_epoch=start, history=history)
    final = evaluate(model, test, loss_fn, ["accuracy"], device=device)
    result_line = (f"final test accuracy {final['accuracy'] * 100:.2f}% "
                   f"(test loss {final['loss']:.4f}) after {time.perf_counter() - t0:.1f}s")
    log(result_line)
    if out_dir is not None:
        write_run_outputs(out_dir, history, model=model, input_shape=(1, 64),
                          header=f"mlp on digits (seed {seed}, {history.epochs} epochs)",
                          lines=[result_line], log=log)
    result = dict(history)
    result.update({"train_loss": history["loss"], "test_loss": history["val_loss"],
                   "test_acc": history["val_accuracy"], "history": history, "model": model})
    return result
