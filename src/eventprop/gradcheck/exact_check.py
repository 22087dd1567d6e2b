"""Exact timing against finite differences of the continuous model, at coarse steps.

In exact timing (``Network(..., timing="exact")``) the engine follows the continuous model:
inputs at their real times, hidden spikes at their crossing times, the readout output the
step average of the exact voltage. A loss ``sum_n w(t_n) v_out[:, n] dt / T`` is then exactly
the reference's ``readout_values(..., mode="step_integral")``: the continuous model's integral
with step-wise constant weights. Its EventProp gradient must equal central finite differences
of the reference at any ``dt`` -- not only as ``dt -> 0`` as in grid timing.

:func:`run_exact_gradcheck` checks that on a recurrent network with more than 50 hidden spikes
per sample (relative error per parameter group, time constants included), and the spike times
against the reference's. :func:`error_vs_dt` / :func:`plot_error_vs_dt` compare grid and exact
timing on the same network over a range of steps (``python -m eventprop.gradcheck.exact_check
--plot FILE`` writes the figure of ``docs/exact-timing.md``).
"""

from __future__ import annotations

import argparse
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from eventprop.events import EventBatch
from eventprop.gradcheck.check import (
    GradcheckReport,
    _compare,
    engine_gradients,
    engine_network,
)
from eventprop.gradcheck.check import check_network as grid_check_network
from eventprop.gradcheck.reference import (
    RefNetwork,
    finite_difference_gradients,
    random_network,
    random_samples,
    simulate,
)
from eventprop.losses import make_loss

__all__ = [
    "ExactGradcheckReport",
    "check_network",
    "error_vs_dt",
    "exact_engine_gradients",
    "plot_error_vs_dt",
    "run_exact_gradcheck",
    "run_exact_linear_check",
    "spike_time_error",
]

#: input spikes per sample of the check network (about 55-60 hidden spikes per sample result)
N_INPUT_SPIKES = 70


@dataclass
class ExactGradcheckReport(GradcheckReport):
    """A :class:`GradcheckReport` plus the spike-time agreement and the exact-mode counters."""

    spike_time_error: float = 0.0  #: max |t_engine - t_reference| over all spikes (ms)
    spike_count_match: bool = True
    counters: dict[str, int] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return super().passed and self.spike_count_match and self.spike_time_error <= 1e-9

    def table(self) -> str:
        extra = f"  spike times vs reference: max error {self.spike_time_error:.1e} ms" + (
            "" if self.spike_count_match else " (SPIKE COUNTS DIFFER)"
        )
        if self.counters:
            extra += "\n  counters: " + ", ".join(f"{k} {v}" for k, v in self.counters.items())
        return super().table() + "\n" + extra


def check_network(
    seed: int = 0, n_samples: int = 2, t_end: float = 40.0, loss: str = "sum_weigh_exp"
) -> tuple[RefNetwork, list[tuple[np.ndarray, np.ndarray]], list[int]]:
    """The gradcheck network with :data:`N_INPUT_SPIKES` input spikes per sample.

    It then fires 55-75 hidden spikes per sample (see :func:`check.check_network`).
    """
    return grid_check_network(seed, n_samples, t_end, loss, n_input_spikes=N_INPUT_SPIKES)


def _events(ref: RefNetwork, samples, t_end: float, dt: float) -> EventBatch:
    n_steps = round(t_end / dt)
    if not math.isclose(n_steps * dt, t_end, rel_tol=1e-9):
        raise ValueError(f"dt = {dt} does not divide the trial length {t_end} ms")
    return EventBatch.from_spike_times(
        [s[0] for s in samples],
        [s[1] for s in samples],
        n_steps=n_steps,
        n_channels=ref.n_inputs,
        dt=dt,
    )


def exact_engine_gradients(
    ref: RefNetwork,
    samples: list[tuple[np.ndarray, np.ndarray]],
    labels: list[int],
    t_end: float,
    dt: float,
    backend: str,
    loss: str = "sum_weigh_exp",
    trainable_taus: bool = False,
):
    """Exact-timing EventProp gradients (reference names), and the network output."""
    net = engine_network(ref, dt, backend, trainable_taus)
    net.timing = "exact"
    out = net(_events(ref, samples, t_end, dt))
    make_loss(loss)(out, torch.tensor(labels)).backward()
    grads: dict[str, np.ndarray] = {}
    names = {"w_in": "weight", "w_rec": "weight_rec", "tau_m": "tau_m", "tau_s": "tau_s"}
    for li, m in enumerate(net.hidden):
        for ref_name, name in names.items():
            p = getattr(m, name)
            if p is not None and p.grad is not None:
                grads[f"layers.{li}.{ref_name}"] = p.grad.numpy()
    grads["w_out"] = net.readout.weight.grad.numpy()
    if trainable_taus:
        grads["tau_m_out"] = net.readout.tau_m.grad.numpy()
        grads["tau_s_out"] = net.readout.tau_s.grad.numpy()
    return grads, out


