"""BERT on tiny shakespeare: masked-language-model pretraining on unlabelled text,
then fine-tuning a classifier on a few labelled examples to spot misspelt passages.

    nnforge train bert --data tinyshakespeare

Why this task. Pretraining pays when the labelled data are too few to learn what
the task needs from them alone. Here the task needs the spelling of English: an
example is <cls> and a passage of ``max_len - 1`` (63) characters, and the label
says whether ``typos`` (3) of its letters were replaced by other random letters
("the kinf's" for "the king's"; case kept). A thousand labelled passages cannot
teach a randomly initialized model which letter sequences are words, but a model
pretrained to fill in masked characters has learned exactly that.

The split. tiny shakespeare's first 90% (``tinyshakespeare("train")``) is the
unlabelled pretraining text and the pool the ``labelled`` (1000) training
passages are drawn from (random starts, half of them given typos); the last 10%
(``"val"``, from later plays and never seen in pretraining) gives the test set:
every consecutive 63-character passage (1,770), half of them given typos with a
fixed seed. The majority class is about 50%.

1. Pretraining. A small character-level BERT (nf.models.BERT: d_model 128, 2
   layers, 64 positions, started at scaled sinusoids: see ``sinusoid_positions_``)
   learns masked-language modelling for ``pretrain_steps`` steps on random windows
   of ``max_len - 1`` characters with <cls> in front: 15% of the characters picked
   as targets and of those 80% replaced by <mask>, 10% by a random character and
   10% kept (``mask_tokens``). The held-out MLM loss and accuracy are measured on
   the test text (consecutive windows, a fixed masking), beside a unigram guess's.
2. Fine-tuning. ``BertClassifier`` (pooled <cls> state, linear layer) trains all
   its weights on the labelled passages with AdamW, warm-up then linear decay; the
   same classifier from the same random initialization, never pretrained, gets
   exactly the same budget, batches and schedule. The score is test accuracy
   after the last epoch (no selection on the test set), with its binomial
   standard error sqrt(p (1 - p) / n).
3. Probes. The same head trained on each encoder frozen (pretrained, and the
   random initialization), reading the mean of the final states (a frozen
   encoder's <cls> state was never trained to summarize anything): how much the
   pretrained features alone say about typos.

Result (seed 0, 1 thread, a busy 2-core machine: 663 s, 513 s of it pretraining).
MLM on the held-out text: 1.889 nats, 45.5% of masked characters right (unigram
guess 3.357 nats). Typo detection on the 1,770 test passages (majority 50.8%):
fine-tuned from pretraining 62.1% +- 1.2%, from scratch 62.3% +- 1.2% (an
earlier identical run: 61.1% vs 62.3%), so with full fine-tuning on 1000 labels
pretraining does NOT help yet: both learn the task, and the pretrained one fits
its training passages faster without generalizing better. The frozen pretrained
encoder does carry the signal: probe 61.2% vs 51.9% for the frozen random one
(about 5 standard errors apart). Also tried, no better: 200 labels (pretrained
57-58% vs scratch 61-62%), mean pooling, encoder lr 1e-4 (63.1% with mean
pooling, 53.9% with <cls>); speaker and play identification were at chance.
"""
from __future__ import annotations

import copy
import math
import os
import time

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

LETTERS = "abcdefghijklmnopqrstuvwxyz"


def add_typos(passage: str, typos: int, rng) -> str:
    """``passage`` with ``typos`` of its letters (distinct positions, chosen with the
    numpy Generator ``rng``) each replaced by a different random letter of the same
    case; fewer if it has fewer letters."""
    where = [i for i, c in enumerate(passage) if c.isascii() and c.isalpha()]
    chars = list(passage)
    for i in rng.choice(where, size=min(typos, len(where)), replace=False):
        old = chars[i].lower()
        new = LETTERS[(LETTERS.index(old) + rng.integers(1, 26)) % 26]
        chars[i] = new.upper() if chars[i].isupper() else new
    return "".join(chars)


