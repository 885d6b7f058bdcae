"""GPT pretraining on tiny shakespeare:

    nnforge train gpt --data tinyshakespeare        character tokens (default)
    nnforge train gpt_bpe --data tinyshakespeare    byte-level BPE, 512 tokens

A small decoder-only Transformer (nf.models.GPT) learns to predict the next
token of random windows of the first 90% of the text with AdamW, linear
warm-up and cosine decay. The score is validation *bits per character* on
the last 10% (the loss of every validation token, summed, over the number of
characters they cover, / ln 2), so character and BPE models compare with each
other and with the data README's baselines (unigram 4.83, bigram 3.58). The
validation text is cut into consecutive windows of block_size tokens, so the
first tokens of each window see little context: a slightly pessimistic score.
A sample is generated with the KV cache (temperature 0.8, top-k 40).
"""
from __future__ import annotations

import math
import os
import time

import numpy as np

from ...autograd.grad_mode import no_grad
from ...data.datasets import tinyshakespeare
from ...data.tokenizers import ByteBPETokenizer, CharTokenizer
from ...nn import functional as F
from ...nn.utils import clip_grad_norm_
from ...ops.creation import from_numpy
from ...random import Generator, _rng, manual_seed
from ..fit import History
from . import register
from ._optim import adamw_matrix_decay, warmup_cosine
from .recurrent import BIGRAM_BITS, UNIGRAM_BITS, _batches


@no_grad()
def gpt_bits_per_char(model, ids: np.ndarray, chars_per_token: float,
                      batch_size: int = 16, max_tokens: int | None = None) -> float:
    """Validation bits/char over consecutive windows of ``model.block_size`` tokens."""
    model.eval()
    t = model.block_size
    n = len(ids) - 1 if max_tokens is None else min(len(ids) - 1, max_tokens)
    windows = n // t
    if windows == 0:
        raise ValueError(f"gpt_bits_per_char: {n} tokens are fewer than one window of {t}")
    x_all = ids[:windows * t].reshape(windows, t)
    y_all = ids[1:windows * t + 1].reshape(windows, t)
    total = 0.0
    for s in range(0, windows, batch_size):
        logits = model(from_numpy(np.ascontiguousarray(x_all[s:s + batch_size])))
        y = from_numpy(np.ascontiguousarray(y_all[s:s + batch_size]).reshape(-1))
        total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y,
                                       reduction="sum"))
    model.train()
    return total / (windows * t * chars_per_token) / math.log(2)


