"""Data-parallel ranks against threads: training throughput of ``eventprop train``.

Runs the same config as ``R ranks x T threads`` for each layout given (``--layouts 1x2 2x1``),
``--repeats`` times in alternation (so that a change in the machine's load hits every layout
alike), and reports the training samples per second of the epochs after the first (the first
one compiles the kernels) and the wall time of the whole run.

    python benchmarks/bench_distributed.py                       # Yin-Yang, 1x1 1x2 2x1
    python benchmarks/bench_distributed.py shd_small --epochs 2 --set data.max_train_samples=512
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_layout(
    config: str, ranks: int, threads: int, epochs: int, sets: list[str], out: Path
) -> tuple[float, float]:
    """(training samples/s after epoch 1, wall seconds) of one run."""
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    cmd = [sys.executable, "-m", "eventprop", "train", config, "--epochs", str(epochs), "-q"]
    cmd += ["--run-dir", str(out), "--nproc", str(ranks)]
    if sets:
        cmd += ["--set", *sets]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    rows = list(csv.DictReader(open(out / "metrics.csv", encoding="utf-8")))[1:]
    seconds = sum(float(r["train_time_s"]) for r in rows)
    samples = sum(int(r["train_samples"]) for r in rows)
    return samples / seconds, wall


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("config", nargs="?", default="yinyang")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--layouts", nargs="+", default=["1x1", "1x2", "2x1"], help="RANKSxTHREADS")
    p.add_argument("--set", dest="sets", nargs="+", default=[])
    args = p.parse_args()
    layouts = [tuple(int(x) for x in lay.split("x")) for lay in args.layouts]
    results: dict[tuple[int, int], list[tuple[float, float]]] = {lay: [] for lay in layouts}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            for ranks, threads in layouts:
                out = Path(tmp) / f"r{ranks}t{threads}-{rep}"
                results[(ranks, threads)].append(
                    run_layout(args.config, ranks, threads, args.epochs, args.sets, out)
                )
    print(f"{args.config}, {args.epochs} epochs, {args.repeats} repeats (median)")
    print(f"{'ranks x threads':>16} {'train samples/s':>16} {'wall s':>8}")
    for (ranks, threads), vals in results.items():
        rate = statistics.median(v[0] for v in vals)
        wall = statistics.median(v[1] for v in vals)
        print(f"{f'{ranks} x {threads}':>16} {rate:16.0f} {wall:8.1f}")


if __name__ == "__main__":
    main()
