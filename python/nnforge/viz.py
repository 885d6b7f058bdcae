"""Plots saved as PNG files: learning curves, image grids, and what a CNN learned
(first-layer filters, the feature maps of any layer, a confusion matrix).

matplotlib is an optional extra (``pip install 'nnforge[plot]'``); it is
imported when a plot is made, never by ``import nnforge``. Plots are drawn
on their own ``Figure`` with the Agg canvas, so pyplot's global state (and
the backend of a notebook) is left alone. Files are written atomically.

>>> import nnforge as nf
>>> nf.viz.have_matplotlib() in (True, False)
True
"""
from __future__ import annotations

import importlib
import math
import os

import numpy as np

__all__ = ["plot_history", "image_grid", "have_matplotlib", "plot_filters", "feature_maps",
           "plot_feature_maps", "plot_confusion_matrix", "plot_attention", "plot_gradient_norms",
           "plot_curves", "plot_attention_heads"]

_INSTALL_HINT = "install nnforge[plot] (pip install 'nnforge[plot]') or matplotlib itself"


def have_matplotlib() -> bool:
    """True when matplotlib can be imported (the plots here need it)."""
    try:
        importlib.import_module("matplotlib")
    except ImportError:
        return False
    return True


def _figure(op: str, figsize):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError(f"nnforge.viz.{op} needs matplotlib, which is not installed: "
                          f"{_INSTALL_HINT}") from e
    fig = Figure(figsize=figsize, dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path, op: str) -> str:
    path = os.fspath(path)
    if not path.lower().endswith(".png"):
        raise ValueError(f"nnforge.viz.{op}: path must end with .png, got {path!r}")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp")
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


# --------------------------------------------------------------------------- learning curves
_NOT_PLOTTED = {"epoch", "epoch_time", "samples_per_s"}


def _panels(history: dict) -> list:
    """[(title, [(label, key), ...]), ...]: the loss, then each metric (training
    and validation together), then the lr when it changed."""
    keys = [k for k in history if k not in _NOT_PLOTTED]
    names = []
    for k in keys:
        base = k[4:] if k.startswith("val_") else k
        if base != "lr" and base not in names:
            names.append(base)
    names.sort(key=lambda n: n != "loss")
    panels = []
    for name in names:
        lines = [(label, key) for label, key in (("train", name), ("validation", f"val_{name}"))
                 if key in history]
        panels.append((name, lines))
    lrs = [v for v in history.get("lr", []) if v is not None]
    if len(set(lrs)) > 1:
        panels.append(("learning rate", [("lr", "lr")]))
    return panels


def plot_history(history, path, *, title: str | None = None) -> str:
    """Saves learning curves of a ``fit`` History (or any dict of per-epoch lists)
    as a PNG: one panel for the loss, one per metric (training and validation
    curves together), and one for the learning rate when it changed. Returns
    the path.

    >>> # nf.viz.plot_history(nf.train.fit(...), "out/learning_curves.png")
    """
    if not hasattr(history, "items"):
        raise TypeError(f"plot_history: history must be a dict of per-epoch lists (a fit "
                        f"History), got {type(history).__name__}")
    panels = _panels(history)
    if not panels:
        raise ValueError(f"plot_history: nothing to plot; history has keys {list(history)}")
    n = len(panels)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig = _figure("plot_history", (4.2 * cols, 3.2 * rows))
    from matplotlib.ticker import MaxNLocator
    for i, (name, lines) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        for label, key in lines:
            values = history[key]
            epochs = history.get("epoch") or list(range(1, len(values) + 1))
            pts = [(e, v) for e, v in zip(epochs, values)
                   if v is not None and math.isfinite(v)]
            if pts:
                ax.plot(*zip(*pts), marker="o" if len(pts) < 30 else None, markersize=3,
                        label=label)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if name in ("learning rate",) or (name == "loss" and _spans_decades(history, lines)):
            ax.set_yscale("log")
        if len(lines) > 1:
            ax.legend()
        ax.grid(True, alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path, "plot_history")