def typo_examples(tok, text: str, starts, chars: int, typos: int, seed: int) -> tuple:
    """(x (N, chars + 1) int64, y (N,) int64) for the passages text[s:s + chars]:
    <cls> then the passage, with ``typos`` typos and label 1 for a random half
    (each a fair coin from ``seed``), as written and label 0 for the others."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=len(starts)).astype(np.int64)
    x = np.full((len(starts), chars + 1), tok.cls_id, dtype=np.int64)
    for r, s in enumerate(starts):
        passage = text[s:s + chars]
        if len(passage) != chars:
            raise ValueError(f"bert: passage at {s} runs past the text's end ({len(text)})")
        x[r, 1:] = tok.encode(add_typos(passage, typos, rng) if y[r] else passage)
    return x, y


def typo_task(tok, train_text: str, test_text: str, *, chars: int, labelled: int,
              typos: int, seed: int) -> dict:
    """The typo-detection data set: ``labelled`` training passages at random starts
    in ``train_text`` (chosen with ``seed``), and every consecutive passage of
    ``test_text`` as the test set (its typos fixed by seed 1234, whatever ``seed``)."""
    rng = np.random.default_rng(seed)
    train_starts = rng.choice(len(train_text) - chars, size=labelled, replace=False)
    test_starts = np.arange(0, len(test_text) - chars + 1, chars)
    x_tr, y_tr = typo_examples(tok, train_text, train_starts, chars, typos, seed + 1)
    x_te, y_te = typo_examples(tok, test_text, test_starts, chars, typos, 1234)
    return {"x_train": x_tr, "y_train": y_tr, "x_test": x_te, "y_test": y_te}


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


def finetune(model, x: np.ndarray, y: np.ndarray, *, epochs: int, batch_size: int, lr: float,
             seed: int, desc: str, encoder_lr: float | None = None,
             progress: bool = False) -> list:
    """All weights with AdamW (weight decay 0.01), 10% warm-up then linear decay to 0:
    the head (pooler and classifier) at ``lr``, the encoder ``model.bert`` at
    ``encoder_lr`` (default ``lr``; 0 freezes it, in eval mode: a probe); shuffles
    with ``seed`` (so two models see the same batches). Rows per epoch: {epoch, loss,
    train_acc} (over the epoch's batches, as they were trained)."""
    from tqdm.auto import tqdm
    encoder = list(model.bert.parameters())
    in_encoder = {id(p) for p in encoder}
    opt = adamw_matrix_decay([p for p in model.parameters() if id(p) not in in_encoder], lr, 0.01)
    probe = encoder_lr == 0.0          # the encoder stays as it is (and in eval mode)
    for p in encoder:
        p.requires_grad_(not probe)
    if not probe:
        encoder_lr = lr if encoder_lr is None else encoder_lr
        opt.add_param_group({"params": [p for p in encoder if p.ndim >= 2],
                             "lr": encoder_lr, "weight_decay": 0.01})
        opt.add_param_group({"params": [p for p in encoder if p.ndim < 2],
                             "lr": encoder_lr, "weight_decay": 0.0})
    per_epoch = math.ceil(len(x) / batch_size)
    total = epochs * per_epoch
    warmup = max(1, total // 10)
    sched = optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warmup if s < warmup else max(0.0, (total - s) / (total - warmup)))
    rng = np.random.default_rng(seed)
    rows = []
    model.train()
    model.bert.train(not probe)
    bar = tqdm(total=total, desc=desc, unit="step", disable=not progress, leave=False)
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(x))
        losses, right = [], 0
        for s in range(0, len(x), batch_size):
            b = order[s:s + batch_size]
            logits = model(from_numpy(x[b]))
            loss = F.cross_entropy(logits, from_numpy(y[b]))
            opt.zero_grad()
            loss.backward()
            clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(float(loss))
            right += int((logits.detach().numpy().argmax(-1) == y[b]).sum())
            bar.update(1)
        rows.append({"epoch": epoch, "loss": float(np.mean(losses)), "train_acc": right / len(x)})
        bar.set_postfix(loss=f"{rows[-1]['loss']:.3f}", train_acc=f"{rows[-1]['train_acc']:.3f}",
                        refresh=False)
    bar.close()
    return rows


