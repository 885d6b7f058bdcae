"""Positional encodings: the sinusoidal table against its formula, learned
positions, rotary embeddings against explicit 2-D rotations (and their
relative-position property), offsets for cached decoding, gradients, errors."""
import numpy as np
import pytest

import nnforge as nf
from helpers import run_gradcheck


def test_sinusoidal_matches_formula_and_offsets():
    d, n = 6, 20
    pe = nf.nn.SinusoidalPositionalEncoding(d, max_len=n)
    x = nf.randn(2, 5, d)
    out = pe(x, offset=3).numpy() - x.numpy()
    for pos in range(5):
        for i in range(d // 2):
            angle = (pos + 3) / 10000 ** (2 * i / d)
            np.testing.assert_allclose(out[:, pos, 2 * i], np.sin(angle), atol=1e-6)
            np.testing.assert_allclose(out[:, pos, 2 * i + 1], np.cos(angle), atol=1e-6)
    tm = nf.nn.SinusoidalPositionalEncoding(d, max_len=n, batch_first=False)
    np.testing.assert_allclose(tm(x.transpose(0, 1)).transpose(0, 1).numpy(),
                               pe(x).numpy(), atol=0)
    assert len(pe.state_dict()) == 0     # a fixed table, not saved
    odd = nf.nn.SinusoidalPositionalEncoding(5, max_len=4)
    assert tuple(odd(nf.zeros(1, 4, 5)).shape) == (1, 4, 5)


def test_learned_positions_train():
    lp = nf.nn.LearnedPositionalEmbedding(8, 4)
    x = nf.zeros(2, 3, 4)
    out = lp(x, offset=2)
    np.testing.assert_array_equal(out[0].detach().numpy(), lp.weight[2:5].detach().numpy())
    out.sum().backward()
    g = lp.weight.grad.numpy()
    assert (g[2:5] == 2).all() and (g[:2] == 0).all() and (g[5:] == 0).all()


def test_rotary_is_a_rotation_of_dimension_pairs():
    d, base = 8, 10000.0
    rope = nf.nn.RotaryEmbedding(d, max_len=32, base=base, dtype=nf.float64)
    x = np.random.default_rng(0).standard_normal((2, 3, 5, d))
    out = rope(nf.tensor(x), offset=4).numpy()
    ref = np.empty_like(x)
    half = d // 2
    for t in range(5):
        for j in range(half):
            a = (t + 4) * base ** (-2 * j / d)
            c, s = np.cos(a), np.sin(a)
            x1, x2 = x[..., t, j], x[..., t, j + half]
            ref[..., t, j] = c * x1 - s * x2
            ref[..., t, j + half] = s * x1 + c * x2
    np.testing.assert_allclose(out, ref, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(out, axis=-1), np.linalg.norm(x, axis=-1))


def test_rotary_scores_depend_only_on_relative_position():
    rope = nf.nn.RotaryEmbedding(16, dtype=nf.float64)
    rng = np.random.default_rng(1)
    q, k = nf.tensor(rng.standard_normal((1, 16))), nf.tensor(rng.standard_normal((1, 16)))
    scores = [float((rope(q, m) * rope(k, m - 3)).sum()) for m in (3, 10, 50)]
    np.testing.assert_allclose(scores, scores[0], rtol=1e-10)


def test_rotary_gradcheck():
    rope = nf.nn.RotaryEmbedding(4, max_len=8, dtype=nf.float64)
    run_gradcheck(lambda t: rope(t, offset=2), (np.random.default_rng(2).standard_normal((2, 3, 4)),))


def test_errors():
    with pytest.raises(ValueError, match="head_dim must be even"):
        nf.nn.RotaryEmbedding(5)
    rope = nf.nn.RotaryEmbedding(4, max_len=8)
    with pytest.raises(ValueError, match=r"positions 6..9 exceed max_len 8"):
        rope(nf.zeros(4, 4), offset=6)
    with pytest.raises(ValueError, match="expected head_dim 4"):
        rope(nf.zeros(2, 6))
    with pytest.raises(ValueError, match="exceed max_len"):
        nf.nn.SinusoidalPositionalEncoding(4, max_len=3)(nf.zeros(1, 4, 4))
    with pytest.raises(ValueError, match="exceed max_len"):
        nf.nn.LearnedPositionalEmbedding(3, 4)(nf.zeros(1, 2, 4), offset=2)