def spike_time_error(ref: RefNetwork, samples, t_end: float, out) -> tuple[float, bool]:
    """Max |t_engine - t_reference| over the spikes of every spiking layer, and counts equal."""
    spiking = out.tape.exact_spikes()
    worst, same = 0.0, True
    for b, (times, units) in enumerate(samples):
        traj = simulate(ref, times, units, t_end)
        layers = list(traj.hidden_spikes)
        if ref.spiking_readout:
            layers.append(traj.readout_spikes)
        for (rt, rn), (s, n, t) in zip(layers, spiking):
            sel = (s == b).numpy()
            et, en = t.numpy()[sel], n.numpy()[sel]
            order = np.lexsort((rn, rt))
            if et.size != rt.size or not np.array_equal(en, rn[order]):
                same = False
                continue
            if et.size:
                worst = max(worst, float(np.abs(et - rt[order]).max()))
    return worst, same


def _fd(ref, samples, labels, t_end, params, loss, dt, mode):
    kw = {} if loss == "first_spike" else {"mode": mode, "dt": dt}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        grads, info = finite_difference_gradients(
            ref, samples, labels, t_end, params=params, h=1e-6, loss=loss, return_info=True, **kw
        )
    return grads, info


def run_exact_gradcheck(
    dts: tuple[float, ...] = (1.0, 2.0),
    backend: str = "numba",
    *,
    tol: float = 1e-4,
    seed: int = 0,
    n_samples: int = 2,
    taus: bool = True,
    loss: str = "sum_weigh_exp",
    t_end: float = 40.0,
) -> list[ExactGradcheckReport]:
    """Exact timing vs central differences of the reference (``step_integral`` loss) per dt."""
    ref, samples, labels = check_network(seed, n_samples, t_end, loss)
    params = [name for name in ref.parameters() if taus or "tau" not in name]
    n_hidden = sum(len(simulate(ref, t, u, t_end).hidden_spikes[0][0]) for t, u in samples)
    reports = []
    for dt in dts:
        fd, info = _fd(ref, samples, labels, t_end, params, loss, dt, "step_integral")
        grads, out = exact_engine_gradients(
            ref, samples, labels, t_end, dt, backend, loss=loss, trainable_taus=taus
        )
        err, same = spike_time_error(ref, samples, t_end, out)
        kind = "first-spike loss" if loss == "first_spike" else "step-integral loss"
        title = (
            f"Recurrent network (20-10-3), loss {loss}, exact timing: engine vs finite "
            f"differences of the continuous model ({kind})"
        )
        if not info.ok:
            title += f"\n  warning: {len(info.mismatches)} FD entries crossed a spike change"
        reports.append(
            ExactGradcheckReport(
                title,
                dt,
                backend,
                tol,
                n_hidden / n_samples,
                _compare(grads, fd),
                spike_time_error=err,
                spike_count_match=same,
                counters=dict(out.tape.counters),
            )
        )
    return reports


def run_exact_linear_check(
    dt: float = 1.0,
    backend: str = "numba",
    *,
    tol: float = 1e-6,
    seed: int = 0,
    t_end: float = 40.0,
) -> GradcheckReport:
    """Readout-only network, inputs at their real (off-grid) times: round-off agreement."""
    ref = random_network(20, [], 3, seed=seed, w_out_std=0.5, tau_jitter=0.2)
    samples, labels = random_samples(3, 20, t_end, 60, 3, seed=seed + 1)
    fd, _ = _fd(
        ref, samples, labels, t_end, ["w_out", "tau_m_out", "tau_s_out"], "sum_weigh_exp", dt,
        "step_integral",
    )  # fmt: skip
    grads, _ = exact_engine_gradients(ref, samples, labels, t_end, dt, backend, trainable_taus=True)
    return GradcheckReport(
        "Readout-only network (no hidden spikes), exact timing, inputs off the grid",
        dt,
        backend,
        tol,
        0.0,
        _compare(grads, fd),
    )


