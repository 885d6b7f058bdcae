"""The CPU GEMM (csrc/cpu/gemm/) against numpy (OpenBLAS) and PyTorch, float32.

    python -m bench.gemm [--quick] [--threads 1,2] [--rounds 9] [--json PATH]
    python -m bench --only gemm [--threads N]      (the same cases, common table;
                                                    NNFORGE_BENCH_QUICK=1: the subset)

Shapes (M x N x K): square N = 64 ... 2048; the transformer layers
4096x768x768, 4096x3072x768 and 4096x768x3072; decode-time skinny products
M = 1, 8, 32 with N = K = 4096 (``--quick``: a subset, about a minute). Each
call computes C = A @ B for C-contiguous A (M, K) and B (K, N) into a fresh C:
nnforge through backend.cpu.matmul (what every nnforge matmul calls), numpy
through numpy.matmul, PyTorch through torch.matmul on tensors sharing the
same memory. Each library gets the same thread count.

Peak: the float32 FMA peak is cores x GHz x FMA units x 16 lanes x 2 flops.
On one core both factors are measured with nnforge._C.cpu.fma_probe: a chain
of dependent AVX-512 FMAs takes the FMA latency per step, 4 cycles on AMD Zen
2-4 and Intel cores since Skylake-SP, so GHz = 4 / (ns per step); 12
independent chains give FMAs per ns, and FMA units = (FMAs per ns) / GHz,
rounded to a half (1 on Zen 4, which splits a zmm FMA over its two 256-bit
pipes; 2 on Intel server cores). /proc/cpuinfo's MHz is shown beside it: under
a hypervisor it is the nominal clock, not the one the core runs at.

Each thread count runs in its own process, with OpenBLAS's idle workers told
not to spin (OPENBLAS_THREAD_TIMEOUT=4): its default spin of ~2^28 cycles
after every call would take a core from the next library measured in the
alternating rounds when there are only two.
"""
from __future__ import annotations

import argparse
import ctypes
import glob
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from .harness import Case, environment, measure

FULL = [(64, 64, 64), (128, 128, 128), (256, 256, 256), (512, 512, 512), (1024, 1024, 1024),
        (2048, 2048, 2048), (4096, 768, 768), (4096, 3072, 768), (4096, 768, 3072),
        (1, 4096, 4096), (8, 4096, 4096), (32, 4096, 4096)]
QUICK = [(64, 64, 64), (128, 128, 128), (512, 512, 512), (1024, 1024, 1024), (4096, 768, 768),
         (1, 4096, 4096), (32, 4096, 4096)]


def openblas_set_threads(n: int) -> bool:
    """Sets the thread count of the OpenBLAS bundled with numpy (False if not found)."""
    base = os.path.dirname(np.__file__)
    libs = glob.glob(os.path.join(base, "..", "numpy.libs", "*openblas*")) + glob.glob(
        os.path.join(base, ".libs", "*openblas*"))
    for path in libs:
        lib = ctypes.CDLL(path)
        for name in ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
                     "openblas_set_num_threads64_", "openblas_set_num_threads"):
            fn = getattr(lib, name, None)
            if fn is not None:
                fn(ctypes.c_int(n))
                return True
    return False


def fp32_peak() -> dict:
    """One core's float32 FMA peak from the measured clock and FMA units (see above)."""
    from nnforge import _C
    isa = _C.selected_isa()
    probe = _C.cpu.fma_probe("avx512" if isa == "avx512" else None)
    for _ in range(2):  # keep the fastest of three (the machine is shared)
        again = _C.cpu.fma_probe(probe["isa"])
        probe["dependent_ns"] = min(probe["dependent_ns"], again["dependent_ns"])
        probe["per_ns"] = max(probe["per_ns"], again["per_ns"])
    ghz = 4.0 / probe["dependent_ns"]
    units = max(0.5, round(probe["per_ns"] / ghz * 2) / 2)
    mhz = None
    try:
        with open("/proc/cpuinfo") as f:
            mhz = next(float(line.split(":")[1]) for line in f if line.startswith("cpu MHz"))
    except (OSError, StopIteration, ValueError):
        pass
    return {"isa": probe["isa"], "ghz": ghz, "fma_units": units, "lanes": probe["lanes"],
            "gflops_per_core": ghz * units * probe["lanes"] * 2, "cpuinfo_mhz": mhz,
            "fma_per_ns": probe["per_ns"]}


