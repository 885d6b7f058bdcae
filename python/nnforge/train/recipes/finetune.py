"""Fine-tuning a pretrained GPT to a new target, five ways:

    nnforge train finetune --data tinyshakespeare

The source domain is every speech of tiny shakespeare except those of one
character (DUKE VINCENTIO by default); the target domain is that character's
speeches, headed "DUKE VINCENTIO:", a name the pretrained model has never seen.
A character-level GPT is pretrained once on the source (first 90% of its
speeches; the last 10% are the source validation text). Then a copy of it is
adapted to the first 80% of the target speeches by each method:

- full:    every weight trains;
- lora:    rank-4 LoRA on every Linear of the blocks (qkv, proj, mlp.0, mlp.2);
- adapter: Houlsby bottleneck adapters (16 wide) after attention and MLP;
- prefix:  16 learned keys/values per layer, started at those the pretrained model
           computes for the adaptation text's first 16 characters (its first header);
- prompt:  16 learned input embeddings, started at those characters' embeddings.
           At this scale prompt-tuning gains least (as Lester et al. found for small
           models): a prompt acts only through attention to the first positions.

For each the table gives the trainable parameters (and their share), the loss
on the held-out last 20% of the target speeches before and after (nats per
character, over consecutive windows of block_size - 16 characters: a prompt
takes 16 positions), the source validation loss after (on its first 30,000
characters: what the change did to the rest of Shakespeare) and the wall time
of the adaptation. Every method uses the same batch, AdamW and 150 steps, but
prompt-tuning, which converges slowest (its gradient reaches the prompt only
through attention), gets 450; each has its own learning rate (prefix and
prompt vectors need larger steps than weight updates do).
"""
from __future__ import annotations

import copy
import json
import os
import time

import numpy as np

from ... import peft
from ...autograd.grad_mode import no_grad
from ...data.datasets import tinyshakespeare
from ...data.tokenizers import CharTokenizer
from ...nn import functional as F
from ...nn.utils import clip_grad_norm_
from ...ops.creation import from_numpy
from ...random import Generator, _rng, manual_seed
from ..fit import History
from . import register
from ._optim import adamw_matrix_decay, warmup_cosine
from .recurrent import _batches

N_VIRTUAL = 16      # prefix / prompt length, and what the evaluation windows leave free
# name -> (learning rate, weight decay, steps as a multiple of ``steps``, the wrapping)
METHODS = {
    "full": (5e-4, 0.1, 1, lambda m, ids: m),
    "lora": (3e-3, 0.0, 1, lambda m, ids: peft.apply_lora(m, ("qkv", "proj", "mlp.0", "mlp.2"),
                                                          r=4, alpha=8)),
    "adapter": (3e-3, 0.0, 1, lambda m, ids: peft.apply_adapters(m, bottleneck=16)),
    "prefix": (1e-1, 0.0, 1, lambda m, ids: peft.apply_prefix_tuning(m, N_VIRTUAL,
                                                                     init_ids=ids)),
    "prompt": (1e-1, 0.0, 3, lambda m, ids: peft.PromptTuning(m, N_VIRTUAL, init_ids=ids)),
}


def speaker_split(text: str, speaker: str) -> tuple:
    """(source, target): the speeches (blank-line separated blocks headed ``NAME:``)
    of everyone but ``speaker``, and of ``speaker``, each joined by blank lines."""
    blocks = [b.strip("\n") for b in text.split("\n\n") if b.strip()]
    head = speaker + ":"
    target = [b for b in blocks if b.split("\n", 1)[0] == head]
    if not target:
        raise ValueError(f"finetune: no speech of {speaker!r} in tiny shakespeare")
    source = [b for b in blocks if b.split("\n", 1)[0] != head]
    return "\n\n".join(source) + "\n\n", "\n\n".join(target) + "\n\n"


def _split_at(text: str, fraction: float) -> tuple:
    """Cuts at the speech boundary nearest ``fraction`` of the characters."""
    cut = text.rfind("\n\n", 0, int(len(text) * fraction)) + 2
    return text[:cut], text[cut:]


