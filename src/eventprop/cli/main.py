"""``eventprop`` entry point.

Each sub-command lives in its own module with a ``register(subparsers)`` function that adds
its parser and sets ``func`` (called with the parsed arguments, returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import os
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


#: exit status when the reader of the output went away (``eventprop data info F | head``):
#: what a Unix tool killed by SIGPIPE reports (128 + 13)
EXIT_BROKEN_PIPE = 141


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv  # the command line as given, for commands that start worker processes
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # inside the try: a closed pipe fails here, not at exit
    except BrokenPipeError:
        # the reader closed the pipe: stop quietly; later writes (and the flush at exit) go to
        # /dev/null instead of printing a traceback
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE
    return code


if __name__ == "__main__":
    sys.exit(main())
