"""Tests for nnforge.nn.utils (python/nnforge/nn/utils/): gradient clipping and
parameter vectors against PyTorch, weight penalties, and the model summary."""
import math

import numpy as np
import pytest

import nnforge as nf
from nnforge import nn
from nnforge.nn import utils

from helpers import assert_close, requires_torch, torch


def params_with_grads(seed=0, scale=1.0, dtype=np.float32):
    """Three parameters (one without a gradient) and their PyTorch twins."""
    rng = np.random.default_rng(seed)
    shapes = [(3, 4), (4,), (2, 2, 2)]
    values = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [(scale * rng.standard_normal(s)).astype(dtype) for s in shapes]
    ours = [nn.Parameter(nf.tensor(v)) for v in values]
    for p, g in zip(ours[:2], grads[:2]):  # the last one has no gradient
        p.grad = nf.tensor(g)
    theirs = None
    if torch is not None:
        theirs = [torch.nn.Parameter(torch.tensor(v)) for v in values]
        for p, g in zip(theirs[:2], grads[:2]):
            p.grad = torch.tensor(g)
    return ours, theirs


# ---------------------------------------------------------------- clip_grad_norm_
@requires_torch
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf, "inf"])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_vs_pytorch(norm_type, max_norm):
    ours, theirs = params_with_grads()
    total = utils.clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    ref = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=float(norm_type))
    assert isinstance(total, nf.Tensor) and total.ndim == 0 and not total.requires_grad
    assert_close(total, ref, rtol=1e-6)
    for p, q in zip(ours, theirs):
        if q.grad is None:
            assert p.grad is None
        else:
            assert_close(p.grad, q.grad, rtol=1e-6, atol=1e-7)


def test_clip_grad_norm_scales_to_max_norm_and_leaves_small_gradients():
    w = nn.Parameter(nf.zeros(2))
    w.grad = nf.tensor([3.0, 4.0])
    assert utils.clip_grad_norm_(w, 1.0).item() == pytest.approx(5.0)  # a single tensor
    np.testing.assert_allclose(w.grad.numpy(), [0.6, 0.8], rtol=1e-5)
    w.grad = nf.tensor([0.3, 0.4])
    utils.clip_grad_norm_([w], 1.0)
    np.testing.assert_allclose(w.grad.numpy(), [0.3, 0.4])  # the factor is capped at 1
    model = nn.Linear(3, 2)
    model(nf.randn(4, 3)).sum().backward()
    before = [p.grad.numpy().copy() for p in model.parameters()]
    total = utils.clip_grad_norm_(model.parameters(), max_norm=1e-3)  # a generator
    expected = math.sqrt(sum((g ** 2).sum() for g in before))
    assert total.item() == pytest.approx(expected, rel=1e-5)
    after = math.sqrt(sum((p.grad.numpy() ** 2).sum() for p in model.parameters()))
    assert after == pytest.approx(1e-3, rel=1e-3)


