"""The bert recipe (MLM pretraining, then speaker identification): speech extraction
without headers and with the right labels, a train/test split by speech that the
pretraining text never sees, example encoding, a short MLM run that lowers the
held-out loss, and a tiny end-to-end run with the documented keys."""
import numpy as np
import pytest

import nnforge as nf
from nnforge.data.tokenizers import CharTokenizer
from nnforge.models import BERT
from nnforge.train.recipes import bert as recipe

SNIPPET = """First Citizen:
Before we proceed any further, hear me speak.

All:
Speak, speak.

ROMEO:
But soft! what light
through yonder window breaks?

JULIET:
Ay me!

ROMEO:
She speaks.

A stage direction with no header

ROMEO:
Wherefore?

JULIET:
O Romeo, Romeo!
"""


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny matrices on a busy 2-core machine: one thread is much faster than two.
    threads = nf.get_num_threads()
    nf.set_num_threads(1)
    yield
    nf.set_num_threads(threads)


def test_speeches_drop_headers_and_keep_bodies():
    found = recipe.speeches(SNIPPET)
    assert [name for _, name, _ in found] == ["First Citizen", "All", "ROMEO", "JULIET", "ROMEO",
                                              "ROMEO", "JULIET"]
    assert found[2][2] == "But soft! what light\nthrough yonder window breaks?"
    assert all(":" not in body.split("\n", 1)[0][-1:] for _, _, body in found)
    assert [i for i, _, _ in found] == [0, 1, 2, 3, 4, 6, 7]    # block 5 has no header


def test_speaker_task_labels_and_stratified_split():
    task = recipe.speaker_task(SNIPPET, n_speakers=2, test_fraction=0.5, seed=0)
    assert task["speakers"] == ["ROMEO", "JULIET"]           # most frequent first
    by_body = dict(zip(task["bodies"], task["labels"].tolist()))
    assert by_body == {"But soft! what light\nthrough yonder window breaks?": 0,
                       "She speaks.": 0, "Wherefore?": 0, "Ay me!": 1, "O Romeo, Romeo!": 1}
    assert not any("ROMEO:" in b or "JULIET:" in b for b in task["bodies"])
    train, test = set(task["train"].tolist()), set(task["test"].tolist())
    assert not train & test and train | test == set(range(5))
    assert sorted(task["labels"][task["test"]].tolist()) == [0, 0, 1]   # round(1.5)=2, 1


def test_split_on_the_corpus_is_disjoint_and_hidden_from_pretraining():
    text = nf.data.datasets.tinyshakespeare()
    task = recipe.speaker_task(text, 4, 0.2, seed=0)
    train, test = task["train"], task["test"]
    assert len(np.intersect1d(train, test)) == 0
    assert len(train) + len(test) == len(task["labels"])
    counts = np.bincount(task["labels"], minlength=4)
    np.testing.assert_array_equal(np.bincount(task["labels"][test], minlength=4),
                                  np.round(0.2 * counts).astype(int))
    again = recipe.speaker_task(text, 4, 0.2, seed=0)
    np.testing.assert_array_equal(again["test"], test)       # fixed seed, same split
    blocks = recipe._blocks(text)
    pre = recipe.text_without(text, [task["blocks"][i] for i in test])
    assert len(recipe._blocks(pre)) == len(blocks) - len(test)
    for i in test[:20]:             # a long test speech is nowhere in the pretraining text
        block = blocks[task["blocks"][i]]
        if len(block) > 200:
            assert block not in pre


def test_encode_examples_cls_first_pad_after():
    tok = CharTokenizer.train(SNIPPET)
    x = recipe.encode_examples(tok, ["Ay me!", "But soft! what light"], chars=8)
    assert x.shape == (2, 9) and (x[:, 0] == tok.cls_id).all()
    assert tok.decode(x[0]) == "Ay me!" and (x[0, 7:] == tok.pad_id).all()
    assert tok.decode(x[1]) == "But soft"


def test_short_mlm_pretraining_lowers_heldout_loss():
    text = nf.data.datasets.tinyshakespeare("train")[:60_000]
    tok = CharTokenizer.train(text)
    ids = np.array(tok.encode(text[:50_000]), dtype=np.int64)
    windows = recipe.heldout_windows(tok, text[50_000:], 32)
    nf.manual_seed(0)
    model = BERT(tok.vocab_size, 32, 1, 2, 64, max_len=32, dropout=0.0)
    before, _ = recipe.mlm_eval(model, tok, windows)
    assert recipe.mlm_eval(model, tok, windows)[0] == before     # fixed masking
    rows = recipe.pretrain_mlm(model, tok, ids, steps=60, batch_size=16, lr=3e-3, warmup=5,
                               seed=0, eval_windows=windows, eval_every=30)
    after, acc = recipe.mlm_eval(model, tok, windows)
    assert [r["step"] for r in rows] == [30, 60]
    assert after < before - 0.8, (before, after)
    assert after < recipe.unigram_loss(tok, text[:50_000], windows) + 0.1
    assert 0.0 < acc < 1.0


def test_tiny_end_to_end_run(tmp_path):
    lines = []
    out = recipe.bert_tinyshakespeare(epochs=2, pretrain_steps=10, batch_size=32, d_model=32,
                                      n_layer=1, n_head=2, max_len=40, chars=32,
                                      progress=False, log=lines.append, out_dir=tmp_path)
    for key in ("majority_baseline", "mlm_heldout_loss", "mlm_heldout_acc", "mlm_loss_before",
                "unigram_loss", "pretrained_test_acc", "scratch_test_acc", "n_train", "n_test",
                "speakers", "mlm_history", "wall_s", "model", "tokenizer", "history"):
        assert key in out, key
    assert out["epoch"] == [1, 2] and len(out["scratch_acc"]) == 2
    assert out["n_test"] == 144 and out["n_train"] == 577
    assert 0.25 < out["majority_baseline"] < 0.35
    assert out["mlm_heldout_loss"] < out["mlm_loss_before"]
    assert 0.0 <= out["pretrained_test_acc"] <= 1.0
    assert out["pretrained_test_acc"] == out["test_acc"][-1]
    assert any("majority baseline" in line for line in lines)
    assert (tmp_path / "summary.txt").exists() and (tmp_path / "tokenizer.json").exists()
    logits = out["model"](nf.from_numpy(np.full((1, 33), 4, dtype=np.int64)))
    assert logits.shape == (1, 4)


def test_sinusoid_positions():
    nf.manual_seed(0)
    model = BERT(10, 8, 1, 2, 16, max_len=5)
    recipe.sinusoid_positions_(model, scale=0.1)
    table = model.pos.weight.detach().numpy()
    np.testing.assert_allclose(table[0], [0.0, 0.1] * 4, atol=1e-7)
    np.testing.assert_allclose(table[3, 0], 0.1 * np.sin(3.0), rtol=1e-6)
    np.testing.assert_allclose(table[3, 3], 0.1 * np.cos(3.0 / 10000 ** 0.25), rtol=1e-6)
