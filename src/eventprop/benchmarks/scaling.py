"""How the time per training sample grows, for EventProp (numba) and surrogate-gradient BPTT.

Three sweeps around a base point (256 recurrent hidden neurons, SHD's 8000 input spikes per
second, T = 1000 steps of 1 ms, batch 32), one parameter at a time:

- hidden size;
- input spikes per sample (the trial length fixed);
- trial length (the input rate per second fixed, so spikes grow with the trial).

Input is synthetic SHD-like (:func:`eventprop.benchmarks.inputs.synthetic_shd_like`), so that
rate and length can be set freely; at every point the input weights are calibrated so that hidden
neurons fire ``rate_hz`` spikes per second, so that hidden activity does not change along a
sweep. Every point is a full trial, never extrapolated. The log-log slope of each curve (fitted
exponent ``k`` of ``time ~ x^k``) is reported with it.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

__all__ = ["ScalingPoint", "ScalingReport", "plot_scaling", "run_scaling"]

AXES = {
    "hidden": "hidden neurons",
    "input": "input spikes per sample",
    "trial": "trial length (ms)",
}


@dataclass
class ScalingPoint:
    axis: str  #: "hidden", "input" or "trial"
    x: float  #: the swept value (hidden size, input spikes per sample, trial length in ms)
    method: str
    hidden: int
    n_steps: int
    batch: int
    input_spikes: float  #: per sample
    hidden_spikes: float  #: per sample
    forward_ms: float  #: per sample
    backward_ms: float
    time_ms: float
    repeats: int  #: timed steps over all passes (the best counts)


@dataclass
class ScalingReport:
    points: list[ScalingPoint] = field(default_factory=list)
    elapsed_s: float = 0.0

    def series(self, axis: str, method: str) -> tuple[np.ndarray, np.ndarray]:
        pts = sorted(
            (p for p in self.points if p.axis == axis and p.method == method), key=lambda p: p.x
        )
        return np.array([p.x for p in pts]), np.array([p.time_ms for p in pts])

    def exponent(self, axis: str, method: str) -> float:
        """Fitted ``k`` of ``time ~ x^k`` (log-log least squares); NaN with < 2 points."""
        x, y = self.series(axis, method)
        ok = (x > 0) & (y > 0)
        if ok.sum() < 2:
            return math.nan
        return float(np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)[0])

    def methods(self) -> list[str]:
        return sorted({p.method for p in self.points})

    @classmethod
    def from_csv(cls, path: Path) -> ScalingReport:
        """Read a report written by :meth:`to_csv` (e.g. to re-plot it)."""
        types = {f.name: f.type for f in fields(ScalingPoint)}
        conv = {"str": str, "float": float, "int": int}
        with Path(path).open() as f:
            points = [
                ScalingPoint(**{k: conv[str(types[k])](v) for k, v in row.items()})
                for row in csv.DictReader(f)
            ]
        return cls(points=points)

    def to_csv(self, path: Path | None = None) -> str:
        buf = io.StringIO()
        names = [f.name for f in fields(ScalingPoint)]
        w = csv.DictWriter(buf, fieldnames=names, lineterminator="\n")
        w.writeheader()
        for p in self.points:
            w.writerow(
                {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in asdict(p).items()}
            )
        if path is not None:
            Path(path).write_text(buf.getvalue())
        return buf.getvalue()

    def to_text(self) -> str:
        from eventprop.benchmarks.compare import METHOD_LABELS

        lines = []
        for axis, label in AXES.items():
            pts = [p for p in self.points if p.axis == axis]
            if not pts:
                continue
            lines.append(f"time per sample (ms) vs {label}:")
            xs = sorted({p.x for p in pts})
            head = f"  {'method':20}" + "".join(f"{_fmt_x(x):>10}" for x in xs) + "   exponent"
            lines.append(head)
            for m in self.methods():
                row = {p.x: p.time_ms for p in pts if p.method == m}
                cells = "".join(f"{row[x]:10.2f}" if x in row else f"{'-':>10}" for x in xs)
                lines.append(
                    f"  {METHOD_LABELS.get(m, m):20}{cells}   {self.exponent(axis, m):8.2f}"
                )
            lines.append("")
        return "\n".join(lines)


def _fmt_x(x: float) -> str:
    return f"{x:.0f}"


def _measure(method: str, net, events, repeats: int) -> tuple[float, float, float, int]:
    from eventprop.benchmarks.compare import PROBE_STEPS, _Runner, choose_threads, crop_window

    runner = _Runner(method, net, 10.0)
    choose_threads(runner, crop_window(events, min(events.n_steps, PROBE_STEPS)))
    runner.step(events)  # full-trial warm-up
    runs, spikes = [], 0.0
    for _ in range(repeats):
        f, b, _, spikes = runner.step(events)
        runs.append((f + b, f, b))
    _, f, b = min(runs)
    B = events.batch_size
    return 1e3 * f / B, 1e3 * b / B, spikes, len(runs)


def run_scaling(
    *,
    methods: Sequence[str] = ("eventprop-numba", "bptt"),
    hidden_sizes: Sequence[int] = (64, 128, 256, 512, 1024),
    input_rates: Sequence[float] = (2000, 4000, 8000, 16000, 32000),
    trial_lengths: Sequence[int] = (250, 500, 1000, 2000),
    base_hidden: int = 256,
    base_rate: float = 8000.0,
    base_steps: int = 1000,
    batch: int = 32,
    rate_hz: float = 14.0,
    repeats: int = 2,
    passes: int = 2,
    seed: int = 0,
    source: str = "synthetic",
    quick: bool = False,
    log=print,
) -> ScalingReport:
    """Run the three sweeps (``input_rates`` in input spikes per second of trial).

    Every point is measured ``passes`` times (all points of a pass, then the next pass), each
    time with ``repeats`` timed steps; the best counts. ``quick`` replaces the sweeps by small
    ones (seconds). ``source`` must be ``"synthetic"``:
    the sweeps need inputs of any rate and length.
    """
    from eventprop.benchmarks.compare import build_network
    from eventprop.benchmarks.engine import calibrate_activity
    from eventprop.benchmarks.inputs import synthetic_shd_like

    if source != "synthetic":
        raise ValueError("source: the scaling sweeps generate their input ('synthetic' only)")
    if quick:
        hidden_sizes, input_rates, trial_lengths = (32, 64), (2000, 4000), (100, 200)
        base_hidden, base_steps, batch, repeats, passes = 64, 200, 8, 1, 1
    t0 = time.perf_counter()
    points = (
        [("hidden", h, h, base_rate, base_steps) for h in hidden_sizes]
        + [("input", r * base_steps / 1000, base_hidden, r, base_steps) for r in input_rates]
        + [("trial", T, base_hidden, base_rate, T) for T in trial_lengths]
    )
    prepared = {}
    for axis, x, hidden, rate, T in points:
        spikes = round(rate * T / 1000)
        events = synthetic_shd_like(batch, n_steps=T, spikes_per_sample=spikes, seed=seed)
        calib = synthetic_shd_like(8, n_steps=T, spikes_per_sample=spikes, seed=seed + 1)
        probe = build_network(700, hidden, delay=False, seed=seed)
        prepared[(axis, x)] = (events, calibrate_activity(probe, calib, rate_hz * T / 1000))
    best: dict[tuple[str, float, str], ScalingPoint] = {}
    for k in range(passes):  # on a shared machine a later pass catches a quieter moment
        for axis, x, hidden, _, T in points:
            events, scale = prepared[(axis, x)]
            for method in methods:
                net = build_network(700, hidden, delay=False, seed=seed, scale=scale)
                f, b, hs, n = _measure(method, net, events, repeats)
                log(f"  pass {k + 1}  {axis:6} {x:8.0f}  {method:16} {f + b:9.2f} ms/sample")
                point = ScalingPoint(
                    axis,
                    float(x),
                    method,
                    hidden,
                    T,
                    batch,
                    len(events) / batch,
                    hs,
                    f,
                    b,
                    f + b,
                    n,
                )
                key = (axis, float(x), method)
                if key in best:
                    point.repeats += best[key].repeats
                    if best[key].time_ms <= point.time_ms:
                        best[key].repeats = point.repeats
                        continue
                best[key] = point
    report = ScalingReport(points=list(best.values()))
    report.elapsed_s = time.perf_counter() - t0
    return report


def plot_scaling(report: ScalingReport, path: Path) -> Path:
    """Three log-log panels, time per sample against each swept parameter (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from eventprop.benchmarks.compare import METHOD_LABELS

    axes_present = [a for a in AXES if any(p.axis == a for p in report.points)]
    fig, axs = plt.subplots(1, len(axes_present), figsize=(4.2 * len(axes_present), 3.6))
    axs = np.atleast_1d(axs)
    styles = {"eventprop-numba": ("C0", "o"), "bptt": ("C3", "s")}
    from matplotlib.ticker import (
        FixedLocator,
        FuncFormatter,
        LogLocator,
        NullFormatter,
        NullLocator,
    )

    for ax, axis in zip(axs, axes_present):
        xs: set[float] = set()
        for m in report.methods():
            x, y = report.series(axis, m)
            xs.update(x.tolist())
            color, marker = styles.get(m, (None, "^"))
            k = report.exponent(axis, m)
            ax.loglog(
                x, y, marker=marker, color=color, label=f"{METHOD_LABELS.get(m, m)} (~x^{k:.2f})"
            )
        ticks = sorted(xs)  # label the measured values, not log-scale minor ticks
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks], rotation=45 if len(ticks) > 4 else 0)
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(AXES[axis])
        ax.set_ylabel("ms per sample (fwd + bwd)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    first = report.points[0] if report.points else None
    base = (
        f"batch {first.batch}, recurrent LIF hidden layer at 14 Hz, 20 LI readouts"
        if first is not None
        else ""
    )
    fig.suptitle(f"Training step time per sample ({base})", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
