"""nn.utils.rnn: pack/pad round trips, layouts equal to PyTorch's, gradients."""
import numpy as np
import pytest

import nnforge as nf
from helpers import assert_close, torch_or_skip
from nnforge.nn.utils import rnn as R


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("lengths,enforce_sorted", [([4, 3, 1], True), ([2, 4, 1, 4], False),
                                                    ([1], True)])
def test_pack_matches_torch_and_round_trips(batch_first, lengths, enforce_sorted):
    t = torch_or_skip()
    steps, batch = max(lengths), len(lengths)
    shape = (batch, steps, 3) if batch_first else (steps, batch, 3)
    x_np = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    x = nf.tensor(x_np, requires_grad=True)
    packed = R.pack_padded_sequence(x, lengths, batch_first, enforce_sorted)
    tpacked = t.nn.utils.rnn.pack_padded_sequence(t.tensor(x_np), t.tensor(lengths),
                                                  batch_first, enforce_sorted)
    assert_close(packed.data, tpacked.data, atol=0)
    assert packed.batch_sizes.tolist() == tpacked.batch_sizes.tolist()
    if enforce_sorted:
        assert packed.sorted_indices is None and tpacked.sorted_indices is None
    else:
        assert packed.sorted_indices.tolist() == tpacked.sorted_indices.tolist()
        assert packed.unsorted_indices.tolist() == tpacked.unsorted_indices.tolist()
    padded, lens = R.pad_packed_sequence(packed, batch_first, padding_value=-1.0,
                                         total_length=steps + 1)
    tpadded, tlens = t.nn.utils.rnn.pad_packed_sequence(tpacked, batch_first, -1.0, steps + 1)
    assert_close(padded, tpadded, atol=0)
    assert lens.tolist() == tlens.tolist() == list(lengths)
    # Gradients flow through pack and pad: valid steps get theirs, padding none.
    padded.sum().backward()
    mask = np.zeros(shape, dtype=np.float32)
    for b, n in enumerate(lengths):
        if batch_first:
            mask[b, :n] = 1
        else:
            mask[:n, b] = 1
    np.testing.assert_array_equal(x.grad.numpy(), mask)


def test_pack_sequence_and_unpack():
    seqs = [nf.randn(3, 2), nf.randn(5, 2), nf.randn(1, 2)]
    packed = R.pack_sequence(seqs, enforce_sorted=False)
    assert packed.batch_sizes.tolist() == [3, 2, 2, 1, 1]
    assert packed.lengths().tolist() == [3, 5, 1]
    back = R.unpack_sequence(packed)
    for a, b in zip(back, seqs):
        assert_close(a, b, atol=0)
    padded = R.pad_sequence(seqs, batch_first=True)
    for a, b in zip(R.unpad_sequence(padded, [3, 5, 1], batch_first=True), seqs):
        assert_close(a, b, atol=0)


def test_packing_errors():
    x = nf.zeros(4, 3, 2)
    with pytest.raises(ValueError, match="not sorted in decreasing order"):
        R.pack_padded_sequence(x, [1, 4, 2])
    with pytest.raises(ValueError, match=r"every length must be in \[1, 4\]"):
        R.pack_padded_sequence(x, [5, 4, 2])
    with pytest.raises(ValueError, match=r"every length must be in \[1, 4\]"):
        R.pack_padded_sequence(x, [4, 2, 0])
    with pytest.raises(ValueError, match="2 lengths for a batch of 3"):
        R.pack_padded_sequence(x, [4, 2])
    packed = R.pack_padded_sequence(x, [4, 2, 1])
    with pytest.raises(ValueError, match="total_length 2 is shorter"):
        R.pad_packed_sequence(packed, total_length=2)
    with pytest.raises(TypeError, match="expected a PackedSequence"):
        R.pad_packed_sequence(x)


@pytest.mark.parametrize("cls,enforce_sorted", [("LSTM", False), ("GRU", True), ("RNN", False)])
def test_recurrent_layers_take_packed_sequences_like_torch(cls, enforce_sorted):
    t = torch_or_skip()
    t.manual_seed(0)
    rng = np.random.default_rng(1)
    lengths = [5, 4, 2, 1] if enforce_sorted else [2, 5, 1, 4]
    T, B, I, H, L = 5, 4, 3, 2, 2
    tm = getattr(t.nn, cls)(I, H, num_layers=L, bidirectional=True).double()
    m = getattr(nf.nn, cls)(I, H, num_layers=L, bidirectional=True, dtype=nf.float64)
    m.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    x = rng.standard_normal((T, B, I))
    h0 = [rng.standard_normal((2 * L, B, H)) for _ in range(2 if cls == "LSTM" else 1)]

    tx = t.tensor(x, requires_grad=True)
    th0 = [t.tensor(h, requires_grad=True) for h in h0]
    tp = t.nn.utils.rnn.pack_padded_sequence(tx, lengths, enforce_sorted=enforce_sorted)
    tout, tstate = tm(tp, tuple(th0) if cls == "LSTM" else th0[0])
    nx = nf.tensor(x, requires_grad=True)
    nh0 = [nf.tensor(h, requires_grad=True) for h in h0]
    npk = R.pack_padded_sequence(nx, lengths, enforce_sorted=enforce_sorted)
    out, state = m(npk, tuple(nh0) if cls == "LSTM" else nh0[0])

    assert isinstance(out, R.PackedSequence)
    assert out.batch_sizes.tolist() == tout.batch_sizes.tolist()
    assert_close(out.data, tout.data, atol=1e-10)
    states = list(state) if cls == "LSTM" else [state]
    tstates = list(tstate) if cls == "LSTM" else [tstate]
    for a, b in zip(states, tstates):
        assert_close(a, b, atol=1e-10)
    g = rng.standard_normal(tuple(out.data.shape))
    loss = (out.data * nf.tensor(g)).sum() + sum(s.sum() for s in states)
    tloss = (tout.data * t.tensor(g)).sum() + sum(s.sum() for s in tstates)
    loss.backward()
    tloss.backward()
    assert_close(nx.grad, tx.grad, atol=1e-10)
    for a, b in zip(nh0, th0):
        assert_close(a.grad, b.grad, atol=1e-10)
    for name, p in m.named_parameters():
        assert_close(p.grad, dict(tm.named_parameters())[name].grad, atol=1e-10)


def test_packed_input_errors():
    lstm = nf.nn.LSTM(3, 2)
    packed = R.pack_sequence([nf.randn(3, 3), nf.randn(2, 3)])
    with pytest.raises(ValueError, match="PackedSequence carries its own lengths"):
        lstm(packed, lengths=[3, 2])
    bad = R.pack_sequence([nf.randn(3, 4), nf.randn(2, 4)])
    with pytest.raises(ValueError, match="input_size"):
        lstm(bad)
