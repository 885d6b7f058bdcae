"""Seeing what a CNN learned: confusion_matrix, feature_maps, plot_filters,
plot_feature_maps, plot_confusion_matrix (the plots need matplotlib)."""
import numpy as np
import pytest

import nnforge as nf
from nnforge import viz
from nnforge.train.metrics import confusion_matrix

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def matplotlib():
    return pytest.importorskip("matplotlib", reason="the plots need matplotlib "
                               "(pip install 'nnforge[plot]')")


def _is_png(path):
    with open(path, "rb") as f:
        return f.read(8) == PNG


def _conv_net():
    nf.manual_seed(0)
    return nf.nn.Sequential(nf.nn.Conv2d(1, 4, 3, padding=1), nf.nn.ReLU(),
                            nf.nn.Conv2d(4, 6, 3), nf.nn.Flatten(), nf.nn.Linear(6 * 6 * 6, 3))


# ---------------------------------------------------------------- confusion matrix
def test_confusion_matrix_counts_against_a_loop():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(200, 5)).astype(np.float32)
    targets = rng.integers(0, 5, 200)
    cm = confusion_matrix(nf.tensor(scores), nf.tensor(targets))
    expected = np.zeros((5, 5), dtype=np.int64)
    for t, p in zip(targets, scores.argmax(1)):
        expected[t, p] += 1
    np.testing.assert_array_equal(cm, expected)
    assert cm.sum() == 200 and np.trace(cm) == int((scores.argmax(1) == targets).sum())
    # Predicted indices give the same; num_classes widens the matrix.
    np.testing.assert_array_equal(confusion_matrix(scores.argmax(1), targets), expected)
    assert confusion_matrix(np.array([0, 1]), np.array([1, 1]), num_classes=4).shape == (4, 4)


def test_confusion_matrix_errors():
    with pytest.raises(ValueError, match=r"class indices must be in \[0, 2\)"):
        confusion_matrix(np.array([0, 3]), np.array([0, 1]), num_classes=2)
    with pytest.raises(ValueError, match=r"targets of shape \(5,\) do not match outputs"):
        confusion_matrix(np.zeros((4, 3)), np.zeros((5,), dtype=int))
    with pytest.raises(TypeError, match="must be integers"):
        confusion_matrix(np.array([0.5, 1.0]), np.array([0, 1]))


# ---------------------------------------------------------------- feature maps
def test_feature_maps_are_the_layer_output_in_eval_mode():
    net = _conv_net()
    x = nf.randn(2, 1, 8, 8)
    net.train()
    maps = viz.feature_maps(net, "1", x)  # after the ReLU
    expected = net[1](net[0](x)).detach().numpy()
    np.testing.assert_allclose(maps, expected, rtol=1e-6)
    assert net.training  # the model's mode is restored
    np.testing.assert_allclose(viz.feature_maps(net, net[2], x), net[2](net[1](net[0](x)))
                               .detach().numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="no layer named 'conv9'"):
        viz.feature_maps(net, "conv9", x)
    with pytest.raises(ValueError, match="not part of the model"):
        viz.feature_maps(net, nf.nn.ReLU(), x)


# ---------------------------------------------------------------- plots
def test_plot_filters_feature_maps_confusion(tmp_path, matplotlib):
    net = _conv_net()
    assert _is_png(viz.plot_filters(net, tmp_path / "filters.png"))
    assert _is_png(viz.plot_filters(net[2], tmp_path / "filters2.png"))   # 4 input channels
    assert _is_png(viz.plot_filters(np.random.rand(8, 3, 5, 5), tmp_path / "rgb.png"))
    assert _is_png(viz.plot_filters(nf.nn.Conv1d(2, 4, 3), tmp_path / "conv1d.png"))
    assert _is_png(viz.plot_feature_maps(net, "0", nf.randn(1, 8, 8), tmp_path / "maps.png"))
    assert _is_png(viz.plot_feature_maps(net, "4", nf.randn(1, 1, 8, 8), tmp_path / "fc.png"))
    cm = confusion_matrix(np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2]))
    assert _is_png(viz.plot_confusion_matrix(cm, tmp_path / "cm.png", labels="abc"))
    assert _is_png(viz.plot_confusion_matrix(cm, tmp_path / "cmn.png", normalize=True))


def test_plot_errors(tmp_path, matplotlib):
    with pytest.raises(ValueError, match="no Conv1d/Conv2d layer"):
        viz.plot_filters(nf.nn.Linear(3, 4), tmp_path / "f.png")
    with pytest.raises(ValueError, match=r"shape \(out, in, kH, kW\)"):
        viz.plot_filters(np.zeros((3, 4)), tmp_path / "f.png")
    with pytest.raises(ValueError, match="square"):
        viz.plot_confusion_matrix(np.zeros((2, 3)), tmp_path / "c.png")
    with pytest.raises(ValueError, match="2 labels for 3 classes"):
        viz.plot_confusion_matrix(np.eye(3), tmp_path / "c.png", labels=["a", "b"])


def test_plot_attention_and_gradient_norms(tmp_path, matplotlib):
    w = np.random.default_rng(0).random((4, 6))
    w /= w.sum(1, keepdims=True)
    assert _is_png(viz.plot_attention(w, tmp_path / "a.png", source=list("abc de"),
                                      target=list("wxyz"), title="attention"))
    with pytest.raises(ValueError, match="5 source labels for 6 columns"):
        viz.plot_attention(w, tmp_path / "b.png", source=list("abcde"))
    with pytest.raises(ValueError, match=r"shape \(target, source\)"):
        viz.plot_attention(np.zeros(3), tmp_path / "b.png")
    curves = {"rnn": 0.5 ** np.arange(50), "lstm": np.ones(50)}
    assert _is_png(viz.plot_gradient_norms(curves, tmp_path / "g.png"))
    with pytest.raises(ValueError, match="no curves"):
        viz.plot_gradient_norms({}, tmp_path / "g.png")
