"""Layer norm, softmax / log-softmax over the last dim and GELU: nnforge's fused
kernels against PyTorch CPU with the same inputs.

Each case is timed forward only (under no_grad in both) and forward plus
backward with a fixed random upstream gradient (input, weight and bias
gradients). Shapes: transformer activations (tokens x features) for layer
norm: 16*256 x 384 and 8*512 x 768; attention-score rows for softmax:
8*8*256 rows of 256 and 64*256 rows of 65 (an odd width); GELU (exact and tanh)
on a GPT feed-forward activation, 16*256 tokens x 4*384 features.
``NNFORGE_BENCH_QUICK=1`` keeps the first shape of each kind.
"""
from __future__ import annotations

import os

import numpy as np

from .harness import Case

LAYER_NORM_SHAPES = [(16 * 256, 384), (8 * 512, 768)]
SOFTMAX_SHAPES = [(8 * 8 * 256, 256), (64 * 256, 65)]
GELU_SHAPES = [(16 * 256, 4 * 384)]


def _pair(name, ours_fn, peer_fn, shape, threads, params=()):
    """Forward and forward+backward cases of y = fn(x) in both libraries;
    ``params`` (numpy arrays) are extra inputs that get gradients too."""
    import nnforge as nf
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal(shape).astype(np.float32)
    g_np = rng.standard_normal(shape).astype(np.float32)
    x, g = nf.from_numpy(x_np), nf.from_numpy(g_np)
    xg = nf.from_numpy(x_np.copy()).requires_grad_()
    ps = [nf.from_numpy(p.copy()).requires_grad_() for p in params]

    def ours_fwd():
        with nf.no_grad():
            ours_fn(x, *ps)

    def ours_fwd_bwd():
        for t in [xg] + ps:
            t.grad = None
        ours_fn(xg, *ps).backward(g)

    peer_fwd = peer_fwd_bwd = None
    try:
        import torch
        torch.set_num_threads(threads)
        tx, tg = torch.from_numpy(x_np), torch.from_numpy(g_np)
        txg = torch.from_numpy(x_np.copy()).requires_grad_()
        tps = [torch.from_numpy(p.copy()).requires_grad_() for p in params]

        def peer_fwd():
            with torch.no_grad():
                peer_fn(tx, *tps)

        def peer_fwd_bwd():
            for t in [txg] + tps:
                t.grad = None
            peer_fn(txg, *tps).backward(tg)
    except ImportError:
        pass
    return [Case(f"{name} fwd", ours_fwd, peer_fwd),
            Case(f"{name} fwd+bwd", ours_fwd_bwd, peer_fwd_bwd)]


def _layer_norm_cases(shape, threads):
    import nnforge as nf
    n = shape[1]
    rng = np.random.default_rng(1)
    w = (1 + 0.1 * rng.standard_normal(n)).astype(np.float32)
    b = (0.1 * rng.standard_normal(n)).astype(np.float32)

    def peer(x, wt, bt):
        import torch
        return torch.nn.functional.layer_norm(x, (n,), wt, bt)

    return _pair(f"layer_norm {shape[0]}x{n}",
                 lambda x, wt, bt: nf.nn.functional.layer_norm(x, (n,), wt, bt), peer, shape,
                 threads, (w, b))


def _softmax_cases(shape, threads, log):
    import nnforge as nf
    name = "log_softmax" if log else "softmax"

    def peer(x):
        import torch
        return torch.log_softmax(x, -1) if log else torch.softmax(x, -1)

    ours = nf.nn.functional.log_softmax if log else nf.nn.functional.softmax
    return _pair(f"{name} {shape[0]}x{shape[1]}", lambda x: ours(x, -1), peer, shape, threads)


def _gelu_cases(shape, threads, approximate):
    import nnforge as nf

    def peer(x):
        import torch
        return torch.nn.functional.gelu(x, approximate=approximate)

    return _pair(f"gelu({approximate}) {shape[0]}x{shape[1]}",
                 lambda x: nf.nn.functional.gelu(x, approximate=approximate), peer, shape,
                 threads)


def cases(threads: int):
    quick = os.environ.get("NNFORGE_BENCH_QUICK") == "1"
    out = []
    for shape in LAYER_NORM_SHAPES[:1] if quick else LAYER_NORM_SHAPES:
        out += _layer_norm_cases(shape, threads)
    for shape in SOFTMAX_SHAPES[:1] if quick else SOFTMAX_SHAPES:
        for log in (False, True):
            out += _softmax_cases(shape, threads, log)
    for shape in GELU_SHAPES:
        for approximate in ("none", "tanh"):
            out += _gelu_cases(shape, threads, approximate)
    return out