@no_grad()
def mean_loss(model, ids: np.ndarray, window: int, batch_size: int = 32) -> float:
    """Mean next-character loss (nats) over consecutive windows of ``window``."""
    was_training = model.training
    model.eval()
    n = (len(ids) - 1) // window
    x_all = ids[:n * window].reshape(n, window)
    y_all = ids[1:n * window + 1].reshape(n, window)
    total = 0.0
    for s in range(0, n, batch_size):
        logits = model(from_numpy(np.ascontiguousarray(x_all[s:s + batch_size])))
        y = from_numpy(np.ascontiguousarray(y_all[s:s + batch_size]).reshape(-1))
        total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y,
                                       reduction="sum"))
    model.train(was_training)
    return total / (n * window)


def _train(model, ids: np.ndarray, *, steps: int, lr: float, weight_decay: float,
           batch_size: int, window: int, warmup: int, seed: int, desc: str,
           progress: bool) -> float:
    """AdamW on the trainable parameters, linear warm-up then cosine to 10%; returns
    the last training loss."""
    from tqdm.auto import tqdm
    params = [p for p in model.parameters() if p.requires_grad]
    opt = adamw_matrix_decay(params, lr, weight_decay, betas=(0.9, 0.95))
    sched = warmup_cosine(opt, warmup, steps, floor=0.1)
    batches = _batches(ids, batch_size, window, _rng(Generator().manual_seed(seed)))
    model.train()
    running = None
    bar = tqdm(range(steps), desc=desc, unit="step", disable=not progress, leave=False)
    for _ in bar:
        x, y = next(batches)
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        running = float(loss) if running is None else 0.9 * running + 0.1 * float(loss)
        bar.set_postfix(loss=f"{running:.3f}", refresh=False)
    bar.close()
    return running


def _table(rows: list) -> list:
    lines = [f"{'method':<8} {'steps':>5} {'trainable':>9} {'share':>7}  "
             f"{'target loss before -> after':>27}  {'source after':>12}  {'time':>6}"]
    for r in rows:
        lines.append(f"{r['method']:<8} {r['steps']:>5} {r['trainable']:>9,} "
                     f"{r['share']:>6.2%}  {r['target_before']:>12.3f} -> "
                     f"{r['target_after']:<11.3f}"
                     f"  {r['source_after']:>12.3f}  {r['seconds']:>5.0f}s")
    return lines


