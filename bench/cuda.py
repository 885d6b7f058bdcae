"""CUDA kernels against PyTorch on the same GPU, in one process (issue 8):

- GEMM, square n = 1024..8192: our fp32 SIMT kernel vs cuBLAS fp32 and vs
  cuBLAS TF32; our TF32 tensor-core kernel vs cuBLAS TF32; our bf16 kernel vs
  cuBLAS bf16 (torch.matmul); and, where the device and build have it, x @ W^T
  (both operands K-major) on the sm_90a wgmma kernel and on mma.sync.
- Attention, bf16, head dims 64 and 128, T = 512..8192 (B*T = 16384 tokens,
  H * hd = 2048, as FlashAttention's benchmark), causal and not, forward and
  forward + backward: ours vs torch SDPA with the flash backend.
- LSTM, one layer, B 64, T 100, H = input size 512 and 1024, fp32, forward
  and forward + backward (gradients of the input and every weight): our
  nn.LSTM vs torch.nn.LSTM (cuDNN) with the same weights; target ours at most
  1.25x its time (peer/ours >= 0.8).
- conv2d on ResNet-50's shapes (batch 32, no bias), fp32 and bf16, forward and
  forward + backward (input and weight gradients): ours vs torch conv2d
  (cuDNN, ``cudnn.benchmark = True``); target at most 1.5x (peer/ours >= 0.67).
- A GPT training step (GPT-2 small: 12 layers, d 768, 12 heads, T 1024, batch
  8, vocabulary 50304, bf16 weights and activations, loss in fp32, AdamW):
  ``nf.models.GPT`` vs the same network in PyTorch eager (bench/gpt.py's twin,
  weights copied); tokens/s, target at least equal (peer/ours >= 1).

fp32 rows run the peer with TF32 off (cuBLAS and cuDNN), the same arithmetic
as ours, except the GEMM row that names cuBLAS TF32. A row whose nnforge
kernel is not written yet (NotImplementedError) or does not take the dtype
is reported as skipped, with the reason (and the peer's time when it ran),
instead of stopping the bench.

Each row: median seconds over repeats (wall clock around a synchronize; the
kernels queue back to back, so launch gaps are amortized), TFLOP/s, the
fraction of the GPU's dense peak for that dtype, and peer/ours (> 1: ours is
faster). FLOPs: 2 n^3 per GEMM; attention forward 4 B H T^2 hd (halved when
causal), forward + backward 3.5x that; LSTM forward 2 * 4H (I + H) B T per
direction, forward + backward 3x that; conv forward 2 N OH OW Cout Cin KH KW /
groups, forward + backward 3x; GPT step (6 P + 12 L d T) per token (P: the
parameters without the position table, the tied head counted once; the
attention term as nanoGPT/PaLM count it, without the causal halving). Skips
(no rows) without a GPU. ``NNFORGE_BENCH_QUICK=1``: n <= 2048, T <= 1024,
LSTM H 512 only, conv batch 8, a 2-layer GPT at T 256, batch 4.
"""
from __future__ import annotations

import os
import statistics
import time

import numpy as np

# Dense peaks in TFLOP/s (NVIDIA datasheets, SXM parts; PCIe H100 scaled down).
_PEAKS = {
    "H100": {"float32": 67, "tf32": 495, "bfloat16": 989, "float16": 989},
    "H100 PCIe": {"float32": 51, "tf32": 378, "bfloat16": 756, "float16": 756},
    "H200": {"float32": 67, "tf32": 495, "bfloat16": 989, "float16": 989},
    "A100": {"float32": 19.5, "tf32": 156, "bfloat16": 312, "float16": 312},
}


def _peak(device_name: str, kind: str):
    for key in ("H100 PCIe", "H100", "H200", "A100"):
        parts = key.split()
        if all(p in device_name for p in parts):
            return _PEAKS[key][kind]
    return None


def _time(fn, sync, budget_s=1.0, max_reps=50):
    """Median seconds per call: warm up, then repeat in small batches."""
    fn()
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    once = max(time.perf_counter() - t0, 1e-6)
    inner = max(1, min(20, int(0.02 / once)))
    reps = max(3, min(max_reps, int(budget_s / (once * inner))))
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        sync()
        samples.append((time.perf_counter() - t0) / inner)
    return statistics.median(samples)


