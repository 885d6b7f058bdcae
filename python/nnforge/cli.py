"""The ``nnforge`` command.

    nnforge train MODEL [--data NAME] [--epochs N] [--lr LR] [--batch-size B] [--seed S]
                        [--device cpu|cuda] [--out DIR] [--threads T] [--no-progress]
                        [--resume CKPT] [--distributed]
    nnforge evaluate MODEL --checkpoint PATH [--data NAME] [--batch-size B] [--device D]
    nnforge list        the recipes (model, data set) that train and evaluate know
    nnforge info        version, compiler, CPU features, kernel ISA, threads, CUDA

``main(argv)`` returns the exit status: 0 on success, 2 for bad input (an
unknown recipe, a bad option value, a missing or damaged checkpoint, an
unavailable device), 130 when training is interrupted with Ctrl-C.
"""
from __future__ import annotations

import argparse
import inspect
import os
import sys

USAGE_ERROR = 2


def _error(command: str, message: str) -> int:
    print(f"nnforge {command}: error: {message}", file=sys.stderr)
    return USAGE_ERROR


def _positive(kind):
    name = "integer" if kind is int else "number"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive {name}, got {text!r}") from None
        if not value > 0 or value != value or value == float("inf"):
            raise argparse.ArgumentTypeError(f"expected a positive {name}, got {text!r}")
        return value
    parse.__name__ = f"positive {name}"
    return parse


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


# --------------------------------------------------------------------------- recipes
def _recipes():
    from .train import recipes
    recipes.load_all()
    return recipes


def _known(recipes) -> str:
    return ", ".join(f"{m} --data {d}" for m, d in sorted(recipes.RECIPES)) or "none"


def _load_errors(recipes) -> str:
    if not recipes.LOAD_ERRORS:
        return ""
    return "; recipe modules that failed to load: " + "; ".join(
        f"{name} ({err})" for name, err in sorted(recipes.LOAD_ERRORS.items()))


def _find(command: str, recipes, table: dict, model: str, data: str | None):
    """(key, None) for the recipe asked for, or (None, exit status) after an error message."""
    if model not in recipes.DEFAULT_DATA:
        return None, _error(command, f"no recipe for model {model!r}; available: "
                                     f"{_known(recipes)}{_load_errors(recipes)}")
    data = data or recipes.DEFAULT_DATA[model]
    if (model, data) not in recipes.RECIPES:
        sets = ", ".join(sorted(d for m, d in recipes.RECIPES if m == model))
        return None, _error(command, f"no recipe for model {model!r} on data {data!r}; "
                                     f"{model} trains on: {sets}")
    if (model, data) not in table:
        return None, _error(command, f"recipe {model} --data {data} has no evaluator, so it "
                                     "cannot evaluate a checkpoint")
    return (model, data), None


def _unsupported(fn, kwargs: dict) -> list:
    """Names in ``kwargs`` that ``fn`` does not accept."""
    params = inspect.signature(fn).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return []
    names = {p.name for p in params}
    return [k for k in kwargs if k not in names]


def _check_device(command: str, device):
    if device != "cuda":
        return None
    from . import cuda
    if cuda.is_available():
        return None
    reason = ("this nnforge was built without CUDA (rebuild with nvcc on the PATH)"
              if not cuda.is_built() else "no CUDA device is visible"
              if cuda.device_count() == 0 else "the CUDA backend is not part of this version yet")
    return _error(command, f"--device cuda is not available: {reason}; use --device cpu")


_OPTION = {"epochs": "--epochs", "batch_size": "--batch-size", "lr": "--lr", "seed": "--seed",
           "device": "--device", "out_dir": "--out", "resume": "--resume"}


# --------------------------------------------------------------------------- commands
def _train(args) -> int:
    recipes = _recipes()
    key, status = _find("train", recipes, recipes.RECIPES, args.model, args.data)
    if key is None:
        return status
    status = _check_device("train", args.device)
    if status is not None:
        return status
    if args.resume is not None:
        from .io import CheckpointError
        from .train.checkpoint import _read_training_checkpoint
        if not os.path.isfile(args.resume):
            return _error("train", f"--resume {args.resume}: no such file")
        try:
            _read_training_checkpoint(args.resume, "--resume")
        except (CheckpointError, ValueError) as e:
            return _error("train", str(e))
    kwargs = {name: getattr(args, attr) for name, attr in (
        ("epochs", "epochs"), ("batch_size", "batch_size"), ("lr", "lr"), ("seed", "seed"),
        ("device", "device"), ("out_dir", "out"), ("resume", "resume"))
        if getattr(args, attr) is not None}
    fn = recipes.RECIPES[key]
    missing = _unsupported(fn, kwargs)
    if missing:
        return _error("train", f"recipe {key[0]} --data {key[1]} does not support "
                               f"{', '.join(_OPTION[k] for k in missing)}")
    if args.threads:
        from .config import set_num_threads
        set_num_threads(args.threads)
    if args.distributed:
        return _train_distributed(args, key, fn, kwargs)
    if args.out is not None:
        os.makedirs(args.out, exist_ok=True)
    try:
        fn(progress=not args.no_progress, **kwargs)
    except KeyboardInterrupt:
        hint = ""
        last = os.path.join(args.out, "last.safetensors") if args.out else None
        if last and os.path.isfile(last):
            hint = f"; continue with --resume {last}"
        print(f"\nnnforge train: interrupted{hint}", file=sys.stderr)
        return 130
    return 0


