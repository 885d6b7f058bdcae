"""Cross entropy (the fused kernels, csrc/cpu/loss*.cpp) and GELU (csrc/cpu/activation.cpp):
forward + backward against torch.nn.functional, float32."""
from __future__ import annotations

import numpy as np

from .harness import Case

CROSS_ENTROPY = [((128, 10), {}), ((128, 10), {"label_smoothing": 0.1}),
                 ((64, 65, 256), {}), ((64, 65, 256), {"label_smoothing": 0.1, "ignore_index": 3})]


def _step(lib, fn, x, *args, **kwargs):
    def step():
        x.grad = None
        fn(x, *args, **kwargs).sum().backward()
    return step


def cases(threads: int):
    import nnforge as nf
    try:
        import torch
        torch.set_num_threads(threads)
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    out = []
    for shape, kw in CROSS_ENTROPY:
        x = rng.standard_normal(shape).astype(np.float32)
        t = rng.integers(0, shape[1], (shape[0],) + shape[2:])
        ours = _step(nf, nf.nn.functional.cross_entropy, nf.tensor(x, requires_grad=True),
                     nf.tensor(t), **kw)
        peer = None if torch is None else _step(
            torch, torch.nn.functional.cross_entropy, torch.tensor(x, requires_grad=True),
            torch.tensor(t), **kw)
        extra = ", ".join(f"{k}={v}" for k, v in kw.items())
        out.append(Case(f"cross_entropy {shape}" + (f" {extra}" if extra else ""), ours, peer,
                        note="forward + backward, float32"))
    x = rng.standard_normal((256, 4096)).astype(np.float32)
    for approximate in ("none", "tanh"):
        ours = _step(nf, nf.nn.functional.gelu, nf.tensor(x, requires_grad=True),
                     approximate=approximate)
        peer = None if torch is None else _step(
            torch, torch.nn.functional.gelu, torch.tensor(x, requires_grad=True),
            approximate=approximate)
        out.append(Case(f"gelu (256, 4096) approximate={approximate}", ours, peer,
                        note="forward + backward, float32"))
    return out
