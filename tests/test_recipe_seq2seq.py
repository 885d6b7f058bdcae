"""The seq2seq recipe on the generated dates task (issue 6): held-out split,
exact-match metric, batched beam search, an end-to-end run with its plots,
and a short run that must learn."""
import os

import numpy as np
import pytest

import nnforge as nf
from nnforge.data.dates import FORMATS, date_pairs
from nnforge.data.tokenizers import CharTokenizer
from nnforge.models.seq2seq import Seq2Seq
from nnforge.train.recipes import seq2seq as recipe

RESULT_KEYS = {"history", "model", "src_vocab", "tgt_vocab", "exact_match", "exact_match_beam",
               "per_format", "per_format_beam", "n_train", "n_test", "test_dropped",
               "test_unseen_dates", "train_s", "beam_s", "wall_s", "attention_plots",
               "epoch", "loss", "elapsed_s"}


def test_exact_match_on_hand_made_examples():
    targets = ["1990-03-21", "2001-12-01", "1950-01-01", "2049-12-31"]
    assert recipe.exact_match(targets, targets) == 1.0
    # A missing zero, a trailing character, an empty output and one right: 1 of 4.
    assert recipe.exact_match(["1990-3-21", "2001-12-011", "", "2049-12-31"], targets) == 0.25
    with pytest.raises(ValueError, match="3 predictions for 4 targets"):
        recipe.exact_match(targets[:3], targets)
    v = CharTokenizer.train("0123456789-", specials=recipe._SPECIALS)
    ids = v.encode("1990-03-21")
    # Decoding stops at the first EOS and drops the other specials.
    assert v.decode(recipe.cut_at_eos(ids + [recipe.EOS] + v.encode("77"))) == "1990-03-21"
    assert v.decode([recipe.BOS] + ids[:4] + [recipe.PAD]) == "1990"
    assert v.encode("1x") == [v.encode("1")[0], recipe.UNK]


def test_held_out_sources_are_disjoint_from_training():
    train = date_pairs(3000, seed=0)
    sources = {s for s, _ in train}
    test, dropped = recipe.held_out_pairs(sources, 1000, seed=recipe.TEST_SEED_OFFSET)
    assert len(test) == 1000
    assert len({s for s, _, _ in test}) == 1000          # no repeats
    assert not sources & {s for s, _, _ in test}
    # Some drawn test pairs collide with training (compact and dotted formats
    # have few distinct strings per date) and were dropped, not kept.
    assert dropped > 0
    # The recorded format is the one that writes the pair.
    import datetime as dt
    assert all(FORMATS[f](dt.date.fromisoformat(t)) == s for s, t, f in test)
    # Every compact date is a training source: no test set can be drawn.
    first = dt.date(1950, 1, 1)
    every = {FORMATS["compact"](first + dt.timedelta(days=k)) for k in range(36525)}
    with pytest.raises(ValueError, match="cannot find 10 test sources"):
        recipe.held_out_pairs(every, 10, seed=1, formats=["compact"])


def test_batched_beam_search_matches_one_at_a_time_and_greedy():
    nf.manual_seed(0)
    model = Seq2Seq(15, 9, 8, 16, cell="lstm", attention="general").eval()
    src = nf.randint(4, 15, (4, 6))
    lengths = [6, 2, 5, 3]
    tokens, attn = model.beam_search_batch(src, lengths, beam=3, max_len=7)
    for i in range(4):
        one, one_attn = model.beam_search(src[i:i + 1, :lengths[i]], lengths[i], beam=3,
                                          max_len=7)
        assert one == tokens[i]
        np.testing.assert_allclose(one_attn, attn[i][:, :lengths[i]], atol=1e-5)
        assert np.all(attn[i][:, lengths[i]:] == 0)
    greedy, _ = model.greedy(src, lengths, max_len=7)
    ones, _ = model.beam_search_batch(src, lengths, beam=1, max_len=7)
    for i in range(4):
        assert ones[i] == greedy[i, :len(ones[i])].tolist()
    with pytest.raises(ValueError, match="beam must be >= 1"):
        model.beam_search_batch(src, lengths, beam=0)


def test_recipe_end_to_end_writes_outputs(tmp_path):
    from nnforge.train import recipes
    assert recipes.load_all()[("seq2seq", "dates")] is recipe.seq2seq_dates
    lines = []
    result = recipe.seq2seq_dates(epochs=1, n_train=256, n_test=40, batch_size=64,
                                  hidden=16, embedding=8, beam_size=2, out_dir=str(tmp_path),
                                  progress=False, log=lines.append)
    assert RESULT_KEYS <= set(result)
    assert result["n_train"] == 256 and result["n_test"] == 40
    assert 0.0 <= result["exact_match"] <= 1.0 and 0.0 <= result["exact_match_beam"] <= 1.0
    assert set(result["per_format"]) <= set(FORMATS)
    assert any("0 test sources occur in training" in line for line in lines)
    for name in ("history.json", "summary.txt", "seq2seq.safetensors"):
        assert os.path.isfile(tmp_path / name)
    if not nf.viz.have_matplotlib():
        pytest.skip("matplotlib is not installed: no plots to check")
    assert os.path.getsize(tmp_path / "attention.png") > 1000
    assert set(result["attention_plots"]) >= {"attention", "words"}
    for path in result["attention_plots"].values():
        assert os.path.isfile(path)


def test_recipe_without_attention_writes_no_heat_map(tmp_path):
    # Also the other options: an LSTM, half the steps fed the model's own prediction.
    lines = []
    result = recipe.seq2seq_dates(epochs=1, n_train=64, n_test=10, hidden=8, embedding=8,
                                  cell="lstm", attention="none", teacher_forcing=0.5,
                                  beam_size=2, out_dir=str(tmp_path), progress=False,
                                  log=lines.append)
    assert "lstm" in result["model"].cell_kind and result["model"].attention is None
    assert any("teacher forcing 0.5" in line for line in lines)
    assert result["attention_plots"] == {}
    assert not os.path.exists(tmp_path / "attention.png")
    assert any("no attention plots" in line for line in lines)


def test_a_short_run_learns():
    # Two short formats, ~190 steps (~10 s): chance is about 1 in 36,500 dates;
    # this run gets ~0.94 exact match and its loss falls ~20-fold.
    lines = []
    result = recipe.seq2seq_dates(epochs=4, n_train=1500, n_test=200, batch_size=32,
                                  hidden=32, embedding=16, lr=1e-2, beam_size=2,
                                  formats=["compact", "dotted"], progress=False,
                                  log=lines.append)
    loss = result["history"]["loss"]
    assert loss[-1] < loss[0] / 8, lines
    assert result["exact_match"] > 0.7, lines
    assert result["exact_match_beam"] > 0.7, lines
