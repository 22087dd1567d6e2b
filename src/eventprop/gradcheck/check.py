"""Compare the engine's EventProp gradients with finite differences of the continuous model.

The reference (:mod:`eventprop.gradcheck.reference`) simulates the network exactly -- input
spikes at their real times, hidden spikes at root-found crossing times, the loss integral in
closed form -- and differentiates it by central finite differences in float64. The engine runs
the same weights on a time grid of step ``dt``. Grid timing is exact only as ``dt -> 0``, so
its error against the continuous model shrinks with ``dt``; a network without hidden layers has
no spike times to misplace and must agree to round-off when its inputs lie on the grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from eventprop.events import EventBatch
from eventprop.gradcheck.reference import (
    RefNetwork,
    finite_difference_gradients,
    random_network,
    random_samples,
    simulate,
)
from eventprop.losses import make_loss
from eventprop.models import LIFLayer, LIReadout, Network, TimeConstants

__all__ = [
    "GradcheckReport",
    "GroupError",
    "check_network",
    "engine_gradients",
    "engine_network",
    "run_gradcheck",
    "run_linear_check",
]


@dataclass
class GroupError:
    name: str  #: reference parameter name, e.g. "layers.0.w_rec"
    rel_error: float  #: ||g_engine - g_ref|| / ||g_ref||
    ref_norm: float
    size: int


@dataclass
class GradcheckReport:
    title: str
    dt: float
    backend: str
    tol: float
    hidden_spikes: float  #: per sample, in the reference simulation
    groups: list[GroupError] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(g.rel_error <= self.tol for g in self.groups)

    def table(self) -> str:
        lines = [
            self.title,
            f"  dt = {self.dt} ms, backend {self.backend}, {self.hidden_spikes:.1f} hidden "
            f"spikes/sample, tolerance {self.tol:.1e}",
            f"  {'parameter':16} {'size':>5} {'|grad| (FD)':>12} {'rel. error':>11}  ok",
        ]
        for g in self.groups:
            ok = "yes" if g.rel_error <= self.tol else "NO"
            lines.append(f"  {g.name:16} {g.size:5d} {g.ref_norm:12.3e} {g.rel_error:11.3e}  {ok}")
        return "\n".join(lines)


_ENGINE_NAME = {"w_in": "weight", "w_rec": "weight_rec", "tau_m": "tau_m", "tau_s": "tau_s"}


def engine_network(ref: RefNetwork, dt: float, backend: str, trainable_taus: bool) -> Network:
    """The reference's weights and time constants as an engine network (float64)."""
    taus = TimeConstants(trainable=trainable_taus, tau_m_min=1e-3, tau_s_min=1e-3)
    hidden = []
    for layer in ref.layers:
        n_pre, n = layer.w_in.shape
        m = LIFLayer(n_pre, n, recurrent=layer.w_rec is not None, taus=taus)
        hidden.append(m)
    n_pre, k = ref.w_out.shape
    readout = LIReadout(n_pre, k, spiking=ref.spiking_readout, taus=taus)
    net = Network(hidden, readout, dt=dt, backend=backend).double()
    with torch.no_grad():
        for m, layer in zip(net.hidden, ref.layers):
            m.weight.copy_(torch.from_numpy(layer.w_in))
            if layer.w_rec is not None:
                m.weight_rec.copy_(torch.from_numpy(layer.w_rec))
            m.tau_m.copy_(torch.from_numpy(layer.tau_m))
            m.tau_s.copy_(torch.from_numpy(layer.tau_s))
        net.readout.weight.copy_(torch.from_numpy(ref.w_out))
        net.readout.tau_m.copy_(torch.from_numpy(ref.tau_m_out))
        net.readout.tau_s.copy_(torch.from_numpy(ref.tau_s_out))
    return net


def engine_gradients(
    ref: RefNetwork,
    samples: list[tuple[np.ndarray, np.ndarray]],
    labels: list[int],
    t_end: float,
    dt: float,
    backend: str,
    loss: str = "sum_weigh_exp",
    trainable_taus: bool = False,
) -> tuple[dict[str, np.ndarray], float]:
    """EventProp gradients of the batch loss, keyed by the reference's parameter names."""
    n_steps = round(t_end / dt)
    if not math.isclose(n_steps * dt, t_end, rel_tol=1e-9):
        raise ValueError(f"dt = {dt} does not divide the trial length {t_end} ms")
    net = engine_network(ref, dt, backend, trainable_taus)
    events = EventBatch.from_spike_times(
        [s[0] for s in samples],
        [s[1] for s in samples],
        n_steps=n_steps,
        n_channels=ref.n_inputs,
        dt=dt,
    )
    out = net(events)
    loss_fn = make_loss(loss)
    loss_fn(out, torch.tensor(labels)).backward()
    grads: dict[str, np.ndarray] = {}
    for li, m in enumerate(net.hidden):
        for ref_name, name in _ENGINE_NAME.items():
            p = getattr(m, name)
            if p is not None and p.grad is not None:
                grads[f"layers.{li}.{ref_name}"] = p.grad.numpy()
    grads["w_out"] = net.readout.weight.grad.numpy()
    if trainable_taus:
        grads["tau_m_out"] = net.readout.tau_m.grad.numpy()
        grads["tau_s_out"] = net.readout.tau_s.grad.numpy()
    spikes = (
        float(sum(c.detach().sum() for c in out.hidden_counts)) / len(samples)
        if net.hidden
        else 0.0
    )
    return grads, spikes


