"""``eventprop bench``: EventProp against surrogate-gradient BPTT and snnTorch, time and memory."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="benchmark EventProp against surrogate-gradient BPTT and snnTorch",
        description=(
            "Times one training step (forward + loss + backward) per sample and measures the "
            "memory held for the backward pass and the peak RSS, for EventProp (numba and "
            "torch backends), our surrogate-gradient BPTT and snnTorch (when installed), over "
            "hidden size x delay line x batch size, on SHD-like input (an SHD-format file from "
            "../shared/data when present, else generated spikes with SHD's statistics). Prints "
            "a table and writes it as CSV and markdown. Each cell runs in its own process; "
            "dense methods that would exceed the per-cell budget are run on a window of the "
            "trial and scaled (marked '~'). With CUDA, the torch backend and BPTT are also "
            "benchmarked on the GPU."
        ),
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="one configuration (256 hidden, no delay line, batch 32), short budgets: < 1 min",
    )
    p.add_argument("--hidden", type=int, nargs="+", default=None, help="default: 256 1024")
    p.add_argument(
        "--delay", choices=["off", "on"], nargs="+", default=None, help="default: off on"
    )
    p.add_argument("--batch", type=int, nargs="+", default=None, help="default: 32 256")
    p.add_argument(
        "--methods",
        nargs="+",
        default=None,
        metavar="METHOD",
        help="eventprop-numba eventprop-torch bptt snntorch eventprop-torch-cuda bptt-cuda "
        "(default: the CPU methods, plus the GPU ones when CUDA is available)",
    )
    p.add_argument("--steps", type=int, default=1000, help="trial length T in steps of 1 ms")
    p.add_argument(
        "--input",
        default="auto",
        help="auto (SHD-format file in ../shared/data if present, else synthetic), "
        "synthetic, or a path to an SHD-format .h5 file",
    )
    p.add_argument("--repeats", type=int, default=None, help="timed runs per cell (best counts)")
    p.add_argument(
        "--budget",
        type=float,
        default=None,
        help="seconds of timed runs per cell (default 12; --quick 3); dense methods are "
        "measured on a window of the trial when the full trial would not fit",
    )
    p.add_argument(
        "--max-steps",
        type=int,
        default=None,
        help="measure dense methods on at most this many steps and scale (for tests)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="PyTorch intra-op threads for every cell (default: per cell, the faster of 1 and "
        "all cores, chosen on a short run)",
    )
    p.add_argument("--out", type=Path, default=Path("runs/bench"), help="output directory")
    p.add_argument("--no-isolate", action="store_true", help="run cells in this process")
    p.add_argument("--no-event-op", action="store_true", help="skip the event-op micro-benchmark")
    p.add_argument("--timeout", type=float, default=240.0, help="seconds per cell before giving up")
    p.add_argument(
        "--time-limit",
        type=float,
        default=480.0,
        help="seconds for the whole grid (default 480): cell budgets shrink to fit; 0: no limit",
    )
    p.add_argument(
        "--passes",
        type=int,
        default=1,
        help="run the grid this many times and keep each cell's fastest pass (for a shared "
        "machine; raise --time-limit with it)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--timing",
        choices=["grid", "exact"],
        default="grid",
        help="EventProp's timing mode (default grid, the paper's; BPTT always runs the grid)",
    )
    p.add_argument(
        "--scaling",
        action="store_true",
        help="also run the scaling study (time per sample vs hidden size, input spikes, trial "
        "length) and write its CSV and plot",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from eventprop.benchmarks.compare import CPU_METHODS, GPU_METHODS, quick_grid, run_benchmark

    grid = quick_grid() if args.quick else {}
    hidden = tuple(args.hidden or grid.get("hidden", (256, 1024)))
    delay = tuple(d == "on" for d in (args.delay or [])) or grid.get("delay", (False, True))
    batch = tuple(args.batch or grid.get("batch", (32, 256)))
    repeats = args.repeats or grid.get("repeats", 3)
    budget = args.budget if args.budget is not None else grid.get("budget_s", 12.0)
    for name, values in (("--hidden", hidden), ("--batch", batch)):
        if any(v <= 0 for v in values):
            print(f"eventprop bench: {name} values must be positive", file=sys.stderr)
            return 2
    if args.passes <= 0:
        print("eventprop bench: --passes must be positive", file=sys.stderr)
        return 2
    if args.threads is not None and args.threads <= 0:
        print("eventprop bench: --threads must be positive", file=sys.stderr)
        return 2
    if args.steps <= 0 or repeats <= 0 or budget <= 0:
        print("eventprop bench: --steps, --repeats and --budget must be positive", file=sys.stderr)
        return 2
    known = (*CPU_METHODS, *GPU_METHODS)
    for m in args.methods or []:
        if m not in known:
            print(f"eventprop bench: unknown method {m!r}; choose from {known}", file=sys.stderr)
            return 2
    command = getattr(args, "command_line", None) or "eventprop bench " + shlex.join(sys.argv[2:])
    report = run_benchmark(
        hidden=hidden,
        delay=delay,
        batch=batch,
        methods=args.methods,
        n_steps=args.steps,
        source=args.input,
        repeats=repeats,
        budget_s=budget,
        max_steps=args.max_steps,
        threads=args.threads,
        time_limit_s=args.time_limit or None,
        passes=args.passes,
        isolate=not args.no_isolate,
        cell_timeout_s=args.timeout,
        seed=args.seed,
        event_op=not args.no_event_op,
        command=command.strip(),
        timing=args.timing,
    )
    print()
    print(report.to_text())
    print()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in report.machine.items()))
    print(f"input: {report.input}; {report.elapsed_s:.0f} s in all")
    args.out.mkdir(parents=True, exist_ok=True)
    report.to_csv(args.out / "compare.csv")
    (args.out / "compare.md").write_text(_markdown_page(report))
    written = [args.out / "compare.csv", args.out / "compare.md"]
    if args.scaling:
        from eventprop.benchmarks.scaling import plot_scaling, run_scaling

        scaling = run_scaling(source="synthetic", seed=args.seed, quick=args.quick)
        scaling.to_csv(args.out / "scaling.csv")
        plot_scaling(scaling, args.out / "scaling.png")
        written += [args.out / "scaling.csv", args.out / "scaling.png"]
        print()
        print(scaling.to_text())
    print("\nwrote " + ", ".join(str(p) for p in written))
    return 0


def _markdown_page(report) -> str:
    m = report.machine
    lines = [
        "# eventprop bench",
        "",
        f"Command: `{report.command}`  ",
        f"Machine: {m.get('cpu')}, {m.get('cores')} cores, {m.get('memory_gb')} GB; "
        f"torch {m.get('torch')} ({m.get('torch_threads')} threads), numba {m.get('numba')} "
        f"({m.get('numba_threads')} threads), snnTorch {m.get('snntorch')}, CUDA "
        f"{m.get('cuda')}; load average at the end {m.get('load_average', '?')}  ",
        f"Input: {report.input}; trial {report.rows[0].n_steps if report.rows else '?'} steps "
        "of 1 ms  ",
        f"Run time: {report.elapsed_s:.0f} s",
        "",
        report.to_markdown(),
        "",
    ]
    return "\n".join(lines)