def test_clip_grad_norm_edge_cases():
    assert utils.clip_grad_norm_([nn.Parameter(nf.ones(2))], 1.0).item() == 0.0  # no grads
    p = nn.Parameter(nf.ones(3))
    p.grad = nf.tensor([1.0, math.inf, 0.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    total = utils.clip_grad_norm_([p], 1.0)  # scaled anyway, as in PyTorch
    assert math.isinf(total.item())
    q = nn.Parameter(nf.ones(3))
    q.grad = nf.tensor([0.0, 2.0, -3.0])
    assert utils.clip_grad_norm_([q], 10.0, norm_type=0).item() == 2.0  # nonzero count
    with pytest.raises(ValueError, match="norm_type"):
        utils.clip_grad_norm_([q], 1.0, norm_type=-1)
    with pytest.raises(TypeError, match="expected Tensors"):
        utils.clip_grad_norm_([q, 3], 1.0)
    p64 = nn.Parameter(nf.ones(2, dtype=nf.float64))
    p64.grad = nf.tensor([3.0, 4.0], dtype=nf.float64)
    assert utils.clip_grad_norm_([p64], 1.0, foreach=True).dtype == nf.float64


def test_clipping_does_not_record_a_graph():
    w = nn.Parameter(nf.ones(2))
    w.grad = nf.tensor([3.0, 4.0])
    total = utils.clip_grad_norm_([w], 1.0)
    assert total.grad_fn is None and w.grad.grad_fn is None and not w.grad.requires_grad


# ---------------------------------------------------------------- clip_grad_value_
@requires_torch
def test_clip_grad_value_vs_pytorch():
    ours, theirs = params_with_grads(scale=3.0)
    assert utils.clip_grad_value_(ours, 1.5) is None
    torch.nn.utils.clip_grad_value_(theirs, 1.5)
    for p, q in zip(ours[:2], theirs[:2]):
        assert_close(p.grad, q.grad)
    assert np.abs(ours[0].grad.numpy()).max() == 1.5
    with pytest.raises(ValueError, match="clip_value must be non-negative"):
        utils.clip_grad_value_(ours, -1.0)


# ---------------------------------------------------------------- parameter vectors
def test_parameters_to_vector_and_back():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    vec = utils.parameters_to_vector(model.parameters())
    assert tuple(vec.shape) == (3 * 4 + 4 + 4 * 2 + 2,)
    np.testing.assert_array_equal(vec[:12].detach().numpy(),
                                  model[0].weight.detach().numpy().reshape(-1))
    # differentiable: the gradient flows back to each parameter
    (vec * vec).sum().backward()
    np.testing.assert_allclose(model[1].bias.grad.numpy(), 2 * model[1].bias.detach().numpy())
    new = nf.arange(vec.numel(), dtype=nf.float32)
    utils.vector_to_parameters(new, model.parameters())
    np.testing.assert_array_equal(model[1].bias.detach().numpy(), [24.0, 25.0])
    np.testing.assert_array_equal(utils.parameters_to_vector(model.parameters()).detach().numpy(),
                                  new.numpy())
    assert model[0].weight.requires_grad and model[0].weight.grad_fn is None


@requires_torch
def test_parameter_vectors_match_pytorch_order():
    ours, theirs = params_with_grads()
    assert_close(utils.parameters_to_vector(ours),
                 torch.nn.utils.parameters_to_vector(theirs))


def test_vector_to_parameters_errors():
    params = [nn.Parameter(nf.ones(2, 2)), nn.Parameter(nf.ones(3))]
    with pytest.raises(ValueError, match="vec has 6 elements but the parameters have 7"):
        utils.vector_to_parameters(nf.ones(6), params)
    with pytest.raises(ValueError, match="vec must be 1-D"):
        utils.vector_to_parameters(nf.ones(7, 1), params)
    with pytest.raises(TypeError, match="expected 'vec' to be a Tensor"):
        utils.vector_to_parameters(np.ones(7), params)
    with pytest.raises(TypeError, match="single Tensor"):
        utils.parameters_to_vector(nf.ones(3))


# ---------------------------------------------------------------- penalties
def test_l1_and_l2_penalties_values_and_gradients():
    model = nn.Linear(3, 2)
    w, b = model.weight.detach().numpy(), model.bias.detach().numpy()
    l1 = utils.l1_penalty(model, 0.1)
    l2 = utils.l2_penalty(model, 0.01)
    assert l1.item() == pytest.approx(0.1 * (np.abs(w).sum() + np.abs(b).sum()), rel=1e-6)
    assert l2.item() == pytest.approx(0.01 * ((w ** 2).sum() + (b ** 2).sum()), rel=1e-6)
    (l1 + l2).backward()
    np.testing.assert_allclose(model.weight.grad.numpy(), 0.1 * np.sign(w) + 0.02 * w,
                               rtol=1e-5)
    # only the weights: an iterable of tensors, or one tensor
    only_w = utils.l2_penalty([model.weight], 1.0)
    assert only_w.item() == pytest.approx((w ** 2).sum(), rel=1e-6)
    assert utils.l1_penalty(model.weight).item() == pytest.approx(np.abs(w).sum(), rel=1e-6)
    assert utils.l1_penalty([], 1.0).item() == 0.0
    with pytest.raises(TypeError, match="l2_penalty: expected a Module"):
        utils.l2_penalty(3.0)


def test_l2_penalty_matches_sgd_weight_decay():
    """The gradient of l2_penalty(p, wd / 2) is wd * p: SGD's weight_decay."""
    p = nn.Parameter(nf.tensor([1.0, -2.0, 0.5]))
    utils.l2_penalty([p], 0.1 / 2).backward()
    np.testing.assert_allclose(p.grad.numpy(), 0.1 * p.detach().numpy(), rtol=1e-6)


def test_penalty_gradcheck():
    a = nf.tensor(np.random.default_rng(0).standard_normal((3, 2)) + 0.1, dtype=nf.float64,
                  requires_grad=True)
    b = nf.tensor([0.5, -1.5], dtype=nf.float64, requires_grad=True)
    assert nf.autograd.gradcheck(lambda x, y: utils.l1_penalty([x, y], 0.3), (a, b))
    assert nf.autograd.gradcheck(lambda x, y: utils.l2_penalty([x, y], 0.3), (a, b))


# ---------------------------------------------------------------- summary
def test_summary_of_an_mlp():
    mlp = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Dropout(0.1), nn.Linear(256, 10))
    text = utils.summary(mlp, (32, 784))
    lines = text.splitlines()
    assert lines[0].split() == ["Layer", "Type", "Output", "shape", "Params", "Trainable"]
    assert lines[2].split() == ["0", "Linear", "(32,", "256)", "200,960", "yes"]
    assert lines[3].split() == ["1", "ReLU", "(32,", "256)", "0", "-"]
    assert lines[4].split() == ["2", "Dropout", "(32,", "256)", "0", "-"]
    assert lines[5].split() == ["3", "Linear", "(32,", "10)", "2,570", "yes"]
    assert "Total params: 203,530" in text
    assert "Trainable params: 203,530" in text and "Non-trainable params: 0" in text
    flops = 2 * 784 * 256 + 2 * 256 * 10
    assert f"FLOPs per sample: {flops:,} (counted: Linear; counted as 0: Dropout, ReLU)" in text
    assert text.endswith("Input shape: (32, 784)")
    assert nf.nn.utils.summary is utils.summary


def test_summary_restores_modes_and_records_no_graph():
    model = nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.5))
    model[0].weight.requires_grad_(False)
    model.train()
    x = nf.randn(2, 4, requires_grad=True)
    text = utils.summary(model, x)
    assert model.training and model[1].training
    assert x.grad is None and model[0].bias.grad is None
    assert "Trainable params: 3" in text and "Non-trainable params: 12" in text
    assert "0      Linear   (2, 3)        15      partial" in text
    model.eval()
    utils.summary(model, x)
    assert not model.training


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(nf.ones(1))  # a parameter of the non-leaf module itself
        self.a = nn.Linear(3, 5)
        self.b = nn.Linear(2, 5)
        self.unused = nn.Tanh()

    def forward(self, x, y):
        return self.a(x) * self.scale + self.b(y)


