"""BERT on tiny shakespeare: masked-language-model pretraining, then fine-tuning
a classifier to tell who speaks a speech.

    nnforge train bert --data tinyshakespeare

The task. The play text is a sequence of speeches, each a block "NAME:\\n" + lines
up to the next blank line. The classes are the ``speakers`` (4) most frequent
speakers, each from a different play (GLOUCESTER, DUKE VINCENTIO, ROMEO and
MENENIUS: 229/193/163/162 speeches, so the majority baseline is about 30%).
An example is <cls> and the first ``chars`` (63) characters of a speech's body, padded
when shorter; the "NAME:" header is never in the input. Speeches are split into
train and test by speech, stratified by speaker with a fixed seed (80/20).
Telling speakers apart from a sentence or two is hard, and a few hundred labelled
speeches are too few to learn English from: what helps is knowing which words
and topics go together, which is what pretraining on the unlabelled text gives.

1. Pretraining. A small character-level BERT (nf.models.BERT: d_model 128, 2
   layers, 64 positions, started at scaled sinusoids: see ``sinusoid_positions_``)
   learns masked-language modelling, 2000 steps, on every speech of the corpus except
   the test speeches (which stay unseen, headers included): random windows of
   ``max_len - 1`` characters with <cls> in front, 15% of the characters picked
   as targets and of those 80% replaced by <mask>, 10% by a random character and
   10% kept (``mask_tokens``). The held-out MLM loss and accuracy are measured on
   the test speeches (consecutive windows, a fixed masking), beside a unigram
   guess's loss.
2. Fine-tuning. ``BertClassifier`` (pooled <cls> state, linear layer) trains all
   its weights on the train speeches with AdamW, warm-up then linear decay; the
   same classifier from random initialization gets exactly the same budget,
   batches and schedule. The score is test accuracy after the last epoch (no
   selection on the test set), pretrained vs. scratch vs. the majority class.
"""
from __future__ import annotations

import copy
import math
import os
import time
from collections import Counter

import numpy as np

from ... import optim
from ...autograd.grad_mode import no_grad
from ...data.datasets import tinyshakespeare
from ...data.tokenizers import CharTokenizer
from ...nn import functional as F
from ...nn.utils import clip_grad_norm_
from ...ops.creation import from_numpy
from ...random import Generator, manual_seed
from ..fit import History
from . import register
from ._optim import adamw_matrix_decay, warmup_cosine


def speeches(text: str) -> list:
    """The speeches of a play text: (block index, speaker, body) for every blank-line
    separated block whose first line is "NAME:" and that has a body; the block
    index counts every non-empty block, so ``text_without`` can drop speeches."""
    out = []
    for i, block in enumerate(_blocks(text)):
        head, _, body = block.partition("\n")
        if head.endswith(":") and len(head) > 1 and body.strip():
            out.append((i, head[:-1], body))
    return out


def _blocks(text: str) -> list:
    return [b.strip("\n") for b in text.split("\n\n") if b.strip()]


def text_without(text: str, drop) -> str:
    """``text`` with the blocks whose indices are in ``drop`` removed (blank-line joined)."""
    drop = set(drop)
    return "\n\n".join(b for i, b in enumerate(_blocks(text)) if i not in drop) + "\n\n"