def cases(threads: int, quick: bool | None = None):
    """Two cases per shape: nnforge vs numpy and nnforge vs PyTorch."""
    import nnforge as nf
    from nnforge.backend import cpu as backend
    if quick is None:
        quick = os.environ.get("NNFORGE_BENCH_QUICK") == "1"
    nf.set_num_threads(threads)
    openblas_set_threads(threads)
    try:
        import torch
        torch.set_num_threads(threads)
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    out = []
    for m, n, k in QUICK if quick else FULL:
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        extra = {"m": m, "n": n, "k": k, "flops": 2 * m * n * k, "threads": threads}
        name = f"gemm {m}x{n}x{k} f32 {threads}t"
        note = "C = A @ B, fresh C per call"
        out.append(Case(f"{name} vs numpy", lambda a=a, b=b: backend.matmul(a, b),
                        lambda a=a, b=b: np.matmul(a, b), peer_name="numpy", note=note,
                        extra=extra))
        if torch is not None:
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            out.append(Case(f"{name} vs torch", lambda a=a, b=b: backend.matmul(a, b),
                            lambda ta=ta, tb=tb: torch.matmul(ta, tb), peer_name="pytorch",
                            note=note, extra=extra))
    return out


def _worker(threads: int, quick: bool, rounds: int, path: str) -> None:
    peak = fp32_peak()
    results = [measure(c, rounds=rounds) for c in cases(threads, quick)]
    with open(path, "w") as f:
        json.dump({"peak": peak, "results": results, "environment": environment()}, f)


def table(runs) -> str:
    """Rows of GFLOP/s per shape and thread count: nnforge, numpy, torch, ratios, % of peak."""
    lines = []
    head = (f"{'M x N x K':<16} {'thr':>3} {'nnforge':>8} {'numpy':>8} {'torch':>8} "
            f"{'/numpy':>7} {'/torch':>7} {'%peak':>6}")
    lines += [head, "-" * len(head)]
    for run in runs:
        peak = run["peak"]["gflops_per_core"]
        by_shape = {}
        for r in run["results"]:
            by_shape.setdefault((r["m"], r["n"], r["k"], r["threads"]), {})[r["peer_name"]] = r
        for (m, n, k, t), peers in by_shape.items():
            flops = 2 * m * n * k
            ours_s = sum(r["ours_s"] for r in peers.values()) / len(peers)
            ours = flops / ours_s / 1e9
            np_r, th_r = peers.get("numpy"), peers.get("pytorch")
            npg = f"{flops / np_r['peer_s'] / 1e9:8.1f}" if np_r else f"{'-':>8}"
            thg = f"{flops / th_r['peer_s'] / 1e9:8.1f}" if th_r else f"{'-':>8}"
            npx = f"{np_r['ratio']:6.2f}x" if np_r else f"{'-':>7}"
            thx = f"{th_r['ratio']:6.2f}x" if th_r else f"{'-':>7}"
            lines.append(f"{f'{m}x{n}x{k}':<16} {t:>3} {ours:8.1f} {npg} {thg} {npx} {thx} "
                         f"{100 * ours / (peak * t):5.1f}%")
    lines.append("GFLOP/s = 2 M N K / median time (nnforge: mean of its two pairings); /numpy, "
                 "/torch = peer time / nnforge time within one pairing of alternating rounds "
                 "(> 1: nnforge faster); %peak: nnforge vs threads x the one-core peak.")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gemm")
    parser.add_argument("--quick", action="store_true", help="fewer shapes and rounds (~1 min)")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--json", default=os.path.join("bench", "results", "gemm.json"))
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    rounds = args.rounds or (5 if args.quick else 9)
    if args.worker:
        _worker(int(args.threads), args.quick, rounds, args.worker)
        return 0
    runs = []
    env = dict(os.environ)
    env.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
    for t in (int(x) for x in args.threads.split(",")):
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
            path = tmp.name
        cmd = [sys.executable, "-m", "bench.gemm", "--threads", str(t), "--rounds", str(rounds),
               "--worker", path] + (["--quick"] if args.quick else [])
        subprocess.run(cmd, env=env, check=True)
        with open(path) as f:
            runs.append(json.load(f))
        os.unlink(path)
    peak = runs[0]["peak"]
    e = runs[0]["environment"]
    print(f"nnforge {e['nnforge']} (isa {e['isa']}) vs numpy {e['numpy']} (OpenBLAS), "
          f"torch {e['torch']}; {e['cpu_count']} CPUs")
    mhz = f"{peak['cpuinfo_mhz']:.0f} MHz" if peak["cpuinfo_mhz"] else "n/a"
    print(f"fp32 peak per core: {peak['ghz']:.2f} GHz (measured; /proc/cpuinfo: {mhz}) x "
          f"{peak['fma_units']:g} FMA unit(s) x {peak['lanes']} lanes x 2 = "
          f"{peak['gflops_per_core']:.1f} GFLOP/s")
    print(table(runs))
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(runs, f, indent=2)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
