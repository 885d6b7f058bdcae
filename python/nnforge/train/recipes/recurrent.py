"""Recipes for the recurrent family:

    nnforge train char_lstm --data tinyshakespeare   character LM (also char_gru, char_rnn)

The char-level language models train on the first 90% of tiny shakespeare
and report bits per character on the last 10% beside the data README's
baselines (add-one unigram 4.83, bigram 3.58 bits/char), then print a
sample generated from a prompt.
"""
from __future__ import annotations

import math
import os
import time

import numpy as np

from ... import optim
from ...autograd.grad_mode import no_grad
from ...data import CharVocab
from ...data.datasets import tinyshakespeare
from ...nn import functional as F
from ...nn.utils import clip_grad_norm_
from ...ops.creation import from_numpy
from ...random import Generator, _rng, manual_seed
from ..fit import History
from . import register

UNIGRAM_BITS, BIGRAM_BITS = 4.83, 3.58


def _batches(ids: np.ndarray, batch_size: int, seq_len: int, rng):
    """Endless (inputs, targets) pairs of (B, T) windows at random offsets:
    targets are the inputs shifted by one character."""
    starts_max = len(ids) - seq_len - 1
    while True:
        starts = rng.integers(0, starts_max, size=batch_size)
        idx = starts[:, None] + np.arange(seq_len + 1)
        w = ids[idx]
        yield from_numpy(np.ascontiguousarray(w[:, :-1])), from_numpy(np.ascontiguousarray(w[:, 1:]))


@no_grad()
def bits_per_char(model, ids: np.ndarray, seq_len: int = 200, batch_size: int = 64,
                  max_chars: int | None = None) -> float:
    """Mean -log2 p(next char) over ``ids`` (cut into consecutive windows, the
    state carried from window to window within each of ``batch_size`` streams)."""
    model.eval()
    n = len(ids) - 1 if max_chars is None else min(len(ids) - 1, max_chars)
    per_stream = n // batch_size
    steps = per_stream // seq_len
    if steps == 0:
        raise ValueError(f"bits_per_char: {n} characters are too few for {batch_size} streams "
                         f"of windows of {seq_len}")
    x_all = ids[:batch_size * per_stream].reshape(batch_size, per_stream)
    y_all = ids[1:batch_size * per_stream + 1].reshape(batch_size, per_stream)
    state, total, count = None, 0.0, 0
    for s in range(steps):
        sl = slice(s * seq_len, (s + 1) * seq_len)
        logits, state = model(from_numpy(np.ascontiguousarray(x_all[:, sl])), state)
        y = from_numpy(np.ascontiguousarray(y_all[:, sl]))
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                               reduction="sum")
        total += float(loss)
        count += y.numel()
    model.train()
    return total / count / math.log(2)


def train_char_lm(cell: str, *, steps: int, batch_size: int, seq_len: int, lr: float,
                  hidden: int, layers: int, embedding: int, seed: int, eval_every: int,
                  eval_chars: int, out_dir, progress: bool, log) -> dict:
    from tqdm.auto import tqdm

    from ...models import CharRNN
    log = log if log is not None else (lambda line: None)
    manual_seed(seed)
    train_text, val_text = tinyshakespeare("train"), tinyshakespeare("val")
    vocab = CharVocab(train_text + val_text)
    train_ids, val_ids = vocab.encode(train_text), vocab.encode(val_text)
    log(f"tinyshakespeare: {len(train_ids):,} training and {len(val_ids):,} validation "
        f"characters, {len(vocab)} distinct; baselines on validation: unigram "
        f"{UNIGRAM_BITS} and bigram {BIGRAM_BITS} bits/char")
    model = CharRNN(len(vocab), embedding, hidden, layers, cell=cell)
    log(f"model: {model}")
    log(f"parameters: {sum(p.numel() for p in model.parameters()):,}; Adam lr={lr}, "
        f"{steps} steps of {batch_size} windows x {seq_len} characters, gradient norm "
        "clipped at 1")
    opt = optim.Adam(model.parameters(), lr=lr)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    batches = _batches(train_ids, batch_size, seq_len, _rng(Generator().manual_seed(seed)))
    history = History()
    t0 = time.perf_counter()
    running = None
    bar = tqdm(range(1, steps + 1), desc=f"char_{cell}", unit="step", disable=not progress)
    for step in bar:
        x, y = next(batches)
        opt.zero_grad()
        logits, _ = model(x)
        loss = F.cross_entropy(logits.reshape(-1, len(vocab)), y.reshape(-1))
        loss.backward()
        clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        bits = float(loss) / math.log(2)
        running = bits if running is None else 0.95 * running + 0.05 * bits
        bar.set_postfix(train_bits=f"{running:.3f}", refresh=False)
        if step % eval_every == 0 or step == steps:
            val_bits = bits_per_char(model, val_ids, max_chars=eval_chars)
            row = {"epoch": step, "loss": running, "val_bits_per_char": val_bits,
                   "elapsed_s": time.perf_counter() - t0}
            history.append(row)
            line = (f"step {step:5d}/{steps}  train {running:.3f}  validation {val_bits:.3f} "
                    f"bits/char  ({row['elapsed_s']:.0f}s)")
            bar.write(line) if progress and log is print else log(line)
    bar.close()
    final = bits_per_char(model, val_ids)
    prompt = "ROMEO:\n"
    sample = vocab.decode(model.generate(list(vocab.encode(prompt)), 300, temperature=0.8,
                                         generator=Generator().manual_seed(seed)))
    result_line = (f"char_{cell}: validation {final:.3f} bits/char on all {len(val_ids):,} "
                   f"characters (bigram {BIGRAM_BITS}, unigram {UNIGRAM_BITS}) after "
                   f"{time.perf_counter() - t0:.0f}s")
    log(result_line)
    log(f"sample at temperature 0.8:\n{prompt}{sample}")
    if out_dir is not None:
        from ...io import save
        from ..report import write_run_outputs
        os.makedirs(out_dir, exist_ok=True)
        write_run_outputs(out_dir, history, model=model, header=f"char_{cell} on tinyshakespeare",
                          lines=[result_line, "sample:", prompt + sample], log=log)
        save(model.state_dict(), os.path.join(out_dir, f"char_{cell}.safetensors"))
    return {**history, "history": history, "model": model, "vocab": vocab,
            "val_bits_per_char": final, "sample": sample}


