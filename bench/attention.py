"""Scaled dot-product attention, nnforge's fused CPU kernels against PyTorch CPU
(its flash-attention CPU kernel) with the same inputs.

Cases are issue 7's: B = 8, H = 8, D = 64, T = 256 / 512 / 2048, causal and not;
each timed forward only (under no_grad in both) and forward plus backward of
the output's sum (gradients of q, k and v); one fwd+bwd at T = 512 with a
learned additive (L, S) mask that requires grad (its gradient is summed over
batch and heads inside the fused backward). Then a GPT training step and
KV-cache generation (bench/gpt.py).
``NNFORGE_BENCH_QUICK=1`` keeps one small case (for smoke tests).
"""
from __future__ import annotations

import os

import numpy as np

from .harness import Case

B, H, D = 8, 8, 64
LENGTHS = (256, 512, 2048)


def _sdpa_cases(t, causal, threads):
    import nnforge as nf
    F = nf.nn.functional
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((B, H, t, D)).astype(np.float32) for _ in range(3)]
    x = [nf.from_numpy(a) for a in arrays]
    xg = [nf.from_numpy(a.copy()).requires_grad_() for a in arrays]

    def ours_fwd():
        with nf.no_grad():
            F.scaled_dot_product_attention(*x, is_causal=causal)

    def ours_fwd_bwd():
        for a in xg:
            a.grad = None
        F.scaled_dot_product_attention(*xg, is_causal=causal).sum().backward()

    peer_fwd = peer_fwd_bwd = None
    try:
        import torch
        torch.set_num_threads(threads)
        tf = torch.nn.functional
        tx = [torch.from_numpy(a) for a in arrays]
        txg = [torch.from_numpy(a.copy()).requires_grad_() for a in arrays]

        def peer_fwd():
            with torch.no_grad():
                tf.scaled_dot_product_attention(*tx, is_causal=causal)

        def peer_fwd_bwd():
            for a in txg:
                a.grad = None
            tf.scaled_dot_product_attention(*txg, is_causal=causal).sum().backward()
    except ImportError:
        pass
    name = f"sdpa B{B} H{H} D{D} T{t}{' causal' if causal else ''}"
    return [Case(f"{name} fwd", ours_fwd, peer_fwd),
            Case(f"{name} fwd+bwd", ours_fwd_bwd, peer_fwd_bwd)]


def _mask_grad_case(t, threads):
    import nnforge as nf
    F = nf.nn.functional
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal((B, H, t, D)).astype(np.float32) for _ in range(3)]
    bias = rng.uniform(-1, 0, (t, t)).astype(np.float32)
    xg = [nf.from_numpy(a.copy()).requires_grad_() for a in arrays + [bias]]

    def ours():
        for a in xg:
            a.grad = None
        F.scaled_dot_product_attention(*xg[:3], attn_mask=xg[3]).sum().backward()

    peer = None
    try:
        import torch
        torch.set_num_threads(threads)
        txg = [torch.from_numpy(a.copy()).requires_grad_() for a in arrays + [bias]]

        def peer():
            for a in txg:
                a.grad = None
            torch.nn.functional.scaled_dot_product_attention(*txg[:3],
                                                             attn_mask=txg[3]).sum().backward()
    except ImportError:
        pass
    return Case(f"sdpa B{B} H{H} D{D} T{t} mask grad fwd+bwd", ours, peer)


def cases(threads: int):
    quick = os.environ.get("NNFORGE_BENCH_QUICK") == "1"
    out = []
    for t in LENGTHS:
        for causal in (False, True):
            if quick and (t, causal) != (256, True):
                continue
            out += _sdpa_cases(t, causal, threads)
    if not quick:
        out.append(_mask_grad_case(512, threads))
    from . import gpt
    return out + gpt.cases(threads, quick=quick)
