"""``eventprop`` entry point.

Each sub-command lives in its own module with a ``register(subparsers)`` function that adds
its parser and sets ``func`` (called with the parsed arguments, returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

#: sub-command modules, in the order ``eventprop --help`` lists them
COMMAND_MODULES = (
    "eventprop.cli.train_cmd",
    "eventprop.cli.gradcheck_cmd",
    "eventprop.cli.data_cmd",
    "eventprop.cli.bench_cmd",
    "eventprop.cli.audio_cmd",
    "eventprop.cli.nir_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    from eventprop import __version__

    parser = argparse.ArgumentParser(
        prog="eventprop",
        description="Train spiking neural networks with exact EventProp gradients.",
    )
    parser.add_argument("--version", action="version", version=f"eventprop {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # sub-command not built yet
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv  # the command line as given, for commands that start worker processes
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
