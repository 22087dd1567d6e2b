"""How good is the grid-timed EventProp gradient? Grid vs exact timing on SHD-like input.

    python benchmarks/bench_grid_gradient.py                  # sum_weigh_exp, dt 1, 0.5, 0.25, 0.1
    python benchmarks/bench_grid_gradient.py --dt 1 --losses sum_weigh_exp sum max avg_xentropy \
        --reg none 14 --seeds 0 1 --stability
    python benchmarks/bench_grid_gradient.py --input synthetic --samples 10 --feedforward

For each setting one network (the paper's initialisation, float64, numba backend) runs in both
timing modes on the same weights and samples. Exact timing gives the exact gradient of the
continuous model at any ``dt`` (checked against finite differences in the test suite), so it
is the yardstick. Columns: the cosine of the two hidden-weight gradients, and the change of
each network's own loss after a step of length eps along its normalised negative gradient
(negative: it descends). ``--stability`` adds the cosine between the exact gradient and the
exact gradient at weights moved by 1 % of their spread: the roughness of the gradient field,
a ceiling for any agreement between two discretisations.
"""

from __future__ import annotations

import argparse
import platform

import h5py
import numpy as np
import torch

from eventprop.benchmarks.compare import bench_input, find_shd_file
from eventprop.gradcheck.timing_compare import compare_timings, gradient_stability, paper_network

EPS = (0.01, 0.03, 0.1)


def _labels(source: str, n: int) -> torch.Tensor:
    path = find_shd_file() if source == "auto" else (None if source == "synthetic" else source)
    if path is None:
        return torch.arange(n) % 20
    with h5py.File(path, "r") as f:
        labels = np.asarray(f["labels"], dtype=np.int64)
    return torch.from_numpy(np.resize(labels, n))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dt", type=float, nargs="+", default=[1.0, 0.5, 0.25, 0.1])
    parser.add_argument("--losses", nargs="+", default=["sum_weigh_exp"])
    parser.add_argument(
        "--reg", nargs="+", default=["none"], help="regulariser targets ('none' = without)"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--duration", type=float, default=1000.0, help="trial length (ms)")
    parser.add_argument("--feedforward", action="store_true", help="no recurrent weights")
    parser.add_argument("--input", default="auto", help="auto | synthetic | PATH (SHD format)")
    parser.add_argument("--stability", action="store_true", help="add the 1 %% roughness column")
    args = parser.parse_args()
    _, what = bench_input(1, n_steps=10, source=args.input)
    kind = "feed-forward" if args.feedforward else "recurrent"
    print(f"input: {what}; {args.samples} samples; {args.hidden} {kind} hidden")
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}\n")
    labels = _labels(args.input, args.samples)
    eps = " ".join(f"{e:g}" for e in EPS)
    head = f"{'dt':>5} {'seed':>4} {'loss':>14} {'reg':>4} {'cos':>7}"
    if args.stability:
        head += f" {'rough':>6}"
    print(f"{head}  loss change along -g/|g| (eps {eps}): grid | exact")
    for dt in args.dt:
        events, _ = bench_input(
            args.samples, n_steps=round(args.duration / dt), source=args.input, dt=dt
        )
        for seed in args.seeds:
            grid = paper_network(events.n_channels, args.hidden, 20, seed, dt, "grid",
                                 recurrent=not args.feedforward)  # fmt: skip
            exact = paper_network(events.n_channels, args.hidden, 20, seed, dt, "exact",
                                  recurrent=not args.feedforward)  # fmt: skip
            for loss in args.losses:
                for reg_arg in args.reg:
                    reg = None if reg_arg == "none" else float(reg_arg)
                    r = compare_timings(grid, exact, events, labels, loss, reg, EPS)
                    line = f"{dt:5g} {seed:4d} {loss:>14} {reg_arg:>4} {r.cosine:+7.3f}"
                    if args.stability:
                        rough = gradient_stability(exact, events, labels, loss, reg)
                        line += f" {rough:6.3f}"
                    g = " ".join(f"{x:+.1e}" for x in r.grid_descent)
                    e = " ".join(f"{x:+.1e}" for x in r.exact_descent)
                    print(f"{line}  {g} | {e}", flush=True)


if __name__ == "__main__":
    main()
