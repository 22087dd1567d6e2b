"""Float64 event-driven reference simulator of the continuous spiking network model.

Kept independent of the engine on purpose: exact trajectories between events, spike times by
root finding, closed-form loss integrals and central finite differences give a ground truth
against which the engine's EventProp gradients are checked (docs: eventprop-method.md, 1-4).

Model (ms, theta = 1, reset to 0, no refractory period), per neuron::

    tau_m dV/dt = -V + I,   tau_s dI/dt = -I,   spike of i at t:  I_j += w[i, j]

Weights are stored (pre, post). Layers are simulated one after the other (spikes only flow
forward, plus the recurrence inside a layer), which keeps every event loop small.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.special import logsumexp

__all__ = [
    "THETA",
    "FDInfo",
    "LayerTrajectory",
    "RefLayer",
    "RefNetwork",
    "Trajectory",
    "batch_loss",
    "finite_difference_gradients",
    "first_spike_times",
    "hidden_voltage",
    "random_network",
    "random_samples",
    "readout_state",
    "readout_values",
    "readout_voltage",
    "sample_loss",
    "simulate",
]

THETA = 1.0
_EPS = np.finfo(np.float64).eps
_LOSSES = ("sum", "sum_weigh_exp", "first_spike")
_MODES = ("integral", "sampled", "step_integral")
_MAX_SPIKES = 1_000_000  # per layer and sample: guards against a runaway cascade


# --------------------------------------------------------------------------- closed forms
_TINY = 1e-300  # shifts an exact 0 off the removable singularity of phi / psi


def _phi(x):
    """(1 - exp(-x)) / x (1 at 0): expm1 keeps it exact near 0, so tau_m == tau_s is regular."""
    x = x + _TINY
    return -np.expm1(-x) / x


def _phi_s(x: float) -> float:
    x = x + _TINY
    return -math.expm1(-x) / x


def _psi(y):
    """-log(1 - y) / y (1 at 0): stationary point of V for near-equal taus without cancellation."""
    y = y + _TINY
    return -np.log1p(-y) / y


@dataclass
class _Cells:
    """Per-neuron constants of the closed form, computed once per simulation."""

    tm: np.ndarray
    ts: np.ndarray

    def __post_init__(self) -> None:
        self.inv_tm = 1.0 / self.tm
        self.inv_ts = 1.0 / self.ts
        self.inv_tmax = 1.0 / np.maximum(self.tm, self.ts)
        self.absd = np.abs(self.inv_ts - self.inv_tm)
        self.delta = self.tm - self.ts
        self.tmts = self.tm * self.ts
        # max over s of the PSP kernel K: reached where V = I, i.e. K = exp(-s*/tau_s)
        s_star = self.ts * _psi(self.delta * self.inv_tm)
        self.kmax = np.exp(-s_star * self.inv_ts)
        self.packed = np.stack([self.inv_tm, self.inv_tmax, self.absd, self.delta, self.tmts])


def _kernel(s, c: _Cells):
    """V at time s after a unit current kick into a neuron at rest.

    K(s) = tau_s/(tau_m - tau_s) (e^{-s/tau_m} - e^{-s/tau_s}), written as
    (s/tau_m) e^{-s/max(tau)} phi(s |1/tau_s - 1/tau_m|) so that it has no cancellation.
    """
    return s * c.inv_tm * np.exp(-s * c.inv_tmax) * _phi(s * c.absd)


def _advance(V: np.ndarray, I: np.ndarray, s, c: _Cells) -> tuple[np.ndarray, np.ndarray]:
    return V * np.exp(-s * c.inv_tm) + I * _kernel(s, c), I * np.exp(-s * c.inv_ts)


def _integral(V0, I0, S, rho, c: _Cells) -> np.ndarray:
    """integral_0^S exp(-rho s) V(s) ds in closed form.

    From tau_m V' = I - V: (1 + tau_m rho) J = int e^{-rho s} I ds + tau_m (V0 - e^{-rho S} V(S)),
    which needs no case split for tau_m == tau_s or for vanishing exponent sums.
    """
    VS = V0 * np.exp(-S * c.inv_tm) + I0 * _kernel(S, c)
    int_I = I0 * S * _phi((rho + c.inv_ts) * S)
    return (int_I + c.tm * (V0 - np.exp(-rho * S) * VS)) / (1.0 + c.tm * rho)


# --------------------------------------------------------------------------- crossings
def _root(V0: float, I0: float, lo: float, hi: float, c: _Cells, j: int) -> float:
    """Time of V = theta in [lo, hi], where V rises and is concave (safeguarded Newton).

    From the left end Newton on a concave rising function never overshoots, so it converges
    monotonically; bisection is only a guard. Pure-python floats: a scipy call per crossing
    would dominate the run time.
    """
    itm, itmax, absd = float(c.inv_tm[j]), float(c.inv_tmax[j]), float(c.absd[j])
    its = float(c.inv_ts[j])

    def f(s: float) -> tuple[float, float]:  # V - theta and dV/ds = (I - V)/tau_m
        v = V0 * math.exp(-s * itm) + I0 * s * itm * math.exp(-s * itmax) * _phi_s(s * absd)
        return v - THETA, (I0 * math.exp(-s * its) - v) * itm

    x = lo
    fx, dfx = f(x)
    if fx >= 0.0:  # rounding put the bracket's lower end on/above threshold
        return lo
    if f(hi)[0] < 0.0:  # grazing: the vectorised test said >= theta, the scalar one not quite
        return hi
    for _ in range(200):
        if fx < 0.0:
            lo = x
        else:
            hi = x
        xn = x - fx / dfx if dfx > 0.0 else math.inf
        if not (lo < xn < hi):  # Newton left the bracket (rounding only): bisect
            xn = 0.5 * (lo + hi)
        if xn == x or hi - lo <= 2.0 * _EPS * hi:
            return xn
        fn, dfn = f(xn)
        if fn == 0.0 or (abs(xn - x) <= 4.0 * _EPS * xn and abs(fn) >= abs(fx)):
            return xn if abs(fn) <= abs(fx) else x  # converged to rounding
        x, fx, dfx = xn, fn, dfn
    raise RuntimeError("spike-time root finding did not converge")


def _earliest_crossing(V: np.ndarray, I: np.ndarray, S: float, c: _Cells):
    """Earliest (s, neuron) with V reaching theta from below in [0, S], or None.

    A cheap bound (K(s) <= min(K_max, s/tau_m)) rules out most neurons, and leaves only
    neurons with I > 0. For those, every stationary point of V is a maximum (tau_m V'' = -I/tau_s
    there), so V rises up to its single maximum s* and then decays: V crosses theta in [0, S]
    iff V(min(s*, S)) >= theta, and the root is bracketed by [0, min(s*, S)].
    """
    bound = np.maximum(V, 0.0) + np.maximum(I, 0.0) * np.minimum(c.kmax, S * c.inv_tm)
    cand = np.flatnonzero(bound >= THETA)
    if cand.size == 0:
        return None
    V, I = V[cand], I[cand]
    above = V >= THETA
    if above.any():  # only from rounding at a (near-)simultaneous crossing: spike now
        return 0.0, int(cand[np.argmax(above)])
    # here V < theta, so bound >= theta implies I > 0: no division by zero below
    inv_tm, inv_tmax, absd, delta, tmts = c.packed[:, cand]
    rate = (I - V) * inv_tm  # dV/ds at s = 0
    u = rate / I
    y = delta * u
    has_max = (u > 0.0) & (y < 1.0)  # else V rises forever (only when V < 0) or only decays
    s_end = np.where(has_max, tmts * u * _psi(np.where(has_max, y, 0.0)), S)
    s_end = np.minimum(s_end, S)
    v_end = V * np.exp(-s_end * inv_tm) + I * (
        s_end * inv_tm * np.exp(-s_end * inv_tmax) * _phi(s_end * absd)
    )
    hit = np.flatnonzero((u > 0.0) & (v_end >= THETA))
    if hit.size == 0:
        return None
    # V' <= V'(0) while V rises (I falls, V grows): a lower bound on each crossing time
    lower = (THETA - V[hit]) / rate[hit]
    best = None
    for k in hit[np.argsort(lower)] if hit.size > 1 else hit:
        if best is not None and (THETA - V[k]) / rate[k] >= best[0]:
            break
        s = _root(float(V[k]), float(I[k]), 0.0, float(s_end[k]), c, int(cand[k]))
        if best is None or s < best[0]:
            best = (s, int(cand[k]))
    return best


# --------------------------------------------------------------------------- network
def _vec(x, n: int, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 0:
        a = np.full(n, float(a))
    if a.shape != (n,):
        raise ValueError(f"{name}: expected shape ({n},), got {a.shape}")
    if not np.all(a > 0):
        raise ValueError(f"{name}: time constants must be > 0")
    return a


def _mat(x, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"{name}: expected a 2-d (pre, post) array, got shape {a.shape}")
    return a


@dataclass
class RefLayer:
    """Hidden LIF layer; weights are (pre, post): w[i, j] is the synapse from i to j."""

    w_in: np.ndarray
    w_rec: np.ndarray | None
    tau_m: np.ndarray
    tau_s: np.ndarray

    def __post_init__(self) -> None:
        self.w_in = _mat(self.w_in, "w_in")
        n = self.w_in.shape[1]
        if self.w_rec is not None:
            self.w_rec = _mat(self.w_rec, "w_rec")
            if self.w_rec.shape != (n, n):
                raise ValueError(f"w_rec: expected ({n}, {n}), got {self.w_rec.shape}")
        self.tau_m = _vec(self.tau_m, n, "tau_m")
        self.tau_s = _vec(self.tau_s, n, "tau_s")

    @property
    def size(self) -> int:
        return self.w_in.shape[1]


@dataclass
class RefNetwork:
    """Input -> hidden LIF layers -> readout (LI, or LIF when ``spiking_readout``)."""

    layers: list[RefLayer]
    w_out: np.ndarray
    tau_m_out: np.ndarray
    tau_s_out: np.ndarray
    spiking_readout: bool = False

    def __post_init__(self) -> None:
        self.layers = list(self.layers)
        self.w_out = _mat(self.w_out, "w_out")
        k = self.w_out.shape[1]
        self.tau_m_out = _vec(self.tau_m_out, k, "tau_m_out")
        self.tau_s_out = _vec(self.tau_s_out, k, "tau_s_out")
        for l in range(1, len(self.layers)):
            if self.layers[l].w_in.shape[0] != self.layers[l - 1].size:
                raise ValueError(f"layers.{l}.w_in: pre size must be {self.layers[l - 1].size}")
        if self.layers and self.w_out.shape[0] != self.layers[-1].size:
            raise ValueError(f"w_out: pre size must be {self.layers[-1].size}")

    @property
    def n_inputs(self) -> int:
        return self.layers[0].w_in.shape[0] if self.layers else self.w_out.shape[0]

    @property
    def n_out(self) -> int:
        return self.w_out.shape[1]

    def parameters(self) -> dict[str, np.ndarray]:
        """Flat name -> the array itself (not a copy), so in-place edits change the net."""
        p: dict[str, np.ndarray] = {}
        for l, layer in enumerate(self.layers):
            p[f"layers.{l}.w_in"] = layer.w_in
            if layer.w_rec is not None:
                p[f"layers.{l}.w_rec"] = layer.w_rec
            p[f"layers.{l}.tau_m"] = layer.tau_m
            p[f"layers.{l}.tau_s"] = layer.tau_s
        p["w_out"] = self.w_out
        p["tau_m_out"] = self.tau_m_out
        p["tau_s_out"] = self.tau_s_out
        return p


# --------------------------------------------------------------------------- simulation
@dataclass
class LayerTrajectory:
    """Spikes and piecewise state of one layer.

    The state right after the event at ``seg_t[m]`` is ``(seg_V[m], seg_I[m])`` and evolves in
    closed form until ``seg_t[m+1]`` (or ``t_end``). ``spike_I`` is I of the spiking neuron at
    its crossing (so I - theta is EventProp's jump denominator).
    """

    spike_t: np.ndarray
    spike_n: np.ndarray
    spike_I: np.ndarray
    seg_t: np.ndarray
    seg_V: np.ndarray
    seg_I: np.ndarray
    seg_g: np.ndarray = field(repr=False)  # input groups applied after segment m's event
    seg_k: np.ndarray = field(repr=False)  # spikes emitted up to and including it
    cells: _Cells = field(repr=False)


@dataclass
class Trajectory:
    """Result of :func:`simulate` for one sample."""

    t_end: float
    hidden: list[LayerTrajectory]
    readout: LayerTrajectory

    @property
    def hidden_spikes(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(h.spike_t, h.spike_n) for h in self.hidden]

    @property
    def hidden_spike_current(self) -> list[np.ndarray]:
        return [h.spike_I for h in self.hidden]

    @property
    def readout_spikes(self) -> tuple[np.ndarray, np.ndarray]:
        return self.readout.spike_t, self.readout.spike_n

    def spike_counts(self) -> tuple[int, ...]:
        return (*(h.spike_t.size for h in self.hidden), self.readout.spike_t.size)


def _run_layer(
    ev_t: np.ndarray,
    ev_src: np.ndarray,
    w_in: np.ndarray,
    w_rec: np.ndarray | None,
    c: _Cells,
    spiking: bool,
    t_end: float,
    resume: tuple[LayerTrajectory, float] | None = None,
) -> LayerTrajectory:
    """Event loop of one layer driven by presynaptic events (times sorted).

    ``resume = (base, t_c)``: the run is known to equal ``base`` before time ``t_c`` (nothing
    that differs has acted yet), so it restarts from base's last state before ``t_c``. The
    arithmetic is then the same as a fresh run, bit for bit; this only saves time in FD.
    """
    n = w_in.shape[1]
    keep = ev_t < t_end
    ev_t, ev_src = ev_t[keep], ev_src[keep]
    if ev_t.size:
        times, starts = np.unique(ev_t, return_index=True)
        kicks = np.add.reduceat(w_in[ev_src], starts, axis=0)
    else:
        times, kicks = np.empty(0), np.empty((0, n))
    V, I = np.zeros(n), np.zeros(n)
    t = 0.0
    seg_t, seg_V, seg_I, seg_g, seg_k = [0.0], [V], [I], [0], [0]
    sp_t: list[float] = []
    sp_n: list[int] = []
    sp_I: list[float] = []
    g0 = 0
    if resume is not None:
        base, t_c = resume
        m = int(np.searchsorted(base.seg_t, t_c, side="left")) - 1
        if m >= 0:
            t, V, I = float(base.seg_t[m]), base.seg_V[m], base.seg_I[m]
            g0, k = int(base.seg_g[m]), int(base.seg_k[m])
            seg_t, seg_V, seg_I = (
                list(base.seg_t[: m + 1]),
                [*base.seg_V[: m + 1]],
                [*base.seg_I[: m + 1]],
            )
            seg_g, seg_k = list(base.seg_g[: m + 1]), list(base.seg_k[: m + 1])
            sp_t, sp_n, sp_I = (
                base.spike_t[:k].tolist(),
                base.spike_n[:k].tolist(),
                base.spike_I[:k].tolist(),
            )
    n_groups = times.size
    for g in range(g0, n_groups + 1):
        t_next = float(times[g]) if g < n_groups else t_end
        while spiking:
            hit = _earliest_crossing(V, I, max(t_next - t, 0.0), c)
            if hit is None or t + hit[0] >= t_end:
                break
            s, j = hit
            if s > 0.0:
                V, I = _advance(V, I, s, c)
                t = min(t + s, t_next)
            if len(sp_t) >= _MAX_SPIKES:
                raise RuntimeError(f"more than {_MAX_SPIKES} spikes in one layer: runaway activity")
            sp_t.append(t)
            sp_n.append(j)
            sp_I.append(float(I[j]))
            V = V.copy()
            V[j] = 0.0
            if w_rec is not None:
                I = I + w_rec[j]
            seg_t.append(t)
            seg_V.append(V)
            seg_I.append(I)
            seg_g.append(g)
            seg_k.append(len(sp_t))
        if g == n_groups:
            break
        s = t_next - t
        if s > 0.0:
            V, I = _advance(V, I, s, c)
        t = t_next
        I = I + kicks[g]
        seg_t.append(t)
        seg_V.append(V)
        seg_I.append(I)
        seg_g.append(g + 1)
        seg_k.append(len(sp_t))
    return LayerTrajectory(
        spike_t=np.asarray(sp_t, dtype=np.float64),
        spike_n=np.asarray(sp_n, dtype=np.int64),
        spike_I=np.asarray(sp_I, dtype=np.float64),
        seg_t=np.asarray(seg_t, dtype=np.float64),
        seg_V=np.stack(seg_V),
        seg_I=np.stack(seg_I),
        seg_g=np.asarray(seg_g, dtype=np.int64),
        seg_k=np.asarray(seg_k, dtype=np.int64),
        cells=c,
    )


def _prepare_input(net: RefNetwork, input_times, input_units) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(input_times, dtype=np.float64).ravel()
    u = np.asarray(input_units).ravel()
    if t.shape != u.shape:
        raise ValueError("input_times and input_units must have the same length")
    if u.size and not np.issubdtype(u.dtype, np.integer):
        if not np.all(u == np.round(u)):
            raise ValueError("input_units must be integer channel indices")
    u = u.astype(np.int64)
    if u.size and (u.min() < 0 or u.max() >= net.n_inputs):
        raise ValueError(f"input_units must lie in [0, {net.n_inputs})")
    if not np.all(np.isfinite(t)) or (t.size and t.min() < 0):
        raise ValueError("input_times must be finite and >= 0")
    order = np.argsort(t, kind="stable")
    return t[order], u[order]


def _first_difference(t_new, n_new, t_old, n_old) -> float:
    """Time of the first event where two sorted event lists differ (inf if identical)."""
    m = min(t_new.size, t_old.size)
    diff = np.flatnonzero((t_new[:m] != t_old[:m]) | (n_new[:m] != n_old[:m]))
    if diff.size:
        return float(min(t_new[diff[0]], t_old[diff[0]]))
    if t_new.size != t_old.size:
        return float(t_new[m] if t_new.size > m else t_old[m])
    return math.inf


def _simulate_from(
    net: RefNetwork,
    start: int,
    ev_t: np.ndarray,
    ev_src: np.ndarray,
    t_end: float,
    base: Trajectory | None = None,
    t_change: float = 0.0,
) -> Trajectory:
    """Simulate layers ``start..`` and the readout, re-using ``base`` where it must agree.

    Layers before ``start`` are taken from ``base``; a parameter of layer ``start`` (or of the
    readout when ``start == len(layers)``) first acts at ``t_change``; later layers restart
    from the first input event that differs from ``base``.
    """
    hidden = [] if base is None else list(base.hidden[:start])
    if start > 0:
        ev_t, ev_src = hidden[start - 1].spike_t, hidden[start - 1].spike_n
    stages = [(ly.w_in, ly.w_rec, ly.tau_m, ly.tau_s, True) for ly in net.layers[start:]]
    stages.append((net.w_out, None, net.tau_m_out, net.tau_s_out, net.spiking_readout))
    results = []
    for offset, (w, w_rec, tm, ts, spiking) in enumerate(stages):
        l = start + offset
        old = None
        if base is not None:
            old = base.hidden[l] if l < len(net.layers) else base.readout
            t_c = t_change
            if offset > 0:
                prev_old = base.hidden[l - 1]
                t_c = _first_difference(ev_t, ev_src, prev_old.spike_t, prev_old.spike_n)
        if old is not None and t_c == math.inf:
            res = old  # same inputs, same parameters: same trajectory
        else:
            resume = None if old is None else (old, t_c)
            res = _run_layer(ev_t, ev_src, w, w_rec, _Cells(tm, ts), spiking, t_end, resume)
        results.append(res)
        ev_t, ev_src = res.spike_t, res.spike_n
    return Trajectory(t_end=float(t_end), hidden=hidden + results[:-1], readout=results[-1])


def simulate(net: RefNetwork, input_times, input_units, t_end: float) -> Trajectory:
    """Exact event-driven simulation of one sample on [0, t_end] (inputs >= t_end ignored)."""
    ev_t, ev_src = _prepare_input(net, input_times, input_units)
    return _simulate_from(net, 0, ev_t, ev_src, float(t_end))


def _state_at(lt: LayerTrajectory, times) -> tuple[np.ndarray, np.ndarray]:
    times = np.asarray(times, dtype=np.float64).ravel()
    m = np.searchsorted(lt.seg_t, times, side="right") - 1
    if np.any(m < 0):
        raise ValueError("times must be >= 0")
    s = (times - lt.seg_t[m])[:, None]
    c = lt.cells
    V0, I0 = lt.seg_V[m], lt.seg_I[m]
    return V0 * np.exp(-s * c.inv_tm) + I0 * _kernel(s, c), I0 * np.exp(-s * c.inv_ts)


def readout_voltage(traj: Trajectory, times) -> np.ndarray:
    """Exact readout V at ``times``, shape (len(times), K); right limit at a readout reset."""
    return _state_at(traj.readout, times)[0]


def readout_state(traj: Trajectory, times) -> tuple[np.ndarray, np.ndarray]:
    """Exact readout (V, I) at ``times``, each (len(times), K)."""
    return _state_at(traj.readout, times)


def hidden_voltage(traj: Trajectory, layer: int, times) -> np.ndarray:
    """Exact V of hidden layer ``layer`` at ``times``, (len(times), n_l); 0 at a spike time."""
    return _state_at(traj.hidden[layer], times)[0]


# --------------------------------------------------------------------------- losses
def _n_steps(t_end: float, dt: float | None) -> int:
    if dt is None or dt <= 0:
        raise ValueError("mode 'sampled'/'step_integral' needs dt > 0")
    n = round(t_end / dt)
    if n < 1 or abs(n * dt - t_end) > 1e-9 * t_end:
        raise ValueError(f"t_end / dt must be an integer (t_end={t_end}, dt={dt})")
    return n


def readout_values(
    traj: Trajectory, loss: str = "sum_weigh_exp", mode: str = "integral", dt: float | None = None
) -> np.ndarray:
    """Logits (K,) of the integral losses, w(t) = 1 ('sum') or exp(-t/T) ('sum_weigh_exp').

    integral:      (1/T) int_0^T w(t) V(t) dt, closed form per inter-event piece;
    sampled:       (1/T) sum_n w(t_n) V(t_n) dt with t_n = (n+1) dt;
    step_integral: (1/T) sum_n w(t_n) int_{n dt}^{(n+1) dt} V dt, t_n = (n+1) dt
                   (step-wise constant weight, as in section 3b of the method notes).
    """
    if loss not in ("sum", "sum_weigh_exp"):
        raise ValueError(f"readout_values: loss must be 'sum' or 'sum_weigh_exp', got {loss!r}")
    T = traj.t_end
    rho = 1.0 / T if loss == "sum_weigh_exp" else 0.0
    ro = traj.readout
    c = ro.cells
    if mode == "integral":
        ends = np.append(ro.seg_t[1:], T)
        S = (ends - ro.seg_t)[:, None]
        J = _integral(ro.seg_V, ro.seg_I, S, rho, c)
        return np.exp(-rho * ro.seg_t) @ J / T
    if mode == "sampled":
        n = _n_steps(T, dt)
        tn = (np.arange(n) + 1.0) * dt
        return np.exp(-rho * tn) @ readout_voltage(traj, tn) * (dt / T)
    if mode == "step_integral":
        n = _n_steps(T, dt)
        grid = np.arange(n + 1) * dt
        grid[-1] = T
        bounds = np.union1d(grid, ro.seg_t[ro.seg_t < T])
        starts, S = bounds[:-1], np.diff(bounds)[:, None]
        V0, I0 = _state_at(ro, starts)
        J = _integral(V0, I0, S, 0.0, c)
        step = np.clip(np.searchsorted(grid, starts, side="right") - 1, 0, n - 1)
        w = np.exp(-rho * (step + 1.0) * dt)
        return w @ J / T
    raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")


def first_spike_times(traj: Trajectory) -> np.ndarray:
    """First readout spike time per class (K,); t_end where a class never spikes."""
    t = np.full(traj.readout.seg_V.shape[1], traj.t_end)
    st, sn = traj.readout_spikes
    for time, k in zip(st[::-1], sn[::-1]):  # reversed: the earliest wins
        t[k] = time
    return t


def sample_loss(
    traj: Trajectory,
    label: int,
    loss: str = "sum_weigh_exp",
    mode: str = "integral",
    dt: float | None = None,
    tau0: float = 0.5,
    tau1: float = 6.4,
    alpha: float = 3e-3,
) -> float:
    """Per-sample loss: cross-entropy of the logits, or the first-spike loss."""
    if loss == "first_spike":
        t = first_spike_times(traj)
        z = -t / tau0
        return float(logsumexp(z) - z[label] + alpha * (math.exp(t[label] / tau1) - 1.0))
    if loss not in _LOSSES:
        raise ValueError(f"loss must be one of {_LOSSES}, got {loss!r}")
    z = readout_values(traj, loss, mode, dt)
    return float(logsumexp(z) - z[label])


def batch_loss(
    net: RefNetwork,
    samples: Sequence[tuple[np.ndarray, np.ndarray]],
    labels: Sequence[int],
    t_end: float,
    loss: str = "sum_weigh_exp",
    mode: str = "integral",
    dt: float | None = None,
    tau0: float = 0.5,
    tau1: float = 6.4,
    alpha: float = 3e-3,
) -> float:
    """Mean over samples of :func:`sample_loss`; samples are (input_times, input_units)."""
    kw = dict(loss=loss, mode=mode, dt=dt, tau0=tau0, tau1=tau1, alpha=alpha)
    _check_loss(net, loss)
    vals = [sample_loss(simulate(net, t, u, t_end), y, **kw) for (t, u), y in zip(samples, labels)]
    return float(np.mean(vals))


def _check_loss(net: RefNetwork, loss: str) -> None:
    if loss not in _LOSSES:
        raise ValueError(f"loss must be one of {_LOSSES}, got {loss!r}")
    if loss == "first_spike" and not net.spiking_readout:
        raise ValueError("loss 'first_spike' needs a spiking readout (spiking_readout=True)")


# --------------------------------------------------------------------------- finite differences
@dataclass
class FDInfo:
    """Where spike counts differed between the +h and -h runs (the FD is then unreliable).

    Each mismatch is (parameter name, index, sample, counts at +h, counts at -h); counts are
    per hidden layer and then the readout.
    """

    mismatches: list[tuple[str, tuple[int, ...], int, tuple[int, ...], tuple[int, ...]]]

    @property
    def ok(self) -> bool:
        return not self.mismatches


def _first_layer_of(name: str, n_layers: int) -> int:
    m = re.fullmatch(r"layers\.(\d+)\.(w_in|w_rec|tau_m|tau_s)", name)
    if m:
        return int(m.group(1))
    if name in ("w_out", "tau_m_out", "tau_s_out"):
        return n_layers
    raise KeyError(f"unknown parameter {name!r}")


def finite_difference_gradients(
    net: RefNetwork,
    samples: Sequence[tuple[np.ndarray, np.ndarray]],
    labels: Sequence[int],
    t_end: float,
    params: Sequence[str] | None = None,
    h: float = 1e-6,
    on_mismatch: str = "warn",
    return_info: bool = False,
    **loss_kwargs,
):
    """Central differences of :func:`batch_loss` for the named parameters.

    Default: all weights (taus only when named). Nothing is re-simulated before the time a
    perturbed parameter first acts (upstream layers, the prefix of a run; bit-identical to a
    full re-simulation, only faster). If hidden/readout spike counts differ between
    the +h and -h runs, a spike appeared or vanished and that entry is not a derivative:
    ``on_mismatch`` = 'warn' | 'raise' | 'ignore'; ``return_info`` also returns an FDInfo.
    """
    if on_mismatch not in ("warn", "raise", "ignore"):
        raise ValueError("on_mismatch must be 'warn', 'raise' or 'ignore'")
    loss = loss_kwargs.get("loss", "sum_weigh_exp")
    _check_loss(net, loss)
    pdict = net.parameters()
    if params is None:
        params = [k for k in pdict if k.endswith(("w_in", "w_rec")) or k == "w_out"]
    t_end = float(t_end)
    inputs = [_prepare_input(net, t, u) for t, u in samples]
    base = [_simulate_from(net, 0, et, es, t_end) for et, es in inputs]
    n_layers = len(net.layers)

    def first_arrival(layer: int, source: int, b: int) -> float:
        """When the parameters of ``source``'s outgoing synapses into ``layer`` first act."""
        if layer == 0:
            st, sn = inputs[b]
        else:
            st, sn = base[b].hidden[layer - 1].spike_t, base[b].hidden[layer - 1].spike_n
        hit = np.flatnonzero(sn == source)
        return float(st[hit[0]]) if hit.size else math.inf

    def evaluate(start: int, t_change: list[float]) -> tuple[float, list[tuple[int, ...]]]:
        total, counts = 0.0, []
        for b, ((et, es), y) in enumerate(zip(inputs, labels)):
            tr = _simulate_from(net, start, et, es, t_end, base[b], t_change[b])
            total += sample_loss(tr, y, **loss_kwargs)
            counts.append(tr.spike_counts()[start:])
        return total / len(inputs), counts

    grads: dict[str, np.ndarray] = {}
    info = FDInfo(mismatches=[])
    for name in params:
        arr = pdict[name]
        start = _first_layer_of(name, n_layers)
        kind = name.rsplit(".", 1)[-1]
        g = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            if kind in ("w_in", "w_out"):
                t_change = [first_arrival(start, idx[0], b) for b in range(len(inputs))]
            elif kind == "w_rec":  # acts at the first spike of the presynaptic neuron
                t_change = [first_arrival(start + 1, idx[0], b) for b in range(len(inputs))]
            else:  # time constants act from the start
                t_change = [0.0] * len(inputs)
            orig = arr[idx]
            arr[idx] = orig + h
            hp = arr[idx] - orig  # the step actually taken, after rounding
            lp, cp = evaluate(start, t_change)
            arr[idx] = orig - h
            hm = orig - arr[idx]
            lm, cm = evaluate(start, t_change)
            arr[idx] = orig
            g[idx] = (lp - lm) / (hp + hm)
            for b, (a1, a2) in enumerate(zip(cp, cm)):
                if a1 != a2:
                    info.mismatches.append((name, idx, b, a1, a2))
        grads[name] = g
    if info.mismatches:
        where = sorted({f"{m[0]}{list(m[1])}" for m in info.mismatches})
        msg = (
            f"finite differences: spike count changed between +h and -h in "
            f"{len(info.mismatches)} (entry, sample) pairs, e.g. {', '.join(where[:5])}; "
            "those entries are not derivatives (try a smaller h)"
        )
        if on_mismatch == "raise":
            raise RuntimeError(msg)
        if on_mismatch == "warn":
            warnings.warn(msg, RuntimeWarning, stacklevel=2)
    return (grads, info) if return_info else grads


# --------------------------------------------------------------------------- helpers
def random_network(
    n_in: int,
    hidden: Sequence[int],
    n_out: int,
    *,
    recurrent: bool = True,
    spiking_readout: bool = False,
    seed: int = 0,
    w_in_mean: float = 0.1,
    w_in_std: float = 0.05,
    w_rec_std: float = 0.05,
    w_out_std: float = 0.3,
    tau_m: float = 20.0,
    tau_s: float = 5.0,
    tau_jitter: float = 0.0,
) -> RefNetwork:
    """A random (pre, post) network for tests; ``tau_jitter`` > 0 gives per-neuron taus."""
    rng = np.random.default_rng(seed)

    def taus(n: int) -> tuple[np.ndarray, np.ndarray]:
        jm = 1.0 + tau_jitter * rng.uniform(-1, 1, n)
        js = 1.0 + tau_jitter * rng.uniform(-1, 1, n)
        return tau_m * jm, tau_s * js

    layers = []
    n_pre = n_in
    for n in hidden:
        tm, ts = taus(n)
        layers.append(
            RefLayer(
                w_in=rng.normal(w_in_mean, w_in_std, (n_pre, n)),
                w_rec=rng.normal(0.0, w_rec_std, (n, n)) if recurrent else None,
                tau_m=tm,
                tau_s=ts,
            )
        )
        n_pre = n
    tm, ts = taus(n_out)
    return RefNetwork(
        layers=layers,
        w_out=rng.normal(0.0, w_out_std, (n_pre, n_out)),
        tau_m_out=tm,
        tau_s_out=ts,
        spiking_readout=spiking_readout,
    )


def random_samples(
    n_samples: int, n_in: int, t_end: float, n_spikes: int, n_classes: int, seed: int = 0
) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[int]]:
    """Uniform random input spike trains (times in [0, t_end)) and labels, for tests."""
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(n_samples):
        t = np.sort(rng.uniform(0.0, t_end, n_spikes))
        samples.append((t, rng.integers(0, n_in, n_spikes)))
    return samples, [int(v) for v in rng.integers(0, n_classes, n_samples)]