def _train_distributed(args, key, fn, kwargs) -> int:
    """One rank of ``mpirun -n N nnforge train ... --distributed``: ``fit`` inside the
    recipe trains data-parallel (see nnforge.train.distributed); only rank 0 shows
    progress, logs and writes --out."""
    from . import distributed as dist
    from .train import distributed as train_dist
    try:
        dist.init_process_group()
    except (ImportError, RuntimeError, ValueError) as e:
        return _error("train", f"--distributed: {e}")
    rank = dist.get_rank()
    if rank == 0:
        if args.out is not None:
            os.makedirs(args.out, exist_ok=True)
        print(f"nnforge train: data-parallel over {dist.get_world_size()} ranks, "
              f"batch size per rank as given", file=sys.stderr)
    else:
        kwargs.pop("out_dir", None)
        if not _unsupported(fn, {"log": None}):
            kwargs["log"] = lambda *a, **k: None
    before = train_dist.DataParallelRun.started
    fn(progress=not args.no_progress and rank == 0, **kwargs)
    if rank == 0 and train_dist.DataParallelRun.started == before \
            and dist.get_world_size() > 1:
        print(f"nnforge train: warning: recipe {key[0]} --data {key[1]} trains with its own "
              "loop, not nf.train.fit, so each rank trained alone on all the data "
              "(--distributed had no effect)", file=sys.stderr)
    dist.barrier()
    dist.destroy_process_group()
    return 0


def _evaluate(args) -> int:
    recipes = _recipes()
    key, status = _find("evaluate", recipes, recipes.EVALUATORS, args.model, args.data)
    if key is None:
        return status
    status = _check_device("evaluate", args.device)
    if status is not None:
        return status
    if not os.path.isfile(args.checkpoint):
        return _error("evaluate", f"--checkpoint {args.checkpoint}: no such file")
    kwargs = {k: v for k, v in (("batch_size", args.batch_size), ("device", args.device))
              if v is not None}
    fn = recipes.EVALUATORS[key]
    missing = _unsupported(fn, kwargs)
    if missing:
        return _error("evaluate", f"the evaluator of {key[0]} --data {key[1]} does not support "
                                  f"{', '.join(_OPTION[k] for k in missing)}")
    try:
        fn(args.checkpoint, progress=not args.no_progress, **kwargs)
    except (ValueError, RuntimeError, KeyError) as e:
        # A checkpoint that is damaged, of another model or of another width.
        return _error("evaluate", f"{args.checkpoint}: {e}")
    return 0


def _list(args) -> int:
    recipes = _recipes()
    rows = [(m, d, "yes" if recipes.DEFAULT_DATA.get(m) == d else "",
             "yes" if (m, d) in recipes.EVALUATORS else "", recipes.describe(fn))
            for (m, d), fn in sorted(recipes.RECIPES.items())]
    header = ("MODEL", "DATA", "DEFAULT", "EVALUATE", "DESCRIPTION")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(4)]
    for row in [header] + rows:
        print("  ".join(c.ljust(w) for c, w in zip(row[:4], widths)) + "  " + row[4])
    for name, err in sorted(recipes.LOAD_ERRORS.items()):
        print(f"(recipes in module {name!r} failed to load: {err})")
    return 0


def _info(args) -> int:
    from .config import show_config
    show_config()
    return 0


# --------------------------------------------------------------------------- parser
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nnforge", description="nnforge: train the bundled models on bundled real data, "
        "evaluate checkpoints, or show the build configuration.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train a model on a bundled data set",
                       description="Train MODEL with its recipe on a bundled data set, with a "
                       "progress bar and one line per epoch.")
    t.add_argument("model", help="model name, e.g. mlp (see `nnforge list`)")
    t.add_argument("--data", help="data set name, e.g. digits (default: the model's own)")
    t.add_argument("--epochs", type=_positive(int), help="number of epochs")
    t.add_argument("--batch-size", type=_positive(int), help="samples per batch")
    t.add_argument("--lr", type=_positive(float), help="learning rate")
    t.add_argument("--seed", type=_non_negative_int, help="seed of the initialization and "
                   "the shuffling")
    t.add_argument("--device", choices=["cpu", "cuda"], help="where to train (default: cpu)")
    t.add_argument("--out", metavar="DIR", help="write checkpoints (best/last), history.json, "
                   "learning_curves.png and summary.txt here")
    t.add_argument("--threads", type=_positive(int), help="CPU threads for the kernels")
    t.add_argument("--no-progress", action="store_true", help="no progress bars")
    t.add_argument("--resume", metavar="CKPT", help="continue from a checkpoint written with "
                   "--out (e.g. DIR/last.safetensors)")
    t.add_argument("--distributed", action="store_true", help="data-parallel training, one "
                   "process per rank, under `mpirun -n N` (--batch-size is per rank; rank 0 "
                   "alone logs and writes --out)")
    t.set_defaults(func=_train)

    e = sub.add_parser("evaluate", help="evaluate a checkpoint on a recipe's test data")
    e.add_argument("model", help="model name, e.g. mlp")
    e.add_argument("--checkpoint", required=True, metavar="PATH",
                   help="a checkpoint (DIR/best.safetensors) or a state_dict file")
    e.add_argument("--data", help="data set name (default: the model's own)")
    e.add_argument("--batch-size", type=_positive(int))
    e.add_argument("--device", choices=["cpu", "cuda"])
    e.add_argument("--no-progress", action="store_true", help="no progress bars")
    e.set_defaults(func=_evaluate)

    s = sub.add_parser("list", help="list the recipes (model, data set)")
    s.set_defaults(func=_list)
    i = sub.add_parser("info", help="print version, compiler, CPU features, ISA, threads, CUDA")
    i.set_defaults(func=_info)
    return parser


def main(argv=None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse: --help (0) or a usage error (2, message printed)
        return e.code if isinstance(e.code, int) else USAGE_ERROR
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