def _char_recipe(cell: str, steps: int, lr: float):
    def recipe(*, epochs: int | None = None, batch_size: int = 32, lr: float = lr,
               seq_len: int = 100, hidden: int = 256, layers: int = 2, embedding: int = 64,
               seed: int = 0, out_dir=None, progress: bool = True, log=print) -> dict:
        # ``epochs`` (the CLI's --epochs) counts hundreds of steps here.
        n_steps = steps if epochs is None else 100 * epochs
        return train_char_lm(cell, steps=n_steps, batch_size=batch_size, seq_len=seq_len,
                             lr=lr, hidden=hidden, layers=layers, embedding=embedding,
                             seed=seed, eval_every=100, eval_chars=20000, out_dir=out_dir,
                             progress=progress, log=log)
    recipe.__name__ = f"char_{cell}_tinyshakespeare"
    recipe.__doc__ = (f"A 2-layer character-level {cell.upper()} language model on tiny "
                      f"shakespeare; validation bits/char vs the bigram's {BIGRAM_BITS}.\n\n"
                      f"{steps} steps by default; --epochs N runs N x 100 steps.")
    return recipe


for _cell, _steps, _lr in (("lstm", 800, 3e-3), ("gru", 800, 3e-3), ("rnn", 800, 1e-3)):
    register(f"char_{_cell}", "tinyshakespeare")(_char_recipe(_cell, _steps, _lr))


# --------------------------------------------------------------------------- sunspots
def sunspot_windows(window: int, val_fraction: float = 0.2):
    """Standardized yearly sunspot numbers cut into (window -> next year) samples:
    (x_train, y_train, x_val, y_val, scale) with x (N, window, 1), y (N, 1); the
    last ``val_fraction`` of the years are the validation targets, and the mean
    and std used to standardize come from the training years only."""
    from ...data.datasets import sunspots, windowed
    _, values = sunspots()
    n_val = int(round(len(values) * val_fraction))
    split = len(values) - n_val
    mean, std = float(values[:split].mean()), float(values[:split].std())
    z = ((values - mean) / std).astype(np.float32)
    x, y = windowed(z, window)          # target of sample i is year i + window
    is_val = np.arange(len(x)) + window >= split
    return (x[~is_val, :, None], y[~is_val], x[is_val, :, None], y[is_val], std)


@register("forecaster", "sunspots")
def forecaster_sunspots(*, epochs: int = 150, batch_size: int = 32, lr: float = 5e-3,
                        window: int = 24, hidden: int = 32, cell: str = "lstm", seed: int = 0,
                        progress: bool = True, log=print) -> dict:
    """An LSTM reads 24 years of sunspot numbers and predicts the next; validation MSE
    against persistence (next year = this year) on the last 20% of the years.

    Standardized series (training years' statistics), many-to-one LSTM of 32
    units, Adam with cosine decay; MSE reported in the original units.
    """
    from ...data import DataLoader, TensorDataset
    from ...models import ManyToOne
    from ..fit import evaluate, fit
    log = log if log is not None else (lambda line: None)
    manual_seed(seed)
    x_tr, y_tr, x_va, y_va, scale = sunspot_windows(window)
    persistence = float(((x_va[:, -1, 0] - y_va[:, 0]) ** 2).mean()) * scale ** 2
    log(f"sunspots: {len(x_tr)} training and {len(x_va)} validation windows of {window} "
        f"years; persistence (next = this year) validation MSE {persistence:.1f}")
    train = DataLoader(TensorDataset(from_numpy(x_tr), from_numpy(y_tr)), batch_size=batch_size,
                       shuffle=True, generator=Generator().manual_seed(seed))
    val = DataLoader(TensorDataset(from_numpy(x_va), from_numpy(y_va)), batch_size=256)
    model = ManyToOne(1, hidden, 1, cell=cell)
    opt = optim.Adam(model.parameters(), lr=lr)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    from ...nn import MSELoss
    history = fit(model, MSELoss(), opt, train, val_loader=val, epochs=epochs, scheduler=sched,
                  progress=progress, log=None)
    final = evaluate(model, val, MSELoss())["loss"] * scale ** 2
    line = (f"forecaster ({cell}): validation MSE {final:.1f} vs persistence {persistence:.1f} "
            f"({final / persistence:.2f}x) in the original units")
    log(line)
    return {**history, "history": history, "model": model, "val_mse": final,
            "persistence_mse": persistence}