def test_summary_with_two_inputs_own_parameters_and_an_unused_layer():
    text = utils.summary(TwoInputs(), [(6, 3), nf.zeros(6, 2)])
    rows = {line.split()[0]: line.split() for line in text.splitlines()[2:6]}
    assert rows["TwoInputs"][1:] == ["TwoInputs", "(6,", "5)", "1", "yes"]
    assert rows["unused"][1:] == ["Tanh", "-", "0", "-"]
    assert "Total params: 36" in text
    assert f"FLOPs per sample: {2 * 3 * 5 + 2 * 2 * 5:,}" in text
    assert "Input shapes: (6, 3), (6, 2)" in text


def test_summary_shared_layers_batch_dim_and_errors():
    shared = nn.Linear(4, 4)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    text = utils.summary(model, (10, 4))
    assert "Total params: 20" in text  # the shared layer counted once
    assert f"FLOPs per sample: {2 * 2 * 4 * 4:,}" in text  # but its two calls both count
    one = utils.summary(nn.Linear(3, 2), (3,), batch_dim=None)
    assert "FLOPs per sample: 12 " in one
    assert "Output shape" in utils.summary(nn.Linear(3, 2), (5, 3), dtype=nf.float64)
    with pytest.raises(TypeError, match="summary: model must be an nn.Module"):
        utils.summary(lambda x: x, (3,))
    with pytest.raises(TypeError, match="summary: input must be a Tensor, a shape"):
        utils.summary(nn.Linear(3, 2), "3")
