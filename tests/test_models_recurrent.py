"""Recurrent architectures (issue 6): char-RNN generation, seq2seq with each
attention kind, many-to-one heads, and the BPTT gradient-norm diagnostic."""
import numpy as np
import pytest

import nnforge as nf
from helpers import assert_close
from nnforge.models.char_rnn import CharRNN
from nnforge.models.seq2seq import ATTENTIONS, Seq2Seq
from nnforge.models.sequence import ManyToOne
from nnforge.train.diagnostics import hidden_gradient_norms


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_char_rnn_shapes_and_generation(cell):
    nf.manual_seed(0)
    model = CharRNN(12, 8, 16, num_layers=2, cell=cell)
    logits, _ = model(nf.randint(0, 12, (3, 7)))
    assert tuple(logits.shape) == (3, 7, 12)
    greedy = model.generate([1, 2], 15, temperature=0)
    assert greedy == model.generate([1, 2], 15, temperature=0)  # deterministic
    # Greedy generation = feeding the argmax back by hand, one step at a time.
    ids = [1, 2]
    for _ in range(15):
        ids.append(int(model(nf.tensor([ids]))[0][0, -1].argmax()))
    assert greedy == ids[2:]
    sampled = model.generate([3], 200, temperature=1.5, top_k=2,
                             generator=nf.Generator().manual_seed(1))
    # top_k=2: every sampled character is one of the two most likely at its step.
    ids = [3] + sampled
    logits, _ = model(nf.tensor([ids[:-1]]))
    top2 = np.argsort(-logits[0].detach().numpy(), axis=-1)[:, :2]
    assert all(tok in top2[t] for t, tok in enumerate(sampled))
    with pytest.raises(ValueError, match="at least one character"):
        model.generate([], 3)


@pytest.mark.parametrize("attention", ATTENTIONS)
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_seq2seq_ignores_source_padding_and_decodes(attention, cell):
    nf.manual_seed(0)
    model = Seq2Seq(20, 11, 8, 16, cell=cell, attention=attention).eval()
    src = nf.randint(3, 20, (3, 7))
    lengths = [7, 4, 2]
    tgt = nf.randint(3, 11, (3, 5))
    out = model(src, lengths, tgt)
    assert tuple(out.shape) == (3, 5, 11)
    # Changing tokens past each length changes nothing.
    other = src.numpy().copy()
    other[1, 4:] = 5
    other[2, 2:] = 7
    assert_close(model(nf.tensor(other), lengths, tgt), out, atol=1e-6)
    tokens, attn = model.greedy(src, lengths, max_len=6)
    assert tokens.shape[0] == 3 and tokens.shape[1] <= 6
    if attention == "none":
        assert attn is None
    else:
        assert attn.shape[:2] == tokens.shape
        np.testing.assert_allclose(attn.sum(-1), 1.0, rtol=1e-5)
        assert np.all(attn[1, :, 4:] == 0) and np.all(attn[2, :, 2:] == 0)
    # Beam width 1 is greedy decoding.
    best, _ = model.beam_search(src[:1], 7, beam=1, max_len=6)
    assert best == tokens[0, :len(best)].tolist()
    loss = nf.nn.functional.cross_entropy(out.reshape(-1, 11), tgt.reshape(-1))
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_many_to_one_summaries():
    nf.manual_seed(0)
    x = nf.randn(4, 6, 5)
    last = ManyToOne(5, 8, 3, cell="gru")
    out, h_n = last.rnn(x)
    assert_close(last(x), last.head(h_n[-1]), atol=1e-6)
    bi = ManyToOne(5, 8, 3, bidirectional=True, num_layers=2)
    assert tuple(bi(x).shape) == (4, 3)
    mean = ManyToOne(5, 8, 3, cell="rnn", summary="mean")
    y = mean(x, lengths=[6, 2, 3, 1])
    out, _ = mean.rnn(x[1:2, :2])  # sample 1 alone, its true 2 steps
    assert_close(y[1], mean.head(out.mean(1))[0], atol=1e-5)
    with pytest.raises(ValueError, match="summary"):
        ManyToOne(5, 8, 3, summary="first")


