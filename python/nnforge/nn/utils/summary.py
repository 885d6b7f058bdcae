"""``summary(model, input)``: a table of a model's layers, output shapes and sizes.

One dummy forward pass (under ``no_grad``, in eval mode, modes restored
afterwards) with forward hooks on every leaf module records what each one
outputs. FLOPs are counted where a rule is known (``FLOP_COUNTERS``: Linear,
2 * in * out per output row, i.e. one multiply and one add per weight); every
other layer counts 0 and the table names those classes, so the total is a
lower bound.
"""
from __future__ import annotations

from ... import dtypes as _dt
from ...autograd.grad_mode import no_grad
from ...ops import creation
from ...random import Generator
from ...tensor import Tensor
from ..linear import Linear
from ..module import Module

__all__ = ["summary", "FLOP_COUNTERS"]


def _linear_flops(module: Linear, inputs, output) -> int:
    rows = output.numel() // module.out_features if module.out_features else 0
    return 2 * module.in_features * module.out_features * rows


# Module class -> fn(module, inputs, output) giving the FLOPs of one call.
# Layers add their rule here; subclasses use their parent's.
FLOP_COUNTERS: dict = {Linear: _linear_flops}


def _flop_rule(module: Module):
    for cls in type(module).__mro__:
        if cls in FLOP_COUNTERS:
            return FLOP_COUNTERS[cls]
    return None


def _example_inputs(input, dtype, device) -> list:
    """Tensors to call the model with: given tensors as they are, shapes filled with
    standard normal values (zeros for integer dtypes) from a fixed seed."""
    if isinstance(input, Tensor):
        return [input]
    if isinstance(input, (tuple, list)) and input and all(
            isinstance(s, int) and not isinstance(s, bool) for s in input):
        items = [tuple(input)]
    elif isinstance(input, (tuple, list)) and input:
        items = list(input)
    else:
        raise TypeError("summary: input must be a Tensor, a shape (a tuple of ints) or a list "
                        f"of those (one per model input), got {input!r}")
    dt = _dt.get_default_dtype() if dtype is None else _dt.as_dtype(dtype)
    gen = Generator().manual_seed(0)
    out = []
    for item in items:
        if isinstance(item, Tensor):
            out.append(item)
        elif isinstance(item, (tuple, list)) and all(isinstance(s, int) for s in item):
            if dt.is_floating_point:
                out.append(creation.randn(*item, generator=gen, dtype=dt, device=device))
            else:
                out.append(creation.zeros(*item, dtype=dt, device=device))
        else:
            raise TypeError(f"summary: each input must be a Tensor or a shape, got {item!r}")
    return out


def _shape_text(output) -> str:
    if isinstance(output, Tensor):
        return str(tuple(output.shape))
    if isinstance(output, (tuple, list)):
        parts = [_shape_text(o) for o in output]
        return "[" + ", ".join(p for p in parts if p) + "]"
    return ""


def _count(output) -> int:
    return output.numel() if isinstance(output, Tensor) else 0


def _trainable_text(params) -> str:
    if not params:
        return "-"
    flags = {p.requires_grad for p in params}
    return "partial" if len(flags) == 2 else ("yes" if True in flags else "no")


def summary(model: Module, input, *, dtype=None, device=None, batch_dim: int | None = 0) -> str:
    """A table with one row per leaf module (and per module that holds parameters
    of its own): name, class, output shape, number of parameters, whether they
    are trainable; then the totals and the FLOPs per sample.

    ``input`` is an example input tensor, an input shape (the full shape, batch
    dim included; filled with random values of ``dtype``, default the default
    float dtype, on ``device``, default the model's) or a list of those for a
    model with several inputs. FLOPs per
    sample divide the total by the size of ``batch_dim`` of the first input
    (``batch_dim=None``: the input is one sample).

    >>> import nnforge as nf
    >>> mlp = nf.nn.Sequential(nf.nn.Linear(784, 256), nf.nn.ReLU(), nf.nn.Linear(256, 10))
    >>> print(nf.nn.utils.summary(mlp, (32, 784)))  # doctest: +NORMALIZE_WHITESPACE
    Layer  Type    Output shape  Params   Trainable
    -----------------------------------------------
    0      Linear  (32, 256)     200,960  yes
    1      ReLU    (32, 256)     0        -
    2      Linear  (32, 10)      2,570    yes
    ===============================================
    Total params: 203,530
    Trainable params: 203,530
    Non-trainable params: 0
    FLOPs per sample: 406,528 (counted: Linear; counted as 0: ReLU)
    Input shape: (32, 784)
    """
    if not isinstance(model, Module):
        raise TypeError(f"summary: model must be an nn.Module, got {type(model).__name__}")
    if device is None:  # where the model's weights are
        first = next(iter(model.parameters()), None)
        device = None if first is None else first.device
    inputs = _example_inputs(input, dtype, device)

    rows = []  # [name, module, own params, output text, flops]
    hooks = []
    for name, module in model.named_modules():
        own = list(module.parameters(recurse=False))
        is_leaf = next(module.children(), None) is None
        if not (is_leaf or own):
            continue
        row = {"name": name or type(module).__name__, "module": module, "params": own,
               "shape": "-", "flops": 0}
        rows.append(row)
        rule = _flop_rule(module) if is_leaf else None

        def hook(mod, args, output, row=row, rule=rule):
            row["shape"] = _shape_text(output)
            if rule is not None and isinstance(output, Tensor):
                row["flops"] += rule(mod, args, output)
        hooks.append(module.register_forward_hook(hook))

    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with no_grad():
            model(*inputs)
    finally:
        for h in hooks:
            h.remove()
        for m, mode in modes:
            m.training = mode

    header = ["Layer", "Type", "Output shape", "Params", "Trainable"]
    table = [[r["name"], type(r["module"]).__name__, r["shape"],
              f"{sum(p.numel() for p in r['params']):,}", _trainable_text(r["params"])]
             for r in rows]
    widths = [max(len(line[i]) for line in [header] + table) for i in range(len(header))]

    def fmt(cells):
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    width = sum(widths) + 2 * (len(widths) - 1)
    lines = [fmt(header), "-" * width] + [fmt(line) for line in table] + ["=" * width]

    params = list(model.parameters())  # shared parameters counted once
    total = sum(p.numel() for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    lines += [f"Total params: {total:,}", f"Trainable params: {trainable:,}",
              f"Non-trainable params: {total - trainable:,}"]

    first = inputs[0]
    batch = 1
    if batch_dim is not None and first.ndim > 0:
        batch = first.shape[batch_dim]
    flops = sum(r["flops"] for r in rows)
    per_sample = flops / batch if batch else flops
    counted = sorted({type(r["module"]).__name__ for r in rows
                      if _flop_rule(r["module"]) is not None})
    uncounted = sorted({type(r["module"]).__name__ for r in rows
                        if _flop_rule(r["module"]) is None and r["shape"] != "-"})
    note = []
    if counted:
        note.append("counted: " + ", ".join(counted))
    if uncounted:
        note.append("counted as 0: " + ", ".join(uncounted))
    per_text = f"{int(per_sample):,}" if float(per_sample).is_integer() else f"{per_sample:,.1f}"
    lines.append(f"FLOPs per sample: {per_text}" + (f" ({'; '.join(note)})" if note else ""))
    shapes = ", ".join(str(tuple(t.shape)) for t in inputs)
    lines.append(f"Input shape{'s' if len(inputs) > 1 else ''}: {shapes}")
    return "\n".join(lines)
