"""The training run the digits classifier recipes share (mlp, lenet, resnet,
rcnn): checkpoints and resume, ``fit`` scoring the hold-out after every epoch,
the final line, the run's output files and the result dict."""
from __future__ import annotations

import time

from ..callbacks import ModelCheckpoint
from ..checkpoint import resume as resume_from
from ..fit import evaluate, fit
from ..report import write_run_outputs


def train_digits_classifier(model, loss_fn, opt, train, test, *, name: str, config: dict,
                            epochs: int, seed: int, input_shape: tuple, scheduler=None,
                            device=None, out_dir=None, resume=None, progress: bool = True,
                            log=print) -> dict:
    """Trains ``model`` on ``train``, scoring ``test`` (the held-out split) after
    each epoch; with ``out_dir`` writes checkpoints (with ``config``), history,
    curves and summary; ``resume`` continues from a checkpoint. Returns the
    history as a dict plus "train_loss", "test_loss", "test_acc", "history", "model"."""
    callbacks = []
    if out_dir is not None:
        # "Best" is judged on the training loss: the val_ columns are the held-out
        # test split, and choosing a checkpoint by it would leak the test set.
        callbacks.append(ModelCheckpoint(out_dir, monitor="loss", extra=config))
    start, history = 0, None
    if resume is not None:
        state = resume_from(resume, model, opt, scheduler, loader=train, callbacks=callbacks)
        start, history = state.epoch, state.history
        log(f"resumed from {resume} after epoch {start}")
    if device is not None:
        model.to(device)
    t0 = time.perf_counter()
    history = fit(model, loss_fn, opt, train, val_loader=test, epochs=epochs,
                  callbacks=callbacks, metrics=["accuracy"], scheduler=scheduler, device=device,
                  progress=progress, log=log, start_epoch=start, history=history)
    final = evaluate(model, test, loss_fn, ["accuracy"], device=device)
    result_line = (f"final test accuracy {final['accuracy'] * 100:.2f}% "
                   f"(test loss {final['loss']:.4f}) after {time.perf_counter() - t0:.1f}s")
    log(result_line)
    if out_dir is not None:
        write_run_outputs(out_dir, history, model=model, input_shape=input_shape,
                          header=f"{name} on digits (seed {seed}, {history.epochs} epochs)",
                          lines=[result_line], log=log)
    result = dict(history)
    result.update({"train_loss": history["loss"], "test_loss": history["val_loss"],
                   "test_acc": history["val_accuracy"], "history": history, "model": model})
    return result