def test_hidden_gradient_norms():
    nf.manual_seed(0)
    rnn = nf.nn.RNN(3, 10)
    norms = hidden_gradient_norms(rnn, nf.randn(25, 2, 3))
    assert norms.shape == (25,)
    # L = sum(h_T): dL/dh_T is all ones, norm sqrt(H).
    assert norms[-1] == pytest.approx(np.sqrt(10), rel=1e-5)
    # Small recurrent weights (|W_hh| ~ 1/sqrt(H) / 2): the gradient vanishes backwards.
    assert norms[0] < 1e-3 * norms[-1]
    with pytest.raises(ValueError, match="one-layer, one-direction"):
        hidden_gradient_norms(nf.nn.LSTM(3, 4, num_layers=2), nf.randn(5, 1, 3))
    with pytest.raises(TypeError, match="expected an nn.RNN"):
        hidden_gradient_norms(nf.nn.Linear(3, 3), nf.randn(5, 1, 3))


def test_char_lstm_beats_the_bigram_baseline_quickly():
    from nnforge.train.recipes import recurrent
    lines = []
    result = recurrent.train_char_lm("lstm", steps=300, batch_size=32, seq_len=64, lr=5e-3,
                                     hidden=128, layers=1, embedding=32, seed=0,
                                     eval_every=100, eval_chars=20000, out_dir=None,
                                     progress=False, log=lines.append)
    assert result["val_bits_per_char"] < recurrent.BIGRAM_BITS - 0.3, lines[-2]
    assert len(result["sample"]) == 300


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_sunspot_forecaster_beats_persistence(cell):
    from nnforge.train.recipes import recurrent
    lines = []
    result = recurrent.forecaster_sunspots(cell=cell, progress=False, log=lines.append)
    assert result["val_mse"] < 0.6 * result["persistence_mse"], lines[-1]


def test_sunspot_windows_split_without_leakage():
    from nnforge.train.recipes import recurrent
    x_tr, y_tr, x_va, y_va, scale = recurrent.sunspot_windows(10)
    assert x_tr.shape[1:] == (10, 1) and y_tr.shape[1:] == (1,)
    # Consecutive windows: each target is the next window's last input.
    np.testing.assert_array_equal(y_tr[:-1, 0], x_tr[1:, -1, 0])
    assert len(x_tr) + len(x_va) == 309 - 10 and len(y_va) == 62 and scale > 0


def test_bilstm_reads_digits_row_by_row():
    from nnforge.train.recipes import bilstm
    r = bilstm.bilstm_digits(epochs=8, seed=0, progress=False, log=None)
    model = r["model"]
    assert model.rnn.bidirectional and type(model.rnn).__name__ == "LSTM"
    assert model.rnn.input_size == 8          # one row of 8 pixels per step
    assert r["test_acc"][-1] >= 0.95          # the 40-epoch default reaches ~98%


def test_gradients_recipe_shows_vanishing_exploding_and_clipping(tmp_path):
    from nnforge.train.recipes import gradients
    r = gradients.gradients_sunspots(length=40, steps=30, log=None, out_dir=tmp_path)
    f = r["factor_per_step"]
    # Going back in time the tanh RNN's gradient shrinks per step, the LSTM with an
    # open forget gate keeps most of it, and the over-scaled ReLU RNN's grows.
    assert f["tanh RNN"] < 0.8 < f["LSTM, forget bias 3"]
    assert f["ReLU RNN, W_hh = 1.05 I"] > 1.0
    norms = r["gradient_norms"]["LSTM, forget bias 3"]
    assert norms.shape == (40,) and np.all(norms > 0)
    plain, clipped = r["losses"].values()
    assert not np.isfinite(plain).all()                 # unclipped SGD diverges
    assert np.isfinite(clipped).all() and clipped[-1] < 0.3 * clipped[0]
    if nf.viz.have_matplotlib():
        assert (tmp_path / "gradient_norms.png").stat().st_size > 0
        assert (tmp_path / "clipping.png").stat().st_size > 0
