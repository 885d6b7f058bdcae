"""The benchmark harness: time a case and its peer in one process, alternating
rounds so both see the same machine load, and report the ratio of medians.

A case is a ``Case(name, ours, peer, setup_note)`` where ``ours`` and ``peer``
are zero-argument callables doing one unit of work (e.g. one training step).
Ratios (peer time / our time: above 1 means nnforge is faster) are what we
compare across machines; absolute times are printed for context only.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import time
from dataclasses import dataclass, field


@dataclass
class Case:
    name: str
    ours: callable
    peer: callable | None
    peer_name: str = "pytorch"
    note: str = ""
    extra: dict = field(default_factory=dict)


def _time_once(fn, inner: int) -> float:
    t0 = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - t0) / inner


def _calibrate(fn, target_s: float = 0.05) -> int:
    """Repetitions per round so one round takes about ``target_s``."""
    n = 1
    while True:
        t = _time_once(fn, n) * n
        if t >= target_s or n >= 1 << 16:
            return n
        n *= 2


def measure(case: Case, rounds: int = 15, warmup: int = 3) -> dict:
    fns = {"ours": case.ours}
    if case.peer is not None:
        fns["peer"] = case.peer
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    inner = {k: _calibrate(fn) for k, fn in fns.items()}
    samples = {k: [] for k in fns}
    for _ in range(rounds):  # alternate so both see the same background load
        for k, fn in fns.items():
            samples[k].append(_time_once(fn, inner[k]))
    result = {"name": case.name, "note": case.note, "peer_name": case.peer_name,
              "ours_s": statistics.median(samples["ours"]),
              "ours_iqr_s": _iqr(samples["ours"]), **case.extra}
    if "peer" in samples:
        result["peer_s"] = statistics.median(samples["peer"])
        result["peer_iqr_s"] = _iqr(samples["peer"])
        result["ratio"] = result["peer_s"] / result["ours_s"]
    return result


def _iqr(xs) -> float:
    q = statistics.quantiles(xs, n=4)
    return q[2] - q[0]


def print_table(results, file=None) -> None:
    head = f"{'case':<44} {'ours':>11} {'peer':>11} {'peer/ours':>10}"
    print(head, file=file)
    print("-" * len(head), file=file)
    for r in results:
        peer = f"{r['peer_s'] * 1e3:9.3f}ms" if "peer_s" in r else f"{'-':>11}"
        ratio = f"{r['ratio']:9.2f}x" if "ratio" in r else f"{'-':>10}"
        print(f"{r['name']:<44} {r['ours_s'] * 1e3:9.3f}ms {peer} {ratio}", file=file)
    print("peer/ours > 1 means nnforge is faster; medians of alternating rounds.", file=file)


def layer_cases(name: str, kind: str, args: tuple, kwargs: dict, x_np, threads: int,
                first_output: bool = False) -> list:
    """Two cases for ``nn.<kind>(*args, **kwargs)``, built in nnforge and in PyTorch
    with nnforge's weights copied, on the input ``x_np``: forward under no_grad, and
    forward plus backward of the output's sum (every parameter and input gradient).
    ``first_output``: the layer returns a tuple (output, state); time on output."""
    import nnforge as nf
    pick = (lambda y: y[0]) if first_output else (lambda y: y)
    nf.manual_seed(0)
    ours_layer = getattr(nf.nn, kind)(*args, **kwargs)
    x = nf.from_numpy(x_np)
    xg = nf.from_numpy(x_np.copy()).requires_grad_()

    def ours_fwd():
        with nf.no_grad():
            ours_layer(x)

    def ours_fwd_bwd():
        ours_layer.zero_grad()
        xg.grad = None
        pick(ours_layer(xg)).sum().backward()

    peer_fwd = peer_fwd_bwd = None
    try:
        import torch
        torch.set_num_threads(threads)
        peer_layer = getattr(torch.nn, kind)(*args, **kwargs)
        peer_layer.load_state_dict({k: torch.from_numpy(v.numpy().copy())
                                    for k, v in ours_layer.state_dict().items()})
        tx = torch.from_numpy(x_np)
        txg = torch.from_numpy(x_np.copy()).requires_grad_()

        def peer_fwd():
            with torch.no_grad():
                peer_layer(tx)

        def peer_fwd_bwd():
            peer_layer.zero_grad()
            txg.grad = None
            pick(peer_layer(txg)).sum().backward()
    except ImportError:
        pass
    return [Case(f"{name} fwd", ours_fwd, peer_fwd),
            Case(f"{name} fwd+bwd", ours_fwd_bwd, peer_fwd_bwd)]


def environment() -> dict:
    import numpy as np
    import nnforge as nf
    from nnforge import _C
    env = {"nnforge": nf.__version__, "numpy": np.__version__, "python": platform.python_version(),
           "machine": platform.machine(), "cpu_count": os.cpu_count(),
           "threads": nf.get_num_threads(), "isa": _C.selected_isa()}
    try:
        import torch
        env["torch"] = torch.__version__
        env["torch_threads"] = torch.get_num_threads()
    except ImportError:
        env["torch"] = None
    return env


def write_json(results, path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump({"environment": environment(), "results": results,
                   "time": time.strftime("%Y-%m-%dT%H:%M:%S")}, f, indent=2)
