"""The ``nnforge`` command: ``nnforge train MODEL --data NAME``, ``nnforge info``."""
from __future__ import annotations

import argparse
import sys


def _train(args) -> int:
    from .train.recipes import load_all
    RECIPES = load_all()
    key = (args.model, args.data)
    if key not in RECIPES:
        known = ", ".join(f"{m} --data {d}" for m, d in sorted(RECIPES))
        print(f"nnforge train: no recipe for model {args.model!r} on data {args.data!r}; "
              f"available: {known}", file=sys.stderr)
        return 2
    kwargs = {k: v for k, v in (("epochs", args.epochs), ("batch_size", args.batch_size),
                                ("lr", args.lr), ("seed", args.seed)) if v is not None}
    if args.threads:
        from .config import set_num_threads
        set_num_threads(args.threads)
    RECIPES[key](progress=not args.no_progress, **kwargs)
    return 0


def _info(args) -> int:
    from .config import show_config
    show_config()
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="nnforge", description="nnforge: train bundled models "
                                     "on bundled real data, or show the build configuration.")
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a model on a bundled data set")
    t.add_argument("model", help="model name, e.g. mlp")
    t.add_argument("--data", required=True, help="data set name, e.g. digits")
    t.add_argument("--epochs", type=int)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--seed", type=int)
    t.add_argument("--threads", type=int, help="CPU threads for the kernels")
    t.add_argument("--no-progress", action="store_true", help="no progress bars")
    t.set_defaults(func=_train)
    i = sub.add_parser("info", help="print version, compiler, CPU features, ISA, threads, CUDA")
    i.set_defaults(func=_info)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