# --------------------------------------------------------------------------- error vs dt
GROUPS = ("layers.0.w_in", "layers.0.w_rec", "w_out", "layers.0.tau_m", "layers.0.tau_s")


def error_vs_dt(
    dts: tuple[float, ...] = (2.0, 1.0, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01),
    backend: str = "numba",
    *,
    seed: int = 0,
    n_samples: int = 2,
    t_end: float = 40.0,
    taus: bool = True,
    verbose: bool = False,
) -> dict[str, dict[str, list[float]]]:
    """Relative gradient error per group against finite differences, grid and exact timing.

    Same network and inputs for both. Each mode is compared with the loss it computes: grid
    timing with the continuous model's integral loss (as ``eventprop gradcheck``), exact
    timing with the step-integral loss at that dt (which tends to the integral as dt -> 0).
    Returns ``{"grid": {group: [error per dt]}, "exact": {...}}``.
    """
    ref, samples, labels = check_network(seed, n_samples, t_end)
    params = [name for name in ref.parameters() if taus or "tau" not in name]
    fd_int, _ = _fd(ref, samples, labels, t_end, params, "sum_weigh_exp", None, "integral")
    out: dict[str, dict[str, list[float]]] = {
        "grid": {g: [] for g in GROUPS},
        "exact": {g: [] for g in GROUPS},
    }
    for dt in dts:
        g_grid, _ = engine_gradients(ref, samples, labels, t_end, dt, backend, trainable_taus=taus)
        fd_step, _ = _fd(ref, samples, labels, t_end, params, "sum_weigh_exp", dt, "step_integral")
        g_exact, _ = exact_engine_gradients(
            ref, samples, labels, t_end, dt, backend, trainable_taus=taus
        )
        for mode, g, fd in (("grid", g_grid, fd_int), ("exact", g_exact, fd_step)):
            errs = {e.name: e.rel_error for e in _compare(g, fd)}
            for name in GROUPS:
                out[mode][name].append(errs.get(name, math.nan))
        if verbose:
            print(
                f"dt {dt:6.3f}: grid "
                + " ".join(f"{out['grid'][n][-1]:.1e}" for n in GROUPS)
                + " | exact "
                + " ".join(f"{out['exact'][n][-1]:.1e}" for n in GROUPS),
                flush=True,
            )
    return out


def plot_error_vs_dt(path: str, dts: tuple[float, ...], errors: dict) -> None:
    """Write the error-vs-dt figure (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {
        "layers.0.w_in": "input weights",
        "layers.0.w_rec": "recurrent weights",
        "w_out": "readout weights",
        "layers.0.tau_m": "tau_m (hidden)",
        "layers.0.tau_s": "tau_s (hidden)",
    }
    fig, ax = plt.subplots(figsize=(7.0, 4.6))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, name in enumerate(GROUPS):
        for mode, style in (("grid", "--o"), ("exact", "-s")):
            ys = np.maximum(np.asarray(errors[mode][name]), 1e-16)
            ax.plot(
                dts,
                ys,
                style,
                color=colors[k % len(colors)],
                ms=4,
                label=f"{labels[name]}, {mode}",
            )
    ax.axhline(1e-4, color="grey", lw=0.8, ls=":")
    ax.annotate(
        "tolerance 1e-4",
        (0.02, 1.4e-4),
        xycoords=("axes fraction", "data"),
        color="grey",
        fontsize=8,
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("time step dt (ms)")
    ax.set_ylabel("relative error vs finite differences")
    ax.set_title("EventProp gradients, recurrent 20-10-3 network: grid vs exact timing")
    ax.legend(fontsize=7, ncol=2, loc="center right")
    ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _main() -> None:
    p = argparse.ArgumentParser(description="Grid vs exact timing: gradient error against dt.")
    p.add_argument("--plot", required=True, help="output PNG path")
    p.add_argument("--backend", default="numba", choices=["numba", "torch"])
    p.add_argument(
        "--dt", type=float, nargs="+", default=[2.0, 1.0, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01]
    )
    args = p.parse_args()
    dts = tuple(args.dt)
    errors = error_vs_dt(dts, args.backend, verbose=True)
    plot_error_vs_dt(args.plot, dts, errors)
    print(f"wrote {args.plot}")


if __name__ == "__main__":
    _main()
