"""What a training run leaves in its output folder (``nnforge train --out DIR``):

    DIR/history.json          the History, per-epoch lists
    DIR/learning_curves.png   loss, metrics and lr per epoch (needs matplotlib)
    DIR/summary.txt           parameters, FLOPs per sample, time per epoch,
                              final and best results, the layer table

(the checkpoints ``best.safetensors``/``last.safetensors`` come from a
``ModelCheckpoint(DIR)`` during training). ``write_run_outputs`` writes the
three files; each recipe calls it after ``fit``.
"""
from __future__ import annotations

import math
import os

__all__ = ["write_run_outputs", "training_summary"]


def _flops_and_table(model, input_shape) -> tuple:
    """(FLOPs per sample text, layer table or None) from ``nn.utils.summary``."""
    if model is None or input_shape is None:
        return "n/a (no input shape given)", None
    try:
        from ..nn.utils import summary
    except ImportError:
        return "n/a (nnforge.nn.utils.summary is not available)", None
    try:
        table = summary(model, input_shape)
    except Exception as e:  # noqa: BLE001 - a summary is a report, never a reason to fail
        return f"n/a (summary failed: {type(e).__name__}: {e})", None
    for line in table.splitlines():
        if line.startswith("FLOPs per sample:"):
            return line.split(":", 1)[1].strip(), table
    return "n/a", table


def _fmt(name: str, value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return f"{name} -"
    if "acc" in name and 0.0 <= value <= 1.0:
        return f"{name} {value * 100:.2f}%"
    return f"{name} {value:.4g}"


def training_summary(history, *, model=None, input_shape=None, header: str | None = None,
                     lines=()) -> str:
    """The text of summary.txt (see the module docstring)."""
    out = ["nnforge training summary"]
    if header:
        out.append(header)
    out.append("")
    if model is not None:
        params = list(model.parameters())
        total = sum(p.numel() for p in params)
        trainable = sum(p.numel() for p in params if p.requires_grad)
        out.append(f"model: {type(model).__name__}")
        out.append(f"parameters: {total:,} ({trainable:,} trainable)")
    flops, table = _flops_and_table(model, input_shape)
    out.append(f"FLOPs per sample (forward): {flops}")
    times = [t for t in history.get("epoch_time", []) if t is not None]
    if times:
        out.append(f"epochs: {len(times)}; time per epoch: mean {sum(times) / len(times):.3f} s, "
                   f"min {min(times):.3f} s, max {max(times):.3f} s; total {sum(times):.1f} s")
    speeds = [s for s in history.get("samples_per_s", []) if s]
    if speeds:
        out.append(f"training throughput: {sum(speeds) / len(speeds):,.0f} samples/s (mean)")
    skip = {"epoch", "epoch_time", "samples_per_s", "lr"}
    final = {k: v[-1] for k, v in history.items() if k not in skip and v}
    if final:
        out.append("last epoch: " + ", ".join(_fmt(k, v) for k, v in final.items()))
    if "val_loss" in history and hasattr(history, "best"):
        epoch, value = history.best("val_loss")
        if epoch is not None:
            out.append(f"best val_loss: {value:.4g} at epoch {epoch + 1}")
    out.extend(lines)
    if table is not None:
        out += ["", table]
    return "\n".join(out) + "\n"


def write_run_outputs(out_dir, history, *, model=None, input_shape=None,
                      header: str | None = None, lines=(), log=print) -> dict:
    """Writes history.json, learning_curves.png (a one-line note instead when
    matplotlib is missing) and summary.txt into ``out_dir``; returns
    {name: path} of the files written. ``input_shape`` (batch dim included)
    lets ``nn.utils.summary`` count the FLOPs per sample; ``lines`` are
    added to the summary (a test accuracy, say)."""
    from .fit import History
    from .. import viz
    os.makedirs(out_dir, exist_ok=True)
    history = history if isinstance(history, History) else History(history)
    written = {}
    path = os.path.join(out_dir, "history.json")
    history.save_json(path)
    written["history"] = path
    path = os.path.join(out_dir, "learning_curves.png")
    if viz.have_matplotlib():
        written["learning_curves"] = viz.plot_history(history, path, title=header)
    elif log is not None:
        log("learning_curves.png not written: matplotlib is not installed "
            "(pip install 'nnforge[plot]')")
    path = os.path.join(out_dir, "summary.txt")
    text = training_summary(history, model=model, input_shape=input_shape, header=header,
                            lines=lines)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
    written["summary"] = path
    if log is not None:
        log(f"wrote {', '.join(os.path.basename(p) for p in written.values())} to {out_dir}")
    return written