def _compare(engine: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> list[GroupError]:
    out = []
    for name, g_ref in ref.items():
        g = engine[name]
        norm = float(np.linalg.norm(g_ref))
        err = float(np.linalg.norm(g - g_ref)) / max(norm, 1e-300)
        out.append(GroupError(name, err, norm, g_ref.size))
    return out


def _closest_pairs(ref: RefNetwork, samples, t_end: float) -> tuple[float, float]:
    """Smallest gaps (ms) between two hidden spikes and between a hidden and an input spike.

    Grid timing puts every event of a step at the step's boundaries, so it cannot order
    events closer than ``dt``; gradients converge once ``dt`` is below these gaps.
    """
    pair, mixed = math.inf, math.inf
    for times, units in samples:
        traj = simulate(ref, times, units, t_end)
        spikes = np.sort(np.concatenate([t for t, _ in traj.hidden_spikes]))
        if spikes.size > 1:
            pair = min(pair, float(np.diff(spikes).min()))
        if spikes.size and len(times):
            mixed = min(mixed, float(np.abs(spikes[:, None] - np.asarray(times)[None]).min()))
    return pair, mixed


def check_network(
    seed: int = 0,
    n_samples: int = 2,
    t_end: float = 40.0,
    loss: str = "sum_weigh_exp",
    n_input_spikes: int = 60,
) -> tuple[RefNetwork, list[tuple[np.ndarray, np.ndarray]], list[int]]:
    """The check network (20 inputs, 10 recurrent hidden, 3 readout) and its input samples.

    About 50 hidden spikes per sample with 60 input spikes. ``loss="first_spike"``: spiking
    readout with raised weights, so that every readout neuron spikes and every first-spike
    time has a gradient.
    """
    spiking = loss == "first_spike"
    ref = random_network(20, [10], 3, recurrent=True, spiking_readout=spiking, seed=seed,
                         w_in_mean=0.5, w_in_std=0.25, w_rec_std=0.2, w_out_std=0.5)  # fmt: skip
    if spiking:
        ref.w_out += 0.6
    samples, labels = random_samples(n_samples, 20, t_end, n_input_spikes, 3, seed=seed + 1)
    return ref, samples, labels


def run_gradcheck(
    dts: tuple[float, ...] = (0.01,),
    backend: str = "numba",
    *,
    tol: float = 0.02,
    seed: int = 0,
    n_samples: int = 2,
    taus: bool = False,
    loss: str = "sum_weigh_exp",
    t_end: float = 40.0,
) -> list[GradcheckReport]:
    """Recurrent network (20 inputs, 10 hidden, 3 readout) at each ``dt`` vs the continuous model.

    ``loss="first_spike"`` uses a spiking readout and the time-to-first-spike loss.
    """
    ref, samples, labels = check_network(seed, n_samples, t_end, loss)
    params = [name for name in ref.parameters() if taus or "tau" not in name]
    mode = {} if loss == "first_spike" else {"mode": "integral"}
    fd = finite_difference_gradients(
        ref, samples, labels, t_end, params=params, h=1e-6, loss=loss, **mode
    )
    n_ref_spikes = (
        sum(len(simulate(ref, t, u, t_end).hidden_spikes[0][0]) for t, u in samples) / n_samples
    )
    pair, mixed = _closest_pairs(ref, samples, t_end)
    title = (
        f"Recurrent network (20-10-3), loss {loss}: engine vs finite differences of the "
        f"continuous model\n  closest hidden-spike pair {pair:.4f} ms, closest input/hidden "
        f"pair {mixed:.4f} ms (grid timing cannot order events closer than dt)"
    )
    reports = []
    for dt in dts:
        grads, _ = engine_gradients(
            ref, samples, labels, t_end, dt, backend, loss=loss, trainable_taus=taus
        )
        reports.append(GradcheckReport(title, dt, backend, tol, n_ref_spikes, _compare(grads, fd)))
    return reports


def run_linear_check(
    dt: float = 1.0,
    backend: str = "numba",
    *,
    tol: float = 1e-6,
    seed: int = 0,
    t_end: float = 40.0,
) -> GradcheckReport:
    """No hidden spikes (readout-only network), inputs on the grid: must agree to round-off."""
    ref = random_network(20, [], 3, seed=seed, w_out_std=0.5, tau_jitter=0.2)
    samples, labels = random_samples(3, 20, t_end, 60, 3, seed=seed + 1)
    samples = [(np.floor(t / dt + 1e-9) * dt, u) for t, u in samples]
    fd = finite_difference_gradients(
        ref,
        samples,
        labels,
        t_end,
        h=1e-5,
        params=["w_out", "tau_m_out", "tau_s_out"],
        loss="sum_weigh_exp",
        mode="step_integral",  # the grid readout reports step averages of V
        dt=dt,
    )
    grads, _ = engine_gradients(ref, samples, labels, t_end, dt, backend, trainable_taus=True)
    return GradcheckReport(
        "Readout-only network (no hidden spikes), inputs on the grid, step-integral loss",
        dt,
        backend,
        tol,
        0.0,
        _compare(grads, fd),
    )
