"""Many-to-one sequence classification with a bidirectional LSTM:

    nnforge train bilstm --data digits     a digit read as 8 rows of 8 pixels

Each 8x8 digit becomes a sequence of its rows, top to bottom: step t feeds
row t (8 pixels) to the LSTM. One direction reads the digit downwards, the
other upwards; their last states (h_T of the forward pass, h_1 of the
backward pass) are concatenated and a linear layer scores the 10 classes.
Neither direction sees the whole image at once: what it knows about rows
already read is whatever its state carried, which is the point of the
exercise. Same split, standardization, optimizer schedule and outputs as the
other digits classifiers (see recipes/cnn.py).
"""
from __future__ import annotations

from ... import nn, optim
from ...data import DataLoader, TensorDataset
from ...ops.creation import from_numpy
from ...random import Generator, manual_seed
from . import register
from ._classifier import train_digits_classifier


def _rows_loader(x, y, batch_size, generator=None):
    return DataLoader(TensorDataset(from_numpy(x), from_numpy(y)), batch_size=batch_size,
                      shuffle=generator is not None, generator=generator)


@register("bilstm", "digits")
def bilstm_digits(*, epochs: int = 40, batch_size: int = 32, lr: float = 3e-3,
                  hidden: int = 64, layers: int = 1, weight_decay: float = 1e-4, seed: int = 0,
                  device=None, out_dir=None, resume=None, progress: bool = True,
                  log=print) -> dict:
    """A bidirectional LSTM reads each digit row by row (8 steps of 8 pixels) and
    classifies it from its two last states; Adam with cosine decay.

    Stratified 25% hold-out (split seed 0) scored after every epoch (reported
    only); with ``out_dir``: checkpoints, history.json, learning curves, summary.
    """
    from ...models import ManyToOne
    from .cnn import _standardized_digits
    log = log if log is not None else (lambda line: None)
    manual_seed(seed)
    x_tr, y_tr, x_te, y_te = (a.reshape(-1, 8, 8) if a.ndim == 4 else a
                              for a in _standardized_digits())
    log(f"digits: {len(x_tr)} training and {len(x_te)} test images, each read as a sequence "
        "of 8 rows of 8 pixels (the val_ columns score the test images after each epoch)")
    train = _rows_loader(x_tr, y_tr, batch_size, Generator().manual_seed(seed))
    test = _rows_loader(x_te, y_te, 256)
    model = ManyToOne(8, hidden, 10, cell="lstm", num_layers=layers, bidirectional=True)
    log(f"model: {model}")
    log(f"parameters: {sum(p.numel() for p in model.parameters()):,}; Adam lr={lr} "
        f"weight_decay={weight_decay} with cosine decay over {epochs} epochs, batch {batch_size}")
    opt = optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    config = {"recipe": "bilstm/digits", "hidden": hidden, "layers": layers, "seed": seed,
              "lr": lr, "batch_size": batch_size, "weight_decay": weight_decay}
    return train_digits_classifier(model, nn.CrossEntropyLoss(), opt, train, test,
                                   name="bilstm", config=config, epochs=epochs, seed=seed,
                                   input_shape=(1, 8, 8), scheduler=sched, device=device,
                                   out_dir=out_dir, resume=resume, progress=progress, log=log)