def _spans_decades(history, lines) -> bool:
    values = [v for _, key in lines for v in history[key]
              if v is not None and math.isfinite(v) and v > 0]
    return bool(values) and max(values) / min(values) > 100


# --------------------------------------------------------------------------- image grids
def _as_images(images) -> np.ndarray:
    """(N, H, W) grey or (N, H, W, C) colour float images from the accepted layouts."""
    if hasattr(images, "detach") and hasattr(images, "numpy"):  # an nnforge (or torch) tensor
        images = images.detach()
        images = images.cpu().numpy() if hasattr(images, "cpu") else images.numpy()
    arr = np.asarray(images)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(f"image_grid: images must be numbers, got dtype {arr.dtype}")
    shape = arr.shape
    if arr.ndim == 2:  # (N, H*W) flat square images
        side = math.isqrt(shape[1])
        if side * side != shape[1] or side == 0:
            raise ValueError(f"image_grid: images of shape {shape} are flat but {shape[1]} is "
                             "not a square number; reshape them to (N, H, W)")
        arr = arr.reshape(shape[0], side, side)
    elif arr.ndim == 4:
        if shape[1] in (1, 3, 4) and shape[-1] not in (1, 3, 4):  # channels first
            arr = np.moveaxis(arr, 1, -1)
        if arr.shape[-1] == 1:
            arr = arr[..., 0]
        elif arr.shape[-1] not in (3, 4):
            raise ValueError(f"image_grid: images of shape {shape} have "
                             f"{arr.shape[-1]} channels; expected 1, 3 or 4")
    elif arr.ndim != 3:
        raise ValueError(f"image_grid: images must have shape (N, H, W), (N, H, W, C), "
                         f"(N, C, H, W) or (N, H*W), got {shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"image_grid: no images (shape {shape})")
    return arr.astype(np.float64)


def image_grid(images, path, nrow: int = 8, titles=None, *, vmin: float | None = None,
               vmax: float | None = None, cmap: str = "gray", scale: float = 1.0,
               title: str | None = None) -> str:
    """Saves images side by side as one PNG, ``nrow`` images per row (as
    torchvision's ``make_grid``); returns the path.

    ``images``: an array or tensor of shape (N, H, W), (N, H, W, C) or (N, C, H, W)
    with C in 1, 3, 4, or (N, H*W) for flat square images (digits' 64 pixels
    become 8x8). All images share one grey scale from ``vmin`` to ``vmax``
    (default: the smallest and largest value over all images, so a
    reconstruction and its original compare); NaNs show as blank. Colour
    images are clipped to [vmin, vmax] and scaled to [0, 1].
    ``titles``: one string per image (e.g. predicted labels), or None.
    ``scale``: inches per image; ``title``: a title over the grid.

    >>> # nf.viz.image_grid(samples.reshape(-1, 8, 8), "out/samples.png", nrow=10)
    """
    arr = _as_images(images)
    n = arr.shape[0]
    if isinstance(nrow, bool) or not isinstance(nrow, (int, np.integer)) or nrow < 1:
        raise ValueError(f"image_grid: nrow (images per row) must be a positive int, got {nrow!r}")
    if titles is not None:
        titles = [str(t) for t in titles]
        if len(titles) != n:
            raise ValueError(f"image_grid: {len(titles)} titles for {n} images")
    if not scale > 0:
        raise ValueError(f"image_grid: scale must be positive, got {scale!r}")
    finite = arr[np.isfinite(arr)]
    lo = float(vmin) if vmin is not None else (float(finite.min()) if finite.size else 0.0)
    hi = float(vmax) if vmax is not None else (float(finite.max()) if finite.size else 1.0)
    if hi <= lo:
        hi = lo + 1.0  # a constant image: shown as one flat shade instead of failing

    cols = min(int(nrow), n)
    rows = math.ceil(n / cols)
    h, w = arr.shape[1], arr.shape[2]
    aspect = h / w
    cell_h = scale * aspect + (0.25 if titles else 0.0)
    fig = _figure("image_grid", (scale * cols, cell_h * rows + (0.4 if title else 0.0)))
    for i in range(n):
        ax = fig.add_subplot(rows, cols, i + 1)
        img = arr[i]
        if img.ndim == 3:  # colour: imshow wants [0, 1]
            ax.imshow(np.clip((img - lo) / (hi - lo), 0.0, 1.0), interpolation="nearest")
        else:
            ax.imshow(img, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
        ax.set_axis_off()
        if titles:
            ax.set_title(titles[i], fontsize=8)
    if title:
        fig.suptitle(title)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.9 if title else 0.99,
                        wspace=0.05, hspace=0.35 if titles else 0.05)
    return _save(fig, path, "image_grid")


# --------------------------------------------------------------------------- what a CNN learned
def _find_layer(model, layer, op: str):
    """``layer`` itself (a Module inside ``model``) or the submodule named by a dotted path."""
    from .nn import Module
    if isinstance(layer, Module):
        if not any(m is layer for m in model.modules()):
            raise ValueError(f"{op}: the layer {type(layer).__name__} is not part of the model")
        return layer
    named = dict(model.named_modules())
    if layer not in named:
        names = [n for n in named if n][:12]
        raise ValueError(f"{op}: the model has no layer named {layer!r}; some of its layers: "
                         f"{names}")
    return named[layer]


def _first_conv(model, op: str):
    from .nn import Conv1d, Conv2d
    for name, m in model.named_modules():
        if isinstance(m, (Conv1d, Conv2d)):
            return name, m
    raise ValueError(f"{op}: the model has no Conv1d/Conv2d layer")


def plot_filters(model_or_weight, path, *, max_filters: int = 64, nrow: int | None = None,
                 title: str | None = None) -> str:
    """Saves the first convolutional layer's filters as a grid of images: one per
    output channel, (in_channels, kH, kW) shown as grey (1 channel) or colour
    (3 channels), else the mean over input channels. Each filter is scaled on
    its own (its sign pattern is what shows what it detects). Accepts a model
    (its first Conv1d/Conv2d), a conv layer, or a weight tensor/array
    (out, in, kH, kW). Returns the path.

    >>> # nf.viz.plot_filters(lenet, "out/filters.png")
    """
    w = model_or_weight
    name = "filters"
    if hasattr(w, "named_modules"):
        from .nn import Conv1d, Conv2d
        if not isinstance(w, (Conv1d, Conv2d)):
            name, w = _first_conv(w, "plot_filters")
        w = w.weight
    if hasattr(w, "detach"):
        w = w.numpy(force=True)  # detached; a host copy from a device
    w = np.asarray(w, dtype=np.float64)
    if w.ndim == 3:  # Conv1d: (out, in, k) as 1-pixel-high images
        w = w[:, :, None, :]
    if w.ndim != 4:
        raise ValueError(f"plot_filters: expected a conv weight of shape (out, in, kH, kW), "
                         f"got {w.shape}")
    w = w[:max_filters]
    if w.shape[1] == 3:
        imgs = np.moveaxis(w, 1, -1)
    else:
        imgs = w.mean(axis=1) if w.shape[1] != 1 else w[:, 0]
    axes = tuple(range(1, imgs.ndim))
    lo = imgs.min(axis=axes, keepdims=True)
    hi = imgs.max(axis=axes, keepdims=True)
    imgs = (imgs - lo) / np.where(hi > lo, hi - lo, 1.0)
    n = imgs.shape[0]
    return image_grid(imgs, path, nrow=nrow or min(n, 8), vmin=0.0, vmax=1.0,
                      title=title or f"{name}: {n} filters of {tuple(w.shape[1:])}")


def feature_maps(model, layer, input):
    """The output of ``layer`` (a submodule or its dotted name, e.g. "features.0")
    when ``model`` runs on ``input``, as a numpy array; the model is run in
    eval mode without gradients and left in the mode it was in."""
    from .autograd import no_grad
    target = _find_layer(model, layer, "feature_maps")
    captured = []
    handle = target.register_forward_hook(lambda m, args, out: captured.append(out))
    was_training = model.training
    try:
        model.eval()
        with no_grad():
            model(input)
    finally:
        handle.remove()
        model.train(was_training)
    if not captured:
        raise RuntimeError(f"feature_maps: the layer {layer!r} did not run in the model's forward")
    out = captured[0]
    out = out[0] if isinstance(out, (tuple, list)) else out
    return out.numpy(force=True)


def plot_feature_maps(model, layer, input, path, *, max_maps: int = 32,
                      title: str | None = None) -> str:
    """Saves the feature maps ``layer`` computes for one input (the first of the
    batch): one image per channel, all on one grey scale so that strong and
    weak responses compare. ``input``: (C, H, W) or (1, C, H, W)."""
    if input.ndim == 3:
        input = input.unsqueeze(0)
    maps = feature_maps(model, layer, input[:1])[0]
    if maps.ndim == 1:  # a dense layer: one row of activations
        maps = maps[None, None, :]
    elif maps.ndim == 2:  # (C, L)
        maps = maps[:, None, :]
    maps = maps[:max_maps]
    label = layer if isinstance(layer, str) else type(layer).__name__
    return image_grid(maps, path, nrow=min(len(maps), 8),
                      title=title or f"{label}: {len(maps)} maps of {maps.shape[1]}x{maps.shape[2]}")


def plot_confusion_matrix(matrix, path, *, labels=None, normalize: bool = False,
                          title: str | None = None) -> str:
    """Saves a confusion matrix (rows true class, columns predicted, e.g. from
    ``nf.train.metrics.confusion_matrix``) as a heat map with the counts (or,
    with ``normalize``, the fraction of each true class) written in the cells."""
    m = np.asarray(matrix)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise ValueError(f"plot_confusion_matrix: expected a square (C, C) matrix, got shape "
                         f"{m.shape}")
    n = m.shape[0]
    labels = [str(i) for i in range(n)] if labels is None else [str(x) for x in labels]
    if len(labels) != n:
        raise ValueError(f"plot_confusion_matrix: {len(labels)} labels for {n} classes")
    shown = m.astype(np.float64)
    if normalize:
        shown = shown / np.maximum(shown.sum(axis=1, keepdims=True), 1)
    side = max(4.0, 0.45 * n + 1.5)
    fig = _figure("plot_confusion_matrix", (side + 1.0, side))
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(shown, cmap="Blues", interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(labels)
    ax.set_yticklabels(labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = shown.max() if shown.size else 1.0
    for i in range(n):
        for j in range(n):
            text = f"{shown[i, j]:.2f}" if normalize else str(int(m[i, j]))
            ax.text(j, i, text, ha="center", va="center", fontsize=7,
                    color="white" if shown[i, j] > 0.6 * top else "black")
    correct = np.trace(m) / max(m.sum(), 1)
    ax.set_title(title or f"confusion matrix ({correct * 100:.1f}% on the diagonal)")
    fig.tight_layout()
    return _save(fig, path, "plot_confusion_matrix")


# --------------------------------------------------------------------------- sequences
def _as_weights(weights) -> np.ndarray:
    return np.asarray(weights.numpy(force=True) if hasattr(weights, "detach") else weights,
                      dtype=np.float64)


def _token_labels(tokens):
    """Tick labels for tokens (escapes shown, a blank for the empty string), or None."""
    return None if tokens is None else [repr(str(t))[1:-1] or " " for t in tokens]


def _heat_map(ax, w: np.ndarray, xlabels=None, ylabels=None, fontsize: int = 7) -> None:
    """Weights in [0, max] as an image on ``ax``, columns/rows labelled when given."""
    ax.imshow(w, cmap="viridis", vmin=0.0, vmax=max(float(w.max()), 1e-9), aspect="auto",
              interpolation="nearest")
    if xlabels is not None:
        ax.set_xticks(range(w.shape[1]))
        ax.set_xticklabels(xlabels, fontsize=fontsize)
    if ylabels is not None:
        ax.set_yticks(range(w.shape[0]))
        ax.set_yticklabels(ylabels, fontsize=fontsize)


def plot_attention(weights, path, *, source=None, target=None, title: str | None = None) -> str:
    """Saves attention weights (target steps T, source positions S) as a heat map,
    rows labelled by the ``target`` tokens and columns by the ``source`` tokens
    (sequences of strings, e.g. the characters). Returns the path."""
    w = _as_weights(weights)
    if w.ndim != 2 or 0 in w.shape:
        raise ValueError(f"plot_attention: expected weights of shape (target, source), got "
                         f"{w.shape}")
    rows, cols = w.shape
    for name, labels, n in (("source", source, cols), ("target", target, rows)):
        if labels is not None and len(labels) != n:
            raise ValueError(f"plot_attention: {len(labels)} {name} labels for {n} "
                             f"{'columns' if name == 'source' else 'rows'}")
    fig = _figure("plot_attention", (max(4.0, 0.28 * cols + 1.5), max(3.0, 0.28 * rows + 1.2)))
    ax = fig.add_subplot(1, 1, 1)
    _heat_map(ax, w, _token_labels(source), _token_labels(target), fontsize=7)
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return _save(fig, path, "plot_attention")


def plot_attention_heads(weights, path, *, tokens=None, ncols: int = 4,
                         title: str | None = None) -> str:
    """Saves one heat map per head of attention weights (heads, T_query, T_key), e.g.
    ``GPT.attention_maps(ids)[layer][0]`` or MultiheadAttention's weights with
    ``average_attn_weights=False``; ``tokens`` label both axes when the attention is
    self-attention over them. Returns the path."""
    w = _as_weights(weights)
    if w.ndim != 3 or 0 in w.shape:
        raise ValueError(f"plot_attention_heads: expected weights (heads, query, key), got "
                         f"shape {w.shape}")
    heads, rows, cols = w.shape
    if tokens is not None and len(tokens) != cols:
        raise ValueError(f"plot_attention_heads: {len(tokens)} tokens for {cols} key positions")
    ncols = max(1, min(ncols, heads))
    nrows = math.ceil(heads / ncols)
    side = max(2.2, 0.22 * cols + 1.0)
    fig = _figure("plot_attention_heads", (side * ncols, side * nrows + (0.4 if title else 0)))
    labels = _token_labels(tokens)
    for h in range(heads):
        ax = fig.add_subplot(nrows, ncols, h + 1)
        _heat_map(ax, w[h], labels, labels if rows == cols else None, fontsize=6)
        ax.set_title(f"head {h}", fontsize=9)
        if labels is None:
            ax.set_xticks([])
            ax.set_yticks([])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path, "plot_attention_heads")


def plot_curves(curves: dict, path, *, xlabel: str, ylabel: str, log: bool = True,
                title: str | None = None, op: str = "plot_curves") -> str:
    """Saves named 1-D curves against their index on one axis (a log y axis by
    default; non-positive and non-finite values are left out, so a loss that went
    to NaN simply stops). Returns the path."""
    if not curves:
        raise ValueError(f"{op}: no curves given")
    fig = _figure(op, (6.0, 3.6))
    ax = fig.add_subplot(1, 1, 1)
    for name, values in curves.items():
        v = np.asarray(values, dtype=np.float64)
        if v.ndim != 1:
            raise ValueError(f"{op}: curve {name!r} must be 1-D, got {v.shape}")
        keep = np.isfinite(v) & (v > 0) if log else np.isfinite(v)
        line, = ax.plot(np.arange(len(v)), np.where(keep, v, np.nan), label=str(name))
        if keep.any() and not np.isfinite(v).all():   # mark where a diverging curve stops
            last = int(np.flatnonzero(keep)[-1])
            ax.plot([last], [v[last]], marker="x", markersize=9, color=line.get_color())
            ax.annotate(" then inf/NaN", (last, v[last]), color=line.get_color(), fontsize=8)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return _save(fig, path, op)


def plot_gradient_norms(curves: dict, path, *, title: str | None = None) -> str:
    """Saves curves of a gradient norm against the time step, one per name
    (e.g. {"tanh RNN": norms, "LSTM": norms} with norms[t] = ||dL/dh_t||) on a
    log scale, where vanishing shows as a straight fall. Returns the path."""
    return plot_curves(curves, path, xlabel="time step t", ylabel="||dL/dh_t||", title=title,
                       op="plot_gradient_norms")
