"""Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d against PyTorch's modules
(weights copied through state_dict): outputs and every gradient, padding
modes, output_size, init statistics, repr and constructor errors."""
from __future__ import annotations

import numpy as np
import pytest

import nnforge as nf
from nnforge import nn

from helpers import assert_close, requires_torch

try:
    import torch
except ImportError:
    torch = None


def _pair_modules(nf_cls, th_cls, args, kwargs):
    torch.manual_seed(0)
    th = getattr(torch.nn, th_cls)(*args, **kwargs).double()
    ours = getattr(nn, nf_cls)(*args, **kwargs, dtype=nf.float64)
    ours.load_state_dict({k: v.detach().numpy().copy() for k, v in th.state_dict().items()})
    return ours, th


def _compare(ours, th, x_shape, seed=0, **forward_kwargs):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape)
    tx = torch.from_numpy(x.copy()).requires_grad_()
    nx = nf.from_numpy(x.copy()).requires_grad_()
    ty = th(tx, **forward_kwargs)
    ny = ours(nx, **forward_kwargs)
    assert_close(ny, ty, 1e-10, 1e-9)
    g = rng.standard_normal(tuple(ty.shape))
    ty.backward(torch.from_numpy(g))
    ny.backward(nf.from_numpy(g))
    assert_close(nx.grad, tx.grad, 1e-9, 1e-8, msg="input grad")
    for name, p in th.named_parameters():
        assert_close(dict(ours.named_parameters())[name].grad, p.grad, 1e-9, 1e-8, msg=name)


CONV_CASES = [
    ("Conv2d", (3, 6, 3), dict(padding=1), (2, 3, 9, 8)),
    ("Conv2d", (4, 6, (3, 2)), dict(stride=2, dilation=(2, 1), groups=2), (1, 4, 11, 9)),
    ("Conv2d", (4, 4, 3), dict(padding="same", groups=4, bias=False), (2, 4, 7, 7)),
    ("Conv2d", (2, 3, 4), dict(padding="same", dilation=1), (2, 2, 7, 6)),
    ("Conv2d", (2, 3, 3), dict(padding="valid"), (2, 2, 7, 6)),
    ("Conv2d", (3, 4, 3), dict(padding=2, padding_mode="reflect"), (2, 3, 6, 7)),
    ("Conv2d", (3, 4, 3), dict(padding=(1, 2), padding_mode="replicate"), (2, 3, 6, 7)),
    ("Conv2d", (3, 4, 3), dict(padding=1, padding_mode="circular", stride=2), (2, 3, 6, 7)),
    ("Conv2d", (3, 4, 4), dict(padding="same", padding_mode="reflect"), (3, 6, 7)),
    ("Conv2d", (8, 4, 1), dict(), (2, 8, 5, 5)),
    ("Conv1d", (3, 5, 3), dict(padding=1), (2, 3, 12)),
    ("Conv1d", (4, 4, 5), dict(stride=2, groups=4, dilation=2), (2, 4, 20)),
    ("Conv1d", (2, 3, 4), dict(padding="same", padding_mode="circular"), (2, 10)),
]


@requires_torch
@pytest.mark.parametrize("cls, args, kwargs, x_shape", CONV_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CONV_CASES)])
def test_conv_modules_match_torch(cls, args, kwargs, x_shape):
    ours, th = _pair_modules(cls, cls, args, kwargs)
    assert repr(ours) == repr(th)
    _compare(ours, th, x_shape)


TRANSPOSE_CASES = [
    ("ConvTranspose2d", (4, 3, 3), dict(stride=2, padding=1, output_padding=1), (2, 4, 5, 4), {}),
    ("ConvTranspose2d", (4, 6, (3, 2)), dict(stride=(2, 1), groups=2, dilation=2, bias=False),
     (1, 4, 4, 5), {}),
    ("ConvTranspose2d", (3, 2, 3), dict(stride=2, padding=1), (2, 3, 4, 4),
     dict(output_size=(8, 8))),
    ("ConvTranspose2d", (3, 2, 3), dict(stride=3), (3, 4, 4), dict(output_size=(2, 13, 14))),
    ("ConvTranspose1d", (4, 2, 4), dict(stride=2, padding=1, output_padding=1), (2, 4, 6), {}),
]


@requires_torch
@pytest.mark.parametrize("cls, args, kwargs, x_shape, fwd", TRANSPOSE_CASES,
                         ids=[str(i) for i in range(len(TRANSPOSE_CASES))])
def test_transpose_modules_match_torch(cls, args, kwargs, x_shape, fwd):
    ours, th = _pair_modules(cls, cls, args, kwargs)
    assert repr(ours) == repr(th)
    _compare(ours, th, x_shape, **fwd)


@requires_torch
def test_output_size_out_of_range():
    up = nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1)
    with pytest.raises(ValueError, match="valid sizes range from"):
        up(nf.randn(1, 3, 4, 4), output_size=(10, 10))


def test_parameters_shapes_and_init():
    nf.manual_seed(0)
    conv = nn.Conv2d(16, 32, 3, groups=2)
    assert tuple(conv.weight.shape) == (32, 8, 3, 3)
    assert [n for n, _ in conv.named_parameters()] == ["weight", "bias"]
    fan_in = 8 * 9
    bound = 1 / np.sqrt(fan_in)  # kaiming_uniform_(a=sqrt(5)) gives the same bound
    w = conv.weight.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert abs(w.std() - bound / np.sqrt(3)) < 0.05 * bound
    b = conv.bias.detach().numpy()
    assert np.abs(b).max() <= bound
    up = nn.ConvTranspose2d(8, 6, 4, groups=2)
    assert tuple(up.weight.shape) == (8, 3, 4, 4)
    up_bound = 1 / np.sqrt(3 * 16)  # fan_in is weight.shape[1] * kernel
    assert np.abs(up.weight.detach().numpy()).max() <= up_bound
    assert nn.Conv1d(2, 4, 3, bias=False).bias is None
    assert nn.Conv2d(2, 4, 3, dtype=nf.float64).weight.dtype == nf.float64


def test_module_errors():
    with pytest.raises(ValueError, match="in_channels .* divisible by groups"):
        nn.Conv2d(3, 6, 3, groups=2)
    with pytest.raises(ValueError, match="out_channels .* divisible by groups"):
        nn.Conv2d(4, 6, 3, groups=4)
    with pytest.raises(ValueError, match="groups must be a positive integer"):
        nn.Conv2d(4, 4, 3, groups=0)
    with pytest.raises(ValueError, match="'same' is not supported for strided"):
        nn.Conv2d(4, 4, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="invalid padding string"):
        nn.Conv2d(4, 4, 3, padding="full")
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        nn.Conv2d(4, 4, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match='only "zeros" padding mode'):
        nn.ConvTranspose2d(4, 4, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="kernel_size must be an int or a tuple of 2"):
        nn.Conv2d(4, 4, (3, 3, 3))
    with pytest.raises(ValueError, match="needs input with 4 channels"):
        nn.Conv2d(4, 4, 3)(nf.randn(1, 3, 8, 8))


def test_training_step_reduces_loss():
    """A tiny conv net fits a fixed batch: the gradients are usable end to end."""
    nf.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 3, stride=2),
                          nn.Flatten(), nn.Linear(2 * 3 * 3, 3))
    x = nf.randn(8, 1, 7, 7)
    y = nf.randint(0, 3, (8,))
    opt = nf.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(float(loss.item()))
    assert losses[-1] < 0.5 * losses[0]