def _row(name, flops, ours_s, peer_s, peer_name, peak):
    r = {"name": name, "ours_s": ours_s, "ours_tflops": flops / ours_s / 1e12,
         "peer_name": peer_name}
    if peak:
        r["ours_frac_peak"] = r["ours_tflops"] / peak
    if peer_s is not None:
        r.update(peer_s=peer_s, ratio=peer_s / ours_s, peer_tflops=flops / peer_s / 1e12)
    return r


def _torch_cuda():
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


def _k_major(C, b):
    """b (K, N) as a view of a contiguous (N, K) array: K-major, as nn.Linear's W^T."""
    from nnforge.backend import cuda_shape
    return cuda_shape.swap_last(C.contiguous(cuda_shape.swap_last(b)))


def gemm_rows(sizes, device_name):
    import nnforge as nf
    C = nf._C.cuda
    torch = _torch_cuda()
    sync = nf.cuda.synchronize
    rows = []
    for n in sizes:
        rng = np.random.default_rng(0)
        a32, b32 = (rng.uniform(-1, 1, (n, n)).astype(np.float32) for _ in range(2))
        da, db = C.DeviceArray.from_numpy(a32), C.DeviceArray.from_numpy(b32)
        ha, hb = C.astype(da, "bfloat16"), C.astype(db, "bfloat16")
        flops = 2.0 * n ** 3
        peers = {}
        if torch is not None:
            ta, tb = torch.from_numpy(a32).cuda(), torch.from_numpy(b32).cuda()
            tha, thb = ta.bfloat16(), tb.bfloat16()

            def torch_mm(x, y, tf32):
                def fn():
                    torch.backends.cuda.matmul.allow_tf32 = tf32
                    torch.matmul(x, y)
                return fn
            tsync = torch.cuda.synchronize
            peers["fp32"] = _time(torch_mm(ta, tb, False), tsync)
            peers["tf32"] = _time(torch_mm(ta, tb, True), tsync)
            peers["bf16"] = _time(torch_mm(tha, thb, False), tsync)
            torch.backends.cuda.matmul.allow_tf32 = False
        ours_fp32 = _time(lambda: C.gemm(da, db, kernel="simt"), sync)
        ours_tf32 = _time(lambda: C.gemm(da, db, allow_tf32=True), sync)
        ours_bf16 = _time(lambda: C.gemm(ha, hb), sync)
        rows.append(_row(f"gemm fp32 n={n} (SIMT) vs cuBLAS fp32", flops, ours_fp32,
                         peers.get("fp32"), "cuBLAS fp32", _peak(device_name, "float32")))
        rows.append(_row(f"gemm fp32 n={n} (SIMT) vs cuBLAS TF32", flops, ours_fp32,
                         peers.get("tf32"), "cuBLAS TF32", _peak(device_name, "float32")))
        rows.append(_row(f"gemm tf32 n={n} (mma.sync) vs cuBLAS TF32", flops, ours_tf32,
                         peers.get("tf32"), "cuBLAS TF32", _peak(device_name, "tf32")))
        rows.append(_row(f"gemm bf16 n={n} (mma.sync) vs cuBLAS bf16", flops, ours_bf16,
                         peers.get("bf16"), "cuBLAS bf16", _peak(device_name, "bfloat16")))
        # x @ W^T (both K-major): the sm_90a wgmma kernel, where this device and build have it.
        hbt = _k_major(C, hb)
        try:
            C.gemm_kernel_for(ha, hbt, kernel="wgmma")
        except ValueError:
            continue
        ours_wg = _time(lambda: C.gemm(ha, hbt, kernel="wgmma"), sync)
        ours_tc_nt = _time(lambda: C.gemm(ha, hbt, kernel="tensor_core"), sync)
        peer_nt = None
        if torch is not None:
            tw = thb.t().contiguous()
            peer_nt = _time(lambda: torch.matmul(tha, tw.t()), torch.cuda.synchronize)
        rows.append(_row(f"gemm bf16 n={n} x@W^T (wgmma) vs cuBLAS bf16", flops, ours_wg,
                         peer_nt, "cuBLAS bf16", _peak(device_name, "bfloat16")))
        rows.append(_row(f"gemm bf16 n={n} x@W^T (mma.sync) vs cuBLAS bf16", flops, ours_tc_nt,
                         peer_nt, "cuBLAS bf16", _peak(device_name, "bfloat16")))
    return rows


