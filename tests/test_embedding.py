"""F.embedding and nn.Embedding against numpy and PyTorch."""
import numpy as np
import pytest

import nnforge as nf
from helpers import assert_close, check_op, torch, torch_or_skip

F = nf.nn.functional


@pytest.mark.parametrize("padding_idx", [None, 0, -1])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_embedding_forward_and_gradient(padding_idx, dtype):
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 6, size=(3, 5))
    idx[0, :3] = 2  # a repeated row: its gradient sums the contributions
    idx[1, 0] = 5
    w = rng.normal(size=(6, 4)).astype(dtype)
    tf = torch.nn.functional if torch is not None else None
    check_op(lambda i, w: F.embedding(i, w, padding_idx=padding_idx),
             (lambda i, w: tf.embedding(i, w, padding_idx=padding_idx)) if tf else None,
             lambda i, w: w[i], inputs=[idx, w], dtype=dtype,
             # The padding row's gradient is zero by definition (PyTorch's too), not the
             # numerical derivative, so finite differences check only the plain lookup.
             gradcheck=dtype == "float64" and padding_idx is None)


def test_max_norm_renormalizes_rows_read_like_torch():
    t = torch_or_skip()
    rng = np.random.default_rng(0)
    w = (3 * rng.normal(size=(8, 5))).astype(np.float32)
    idx = np.array([[1, 3, 3], [6, 1, 0]])
    ours, theirs = nf.tensor(w.copy(), requires_grad=True), t.tensor(w.copy(), requires_grad=True)
    y = F.embedding(nf.tensor(idx), ours, max_norm=1.5, norm_type=2.0)
    ty = t.nn.functional.embedding(t.tensor(idx), theirs, max_norm=1.5)
    assert_close(y, ty, atol=1e-6)
    assert_close(ours, theirs, atol=1e-6)  # rows 0, 1, 3, 6 renormalized in place, others not
    np.testing.assert_array_equal(ours.detach().numpy()[[2, 4, 5, 7]], w[[2, 4, 5, 7]])


def test_embedding_module_matches_torch():
    t = torch_or_skip()
    nf.manual_seed(0)
    ours = nf.nn.Embedding(12, 4, padding_idx=3)
    theirs = t.nn.Embedding(12, 4, padding_idx=3)
    theirs.load_state_dict({"weight": t.from_numpy(ours.weight.detach().numpy().copy())})
    assert repr(ours) == repr(theirs)
    assert float(ours.weight[3].abs().sum()) == 0.0
    idx = np.array([[3, 1, 1, 11], [0, 3, 5, 2]])
    y, ty = ours(nf.tensor(idx)), theirs(t.tensor(idx))
    assert_close(y, ty)
    g = np.random.default_rng(1).normal(size=(2, 4, 4)).astype(np.float32)
    y.backward(nf.tensor(g))
    ty.backward(t.tensor(g))
    assert_close(ours.weight.grad, theirs.weight.grad)
    # Initialization N(0, 1): the non-padding rows' statistics.
    big = nf.nn.Embedding(5000, 8).weight.detach().numpy()
    assert abs(big.mean()) < 0.03 and abs(big.std() - 1) < 0.03


def test_from_pretrained_and_freeze():
    w = nf.randn(4, 3)
    frozen = nf.nn.Embedding.from_pretrained(w)
    assert not frozen.weight.requires_grad
    assert_close(frozen(nf.tensor([2])), w[2:3])
    trainable = nf.nn.Embedding.from_pretrained(w, freeze=False, padding_idx=1)
    assert trainable.weight.requires_grad and trainable.padding_idx == 1
    trainable(nf.tensor([0, 1])).sum().backward()
    assert trainable.weight.grad[1].abs().sum().item() == 0.0
    w.add_(1.0)  # the module holds a copy
    assert not np.allclose(frozen.weight.detach().numpy(), w.numpy())


def test_embedding_errors():
    emb = nf.nn.Embedding(5, 2)
    with pytest.raises(IndexError, match=r"embedding: index 5 is out of range .* 5 rows .* \(2, 2\)"):
        emb(nf.tensor([[0, 1], [5, 2]]))
    with pytest.raises(IndexError, match="index -1 is out of range"):
        emb(nf.tensor([-1]))
    with pytest.raises(TypeError, match="indices must be an integer tensor"):
        emb(nf.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="padding_idx 7 must be within"):
        nf.nn.Embedding(5, 2, padding_idx=7)
    with pytest.raises(ValueError, match="must be 2-D"):
        F.embedding(nf.tensor([0]), nf.zeros(3))
    with pytest.raises(ValueError, match="must be 2-D"):
        nf.nn.Embedding.from_pretrained(nf.zeros(3))
