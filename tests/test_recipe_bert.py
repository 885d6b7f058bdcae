"""The bert recipe (MLM pretraining, then typo detection): typos change exactly the
asked-for letters and keep case, the labelled and test passages come from disjoint
parts of the corpus with balanced labels, a short MLM run lowers the held-out loss,
and a tiny end-to-end run returns the documented keys."""
import numpy as np
import pytest

import nnforge as nf
from nnforge.data.tokenizers import CharTokenizer
from nnforge.models import BERT
from nnforge.train.recipes import bert as recipe


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny matrices on a busy 2-core machine: one thread is much faster than two.
    threads = nf.get_num_threads()
    nf.set_num_threads(1)
    yield
    nf.set_num_threads(threads)


def test_add_typos_changes_exactly_n_letters_and_keeps_case():
    passage = "Now is the Winter of our discontent, 42 times."
    for seed in range(20):
        out = recipe.add_typos(passage, 3, np.random.default_rng(seed))
        changed = [i for i, (a, b) in enumerate(zip(passage, out)) if a != b]
        assert len(out) == len(passage) and len(changed) == 3
        for i in changed:
            assert passage[i].isalpha() and out[i].isalpha()
            assert passage[i].isupper() == out[i].isupper()
    assert recipe.add_typos("12, 34!", 2, np.random.default_rng(0)) == "12, 34!"
    assert recipe.add_typos("ab", 5, np.random.default_rng(0)) != "ab"


def test_typo_examples_labels_and_encoding():
    text = "But soft! what light through yonder window breaks? It is the east. " * 4
    tok = CharTokenizer.train(text + recipe.LETTERS + recipe.LETTERS.upper())
    x, y = recipe.typo_examples(tok, text, [0, 5, 9, 30, 40, 50], 20, 2, seed=3)
    assert x.shape == (6, 21) and (x[:, 0] == tok.cls_id).all()
    for row, label, s in zip(x, y, [0, 5, 9, 30, 40, 50]):
        diff = sum(a != b for a, b in zip(tok.decode(row[1:]), text[s:s + 20]))
        assert diff == (2 if label else 0)
    again = recipe.typo_examples(tok, text, [0, 5, 9, 30, 40, 50], 20, 2, seed=3)
    np.testing.assert_array_equal(again[0], x)            # fixed seed, same examples
    with pytest.raises(ValueError, match="past the text"):
        recipe.typo_examples(tok, text, [len(text) - 5], 20, 2, seed=0)


def test_typo_task_on_the_corpus_is_balanced_and_split_by_region():
    train, test = nf.data.datasets.tinyshakespeare("train"), nf.data.datasets.tinyshakespeare("val")
    tok = CharTokenizer.train(train + test)
    task = recipe.typo_task(tok, train, test, chars=63, labelled=400, typos=2, seed=0)
    assert task["x_train"].shape == (400, 64)
    assert task["x_test"].shape == (len(test) // 63, 64)
    assert abs(task["y_train"].mean() - 0.5) < 0.1 and abs(task["y_test"].mean() - 0.5) < 0.05
    clean = task["x_test"][task["y_test"] == 0][:50]
    for row in clean:                 # clean test passages are verbatim held-out text
        passage = tok.decode(row[1:])
        assert passage in test and passage not in train
    other = recipe.typo_task(tok, train, test, chars=63, labelled=400, typos=2, seed=1)
    np.testing.assert_array_equal(other["x_test"], task["x_test"])   # one test set
    assert not np.array_equal(other["x_train"], task["x_train"])


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
                                      n_layer=1, n_head=2, max_len=24, labelled=64,
                                      progress=False, log=lines.append, out_dir=tmp_path)
    for key in ("majority_baseline", "mlm_heldout_loss", "mlm_heldout_acc", "mlm_loss_before",
                "unigram_loss", "pretrained_test_acc", "scratch_test_acc", "pretrained_se",
                "scratch_se", "probe_pretrained_test_acc", "probe_scratch_test_acc", "n_train",
                "n_test", "mlm_history", "pretrain_s", "wall_s",
                "model", "tokenizer", "history"):
        assert key in out, key
    assert out["epoch"] == [1, 2] and len(out["scratch_train_acc"]) == 2
    n_val = len(nf.data.datasets.tinyshakespeare("val"))
    assert out["n_train"] == 64 and out["n_test"] == n_val // 23
    assert 0.45 < out["majority_baseline"] < 0.55
    assert out["mlm_heldout_loss"] < out["mlm_loss_before"]
    for name in ("pretrained", "scratch"):
        acc, se = out[f"{name}_test_acc"], out[f"{name}_se"]
        assert 0.0 <= acc <= 1.0
        assert se == pytest.approx(np.sqrt(acc * (1 - acc) / out["n_test"]))
    assert any("majority baseline" in line for line in lines)
    assert any("pretrained" in line and "from scratch" in line for line in lines)
    assert (tmp_path / "summary.txt").exists() and (tmp_path / "tokenizer.json").exists()
    logits = out["model"](nf.from_numpy(np.full((1, 24), 4, dtype=np.int64)))
    assert logits.shape == (1, 2)


def test_probe_keeps_the_encoder_and_fine_tuning_moves_it():
    nf.manual_seed(0)
    x = np.random.default_rng(0).integers(1, 10, size=(16, 6))
    y = np.arange(16) % 2
    for encoder_lr, moved in ((0.0, False), (None, True), (1e-5, True)):
        model = nf.models.BertClassifier(BERT(10, 8, 1, 2, 16, max_len=6), 2, pooling="mean")
        before = model.bert.tok_emb.weight.detach().numpy().copy()
        head = model.classifier.weight.detach().numpy().copy()
        recipe.finetune(model, x, y, epochs=2, batch_size=8, lr=1e-2, seed=0, desc="",
                        encoder_lr=encoder_lr)
        assert not np.array_equal(model.classifier.weight.detach().numpy(), head)
        assert (not np.array_equal(model.bert.tok_emb.weight.detach().numpy(), before)) == moved


def test_sinusoid_positions():
    nf.manual_seed(0)
    model = BERT(10, 8, 1, 2, 16, max_len=5)
    recipe.sinusoid_positions_(model, scale=0.1)
    table = model.pos.weight.detach().numpy()
    np.testing.assert_allclose(table[0], [0.0, 0.1] * 4, atol=1e-7)
    np.testing.assert_allclose(table[3, 0], 0.1 * np.sin(3.0), rtol=1e-6)
    np.testing.assert_allclose(table[3, 3], 0.1 * np.cos(3.0 / 10000 ** 0.25), rtol=1e-6)