def attention_rows(lengths, head_dims, device_name):
    import nnforge as nf
    from nnforge.backend import cuda_attention
    C = nf._C.cuda
    torch = _torch_cuda()
    sync = nf.cuda.synchronize
    rows = []
    for hd in head_dims:
        heads = 2048 // hd
        for t in lengths:
            batch = max(1, 16384 // t)
            shape = (batch, heads, t, hd)
            rng = np.random.default_rng(0)
            host = [rng.standard_normal(shape).astype(np.float32) for _ in range(4)]
            q, k, v, g = (C.astype(C.DeviceArray.from_numpy(x), "bfloat16") for x in host)
            scale = 1.0 / np.sqrt(hd)
            for causal in (False, True):
                fwd_flops = 4.0 * batch * heads * t * t * hd / (2 if causal else 1)

                def ours_fwd():
                    return cuda_attention.sdpa_forward(q, k, v, None, 0.0, causal, scale, 0)
                out, lse = ours_fwd()

                def ours_fwd_bwd():
                    o, lse_ = ours_fwd()
                    cuda_attention.sdpa_backward(g, q, k, v, None, o, lse_, 0.0, causal, scale, 0)
                t_fwd = _time(ours_fwd, sync)
                t_all = _time(ours_fwd_bwd, sync)
                p_fwd = p_all = None
                if torch is not None:
                    from torch.nn.attention import SDPBackend, sdpa_kernel
                    tq, tk, tv, tg = (torch.from_numpy(x).cuda().bfloat16() for x in host)
                    tqg, tkg, tvg = (x.clone().requires_grad_() for x in (tq, tk, tv))
                    tf = torch.nn.functional

                    def peer_fwd():
                        with torch.no_grad(), sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                            tf.scaled_dot_product_attention(tq, tk, tv, is_causal=causal)

                    def peer_fwd_bwd():
                        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                            o = tf.scaled_dot_product_attention(tqg, tkg, tvg, is_causal=causal)
                        torch.autograd.grad(o, (tqg, tkg, tvg), tg)
                    p_fwd = _time(peer_fwd, torch.cuda.synchronize)
                    p_all = _time(peer_fwd_bwd, torch.cuda.synchronize)
                name = f"sdpa bf16 B{batch} H{heads} hd{hd} T{t}{' causal' if causal else ''}"
                peak = _peak(device_name, "bfloat16")
                rows.append(_row(f"{name} fwd", fwd_flops, t_fwd, p_fwd, "torch SDPA flash", peak))
                rows.append(_row(f"{name} fwd+bwd", 3.5 * fwd_flops, t_all, p_all,
                                 "torch SDPA flash", peak))
    return rows


def _skipped(name, reason, peer_s=None, peer_name=None):
    """A row nnforge could not run (its kernel is not written yet, or it lacks the
    dtype): the reason, and the peer's time when that ran. ``ours_s`` is NaN so
    the shared table prints it as a row without a ratio."""
    r = {"name": f"{name} [skipped]", "ours_s": float("nan"), "skipped": reason}
    if peer_s is not None:
        r.update(peer_s=peer_s, peer_name=peer_name)
    return r


def _unavailable(e: Exception) -> str:
    return f"{type(e).__name__}: {e}"


class _Tf32Off:
    """Strict fp32 in the peer (cuBLAS and cuDNN) for a scope, as ours computes."""

    def __init__(self, torch):
        self.torch = torch

    def __enter__(self):
        b = self.torch.backends
        self.saved = (b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32)
        b.cuda.matmul.allow_tf32 = b.cudnn.allow_tf32 = False

    def __exit__(self, *exc):
        b = self.torch.backends
        b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32 = self.saved


_SHORT = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


def lstm_rows(hiddens, device_name, batch=64, steps=100):
    """nn.LSTM (one layer, input size H) on cuda vs torch.nn.LSTM (cuDNN), fp32."""
    import nnforge as nf
    torch = _torch_cuda()
    sync = nf.cuda.synchronize
    peak = _peak(device_name, "float32")
    rows = []
    for h in hiddens:
        name = f"lstm fp32 B{batch} T{steps} H{h}"
        fwd_flops = 2.0 * 4 * h * (h + h) * batch * steps
        rng = np.random.default_rng(0)
        x_np = rng.standard_normal((steps, batch, h)).astype(np.float32)
        g_np = rng.standard_normal((steps, batch, h)).astype(np.float32)
        nf.manual_seed(0)
        ours = nf.nn.LSTM(h, h)
        state = {k: v.detach().numpy().copy() for k, v in ours.state_dict().items()}
        peer = {}
        if torch is not None:
            tl = torch.nn.LSTM(h, h).cuda()
            tl.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
            tx, tg = torch.from_numpy(x_np).cuda(), torch.from_numpy(g_np).cuda()
            txg = tx.clone().requires_grad_()
            tparams = [txg] + list(tl.parameters())

            def peer_fwd():
                with torch.no_grad():
                    tl(tx)

            def peer_fwd_bwd():
                out, _ = tl(txg)
                torch.autograd.grad(out, tparams, tg)
            with _Tf32Off(torch):
                peer["fwd"] = _time(peer_fwd, torch.cuda.synchronize)
                peer["fwd+bwd"] = _time(peer_fwd_bwd, torch.cuda.synchronize)
            del tl, tx, tg, txg, tparams
        ours_s, reason = {}, None
        try:
            ours.to("cuda")
            x = nf.from_numpy(x_np).to("cuda")
            g = nf.from_numpy(g_np).to("cuda")
            xg = x.detach().requires_grad_()
            params = [xg] + list(ours.parameters())

            def ours_fwd():
                with nf.no_grad():
                    ours(x)

            def ours_fwd_bwd():
                out, _ = ours(xg)
                nf.autograd.grad(out, params, g)
            ours_s["fwd"] = _time(ours_fwd, sync)
            ours_s["fwd+bwd"] = _time(ours_fwd_bwd, sync)
        except NotImplementedError as e:
            reason = _unavailable(e)
        for kind, flops in (("fwd", fwd_flops), ("fwd+bwd", 3 * fwd_flops)):
            if kind in ours_s:
                rows.append(_row(f"{name} {kind}", flops, ours_s[kind], peer.get(kind),
                                 "cuDNN LSTM fp32", peak))
            else:
                rows.append(_skipped(f"{name} {kind}", reason, peer.get(kind), "cuDNN LSTM fp32"))
    return rows


# ResNet-50's convolutions: (label, Cin, Cout, kernel, stride, padding, input H = W).
RESNET50_CONVS = [
    ("conv1 7x7/2", 3, 64, 7, 2, 3, 224),
    ("3x3 64->64", 64, 64, 3, 1, 1, 56),
    ("1x1 256->64", 256, 64, 1, 1, 0, 56),
    ("3x3 128->128", 128, 128, 3, 1, 1, 28),
    ("3x3 256->256", 256, 256, 3, 1, 1, 14),
    ("3x3 512->512", 512, 512, 3, 1, 1, 7),
]


def conv_rows(batch, device_name, shapes=RESNET50_CONVS):
    """F.conv2d (no bias) on cuda vs torch conv2d (cuDNN, benchmark mode), fp32 and
    bf16, forward and forward + backward (input and weight gradients)."""
    import nnforge as nf
    torch = _torch_cuda()
    sync = nf.cuda.synchronize
    rows = []
    if torch is not None:
        saved_benchmark = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = True
    for label, cin, cout, k, stride, pad, hw in shapes:
        out_hw = (hw + 2 * pad - k) // stride + 1
        fwd_flops = 2.0 * batch * out_hw * out_hw * cout * cin * k * k
        rng = np.random.default_rng(0)
        x_np = rng.standard_normal((batch, cin, hw, hw)).astype(np.float32)
        w_np = (rng.standard_normal((cout, cin, k, k)) / np.sqrt(cin * k * k)).astype(np.float32)
        g_np = rng.standard_normal((batch, cout, out_hw, out_hw)).astype(np.float32)
        for dt in ("float32", "bfloat16"):
            name = f"conv2d {_SHORT[dt]} {label} {hw}x{hw} N{batch}"
            peer_name = f"cuDNN {_SHORT[dt]}"
            peer = {}
            if torch is not None:
                tdt = getattr(torch, dt)
                tx, tw, tg = (torch.from_numpy(a).cuda().to(tdt) for a in (x_np, w_np, g_np))
                txg, twg = tx.clone().requires_grad_(), tw.clone().requires_grad_()
                tconv = torch.nn.functional.conv2d

                def peer_fwd():
                    with torch.no_grad():
                        tconv(tx, tw, None, stride, pad)

                def peer_fwd_bwd():
                    y = tconv(txg, twg, None, stride, pad)
                    torch.autograd.grad(y, (txg, twg), tg)
                with _Tf32Off(torch):
                    peer["fwd"] = _time(peer_fwd, torch.cuda.synchronize)
                    peer["fwd+bwd"] = _time(peer_fwd_bwd, torch.cuda.synchronize)
                del tx, tw, tg, txg, twg
            ours_s, reason = {}, None
            ndt = getattr(nf, dt)
            try:
                x, w, g = (nf.from_numpy(a).to("cuda").to(ndt) for a in (x_np, w_np, g_np))
                xg, wg = x.detach().requires_grad_(), w.detach().requires_grad_()
                conv = nf.nn.functional.conv2d

                def ours_fwd():
                    with nf.no_grad():
                        conv(x, w, None, stride, pad)

                def ours_fwd_bwd():
                    y = conv(xg, wg, None, stride, pad)
                    nf.autograd.grad(y, [xg, wg], g)
                ours_s["fwd"] = _time(ours_fwd, sync)
                ours_s["fwd+bwd"] = _time(ours_fwd_bwd, sync)
            except NotImplementedError as e:
                reason = _unavailable(e)
            except TypeError as e:
                if dt == "float32":
                    raise
                reason = _unavailable(e)  # our conv does not take this dtype
            for kind, flops in (("fwd", fwd_flops), ("fwd+bwd", 3 * fwd_flops)):
                if kind in ours_s:
                    rows.append(_row(f"{name} {kind}", flops, ours_s[kind], peer.get(kind),
                                     peer_name, _peak(device_name, dt)))
                else:
                    rows.append(_skipped(f"{name} {kind}", reason, peer.get(kind), peer_name))
    if torch is not None:
        torch.backends.cudnn.benchmark = saved_benchmark
    return rows


GPT_VOCAB = 50304  # GPT-2's 50257 tokens padded to a multiple of 64, as nanoGPT


def gpt_step_rows(device_name, n_layer=12, d_model=768, n_head=12, t=1024, batch=8,
                  dtype="bfloat16"):
    """One training step (forward, fp32 cross-entropy, backward, AdamW) of a GPT in
    ``dtype`` (bf16): nf.models.GPT on cuda vs its PyTorch-eager twin (weights
    copied)."""
    import nnforge as nf
    from .gpt import _torch_gpt
    torch = _torch_cuda()
    sync = nf.cuda.synchronize
    tokens = batch * t
    name = f"gpt step {_SHORT[dtype]} L{n_layer} d{d_model} H{n_head} T{t} B{batch}"
    nf.manual_seed(0)
    ours = nf.models.GPT(GPT_VOCAB, block_size=t, n_layer=n_layer, n_head=n_head,
                         d_model=d_model)
    params = {id(p): p for p in ours.parameters()}        # the tied head once
    n_params = sum(p.numel() for p in params.values()) - ours.pos.weight.numel()
    flops = (6.0 * n_params + 12.0 * n_layer * d_model * t) * tokens
    rng = np.random.default_rng(0)
    ids = rng.integers(0, GPT_VOCAB, size=(batch, t + 1))
    x_np, y_np = ids[:, :-1].copy(), ids[:, 1:].reshape(-1).copy()

    peer_s = None
    if torch is not None:
        tm = _torch_gpt(torch, ours).to("cuda", getattr(torch, dtype))
        topt = torch.optim.AdamW(tm.parameters(), lr=1e-4)   # eager default: foreach
        tx, ty = torch.from_numpy(x_np).cuda(), torch.from_numpy(y_np).cuda()
        tce = torch.nn.functional.cross_entropy

        def peer_step():
            loss = tce(tm(tx).reshape(-1, GPT_VOCAB).float(), ty)
            topt.zero_grad(set_to_none=True)
            loss.backward()
            topt.step()
        peer_s = _time(peer_step, torch.cuda.synchronize, budget_s=3.0, max_reps=10)
        del tm, topt, tx, ty
        torch.cuda.empty_cache()

    reason = ours_s = None
    try:
        ours.to("cuda").to(dtype=getattr(nf, dtype))
        opt = nf.optim.AdamW(ours.parameters(), lr=1e-4)
        x, y = nf.from_numpy(x_np).to("cuda"), nf.from_numpy(y_np).to("cuda")
        ce = nf.nn.functional.cross_entropy

        def ours_step():
            loss = ce(ours(x).reshape(-1, GPT_VOCAB).float(), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        ours_s = _time(ours_step, sync, budget_s=3.0, max_reps=10)
    except (NotImplementedError, MemoryError) as e:   # kernels not written; batch too big
        reason = _unavailable(e)
    peer_name = f"torch eager {_SHORT[dtype]}"
    if ours_s is None:
        r = _skipped(name, reason, peer_s, peer_name)
    else:
        r = _row(name, flops, ours_s, peer_s, peer_name, _peak(device_name, dtype))
        r["tokens_per_s"] = tokens / ours_s
    if peer_s is not None:
        r["peer_tokens_per_s"] = tokens / peer_s
    return [r]


def results() -> list:
    """Rows for bench/run.py; none (with a note on stdout) without a GPU."""
    import nnforge as nf
    if not nf.cuda.is_available():
        print("bench/cuda: skipped (no CUDA device visible or nnforge built without CUDA)")
        return []
    name = nf._C.cuda.device_name(0)
    quick = os.environ.get("NNFORGE_BENCH_QUICK") == "1"
    sizes = (1024, 2048) if quick else (1024, 2048, 4096, 8192)
    lengths = (512, 1024) if quick else (512, 1024, 2048, 4096, 8192)
    rows = gemm_rows(sizes, name) + attention_rows(lengths, (64, 128), name)
    rows += lstm_rows((512,) if quick else (512, 1024), name)
    rows += conv_rows(8 if quick else 32, name)
    gpt_shape = {"n_layer": 2, "t": 256, "batch": 4} if quick else {}
    rows += gpt_step_rows(name, dtype="bfloat16", **gpt_shape)
    for r in rows:
        if "skipped" in r:
            print(f"bench/cuda: {r['name']}: {r['skipped']}")
    for r in rows:
        r["device"] = name
    return rows


def print_details(rows) -> None:
    for r in rows:
        if "skipped" in r:
            peer = f"  ({r['peer_name']} {r['peer_s'] * 1e3:.3f} ms)" if "peer_s" in r else ""
            print(f"{r['name']:<52} {r['skipped']}{peer}")
            continue
        frac = f"{100 * r['ours_frac_peak']:5.1f}% of peak" if "ours_frac_peak" in r else ""
        peer = (f"  {r['peer_name']} {r['peer_tflops']:7.1f} TFLOP/s  ratio {r['ratio']:.2f}"
                if "peer_tflops" in r else "")
        tok = ""
        if "tokens_per_s" in r:
            tok = f"  ours {r['tokens_per_s']:,.0f} tokens/s"
            if "peer_tokens_per_s" in r:
                tok += f", peer {r['peer_tokens_per_s']:,.0f}"
        print(f"{r['name']:<52} ours {r['ours_tflops']:7.1f} TFLOP/s {frac}{peer}{tok}")


def main(argv=None) -> int:
    import argparse
    parser = argparse.ArgumentParser(prog="python -m bench.cuda")
    parser.add_argument("--json", default=os.path.join("bench", "results", "cuda.json"))
    args = parser.parse_args(argv)
    from .harness import print_table, write_json
    rows = results()
    if rows:
        print_table(rows)
        print_details(rows)
        write_json(rows, args.json)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
