"""F.interpolate (nearest) / nn.Upsample, and channel dropout (F.dropout1d/2d,
nn.Dropout1d/2d): forward and gradients against numpy and PyTorch."""
import numpy as np
import pytest

import nnforge as nf
from helpers import check_op, requires_torch, torch, torch_or_skip

F = nf.nn.functional


def _np_nearest(x, out_sizes, exact=False):
    """Reference: PyTorch's rule src = min(floor(dst * in / out), in - 1), per dim."""
    y = x
    for k, n_out in enumerate(out_sizes):
        axis = x.ndim - len(out_sizes) + k
        n_in = x.shape[axis]
        dst = np.arange(n_out) + (0.5 if exact else 0.0)
        src = np.minimum(np.floor(dst * np.float32(n_in / n_out)).astype(int), n_in - 1)
        y = np.take(y, src, axis=axis)
    return y


RESIZES = [
    ((2, 3, 5), {"scale_factor": 2}, (10,)),
    ((1, 2, 4, 3), {"scale_factor": 2}, (8, 6)),
    ((2, 1, 3, 5), {"size": (7, 4)}, (7, 4)),            # enlarge one dim, shrink the other
    ((1, 1, 6, 6), {"size": 4}, (4, 4)),                   # shrink: some inputs get no gradient
    ((1, 2, 3, 4), {"scale_factor": (3, 1.5)}, (9, 6)),
    ((1, 1, 2, 2, 2), {"scale_factor": 2}, (4, 4, 4)),
]


@pytest.mark.parametrize("shape,kwargs,out_sizes", RESIZES)
@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
def test_interpolate_vs_numpy_and_torch(shape, kwargs, out_sizes, mode):
    tf = torch.nn.functional if torch is not None else None
    check_op(lambda x: F.interpolate(x, mode=mode, **kwargs),
             (lambda x: tf.interpolate(x, mode=mode, **kwargs)) if tf else None,
             lambda x: _np_nearest(x, out_sizes, exact=mode == "nearest-exact"),
             shapes=[shape])


@requires_torch
def test_upsample_module_matches_torch():
    up, tup = nf.nn.Upsample(scale_factor=4), torch.nn.Upsample(scale_factor=4)
    x = np.random.default_rng(0).normal(size=(2, 3, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(up(nf.tensor(x)).numpy(), tup(torch.tensor(x)).numpy())
    assert repr(nf.nn.Upsample(size=(4, 5))) == repr(torch.nn.Upsample(size=(4, 5)))
    assert repr(up) == repr(tup)


def test_interpolate_errors():
    x = nf.zeros(1, 1, 4, 4)
    with pytest.raises(NotImplementedError, match="bilinear"):
        F.interpolate(x, scale_factor=2, mode="bilinear")
    with pytest.raises(ValueError, match="exactly one of size and scale_factor"):
        F.interpolate(x)
    with pytest.raises(ValueError, match="exactly one of size and scale_factor"):
        F.interpolate(x, size=3, scale_factor=2)
    with pytest.raises(ValueError, match=r"expected a 3-D, 4-D or 5-D input .* \(4, 4\)"):
        F.interpolate(nf.zeros(4, 4), scale_factor=2)
    with pytest.raises(ValueError, match="size .* must have 2 elements"):
        F.interpolate(x, size=(2, 3, 4))
    with pytest.raises(ValueError, match="must be positive"):
        F.interpolate(x, scale_factor=0.1)
    with pytest.raises(ValueError, match="align_corners"):
        F.interpolate(x, scale_factor=2, align_corners=True)


# ---------------------------------------------------------------- channel dropout
@pytest.mark.parametrize("fn,shape", [(F.dropout2d, (4, 6, 5, 5)), (F.dropout2d, (6, 5, 5)),
                                      (F.dropout1d, (4, 6, 7)), (F.dropout1d, (6, 7))])
def test_channel_dropout_drops_whole_channels(fn, shape):
    nf.manual_seed(0)
    x = nf.rand(*shape) + 0.5
    y = fn(x, 0.5)
    spatial = (-1,) if fn is F.dropout1d else (-2, -1)
    kept = (y != 0).numpy()
    # Each channel is all kept or all zeroed, and kept values are scaled by 2.
    per_channel = kept.all(axis=spatial) | ~kept.any(axis=spatial)
    assert per_channel.all()
    np.testing.assert_allclose(y.numpy()[kept], 2 * x.numpy()[kept], rtol=1e-6)
    assert 0 < kept.mean() < 1  # with 24 or 6 channels at p=0.5 both kinds occur (seeded)


def test_channel_dropout_rate_and_gradient():
    nf.manual_seed(1)
    x = nf.ones(200, 50, 2, 2, requires_grad=True)
    y = F.dropout2d(x, 0.3)
    y.sum().backward()
    frac = float((y[:, :, 0, 0] == 0).float().mean())
    assert abs(frac - 0.3) < 0.02
    # d(sum y)/dx = the scaled mask: 1/(1-p) where kept, 0 where dropped.
    np.testing.assert_allclose(x.grad.numpy(), y.detach().numpy())


def test_channel_dropout_eval_and_errors():
    x = nf.randn(2, 3, 4, 4)
    assert F.dropout2d(x, 0.5, training=False) is x
    assert nf.nn.Dropout2d(0.5).eval()(x) is x
    y = F.dropout2d(x, 1.0)
    assert float(y.abs().sum()) == 0.0
    with pytest.raises(ValueError, match=r"dropout2d: expected a 3-D or 4-D input .* \(3, 4\)"):
        F.dropout2d(nf.zeros(3, 4))
    with pytest.raises(ValueError, match="between 0 and 1"):
        nf.nn.Dropout2d(1.5)
    with pytest.raises(TypeError, match="floating point"):
        F.dropout2d(nf.zeros(2, 3, 4, dtype=nf.int64))


def test_dropout2d_repr_matches_torch():
    t = torch_or_skip()
    assert repr(nf.nn.Dropout2d(0.25)) == repr(t.nn.Dropout2d(0.25))
    assert repr(nf.nn.Dropout1d()) == repr(t.nn.Dropout1d())
