"""``eventprop gradcheck``: EventProp gradients vs finite differences of the continuous model."""

from __future__ import annotations

import argparse

from eventprop.cli.gradcheck_exact import DEFAULT_TOL, add_timing_option
from eventprop.engine.function import BACKENDS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gradcheck",
        help="check EventProp gradients against finite differences of the exact model",
        description=(
            "Runs a small recurrent network in the engine and in an independent float64 "
            "event-driven simulation of the continuous model, and compares the engine's "
            "gradients with central finite differences of the latter. Prints the relative "
            "error per parameter group; exits with status 1 if any exceeds the tolerance. "
            "A readout-only network (no hidden spikes) must agree to round-off (1e-6)."
        ),
    )
    p.add_argument(
        "--dt", type=float, nargs="+", default=[0.01], help="time step(s) in ms (default 0.01)"
    )
    p.add_argument("--backend", choices=sorted(BACKENDS), default="numba")
    p.add_argument("--loss", choices=["sum_weigh_exp", "first_spike"], default="sum_weigh_exp")
    p.add_argument("--taus", action="store_true", help="also check time-constant gradients")
    p.add_argument(
        "--tol",
        type=float,
        default=0.02,
        help="relative error tolerance per parameter group (default 0.02 grid, 1e-4 exact)",
    )
    p.add_argument("--seed", type=int, default=0, help="network and input seed (default 0)")
    p.add_argument("--samples", type=int, default=2, help="input samples in the batch")
    add_timing_option(p)  # --timing grid|exact; --tol then defaults to 0.02 or 1e-4
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    timing = getattr(args, "timing", "grid")
    if getattr(args, "tol", None) is None:
        args.tol = DEFAULT_TOL[timing]
    for dt in args.dt:
        if not dt > 0:
            raise SystemExit(f"eventprop gradcheck: --dt must be positive, got {dt}")
    if timing == "exact":  # exact timing is checked with time constants, at any dt
        from eventprop.gradcheck.exact_check import run_exact_gradcheck as check
        from eventprop.gradcheck.exact_check import run_exact_linear_check as linear_check

        taus = True
    else:
        from eventprop.gradcheck.check import run_gradcheck as check
        from eventprop.gradcheck.check import run_linear_check as linear_check

        taus = args.taus
    ok = True
    linear = linear_check(dt=args.dt[0], backend=args.backend, seed=args.seed)
    print(linear.table() + "\n")
    ok &= linear.passed
    reports = check(tuple(args.dt), args.backend, tol=args.tol, seed=args.seed,
                    n_samples=args.samples, taus=taus, loss=args.loss)  # fmt: skip
    for report in reports:
        print(report.table() + "\n")
        ok &= report.passed
    label = "gradcheck" if timing == "grid" else "gradcheck (exact timing)"
    print(f"{label}: " + ("PASSED" if ok else "FAILED (error above tolerance)"))
    return 0 if ok else 1
