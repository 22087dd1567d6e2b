"""Scaling of the time per training sample: EventProp (numba) vs surrogate-gradient BPTT.

    python benchmarks/bench_scaling.py                     # full sweeps (a few minutes)
    python benchmarks/bench_scaling.py --quick             # small sweeps (seconds)
    python benchmarks/bench_scaling.py --plot docs/benchmarks_scaling.png

Sweeps hidden size, input spikes per sample and trial length around 256 hidden neurons,
8000 input spikes per second and T = 1000 (batch 32, hidden neurons calibrated to 14 Hz),
prints the times with the fitted log-log exponents, writes the CSV and the plot.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from eventprop.benchmarks.scaling import plot_scaling, run_scaling


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sweeps, for a smoke test")
    p.add_argument("--hidden", type=int, nargs="+", default=[64, 128, 256, 512, 1024])
    p.add_argument(
        "--rates",
        type=float,
        nargs="+",
        default=[2000, 4000, 8000, 16000, 32000],
        help="input spikes per second of trial",
    )
    p.add_argument("--steps", type=int, nargs="+", default=[250, 500, 1000, 2000])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--passes", type=int, default=2, help="sweeps repeated (best counts)")
    p.add_argument("--methods", nargs="+", default=["eventprop-numba", "bptt"])
    p.add_argument("--csv", type=Path, default=Path("runs/bench/scaling.csv"))
    p.add_argument("--plot", type=Path, default=Path("runs/bench/scaling.png"))
    args = p.parse_args(argv)

    report = run_scaling(
        methods=args.methods,
        hidden_sizes=args.hidden,
        input_rates=args.rates,
        trial_lengths=args.steps,
        batch=args.batch,
        repeats=args.repeats,
        passes=args.passes,
        quick=args.quick,
    )
    print()
    print(report.to_text())
    for path in (args.csv, args.plot):
        path.parent.mkdir(parents=True, exist_ok=True)
    report.to_csv(args.csv)
    plot_scaling(report, args.plot)
    print(f"{report.elapsed_s:.0f} s; wrote {args.csv} and {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