def train_gpt(tokens: str, *, steps: int, batch_size: int, block_size: int, n_layer: int,
              n_head: int, d_model: int, dropout: float, lr: float, weight_decay: float,
              warmup: int, vocab_size: int, positions: str, seed: int, eval_every: int,
              out_dir, progress: bool, log) -> dict:
    from tqdm.auto import tqdm

    from ...models import GPT
    log = log if log is not None else (lambda line: None)
    manual_seed(seed)
    train_text, val_text = tinyshakespeare("train"), tinyshakespeare("val")
    t0 = time.perf_counter()
    tok = (CharTokenizer.train(train_text + val_text, specials=()) if tokens == "char"
           else ByteBPETokenizer.train(train_text, vocab_size, specials=()))
    train_ids = np.array(tok.encode(train_text), dtype=np.int64)
    val_ids = np.array(tok.encode(val_text), dtype=np.int64)
    chars_per_token = len(val_text) / len(val_ids)
    log(f"tinyshakespeare: {tokens} tokens, vocabulary {tok.vocab_size} "
        f"({time.perf_counter() - t0:.1f}s to build), {len(train_ids):,} training and "
        f"{len(val_ids):,} validation tokens ({chars_per_token:.2f} characters each); "
        f"baselines: unigram {UNIGRAM_BITS}, bigram {BIGRAM_BITS} bits/char")
    model = GPT(tok.vocab_size, block_size, n_layer, n_head, d_model, dropout=dropout,
                positions=positions)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"GPT: {n_layer} layers, {n_head} heads, d_model {d_model}, block {block_size}, "
        f"{positions} positions, {n_params:,} parameters; AdamW lr={lr} "
        f"weight_decay={weight_decay}, {warmup} warm-up steps then cosine decay, {steps} steps "
        f"of {batch_size} x {block_size} tokens")
    opt = adamw_matrix_decay(model.parameters(), lr, weight_decay, betas=(0.9, 0.95))
    sched = warmup_cosine(opt, warmup, steps, floor=0.1)
    batches = _batches(train_ids, batch_size, block_size, _rng(Generator().manual_seed(seed)))
    history = History()
    running = None
    t0 = time.perf_counter()
    bar = tqdm(range(1, steps + 1), desc=f"gpt ({tokens})", unit="step", disable=not progress)
    for step in bar:
        x, y = next(batches)
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, tok.vocab_size), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        bits = float(loss) / math.log(2) / chars_per_token
        running = bits if running is None else 0.95 * running + 0.05 * bits
        bar.set_postfix(train_bits_per_char=f"{running:.3f}", refresh=False)
        if step % eval_every == 0 or step == steps:
            val = gpt_bits_per_char(model, val_ids, chars_per_token, max_tokens=40_000)
            row = {"epoch": step, "loss": running, "val_bits_per_char": val,
                   "elapsed_s": time.perf_counter() - t0}
            history.append(row)
            line = (f"step {step:5d}/{steps}  train {running:.3f}  validation {val:.3f} "
                    f"bits/char  ({row['elapsed_s']:.0f}s)")
            bar.write(line) if progress and log is print else log(line)
    bar.close()
    train_s = time.perf_counter() - t0
    final = gpt_bits_per_char(model, val_ids, chars_per_token)
    prompt = "ROMEO:\n"
    t1 = time.perf_counter()
    new = model.generate(tok.encode(prompt), 200, temperature=0.8, top_k=40,
                         generator=Generator().manual_seed(seed))
    gen_s = time.perf_counter() - t1
    sample = tok.decode(new)
    result_line = (f"gpt ({tokens}): validation {final:.3f} bits/char on all "
                   f"{len(val_ids):,} validation tokens (bigram {BIGRAM_BITS}, unigram "
                   f"{UNIGRAM_BITS}) after {steps} steps, {train_s:.0f}s; generation "
                   f"{len(new) / gen_s:.0f} tokens/s with the KV cache")
    log(result_line)
    log(f"sample at temperature 0.8, top-k 40:\n{prompt}{sample}")
    if out_dir is not None:
        from ...io import save
        from ..report import write_run_outputs
        os.makedirs(out_dir, exist_ok=True)
        write_run_outputs(out_dir, history, model=model, header=f"gpt ({tokens}) on "
                          "tinyshakespeare", lines=[result_line, "sample:", prompt + sample],
                          log=log)
        save(model.state_dict(), os.path.join(out_dir, f"gpt_{tokens}.safetensors"))
        tok.save(os.path.join(out_dir, "tokenizer.json"))
    return {**history, "history": history, "model": model, "tokenizer": tok,
            "val_bits_per_char": final, "sample": sample}


def _gpt_recipe(tokens: str, vocab_size: int):
    def recipe(*, epochs: int | None = None, steps: int = 600, batch_size: int = 32,
               block_size: int = 128, n_layer: int = 4, n_head: int = 4, d_model: int = 128,
               dropout: float = 0.0, lr: float = 2e-3, weight_decay: float = 0.1,
               warmup: int = 50, positions: str = "learned", seed: int = 0, out_dir=None,
               progress: bool = True, log=print) -> dict:
        # ``epochs`` (the CLI's --epochs) counts hundreds of steps here.
        n_steps = steps if epochs is None else 100 * epochs
        return train_gpt(tokens, steps=n_steps, batch_size=batch_size, block_size=block_size,
                         n_layer=n_layer, n_head=n_head, d_model=d_model, dropout=dropout,
                         lr=lr, weight_decay=weight_decay, warmup=min(warmup, n_steps),
                         vocab_size=vocab_size, positions=positions, seed=seed,
                         eval_every=100, out_dir=out_dir, progress=progress, log=log)
    name = "gpt" if tokens == "char" else "gpt_bpe"
    recipe.__name__ = f"{name}_tinyshakespeare"
    recipe.__doc__ = (f"A 4-layer GPT (d_model 128) on tiny shakespeare with {tokens} tokens; "
                      f"validation bits/char vs the bigram's {BIGRAM_BITS}.\n\n600 steps by "
                      "default; --epochs N runs N x 100 steps.")
    return recipe


register("gpt", "tinyshakespeare")(_gpt_recipe("char", 0))
register("gpt_bpe", "tinyshakespeare")(_gpt_recipe("bpe", 512))
