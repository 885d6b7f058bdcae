"""nf.viz: learning curves and image grids as PNG files (matplotlib optional)."""
import sys

import numpy as np
import pytest

import nnforge as nf
from nnforge import viz

PNG = b"\x89PNG\r\n\x1a\n"


def _png_size(path):
    data = open(path, "rb").read()
    assert data[:8] == PNG
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.fixture
def matplotlib():
    return pytest.importorskip("matplotlib", reason="the plots need matplotlib "
                               "(pip install 'nnforge[plot]')")


@pytest.mark.parametrize("shape", [(5, 8, 8), (5, 64), (5, 1, 8, 8), (5, 8, 8, 1), (5, 3, 6, 4),
                                   (5, 6, 4, 3), (1, 8, 8)])
def test_image_grid_layouts(tmp_path, matplotlib, shape):
    images = np.random.default_rng(0).random(shape).astype(np.float32)
    path = viz.image_grid(images, tmp_path / "grid.png", nrow=3)
    assert path.endswith("grid.png") and _png_size(path)[0] > 0


def test_image_grid_tensors_titles_and_odd_values(tmp_path, matplotlib):
    images = nf.randn(7, 8, 8, requires_grad=True)  # a tensor that requires grad
    titles = [f"digit {i}" for i in range(7)]
    viz.image_grid(images, tmp_path / "a.png", nrow=4, titles=titles, title="samples")
    const = np.full((4, 5, 5), 3.0)
    const[0, 0, 0] = np.nan  # NaNs blank, a constant image one shade
    viz.image_grid(const, tmp_path / "nested" / "b.png", nrow=10)  # folders are created
    assert _png_size(tmp_path / "nested" / "b.png")[0] > 0
    wide = _png_size(viz.image_grid(np.zeros((8, 4, 4)), tmp_path / "w.png", nrow=8))
    tall = _png_size(viz.image_grid(np.zeros((8, 4, 4)), tmp_path / "t.png", nrow=2))
    assert wide[0] > wide[1] and tall[1] > tall[0]  # nrow is images per row


def test_image_grid_bad_input(tmp_path, matplotlib):
    with pytest.raises(ValueError, match=r"\(N, H, W\).*got \(8,\)"):
        viz.image_grid(np.zeros(8), tmp_path / "x.png")
    with pytest.raises(ValueError, match="not a square number"):
        viz.image_grid(np.zeros((2, 10)), tmp_path / "x.png")
    with pytest.raises(ValueError, match="no images"):
        viz.image_grid(np.zeros((0, 4, 4)), tmp_path / "x.png")
    with pytest.raises(ValueError, match="3 titles for 2 images"):
        viz.image_grid(np.zeros((2, 4, 4)), tmp_path / "x.png", titles=["a", "b", "c"])
    with pytest.raises(ValueError, match="nrow"):
        viz.image_grid(np.zeros((2, 4, 4)), tmp_path / "x.png", nrow=0)
    with pytest.raises(ValueError, match="5 channels"):
        viz.image_grid(np.zeros((2, 5, 4, 5)), tmp_path / "x.png")
    with pytest.raises(ValueError, match="must end with .png"):
        viz.image_grid(np.zeros((2, 4, 4)), tmp_path / "x.jpg")
    with pytest.raises(TypeError, match="must be numbers"):
        viz.image_grid(np.array([["a"]]), tmp_path / "x.png")


def test_plot_history(tmp_path, matplotlib):
    history = {"epoch": [1, 2, 3], "loss": [1.0, 0.5, 0.2], "val_loss": [1.1, None, 0.4],
               "accuracy": [0.5, 0.7, 0.9], "val_accuracy": [0.4, 0.6, float("nan")],
               "lr": [0.1, 0.1, 0.01], "epoch_time": [1, 1, 1]}
    size = _png_size(viz.plot_history(history, tmp_path / "curves.png", title="run"))
    assert size[0] > 3 * 300  # three panels side by side: loss, accuracy, lr
    viz.plot_history({"loss": [0.3]}, tmp_path / "one.png")
    with pytest.raises(ValueError, match="nothing to plot"):
        viz.plot_history({"epoch": [1]}, tmp_path / "x.png")
    with pytest.raises(TypeError, match="dict of per-epoch lists"):
        viz.plot_history([1.0, 2.0], tmp_path / "x.png")


def test_clear_error_without_matplotlib(tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    assert viz.have_matplotlib() is False
    with pytest.raises(ImportError, match=r"install nnforge\[plot\]"):
        viz.image_grid(np.zeros((2, 4, 4)), tmp_path / "x.png")
    with pytest.raises(ImportError, match=r"plot_history needs matplotlib"):
        viz.plot_history({"loss": [1.0]}, tmp_path / "x.png")
    assert not list(tmp_path.iterdir())