@register("finetune", "tinyshakespeare")
def finetune_tinyshakespeare(*, epochs: int | None = None, pretrain_steps: int = 700,
                             steps: int = 150, batch_size: int = 32, block_size: int = 64,
                             n_layer: int = 3, n_head: int = 4, d_model: int = 96,
                             speaker: str = "DUKE VINCENTIO", methods=tuple(METHODS),
                             pretrained: str | None = None, source_eval_chars: int = 30_000,
                             seed: int = 0, out_dir=None, progress: bool = True,
                             log=print) -> dict:
    """Pretrains a small character GPT on tiny shakespeare without one character's
    speeches, then adapts it to that character by full fine-tuning, LoRA, adapters,
    prefix- and prompt-tuning, and tabulates trainable parameters, target loss
    before and after, and time.

    --epochs N runs N x 100 adaptation steps per method (150 by default;
    prompt-tuning takes three times as many). With ``out_dir`` the pretrained
    model is saved there as pretrained.safetensors; ``pretrained=PATH`` starts
    from such a file instead of pretraining."""
    from ...models import GPT
    log = log if log is not None else (lambda line: None)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"finetune: unknown methods {unknown}; choose from {list(METHODS)}")
    steps = steps if epochs is None else 100 * epochs
    manual_seed(seed)
    text = tinyshakespeare()
    source, target = speaker_split(text, speaker)
    src_train, src_val = _split_at(source, 0.9)
    tgt_train, tgt_val = _split_at(target, 0.8)
    tok = CharTokenizer.train(text, specials=())
    enc = {k: np.array(tok.encode(v), dtype=np.int64) for k, v in (
        ("src_train", src_train), ("src_val", src_val), ("tgt_train", tgt_train),
        ("tgt_val", tgt_val))}
    window = block_size - N_VIRTUAL
    src_eval = enc["src_val"][:source_eval_chars + 1]
    log(f"source: {len(src_train):,} training and {len(src_val):,} validation characters "
        f"(all speeches but {speaker}'s); target: {speaker}'s speeches, {len(tgt_train):,} "
        f"for adaptation and {len(tgt_val):,} held out")

    base = GPT(tok.vocab_size, block_size, n_layer, n_head, d_model)
    t0 = time.perf_counter()
    if pretrained is not None:
        from ...io import load
        base.load_state_dict(load(pretrained))
        log(f"pretrained GPT loaded from {pretrained}")
    else:
        log(f"pretraining a GPT ({n_layer} layers, d_model {d_model}, "
            f"{peft.count_parameters(base)[1]:,} parameters) for {pretrain_steps} steps of "
            f"{batch_size} x {block_size} characters")
        _train(base, enc["src_train"], steps=pretrain_steps, lr=2e-3, weight_decay=0.1,
               batch_size=batch_size, window=block_size, warmup=30, seed=seed,
               desc="pretrain", progress=progress)
    pretrain_s = time.perf_counter() - t0
    if out_dir is not None and pretrained is None:
        from ...io import save
        os.makedirs(out_dir, exist_ok=True)
        save(base.state_dict(), os.path.join(out_dir, "pretrained.safetensors"))
    before = mean_loss(base, enc["tgt_val"], window)
    source_before = mean_loss(base, src_eval, window)
    log(f"pretrained in {pretrain_s:.0f}s: source validation {source_before:.3f}, target "
        f"{before:.3f} nats/char; now {steps} adaptation steps per method "
        "(prompt-tuning 3x)")

    init_ids = [int(i) for i in enc["tgt_train"][:N_VIRTUAL]]
    history, rows = History(), []
    for i, name in enumerate(methods):
        lr, weight_decay, factor, wrap = METHODS[name]
        model = wrap(copy.deepcopy(base), init_ids)
        trainable, total = peft.count_parameters(model)
        t0 = time.perf_counter()
        train_loss = _train(model, enc["tgt_train"], steps=factor * steps, lr=lr,
                            weight_decay=weight_decay, batch_size=batch_size, window=window,
                            warmup=10, seed=seed + 1, desc=name, progress=progress)
        seconds = time.perf_counter() - t0
        row = {"method": name, "steps": factor * steps, "trainable": trainable,
               "total": total, "share": trainable / total, "lr": lr, "target_before": before,
               "target_after": mean_loss(model, enc["tgt_val"], window),
               "source_after": mean_loss(model, src_eval, window),
               "train_loss": train_loss, "seconds": seconds}
        rows.append(row)
        history.append({"epoch": i + 1, "loss": train_loss, "val_loss": row["target_after"],
                        "elapsed_s": seconds})
        log(f"{name}: {peft.trainable_summary(model)}; target {before:.3f} -> "
            f"{row['target_after']:.3f}, source {source_before:.3f} -> "
            f"{row['source_after']:.3f} nats/char, {seconds:.0f}s")
    table = _table(rows)
    log(f"\nadapting to {speaker} (pretrained: target {before:.3f}, source "
        f"{source_before:.3f} nats/char):")
    for line in table:
        log(line)
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "finetune.json"), "w") as f:
            json.dump({"speaker": speaker, "pretrain_s": pretrain_s,
                       "source_before": source_before, "rows": rows}, f, indent=1)
        with open(os.path.join(out_dir, "finetune.txt"), "w") as f:
            f.write("\n".join(table) + "\n")
    return {**history, "history": history, "rows": rows, "table": table, "model": base,
            "tokenizer": tok, "target_before": before, "source_before": source_before}
