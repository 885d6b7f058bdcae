"""CUDA kernels against PyTorch on the same GPU, in one process (issue 8):

- GEMM, square n = 1024..8192: our fp32 SIMT kernel vs cuBLAS fp32 and vs
  cuBLAS TF32; our TF32 tensor-core kernel vs cuBLAS TF32; our bf16 kernel vs
  cuBLAS bf16 (torch.matmul); and, where the device and build have it, x @ W^T
  (both operands K-major) on the sm_90a wgmma kernel and on mma.sync.
- Attention, bf16, head dims 64 and 128, T = 512..8192 (B*T = 16384 tokens,
  H * hd = 2048, as FlashAttention's benchmark), causal and not, forward and
  forward + backward: ours vs torch SDPA with the flash backend.

Each row: median seconds over repeats (wall clock around a synchronize; the
kernels queue back to back, so launch gaps are amortized), TFLOP/s, the
fraction of the GPU's dense peak for that dtype, and peer/ours (> 1: ours is
faster). FLOPs: 2 n^3 per GEMM; attention forward 4 B H T^2 hd (halved when
causal), forward + backward 3.5x that. Skips (no rows) without a GPU.
``NNFORGE_BENCH_QUICK=1``: n <= 2048, T <= 1024.
"""
from __future__ import annotations

import os
import statistics
import time

import numpy as np

# Dense peaks in TFLOP/s (NVIDIA datasheets, SXM parts; PCIe H100 scaled down).
_PEAKS = {
    "H100": {"float32": 67, "tf32": 495, "bfloat16": 989},
    "H100 PCIe": {"float32": 51, "tf32": 378, "bfloat16": 756},
    "H200": {"float32": 67, "tf32": 495, "bfloat16": 989},
    "A100": {"float32": 19.5, "tf32": 156, "bfloat16": 312},
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
    for r in rows:
        r["device"] = name
    return rows


def print_details(rows) -> None:
    for r in rows:
        frac = f"{100 * r['ours_frac_peak']:5.1f}% of peak" if "ours_frac_peak" in r else ""
        peer = (f"  {r['peer_name']} {r['peer_tflops']:7.1f} TFLOP/s  ratio {r['ratio']:.2f}"
                if "peer_tflops" in r else "")
        print(f"{r['name']:<52} ours {r['ours_tflops']:7.1f} TFLOP/s {frac}{peer}")


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
