"""Truncated BPTT: forward values independent of the chunking, gradients cut at
chunk boundaries (each chunk's inputs get exactly their own chunk's gradient),
ordinary BPTT when k >= T, training with an optimizer, errors."""
import numpy as np
import pytest

import nnforge as nf
from nnforge.train import TBPTTResult, detach_state, truncated_bptt


def _mse(out, target):
    return ((out - target) ** 2).sum()


def _setup(cls="LSTM", seed=0):
    nf.manual_seed(seed)
    rnn = getattr(nf.nn, cls)(2, 3, batch_first=True, dtype=nf.float64)
    rng = np.random.default_rng(seed)
    x = nf.tensor(rng.standard_normal((2, 7, 2)), requires_grad=True)
    y = nf.tensor(rng.standard_normal((2, 7, 3)))
    return rnn, x, y


@pytest.mark.parametrize("cls", ["LSTM", "GRU"])
def test_k_at_least_T_is_full_bptt(cls):
    rnn, x, y = _setup(cls)
    res = truncated_bptt(rnn, x, y, _mse, k=7)
    grads = [p.grad.numpy().copy() for p in rnn.parameters()]
    xg = x.grad.numpy().copy()
    for p in rnn.parameters():
        p.grad = None
    x.grad = None
    out, state = rnn(x)
    loss = _mse(out, y)
    loss.backward()
    assert res.chunks == 1 and res.loss == pytest.approx(float(loss))
    np.testing.assert_allclose(x.grad.numpy(), xg, atol=1e-12)
    for p, g in zip(rnn.parameters(), grads):
        np.testing.assert_allclose(p.grad.numpy(), g, atol=1e-12)


def test_chunks_see_the_whole_history_but_gradients_stop_at_boundaries():
    rnn, x, y = _setup("LSTM")
    res = truncated_bptt(rnn, x, y, _mse, k=3)
    assert res.chunks == 3
    # Forward values do not depend on the chunking: same final state as one pass.
    with nf.no_grad():
        _, (h_full, c_full) = rnn(x)
    np.testing.assert_allclose(res.state[0].numpy(), h_full.numpy(), atol=1e-12)
    np.testing.assert_allclose(res.state[1].numpy(), c_full.numpy(), atol=1e-12)
    assert not res.state[0].requires_grad
    # The gradient reaching steps 3..5 is exactly that of chunk 1's loss from the
    # detached state at step 3: the loss of chunk 2 does not reach back past step 6.
    with nf.no_grad():
        _, s3 = rnn(x[:, :3])
    x1 = nf.tensor(x.detach().numpy()[:, 3:6], requires_grad=True)
    out1, _ = rnn(x1, s3)
    _mse(out1, y[:, 3:6]).backward()
    np.testing.assert_allclose(x.grad.numpy()[:, 3:6], x1.grad.numpy(), atol=1e-12)
    # And full BPTT would have sent more: the truncated gradient differs from it.
    x_full = nf.tensor(x.detach().numpy(), requires_grad=True)
    out, _ = rnn(x_full)
    _mse(out, y).backward()
    assert np.abs(x_full.grad.numpy()[:, :3] - x.grad.numpy()[:, :3]).max() > 1e-3


def test_with_an_optimizer_each_chunk_is_an_update_and_the_loss_falls():
    nf.manual_seed(0)
    rnn = nf.nn.GRU(1, 8, batch_first=True)
    head = nf.nn.Linear(8, 1)

    def model(x, state):
        out, state = rnn(x, state)
        return head(out), state

    t = np.arange(240, dtype=np.float32)
    series = np.sin(t * 0.3)[None, :, None].repeat(4, 0) * np.array([1, .5, -1, 2],
                                                                    np.float32)[:, None, None]
    x, y = nf.from_numpy(series[:, :-1].copy()), nf.from_numpy(series[:, 1:].copy())
    params = list(rnn.parameters()) + list(head.parameters())
    opt = nf.optim.Adam(params, lr=0.02)
    first = truncated_bptt(model, x, y, nf.nn.functional.mse_loss, k=20, optimizer=opt,
                           clip_norm=1.0)
    assert first.chunks == 12
    state, last = None, None
    for _ in range(15):
        last = truncated_bptt(model, x, y, nf.nn.functional.mse_loss, k=20, optimizer=opt,
                              state=state, clip_norm=1.0)
        state = last.state
    assert isinstance(last, TBPTTResult)
    assert last.loss < 0.2 * first.loss


def test_detach_state_and_errors():
    a = nf.randn(2, requires_grad=True) * 2
    h, c = detach_state((a, a))
    assert not h.requires_grad and not c.requires_grad
    assert detach_state(None) is None
    with pytest.raises(TypeError, match="detach_state"):
        detach_state({"h": a})
    rnn, x, y = _setup()
    with pytest.raises(ValueError, match="k must be a positive int"):
        truncated_bptt(rnn, x, y, _mse, k=0)
    with pytest.raises(ValueError, match="differ in length"):
        truncated_bptt(rnn, x, y[:, :5], _mse, k=2)
    with pytest.raises(TypeError, match="inputs must be a Tensor"):
        truncated_bptt(rnn, x.detach().numpy(), y, _mse, k=2)
