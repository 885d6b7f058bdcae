"""Runs the benchmarks: ``python -m bench [--only NAME] [--json PATH] [--threads N]``."""
from __future__ import annotations

import argparse
import importlib
import os
import sys

SUITES = ["mlp", "vae", "optim", "losses", "gemm", "conv", "rnn", "attention", "norms",
          "distributed", "cuda"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--only", choices=SUITES, action="append",
                        help="run only these suites (repeatable)")
    parser.add_argument("--json", default=os.path.join("bench", "results", "latest.json"),
                        help="where to write the results")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for nnforge and the peer (default: nnforge's default)")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)

    import nnforge as nf
    from .harness import environment, measure, print_table, write_json
    if args.threads:
        nf.set_num_threads(args.threads)
    threads = nf.get_num_threads()
    results = []
    for name in args.only or SUITES:
        mod = importlib.import_module(f"bench.{name}")
        if hasattr(mod, "results"):  # a suite that times itself (distributed: under mpirun)
            results.extend(mod.results())
            continue
        for case in mod.cases(threads):
            results.append(measure(case, rounds=args.rounds))
    env = environment()
    print(f"nnforge {env['nnforge']} (isa {env['isa']}, {env['threads']} threads) vs "
          f"torch {env['torch']} ({env.get('torch_threads', '-')} threads), numpy {env['numpy']}")
    print_table(results)
    write_json(results, args.json)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
