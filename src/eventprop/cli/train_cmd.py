"""``eventprop train``, ``eventprop eval`` and ``eventprop crossval``.

Thin wiring: argument parsing, config loading and error reporting around
:mod:`eventprop.train`. Exit codes: 0 success, 1 the run failed (diverged, data or I/O
error), 2 a usage or configuration error (nothing was trained), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["register"]

_CONFIG_HELP = (
    "a YAML config file or the name of a built-in config ({names}); default: yinyang "
    "(trains on the embedded Yin-Yang dataset, no download)"
)


def _builtin_names() -> str:
    from eventprop.train.config import list_builtin_configs

    return ", ".join(list_builtin_configs())


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "config", nargs="?", default=None, help=_CONFIG_HELP.format(names=_builtin_names())
    )
    p.add_argument(
        "--set",
        dest="overrides",
        metavar="KEY=VALUE",
        nargs="+",
        action="extend",
        default=[],
        help="override config keys, values in YAML (e.g. --set optim.lr=5e-4 "
        "model.hidden=[512] data.delay=null); repeatable",
    )
    p.add_argument("--epochs", type=int, help="shortcut for --set train.epochs=N")
    p.add_argument("--seed", type=int, help="shortcut for --set seed=N")


def _overrides(args: argparse.Namespace) -> list[str]:
    out = list(args.overrides or [])
    if getattr(args, "epochs", None) is not None:
        out.append(f"train.epochs={args.epochs}")
    if getattr(args, "seed", None) is not None:
        out.append(f"seed={args.seed}")
    return out


def _err(command: str, exc: BaseException) -> None:
    print(f"eventprop {command}: {exc}", file=sys.stderr)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train``, ``eval`` and ``crossval`` sub-commands."""
    p = subparsers.add_parser(
        "train",
        help="train a network (default: Yin-Yang, a few minutes on a laptop)",
        description=(
            "Train a spiking network with exact EventProp gradients. Writes a run directory "
            "with the resolved config, per-epoch metrics (CSV, TensorBoard when installed), "
            "best and last checkpoints, plots and a summary.json. Without arguments it trains "
            "the built-in Yin-Yang config."
        ),
    )
    _add_config_args(p)
    p.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR from its last checkpoint (with its own config)",
    )
    p.add_argument("--run-dir", metavar="DIR", help="exact run directory (new or empty)")
    p.add_argument("--root", metavar="DIR", help="parent of new run directories (run.root)")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.add_argument("--list-configs", action="store_true", help="list the built-in configs and exit")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or epoch lines")
    p.add_argument(
        "--nproc",
        type=int,
        default=1,
        metavar="N",
        help="data-parallel training in N local processes (torch.distributed: gloo on CPU, "
        "nccl with CUDA); each takes a shard of every batch, gradients are summed, the run "
        "directory is written by rank 0. Also: torchrun --nproc-per-node N -m eventprop train",
    )
    p.set_defaults(func=run_train)

    e = subparsers.add_parser(
        "eval",
        help="evaluate a run's checkpoint on its test (or another) set",
        description=(
            "Rebuild a run's network and data from its resolved config and evaluate a "
            "checkpoint. Writes eval_<split>_<checkpoint>.json and a confusion plot into the "
            "run directory."
        ),
    )
    e.add_argument("run_dir", metavar="RUN_DIR")
    e.add_argument("--split", choices=["test", "validation", "train"], default="test")
    e.add_argument("--checkpoint", choices=["best", "last"], default="best")
    e.add_argument("--batch-size", type=int, default=None)
    e.add_argument("--no-plot", action="store_true", help="do not write the confusion plot")
    e.set_defaults(func=run_eval)

    c = subparsers.add_parser(
        "crossval",
        help="leave-one-speaker-out cross-validation on SHD (mean +- std over folds)",
        description=(
            "Train one run per training-set speaker, holding that speaker out as the "
            "validation set, and report the held-out accuracy as mean +- std over folds. "
            "An interrupted cross-validation continues when run again with the same --out."
        ),
    )
    _add_config_args(c)
    c.add_argument("--out", metavar="DIR", help="cross-validation folder (default: under run.root)")
    c.add_argument(
        "--speakers", type=int, nargs="+", metavar="S", help="only these speakers (default: all)"
    )
    c.add_argument("-q", "--quiet", action="store_true", help="no progress bar or epoch lines")
    c.set_defaults(func=run_crossval)


def _load(args: argparse.Namespace, command: str) -> Any:
    from eventprop.train.config import ConfigError, load_config

    try:
        return load_config(args.config, _overrides(args))
    except ConfigError as exc:
        _err(command, exc)
        return None


