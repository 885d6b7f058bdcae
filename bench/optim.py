"""One optimizer step over the parameters of a 784-1024-256-10 MLP (1.07M
float32 parameters in six weight and bias tensors, gradients fixed): nnforge's
fused kernels against torch.optim, its default single-tensor path and, for
Adam, also its fused CPU kernel (``fused=True``)."""
from __future__ import annotations

import numpy as np

from .harness import Case

SIZES = [(784, 1024), (1024, 256), (256, 10)]


def _params(lib, rng_seed=0):
    rng = np.random.default_rng(rng_seed)
    params = []
    for fan_in, fan_out in SIZES:
        for shape in ((fan_out, fan_in), (fan_out,)):
            p = lib.tensor(rng.standard_normal(shape).astype(np.float32) * 0.05,
                           requires_grad=True)
            p.grad = lib.tensor(rng.standard_normal(shape).astype(np.float32) * 0.01)
            params.append(p)
    return params


def cases(threads: int):
    import nnforge as nf
    n = sum(o * i + o for i, o in SIZES)
    ours = {"Adam": nf.optim.Adam(_params(nf), lr=1e-3),
            "AdamW": nf.optim.AdamW(_params(nf), lr=1e-3),
            "SGD": nf.optim.SGD(_params(nf), lr=1e-2, momentum=0.9)}
    peers = {}
    try:
        import torch
        torch.set_num_threads(threads)
        peers = {"Adam": torch.optim.Adam(_params(torch), lr=1e-3),
                 "Adam fused": torch.optim.Adam(_params(torch), lr=1e-3, fused=True),
                 "AdamW": torch.optim.AdamW(_params(torch), lr=1e-3),
                 "SGD": torch.optim.SGD(_params(torch), lr=1e-2, momentum=0.9)}
    except ImportError:
        pass

    def step(opt):
        return None if opt is None else opt.step

    note = f"{n} float32 parameters in 6 tensors, gradients fixed"
    return [
        Case(f"Adam step, {n / 1e6:.2f}M params", ours["Adam"].step, step(peers.get("Adam")),
             note=note + "; peer: torch.optim.Adam (single-tensor)"),
        Case("Adam step vs torch fused=True", ours["Adam"].step, step(peers.get("Adam fused")),
             note=note + "; peer: torch.optim.Adam(fused=True)"),
        Case("AdamW step", ours["AdamW"].step, step(peers.get("AdamW")), note=note),
        Case("SGD momentum step", ours["SGD"].step, step(peers.get("SGD")), note=note),
    ]
