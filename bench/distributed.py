"""Data-parallel training over MPI: step-time scaling and all-reduce bandwidth.

``python -m bench.distributed [--quick] [--json PATH]`` (or ``python -m bench --only
distributed``) launches itself under ``mpirun -n 1`` and ``mpirun -n 2``, one thread per
rank, and reports:

- training steps (forward, loss, backward with DDP's bucketed all-reduce, SGD) of an MLP
  (784-256-10, batch 64), LeNet-5 (32x32, batch 64) and a GPT-small (6 layers, d 384,
  6 heads, T 128, batch 4): batch per rank fixed (weak scaling), so the ideal 2-rank step
  time equals the 1-rank one; "throughput x" = 2 * t(1 rank) / t(2 ranks);
- all_reduce of float32 buffers from 1 KiB to 64 MiB: ``nf.distributed.all_reduce`` on a
  tensor against mpi4py's ``comm.Allreduce(MPI.IN_PLACE, array)`` on the same array.

Each time is the slowest rank's, the minimum over repeats (the machine is shared).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

SIZES = [1 << k for k in range(10, 27, 2)]  # 1 KiB .. 64 MiB


def _timed(fn, comm, budget_s: float = 1.0, max_reps: int = 300) -> float:
    """Min over repeats of the slowest rank's time of ``fn()`` (ranks start together);
    as many repeats (3..max_reps) as fit in about ``budget_s``, the same on every rank."""
    from mpi4py import MPI
    best = float("inf")
    comm.Barrier()
    t0 = time.perf_counter()
    fn()
    est = np.array([time.perf_counter() - t0])
    comm.Allreduce(MPI.IN_PLACE, est, op=MPI.MAX)
    repeats = int(min(max_reps, max(3, budget_s / max(float(est[0]), 1e-7))))
    for _ in range(repeats):
        comm.Barrier()
        t0 = time.perf_counter()
        fn()
        dt = np.array([time.perf_counter() - t0])
        comm.Allreduce(MPI.IN_PLACE, dt, op=MPI.MAX)
        best = min(best, float(dt[0]))
    return best


def _models(quick: bool):
    import nnforge as nf
    rng = np.random.default_rng(0)
    out = []

    def mlp():
        m = nf.nn.Sequential(nf.nn.Linear(784, 256), nf.nn.ReLU(), nf.nn.Linear(256, 10))
        x = nf.from_numpy(rng.standard_normal((64, 784)).astype(np.float32))
        return m, x, nf.from_numpy(rng.integers(0, 10, 64)), nf.nn.CrossEntropyLoss()
    out.append(("mlp 784-256-10, batch 64/rank", mlp))

    def lenet():
        m = nf.models.lenet.LeNet5()
        x = nf.from_numpy(rng.standard_normal((64, 1, 32, 32)).astype(np.float32))
        return m, x, nf.from_numpy(rng.integers(0, 10, 64)), nf.nn.CrossEntropyLoss()
    out.append(("lenet-5 32x32, batch 64/rank", lenet))

    layers, d, t, b = (2, 64, 32, 2) if quick else (6, 384, 128, 4)

    def gpt():
        m = nf.models.GPT(256, block_size=t, n_layer=layers, n_head=6 if d % 6 == 0 else 2,
                          d_model=d)
        ids = rng.integers(0, 256, (b, t + 1))
        ce = nf.nn.CrossEntropyLoss()

        def loss_fn(logits, y):
            return ce(logits.reshape(-1, 256), y.reshape(-1))
        return m, nf.from_numpy(ids[:, :-1].copy()), nf.from_numpy(ids[:, 1:].copy()), loss_fn
    out.append((f"gpt-small {layers}x{d} T{t}, batch {b}/rank", gpt))
    return out


def worker(out_path: str, quick: bool, models: str = "") -> None:
    import nnforge as nf
    import nnforge.distributed as dist
    from nnforge.nn.parallel import DistributedDataParallel as DDP
    nf.set_num_threads(1)
    dist.init_process_group()
    from nnforge.distributed.process_group import _group
    comm = _group().comm
    size, rank = dist.get_world_size(), dist.get_rank()
    res = {"world_size": size, "steps": {}, "allreduce": {}}
    for name, build in _models(quick):
        if models and not any(m in name for m in models.split(",")):
            continue
        nf.manual_seed(0)
        model, x, y, loss_fn = build()
        n_params = sum(p.numel() for p in model.parameters())
        net = DDP(model) if size > 1 else model
        opt = nf.optim.SGD(model.parameters(), lr=0.01)

        def step():
            opt.zero_grad()
            loss_fn(net(x), y).backward()
            opt.step()
        step()
        res["steps"][name] = {"s": _timed(step, comm, budget_s=2.0 if quick else 6.0),
                              "params": n_params}
    from mpi4py import MPI
    for nbytes in SIZES if size > 1 else []:
        arr = np.ones(nbytes // 4, dtype=np.float32)
        t = nf.from_numpy(arr)
        budget = 0.3 if quick else 1.5
        ours = _timed(lambda: dist.all_reduce(t), comm, budget)
        raw = _timed(lambda: comm.Allreduce(MPI.IN_PLACE, arr), comm, budget)
        res["allreduce"][nbytes] = {"ours_s": ours, "mpi4py_s": raw}
    if rank == 0:
        with open(out_path, "w") as f:
            json.dump(res, f)
    dist.barrier()
    dist.destroy_process_group()


def _launch(nranks: int, quick: bool, models: str = "") -> dict:
    import tempfile

    import nnforge.distributed as dist
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cmd = dist.mpirun_command(nranks, [sys.executable, "-m", "bench.distributed", "--worker",
                                       path, "--models", models] + (["--quick"] if quick else []))
    env = dist.mpirun_env()
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")])
    subprocess.run(cmd, env=env, check=True, timeout=900, cwd=root)
    with open(path) as f:
        data = json.load(f)
    os.unlink(path)
    return data


def results(quick: bool = False, models: str = "") -> list:
    """Rows for bench/run.py: one per model (1 vs 2 ranks) and per all-reduce size."""
    load_before = os.getloadavg()
    one, two = _launch(1, quick, models), _launch(2, quick, models)
    load_after = os.getloadavg()
    note = f"load avg before {load_before[0]:.1f}, after {load_after[0]:.1f} (2 cores)"
    rows = []
    for name, r1 in one["steps"].items():
        t1, t2 = r1["s"], two["steps"][name]["s"]
        rows.append({"name": f"ddp step {name}", "note": note, "peer_name": "1 rank",
                     "ours_s": t2, "peer_s": t1, "ratio": t1 / t2,
                     "throughput_x": 2 * t1 / t2, "params": r1["params"]})
    for nbytes, r in two["allreduce"].items():
        n = int(nbytes)
        label = f"{n >> 20} MiB" if n >= 1 << 20 else f"{n >> 10} KiB"
        rows.append({"name": f"all_reduce {label} float32, 2 ranks", "note": note,
                     "peer_name": "mpi4py Allreduce", "ours_s": r["ours_s"],
                     "peer_s": r["mpi4py_s"], "ratio": r["mpi4py_s"] / r["ours_s"],
                     "ours_GBps": n / r["ours_s"] / 1e9, "peer_GBps": n / r["mpi4py_s"] / 1e9})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.distributed")
    parser.add_argument("--worker", metavar="OUT", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="tiny GPT, few repeats")
    parser.add_argument("--models", default="", help="comma-separated name parts: mlp,lenet,gpt")
    parser.add_argument("--json", default=os.path.join("bench", "results", "distributed.json"))
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.quick, args.models)
        return 0
    from .harness import print_table, write_json
    rows = results(args.quick, args.models)
    print_table(rows)
    for r in rows:
        if "throughput_x" in r:
            print(f"{r['name']:<52} 1 rank {r['peer_s'] * 1e3:8.2f} ms  2 ranks "
                  f"{r['ours_s'] * 1e3:8.2f} ms  throughput {r['throughput_x']:.2f}x")
    for r in rows:
        if "ours_GBps" in r:
            print(f"{r['name']:<52} ours {r['ours_GBps']:6.2f} GB/s  mpi4py "
                  f"{r['peer_GBps']:6.2f} GB/s  ratio {r['ratio']:.2f}")
    print(rows[0]["note"])
    write_json(rows, args.json)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