def _without_nproc(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            out.append(a)
    return out


def _run_parallel(args: argparse.Namespace, cfg: Any) -> int:
    """Start the worker processes (parent) or train as one rank (a worker)."""
    import os

    from eventprop.train import distributed as D
    from eventprop.train.runs import RunDirError, read_run_config

    in_group = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if not in_group:
        try:
            D.check_config(read_run_config(args.resume) if args.resume else cfg)
        except (RunDirError, D.DistributedConfigError) as exc:
            _err("train", exc)
            return 2
        if args.nproc < 1:
            _err("train", ValueError(f"--nproc: must be >= 1, got {args.nproc}"))
            return 2
        return D.launch(args.nproc, _without_nproc(list(getattr(args, "argv", sys.argv[1:]))))
    ctx = D.from_environment()
    assert ctx is not None
    result = D.train_distributed(
        ctx,
        None if args.resume else cfg,
        run_dir=args.run_dir,
        root=args.root,
        resume_dir=args.resume,
        quiet=args.quiet or not ctx.is_main,
    )
    if args.quiet and ctx.is_main:
        _print_quiet(result)
    return 0


def _print_quiet(result: Any) -> None:
    s = result.summary
    test = (s.get("test") or {}).get("accuracy")
    val = (s.get("validation") or {}).get("accuracy")
    print(
        f"{s['name']}: validation {'n/a' if val is None else f'{100 * val:.2f} %'}, test "
        f"{'n/a' if test is None else f'{100 * test:.2f} %'}; run directory: {result.run_dir}"
    )


def run_train(args: argparse.Namespace) -> int:
    import os

    from eventprop.engine.exact_spec import SpikeLimitError
    from eventprop.train.config import dump_config, list_builtin_configs
    from eventprop.train.loop import TrainingDiverged, resume, train
    from eventprop.train.model import MethodUnavailableError
    from eventprop.train.runs import RunDirError

    if args.list_configs:
        from eventprop.train.config import builtin_config_path, load_config

        for name in list_builtin_configs():
            cfg = load_config(name)
            print(f"{name:12s} {cfg.description}  [{builtin_config_path(name)}]")
        return 0
    if args.resume:
        if args.config or _overrides(args) or args.run_dir or args.root:
            _err(
                "train",
                ValueError(
                    "--resume continues a run with its own config; do not combine it with a "
                    "config, --set, --epochs, --seed, --run-dir or --root"
                ),
            )
            return 2
    else:
        cfg = _load(args, "train")
        if cfg is None:
            return 2
        if args.print_config:
            print(dump_config(cfg), end="")
            return 0
    parallel = args.nproc != 1 or int(os.environ.get("WORLD_SIZE", "1")) > 1
    try:
        if parallel:
            return _run_parallel(args, None if args.resume else cfg)
        if args.resume:
            result = resume(args.resume, quiet=args.quiet)
        else:
            result = train(cfg, run_dir=args.run_dir, root=args.root, quiet=args.quiet)
    except RunDirError as exc:
        _err("train", exc)
        return 2
    except MethodUnavailableError as exc:
        _err("train", exc)
        return 2
    except TrainingDiverged as exc:
        _err("train", exc)
        return 1
    except (OSError, ValueError, SpikeLimitError) as exc:  # data files, damaged checkpoints
        _err("train", exc)
        return 1
    except KeyboardInterrupt:
        return 130
    if args.quiet:
        _print_quiet(result)
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from eventprop.engine.exact_spec import SpikeLimitError
    from eventprop.train.runeval import evaluate_run
    from eventprop.train.runs import RunDirError

    try:
        out = evaluate_run(
            args.run_dir,
            split=args.split,
            checkpoint=args.checkpoint,
            batch_size=args.batch_size,
            plots=not args.no_plot,
        )
    except RunDirError as exc:
        _err("eval", exc)
        return 2
    except (OSError, ValueError, SpikeLimitError) as exc:
        _err("eval", exc)
        return 1
    print(
        f"{args.split} set ({out['n']} samples), {args.checkpoint} checkpoint (epoch "
        f"{out['epoch']}): accuracy {100 * out['accuracy']:.2f} %, loss {out['loss']:.4f}, "
        f"hidden spikes/neuron {out['spikes_per_neuron']:.2f}"
    )
    print(f"written: {out['written']}")
    return 0


def run_crossval(args: argparse.Namespace) -> int:
    from eventprop.engine.exact_spec import SpikeLimitError
    from eventprop.train.crossval import crossval
    from eventprop.train.loop import TrainingDiverged
    from eventprop.train.model import MethodUnavailableError
    from eventprop.train.runs import RunDirError

    cfg = _load(args, "crossval")
    if cfg is None:
        return 2
    try:
        crossval(cfg, args.out, speakers=args.speakers, quiet=args.quiet)
    except (RunDirError, MethodUnavailableError) as exc:
        _err("crossval", exc)
        return 2
    except TrainingDiverged as exc:
        _err("crossval", exc)
        return 1
    except (OSError, ValueError, SpikeLimitError) as exc:
        _err("crossval", exc)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