def binomial_se(p: float, n: int) -> float:
    """The standard error sqrt(p (1 - p) / n) of an accuracy p measured on n examples."""
    return math.sqrt(p * (1.0 - p) / n)


@register("bert", "tinyshakespeare")
def bert_tinyshakespeare(*, epochs: int = 10, pretrain_steps: int = 1500, batch_size: int = 32,
                         lr: float = 1e-3, pretrain_lr: float = 2e-3, d_model: int = 128,
                         n_layer: int = 2, n_head: int = 4, max_len: int = 64,
                         dropout: float = 0.1, labelled: int = 1000, typos: int = 3,
                         seed: int = 0, out_dir=None, progress: bool = True, log=print) -> dict:
    """A small character BERT pretrained by masked-LM on tiny shakespeare, then
    fine-tuned on 1000 labelled passages to tell whether a passage has typos; test
    accuracy pretrained vs. from scratch vs. the majority class.

    --epochs N fine-tunes for N epochs (10 by default, both classifiers);
    ``pretrain_steps`` MLM steps of ``batch_size`` windows of ``max_len``.
    Returns the fine-tuning history (per epoch: loss/train_acc of the pretrained
    classifier, scratch_loss/scratch_train_acc of the one from scratch) and
    majority_baseline, mlm_heldout_loss, mlm_heldout_acc, mlm_loss_before,
    unigram_loss, pretrained_test_acc, scratch_test_acc, their binomial standard
    errors pretrained_se and scratch_se, probe_pretrained_test_acc and
    probe_scratch_test_acc (frozen encoders, mean pooling), n_train, n_test, mlm_history, pretrain_s,
    wall_s, model (the fine-tuned classifier), tokenizer."""
    from ...models import BERT, BertClassifier
    log = log if log is not None else (lambda line: None)
    t_start = time.perf_counter()
    manual_seed(seed)
    train_text, test_text = tinyshakespeare("train"), tinyshakespeare("val")
    tok = CharTokenizer.train(train_text + test_text)
    chars = max_len - 1
    task = typo_task(tok, train_text, test_text, chars=chars, labelled=labelled, typos=typos,
                     seed=seed)
    x_tr, y_tr, x_te, y_te = task["x_train"], task["y_train"], task["x_test"], task["y_test"]
    majority = float(np.bincount(y_te, minlength=2).max() / len(y_te))
    log(f"typo task: {len(y_tr)} labelled training passages of {chars} characters from the "
        f"first 90% of the text, {len(y_te)} test passages from the last 10% ({int(y_te.sum())} "
        f"with {typos} typos); majority baseline {majority:.1%}")

    pre_ids = np.array(tok.encode(train_text), dtype=np.int64)
    eval_windows = heldout_windows(tok, test_text, max_len)
    uni = unigram_loss(tok, train_text, eval_windows)
    bert = BERT(tok.vocab_size, d_model, n_layer, n_head, 4 * d_model, max_len=max_len,
                dropout=dropout, pad_id=tok.pad_id)
    sinusoid_positions_(bert)
    scratch_bert = copy.deepcopy(bert)     # the same initialization, never pretrained
    before = mlm_eval(bert, tok, eval_windows)
    n_params = sum(p.numel() for p in bert.parameters())
    log(f"MLM pretraining: BERT {n_layer} layers, d_model {d_model}, {n_params:,} parameters; "
        f"{len(pre_ids):,} characters (the first 90%), {pretrain_steps} steps of "
        f"{batch_size} x {max_len}; held-out: {eval_windows.size:,} characters of the last "
        f"10%, loss {before[0]:.3f} before (unigram guess {uni:.3f})")
    t0 = time.perf_counter()
    mlm_rows = pretrain_mlm(bert, tok, pre_ids, steps=pretrain_steps, batch_size=batch_size,
                            lr=pretrain_lr, warmup=min(50, pretrain_steps), seed=seed,
                            progress=progress, log=log, eval_windows=eval_windows,
                            eval_every=max(1, pretrain_steps // 4))
    pretrain_s = time.perf_counter() - t0
    mlm_loss, mlm_acc = mlm_eval(bert, tok, eval_windows)
    log(f"MLM held-out loss {mlm_loss:.3f} nats, accuracy {mlm_acc:.1%} at the masked "
        f"characters (before {before[0]:.3f}, {before[1]:.1%}; unigram {uni:.3f}), "
        f"{pretrain_s:.0f}s")

    results = {}
    runs = (("pretrained", bert, None, "cls"), ("scratch", scratch_bert, None, "cls"),
            ("probe_pretrained", bert, 0.0, "mean"), ("probe_scratch", scratch_bert, 0.0, "mean"))
    for name, encoder, encoder_lr, pooling in runs:
        manual_seed(seed + 1)              # the same head initialization and dropout
        model = BertClassifier(copy.deepcopy(encoder), 2, dropout=dropout, pooling=pooling)
        t0 = time.perf_counter()
        rows = finetune(model, x_tr, y_tr, epochs=epochs, batch_size=batch_size, lr=lr,
                        encoder_lr=encoder_lr, seed=seed + 2, desc=name, progress=progress)
        acc = accuracy(model, x_te, y_te)
        results[name] = (model, rows, acc)
        log(f"{name.replace('_', ' ')}: train loss by epoch "
            + " ".join(f"{r['loss']:.3f}" for r in rows)
            + f"; test accuracy {acc:.1%} ({time.perf_counter() - t0:.0f}s)")
    history = History()
    for p, s in zip(results["pretrained"][1], results["scratch"][1]):
        history.append({**p, "scratch_loss": s["loss"], "scratch_train_acc": s["train_acc"]})
    pre_acc, scratch_acc = results["pretrained"][2], results["scratch"][2]
    pre_se, scratch_se = binomial_se(pre_acc, len(y_te)), binomial_se(scratch_acc, len(y_te))
    probe_pre, probe_scratch = results["probe_pretrained"][2], results["probe_scratch"][2]
    wall = time.perf_counter() - t_start
    result_line = (f"bert: typo detection ({labelled} labelled passages, {len(y_te)} test "
                   f"passages): pretrained {pre_acc:.1%} +- {pre_se:.1%}, from scratch "
                   f"{scratch_acc:.1%} +- {scratch_se:.1%}; frozen encoder (probe): pretrained "
                   f"{probe_pre:.1%}, random {probe_scratch:.1%}; majority {majority:.1%}; "
                   f"MLM held-out {mlm_loss:.3f} nats / {mlm_acc:.1%} (unigram {uni:.3f}); "
                   f"{wall:.0f}s in all")
    log(result_line)
    model = results["pretrained"][0]
    if out_dir is not None:
        from ...io import save
        from ..report import write_run_outputs
        os.makedirs(out_dir, exist_ok=True)
        write_run_outputs(out_dir, history, model=model, header="bert on tinyshakespeare "
                          "(typo detection)", lines=[result_line], log=log)
        save(model.state_dict(), os.path.join(out_dir, "bert_classifier.safetensors"))
        save(bert.state_dict(), os.path.join(out_dir, "bert_pretrained.safetensors"))
        tok.save(os.path.join(out_dir, "tokenizer.json"))
    return {**history, "history": history, "majority_baseline": majority,
            "mlm_heldout_loss": mlm_loss, "mlm_heldout_acc": mlm_acc,
            "mlm_loss_before": before[0], "unigram_loss": uni, "mlm_history": mlm_rows,
            "pretrained_test_acc": pre_acc, "scratch_test_acc": scratch_acc,
            "pretrained_se": pre_se, "scratch_se": scratch_se,
            "probe_pretrained_test_acc": probe_pre, "probe_scratch_test_acc": probe_scratch,
            "n_train": len(y_tr), "n_test": len(y_te), "pretrain_s": pretrain_s,
            "wall_s": wall, "model": model, "tokenizer": tok}