def speaker_task(text: str, n_speakers: int = 4, test_fraction: float = 0.2,
                 seed: int = 0) -> dict:
    """The speaker-identification data set: the bodies of the speeches of the
    ``n_speakers`` most frequent speakers, their labels (index into "speakers",
    most frequent first), and a train/test split by speech, stratified by speaker
    (``round(test_fraction * n)`` of each speaker's speeches, chosen with ``seed``)."""
    found = speeches(text)
    counts = Counter(name for _, name, _ in found)
    if len(counts) < n_speakers:
        raise ValueError(f"bert: {n_speakers} speakers asked for, the text has {len(counts)}")
    names = [name for name, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    names = names[:n_speakers]
    chosen = [(i, names.index(name), body) for i, name, body in found if name in names]
    labels = np.array([c[1] for c in chosen], dtype=np.int64)
    rng = np.random.default_rng(seed)
    test = []
    for k in range(n_speakers):
        idx = np.flatnonzero(labels == k)
        test.extend(rng.choice(idx, size=int(round(test_fraction * len(idx))), replace=False))
    is_test = np.zeros(len(chosen), dtype=bool)
    is_test[np.array(test, dtype=np.int64)] = True
    return {"speakers": names, "bodies": [c[2] for c in chosen], "labels": labels,
            "blocks": [c[0] for c in chosen], "train": np.flatnonzero(~is_test),
            "test": np.flatnonzero(is_test)}


def sinusoid_positions_(bert, scale: float = 0.1) -> None:
    """Starts BERT's learned position table at ``scale`` x the sinusoids of Vaswani et
    al. (sin/cos of t / 10000^(2i/d)) instead of N(0, 0.02). With N(0, 0.02) positions
    (as small as the token embeddings) a small bidirectional model spends hundreds of
    steps predicting masked characters from the bag of characters around them before
    attention learns to find the neighbours; sinusoids 3-4x larger than the token
    embeddings give it relative offsets from the first step."""
    table = bert.pos.weight.detach().numpy()
    t, d = table.shape
    angle = np.arange(t)[:, None] / 10000.0 ** (np.arange(0, d, 2)[None] / d)
    table[:, 0::2] = scale * np.sin(angle)
    table[:, 1::2] = scale * np.cos(angle[:, :d // 2])


def encode_examples(tok, bodies, chars: int) -> np.ndarray:
    """(N, chars + 1) int64: <cls>, then the first ``chars`` characters of each body,
    <pad> after a shorter one."""
    out = np.full((len(bodies), chars + 1), tok.pad_id, dtype=np.int64)
    out[:, 0] = tok.cls_id
    for r, body in enumerate(bodies):
        ids = tok.encode(body[:chars])
        out[r, 1:1 + len(ids)] = ids
    return out


def _mlm_loss(model, x, y):
    """Cross-entropy at the target positions and the number of them predicted right."""
    logits = model.mlm_logits(model(x))
    logits = logits.reshape(-1, logits.shape[-1])
    y = y.reshape(-1)
    loss = F.cross_entropy(logits, y, ignore_index=-100)
    labels = y.numpy()
    hit = int((logits.detach().numpy().argmax(-1) == labels)[labels != -100].sum())
    return loss, hit, int((labels != -100).sum())


def _mask(tok, windows: np.ndarray, generator):
    return _masker(tok)(windows, generator)


def _masker(tok):
    special = [tok.special_id(s) for s in tok.specials]

    def mask(windows, generator):
        from ...models.bert import mask_tokens
        return mask_tokens(windows, tok.mask_id, tok.vocab_size, special_ids=special,
                           prob=0.15, generator=generator, first_regular_id=len(special))
    return mask


def heldout_windows(tok, text: str, max_len: int) -> np.ndarray:
    """Consecutive windows of ``max_len - 1`` characters of ``text``, <cls> in front."""
    ids = np.array(tok.encode(text), dtype=np.int64)
    n = len(ids) // (max_len - 1)
    w = ids[:n * (max_len - 1)].reshape(n, max_len - 1)
    return np.concatenate([np.full((n, 1), tok.cls_id, dtype=np.int64), w], axis=1)


@no_grad()
def mlm_eval(model, tok, windows: np.ndarray, seed: int = 1234,
             batch_size: int = 64) -> tuple:
    """(mean loss in nats, accuracy) of masked-character prediction on ``windows``,
    masked the same way (15%, 80/10/10) with a fixed ``seed`` on every call."""
    was_training = model.training
    model.eval()
    x, y = _mask(tok, windows, Generator().manual_seed(seed))
    x, y = x.numpy(), y.numpy()
    total, hits, n = 0.0, 0, 0
    for s in range(0, len(x), batch_size):
        xb = from_numpy(np.ascontiguousarray(x[s:s + batch_size]))
        yb = from_numpy(np.ascontiguousarray(y[s:s + batch_size]))
        loss, hit, count = _mlm_loss(model, xb, yb)
        total += float(loss) * count
        hits += hit
        n += count
    model.train(was_training)
    return total / n, hits / n


def unigram_loss(tok, train_text: str, windows: np.ndarray, seed: int = 1234) -> float:
    """The loss of guessing every masked character from the training text's
    character frequencies (add-one smoothed): what MLM must beat."""
    counts = np.bincount(np.array(tok.encode(train_text)), minlength=tok.vocab_size) + 1.0
    logp = np.log(counts / counts.sum())
    _, y = _mask(tok, windows, Generator().manual_seed(seed))
    y = y.numpy()
    return float(-logp[y[y != -100]].mean())


def pretrain_mlm(model, tok, ids: np.ndarray, *, steps: int, batch_size: int, lr: float,
                 warmup: int, seed: int, progress: bool = False, log=None,
                 eval_windows=None, eval_every: int = 100) -> list:
    """Masked-LM training on random windows of ``ids`` (<cls> in front); AdamW,
    warm-up then cosine to 10%. Returns rows {step, loss, (heldout_loss, heldout_acc)}."""
    from tqdm.auto import tqdm
    opt = adamw_matrix_decay(model.parameters(), lr, 0.01, betas=(0.9, 0.98))
    sched = warmup_cosine(opt, warmup, steps, floor=0.1)
    rng = np.random.default_rng(seed)
    gen = Generator().manual_seed(seed + 1)
    mask = _masker(tok)
    width = model.max_len - 1
    rows, running = [], None
    model.train()
    bar = tqdm(range(1, steps + 1), desc="bert mlm", unit="step", disable=not progress)
    for step in bar:
        starts = rng.integers(0, len(ids) - width, size=batch_size)
        w = ids[starts[:, None] + np.arange(width)]
        w = np.concatenate([np.full((batch_size, 1), tok.cls_id, dtype=np.int64), w], axis=1)
        x, y = mask(w, gen)
        loss, _, _ = _mlm_loss(model, x, y)
        opt.zero_grad()
        loss.backward()
        clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        running = float(loss) if running is None else 0.95 * running + 0.05 * float(loss)
        bar.set_postfix(mlm_loss=f"{running:.3f}", refresh=False)
        if step % eval_every == 0 or step == steps:
            row = {"step": step, "loss": running}
            line = f"mlm step {step:4d}/{steps}  train loss {running:.3f}"
            if eval_windows is not None:
                row["heldout_loss"], row["heldout_acc"] = mlm_eval(model, tok, eval_windows)
                line += f"  held-out {row['heldout_loss']:.3f} ({row['heldout_acc']:.1%})"
            rows.append(row)
            if log is not None:
                bar.write(line) if progress and log is print else log(line)
    bar.close()
    return rows


@no_grad()
def accuracy(model, x: np.ndarray, y: np.ndarray, batch_size: int = 128) -> float:
    was_training = model.training
    model.eval()
    right = 0
    for s in range(0, len(x), batch_size):
        logits = model(from_numpy(np.ascontiguousarray(x[s:s + batch_size])))
        right += int((logits.numpy().argmax(-1) == y[s:s + batch_size]).sum())
    model.train(was_training)
    return right / len(x)


def finetune(model, x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, *,
             epochs: int, batch_size: int, lr: float, seed: int, desc: str,
             progress: bool = False) -> list:
    """All weights with AdamW (weight decay 0.01), 10% warm-up then linear decay to 0;
    shuffles with ``seed`` (so two models see the same batches). Rows per epoch:
    {epoch, loss, test_acc}."""
    from tqdm.auto import tqdm
    opt = adamw_matrix_decay(model.parameters(), lr, 0.01)
    per_epoch = math.ceil(len(x) / batch_size)
    total = epochs * per_epoch
    warmup = max(1, total // 10)
    sched = optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warmup if s < warmup else max(0.0, (total - s) / (total - warmup)))
    rng = np.random.default_rng(seed)
    rows = []
    model.train()
    bar = tqdm(total=total, desc=desc, unit="step", disable=not progress, leave=False)
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(x))
        losses = []
        for s in range(0, len(x), batch_size):
            b = order[s:s + batch_size]
            loss = F.cross_entropy(model(from_numpy(x[b])), from_numpy(y[b]))
            opt.zero_grad()
            loss.backward()
            clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(float(loss))
            bar.update(1)
        rows.append({"epoch": epoch, "loss": float(np.mean(losses)),
                     "test_acc": accuracy(model, x_test, y_test)})
        bar.set_postfix(loss=f"{rows[-1]['loss']:.3f}", test_acc=f"{rows[-1]['test_acc']:.3f}",
                        refresh=False)
    bar.close()
    return rows


@register("bert", "tinyshakespeare")
def bert_tinyshakespeare(*, epochs: int = 12, pretrain_steps: int = 2000, batch_size: int = 32,
                         lr: float = 5e-4, pretrain_lr: float = 2e-3, d_model: int = 128,
                         n_layer: int = 2, n_head: int = 4, max_len: int = 64,
                         dropout: float = 0.1, speakers: int = 4, chars: int = 63,
                         test_fraction: float = 0.2, seed: int = 0, out_dir=None,
                         progress: bool = True, log=print) -> dict:
    """A small character BERT pretrained by masked-LM on tiny shakespeare, then
    fine-tuned to tell which of the 4 most frequent speakers speaks a speech;
    test accuracy pretrained vs. from scratch vs. the majority class.

    --epochs N fine-tunes for N epochs (12 by default, both classifiers);
    ``pretrain_steps`` MLM steps of ``batch_size`` windows of ``max_len``.
    Returns the fine-tuning history (per epoch: loss/test_acc of the pretrained
    classifier, scratch_loss/scratch_acc of the one from scratch) and
    majority_baseline, mlm_heldout_loss, mlm_heldout_acc, mlm_loss_before,
    unigram_loss, pretrained_test_acc, scratch_test_acc, n_train, n_test,
    speakers, mlm_history, wall_s, model (the fine-tuned classifier), tokenizer."""
    from ...models import BERT, BertClassifier
    log = log if log is not None else (lambda line: None)
    if chars + 1 > max_len:
        raise ValueError(f"bert: chars ({chars}) + <cls> exceed max_len ({max_len})")
    t_start = time.perf_counter()
    manual_seed(seed)
    text = tinyshakespeare()
    task = speaker_task(text, speakers, test_fraction, seed)
    tok = CharTokenizer.train(text)
    x_all = encode_examples(tok, task["bodies"], chars)
    y_all = task["labels"]
    tr, te = task["train"], task["test"]
    x_tr, y_tr, x_te, y_te = x_all[tr], y_all[tr], x_all[te], y_all[te]
    majority = float(np.bincount(y_te, minlength=speakers).max() / len(y_te))
    log(f"speaker task: {', '.join(task['speakers'])}; {len(tr)} train / {len(te)} test "
        f"speeches (test per speaker {np.bincount(y_te, minlength=speakers).tolist()}), "
        f"first {chars} characters of each body; majority baseline {majority:.1%}")

    test_blocks = [task["blocks"][i] for i in te]
    pre_text = text_without(text, test_blocks)
    pre_ids = np.array(tok.encode(pre_text), dtype=np.int64)
    test_text = "\n\n".join(task["bodies"][i] for i in te)
    eval_windows = heldout_windows(tok, test_text, max_len)
    uni = unigram_loss(tok, pre_text, eval_windows)
    bert = BERT(tok.vocab_size, d_model, n_layer, n_head, 4 * d_model, max_len=max_len,
                dropout=dropout, pad_id=tok.pad_id)
    sinusoid_positions_(bert)
    scratch_bert = copy.deepcopy(bert)     # the same initialization, never pretrained
    before = mlm_eval(bert, tok, eval_windows)
    n_params = sum(p.numel() for p in bert.parameters())
    log(f"MLM pretraining: BERT {n_layer} layers, d_model {d_model}, {n_params:,} parameters; "
        f"{len(pre_ids):,} characters (the corpus without the test speeches), {pretrain_steps} "
        f"steps of {batch_size} x {max_len}; held-out: {eval_windows.size:,} characters of "
        f"the test speeches, loss {before[0]:.3f} before (unigram guess {uni:.3f})")
    t0 = time.perf_counter()
    mlm_rows = pretrain_mlm(bert, tok, pre_ids, steps=pretrain_steps, batch_size=batch_size,
                            lr=pretrain_lr, warmup=min(50, pretrain_steps), seed=seed,
                            progress=progress, log=log, eval_windows=eval_windows,
                            eval_every=max(1, pretrain_steps // 8))
    pretrain_s = time.perf_counter() - t0
    mlm_loss, mlm_acc = mlm_eval(bert, tok, eval_windows)
    log(f"MLM held-out loss {mlm_loss:.3f} nats, accuracy {mlm_acc:.1%} at the masked "
        f"characters (before {before[0]:.3f}, {before[1]:.1%}; unigram {uni:.3f}), "
        f"{pretrain_s:.0f}s")

    results = {}
    for name, encoder in (("pretrained", copy.deepcopy(bert)), ("scratch", scratch_bert)):
        manual_seed(seed + 1)              # the same head initialization and dropout
        model = BertClassifier(encoder, speakers, dropout=dropout)
        t0 = time.perf_counter()
        rows = finetune(model, x_tr, y_tr, x_te, y_te, epochs=epochs, batch_size=batch_size,
                        lr=lr, seed=seed + 2, desc=f"fine-tune ({name})", progress=progress)
        results[name] = (model, rows, time.perf_counter() - t0)
        log(f"fine-tuned ({name}): test accuracy by epoch "
            + " ".join(f"{r['test_acc']:.3f}" for r in rows)
            + f"  ({results[name][2]:.0f}s)")
    history = History()
    for p, s in zip(results["pretrained"][1], results["scratch"][1]):
        history.append({**p, "scratch_loss": s["loss"], "scratch_acc": s["test_acc"]})
    pre_acc, scratch_acc = history["test_acc"][-1], history["scratch_acc"][-1]
    wall = time.perf_counter() - t_start
    result_line = (f"bert: speaker of a speech ({speakers} classes, {len(te)} test speeches): "
                   f"pretrained {pre_acc:.1%}, from scratch {scratch_acc:.1%}, majority "
                   f"{majority:.1%}; MLM held-out {mlm_loss:.3f} nats / {mlm_acc:.1%}; "
                   f"{wall:.0f}s in all")
    log(result_line)
    model = results["pretrained"][0]
    if out_dir is not None:
        from ...io import save
        from ..report import write_run_outputs
        os.makedirs(out_dir, exist_ok=True)
        write_run_outputs(out_dir, history, model=model, header="bert on tinyshakespeare "
                          "(speaker identification)", lines=[result_line], log=log)
        save(model.state_dict(), os.path.join(out_dir, "bert_classifier.safetensors"))
        save(bert.state_dict(), os.path.join(out_dir, "bert_pretrained.safetensors"))
        tok.save(os.path.join(out_dir, "tokenizer.json"))
    return {**history, "history": history, "majority_baseline": majority,
            "mlm_heldout_loss": mlm_loss, "mlm_heldout_acc": mlm_acc,
            "mlm_loss_before": before[0], "unigram_loss": uni, "mlm_history": mlm_rows,
            "pretrained_test_acc": pre_acc, "scratch_test_acc": scratch_acc,
            "n_train": len(tr), "n_test": len(te), "speakers": task["speakers"],
            "pretrain_s": pretrain_s, "wall_s": wall, "model": model, "tokenizer": tok}
