"""EventProp vs surrogate-gradient BPTT vs snnTorch: the `eventprop bench` table.

    python benchmarks/bench_compare.py --quick          # one configuration, < 1 minute
    python benchmarks/bench_compare.py                  # the full grid (about 10 minutes)
    python benchmarks/bench_compare.py --hidden 256 --batch 32 --delay off on

Same options as `eventprop bench` (see --help); writes runs/bench/compare.{csv,md}.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from eventprop.cli.bench_cmd import register


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="bench_compare.py")
    register(parser.add_subparsers())
    args = parser.parse_args(["bench", *argv])
    args.command_line = "python benchmarks/bench_compare.py " + shlex.join(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
