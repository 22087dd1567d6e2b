"""Exact spike timing in plain PyTorch (CPU or CUDA): the readable reference of ``timing="exact"``.

The continuous model (``tau_m dV/dt = -V + I``, ``tau_s dI/dt = -I``, spike at ``V = theta``,
reset to 0) is followed exactly; the time grid only organises the work and the loss.

forward, for every step n (interval ``[n dt, (n+1) dt]``), layer by layer
    Every sample walks through the events of the step in time order, all samples in lock-step
    (one event per sample per iteration): the arrivals of the step (input spikes at their real
    times ``(step + offset) * dt``; for deeper layers the spikes of the layer below in this
    step) and the crossings of its own neurons. Between events every neuron follows the closed
    form ``V(s) = a(s) V + c(s) I``, ``I(s) = b(s) I`` (``a = exp(-s/tau_m)``,
    ``b = exp(-s/tau_s)``, ``c = tau_s/(tau_m - tau_s) (a - b)``, written without cancellation).
    The earliest crossing in an interval is exact: a neuron that can reach threshold has
    ``I > 0``, then its only stationary point is a maximum, so it crosses iff ``V`` at
    ``min(peak, interval end)`` reaches theta, and Newton's method from the left (V rises and is
    concave there) converges monotonically to the root. A spike resets ``V`` to 0 at its time
    and is delivered at that same time to the recurrent targets (which are then re-examined: a
    cascade inside a step is followed in time order), to the layer above and to the readout.
    The readout output ``v_out[:, n]`` is the step average ``(1/dt) * integral of V`` over the
    step (closed form), so a loss ``sum_n w(t_n) v_out[:, n] dt / T`` is the continuous model's
    integral loss with step-wise constant weights.

backward, for n = T-1 .. 0, layers in reverse order (readout first), events in reverse order
    The adjoint (``p_V = dL/dV``, ``p_I = dL/dI``) is propagated exactly between events by the
    transposed propagator, with the readout's constant source ``dL/dv_out[:, n] / dt`` over
    step n. An arrival from ``i`` into ``j`` adds ``p_I,j`` at its time to ``dL/dw[i, j]``; a
    spike of ``j`` at ``t_k`` makes ``p_V,j`` jump by::

        [theta p_V,j + tau_m,j sum_m w_jm (p_V,m/tau_m,m - p_I,m/tau_s,m) - tau_m,j dl/dt_k]
            / (I_j(t_k) - theta)  +  tau_m,j**2 dR/dN_j

    with the adjoints of the targets ``m`` just after ``t_k``. The targets in the layer above
    are processed first (a layer is replayed after the one above it within a step), which
    stores for each spike its target sum when the layer above replays the spike's arrival.

Trainable time constants: each interval's propagator depends only on ``(tau_m, tau_s)``; the
gradient sums ``p(t_b)^T dPhi(s)/dtau x(t_a)`` over all intervals (plus the readout integral's
own derivative), the timing sensitivity being carried by the jumps. It is returned as
``dL/dalpha``, ``dL/dbeta`` (``alpha = exp(-dt/tau_m)``: every sub-step propagator is a
function of alpha and beta alone) and ``dL/dc = 0``.

Work is ``O(events x neurons)`` per sample (every event advances the whole layer): this backend
is the reference, the ``numba`` one is the fast path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from eventprop.engine.exact_spec import (
    COUNTERS,
    ExactTape,
    SpikeLimitError,
    sample_spike_limit,
    step_spike_limit,
)
from eventprop.engine.spec import EngineConfig, LayerGrads, LayerTensors, SpikeRecord
from eventprop.events import EventBatch

__all__ = ["backward", "forward"]

_NEWTON_ITERATIONS = 200
#: relative margin below theta of the bound that decides 'cascade' (as in the numba kernels)
_BOUND_MARGIN = 1e-9


# --------------------------------------------------------------------------- closed forms
def _phi(x: torch.Tensor) -> torch.Tensor:
    """(1 - exp(-x))/x, 1 at 0 (x >= 0)."""
    small = x < 1e-3
    safe = torch.where(small, torch.ones_like(x), x)
    series = 1.0 - x / 2.0 + x * x / 6.0 - x * x * x / 24.0
    return torch.where(small, series, -torch.expm1(-safe) / safe)


def _psi(y: torch.Tensor) -> torch.Tensor:
    """-log(1 - y)/y, 1 at 0 (y < 1)."""
    small = y.abs() < 1e-4
    safe = torch.where(small, torch.full_like(y, 0.5), y)
    series = 1.0 + y / 2.0 + y * y / 3.0
    return torch.where(small, series, -torch.log1p(-safe) / safe)


def _exprel(u: torch.Tensor) -> torch.Tensor:
    """(exp(u) - 1)/u and its derivative ((u - 1) exp(u) + 1)/u**2, series near 0."""
    small = u.abs() < 0.05
    safe = torch.where(small, torch.ones_like(u), u)
    e = torch.exp(safe)
    val = torch.where(small, _series(u, 0), torch.expm1(safe) / safe)
    der = torch.where(small, _series(u, 1), ((safe - 1.0) * e + 1.0) / (safe * safe))
    return val, der


def _series(u: torch.Tensor, deriv: int) -> torch.Tensor:
    # exprel(u) = sum_k u^k/(k+1)!, exprel'(u) = sum_k k u^(k-1)/(k+1)!
    out = torch.zeros_like(u)
    for k in range(10, -1, -1):
        coef = (k + 1 if deriv else 1) / math.factorial(k + 1 + deriv)
        out = out * u + coef
    return out


@dataclass
class _Taus:
    """Per-neuron constants of one layer, broadcast against (B, N)."""

    tm: torch.Tensor
    ts: torch.Tensor

    def __post_init__(self) -> None:
        self.inv_tm = 1.0 / self.tm
        self.inv_ts = 1.0 / self.ts
        self.inv_tmax = 1.0 / torch.maximum(self.tm, self.ts)
        self.absd = (self.inv_ts - self.inv_tm).abs()
        # time of the peak of c(s) (the voltage after a unit current kick)
        near = (self.tm / self.ts - 1.0).abs() < 1e-6
        ratio = torch.where(near, torch.full_like(self.tm, 2.0), self.tm / self.ts)
        diff = torch.where(near, torch.ones_like(self.tm), self.tm - self.ts)
        self.t_peak = torch.where(near, self.tm, self.tm * self.ts * torch.log(ratio) / diff)


def _abc(s: torch.Tensor, k: _Taus) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Propagators over ``s``: V <- a V + c I, I <- b I (c without cancellation)."""
    a = torch.exp(-s * k.inv_tm)
    b = torch.exp(-s * k.inv_ts)
    c = s * k.inv_tm * torch.exp(-s * k.inv_tmax) * _phi(s * k.absd)
    return a, b, c


def _integral_coefs(
    s: torch.Tensor, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, k: _Taus
) -> tuple[torch.Tensor, torch.Tensor]:
    """integral_0^s V = kv * V0 + ki * I0 (from tau_m V' = I - V)."""
    kv = -k.tm * torch.expm1(-s * k.inv_tm)
    ki = -k.ts * torch.expm1(-s * k.inv_ts) - k.tm * c
    return kv, ki


def _tau_derivatives(s: torch.Tensor, k: _Taus):
    """Partial derivatives of a, b, c and of the integral coefficients w.r.t. tau_m, tau_s."""
    a, b, c = _abc(s, k)
    da_m = a * s * k.inv_tm**2
    db_s = b * s * k.inv_ts**2
    u = s * (k.inv_tm - k.inv_ts)
    g = s * k.inv_tm * a
    e, de = _exprel(u)
    dc_m = s * k.inv_tm**2 * a * (s * k.inv_tm - 1.0) * e - g * de * s * k.inv_tm**2
    dc_s = g * de * s * k.inv_ts**2
    # integral: kv = tm (1 - a), ki = ts (1 - b) - tm c
    dkv_m = -torch.expm1(-s * k.inv_tm) - k.tm * da_m
    dki_m = -c - k.tm * dc_m
    dki_s = -torch.expm1(-s * k.inv_ts) - k.ts * db_s - k.tm * dc_s
    return a, b, c, da_m, db_s, dc_m, dc_s, dkv_m, dki_m, dki_s


def _voltage(V0, I0, s, k: _Taus):
    a, b, c = _abc(s, k)
    return a * V0 + c * I0, b * I0


# --------------------------------------------------------------------------- crossings
def _earliest_crossing(
    V: torch.Tensor, I: torch.Tensor, S: torch.Tensor, k: _Taus, theta: float
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Per sample, the earliest ``(s, neuron)`` with ``V`` reaching theta in ``[0, S]``.

    ``s`` is ``inf`` where no neuron crosses. Returns also the number of root searches that did
    not converge.
    """
    B, N = V.shape
    inf = torch.full((B,), math.inf, dtype=V.dtype, device=V.device)
    above = V >= theta
    pos = I > 0
    if not bool((pos | above).any()):
        return inf, torch.zeros(B, dtype=torch.long, device=V.device), 0
    safe_I = torch.where(pos, I, torch.ones_like(I))
    tm = k.tm.expand(B, N)
    ts = k.ts.expand(B, N)
    u = (I - V) / (tm * safe_I)
    y = (tm - ts) * u
    has_max = pos & (u > 0) & (y < 1.0)
    s_peak = tm * ts * u * _psi(torch.where(has_max, y, torch.zeros_like(y)))
    s_end = torch.where(has_max, torch.minimum(s_peak, S[:, None]), S[:, None].expand(B, N))
    v_end, _ = _voltage(V, I, s_end, k)
    hit = (pos & (u > 0) & (v_end >= theta)) | above
    if not bool(hit.any()):
        return inf, torch.zeros(B, dtype=torch.long, device=V.device), 0
    bi, ji = hit.nonzero(as_tuple=True)
    v0, i0, hi = V[bi, ji], I[bi, ji], s_end[bi, ji]
    sub = _Taus(k.tm[ji], k.ts[ji])
    x = torch.zeros_like(v0)
    done = above[bi, ji].clone()
    tol = 4.0 * torch.finfo(x.dtype).eps
    unresolved = 0
    for _ in range(_NEWTON_ITERATIONS):
        a, b, c = _abc(x, sub)
        v, i = a * v0 + c * i0, b * i0
        f = v - theta
        noise = tol * ((a * v0).abs() + (c * i0).abs() + theta)  # rounding level of f
        fp = (i - v) * sub.inv_tm
        done = done | (f >= 0)  # reached (from rounding: at most an ulp beyond the root)
        rising = fp > 0
        step = torch.where(rising, -f / torch.where(rising, fp, torch.ones_like(fp)), hi - x)
        xn = torch.minimum(torch.maximum(x + step, x), hi)
        xn = torch.where(done, x, xn)
        done = done | ((xn - x) <= tol * xn.abs()) | (-f <= noise)
        x = xn
        if bool(done.all()):
            break
    else:
        unresolved = int((~done).sum())
    full = torch.full((B, N), math.inf, dtype=V.dtype, device=V.device)
    full[bi, ji] = x
    s, j = full.min(dim=1)
    return s, j, unresolved


# --------------------------------------------------------------------------- forward
@dataclass
class _Iteration:
    """One lock-step iteration of a (step, layer): one event per sample."""

    kind: torch.Tensor  # (B,) 0 none, 1 arrival, 2 spike
    idx: torch.Tensor  # (B,) arriving row (input channel / presynaptic neuron) or spiking neuron
    link: torch.Tensor  # (B,) record id (layer-local) of the spike, or of the arriving spike
    t: torch.Tensor  # (B,) event time inside the step
    state: tuple[torch.Tensor, torch.Tensor] | None  # (V, I) just after the event (taus only)


@dataclass
class _StepLayer:
    iterations: list[_Iteration]
    start: tuple[torch.Tensor, torch.Tensor] | None  # (V, I) at the step start (taus only)


def _padded(b: torch.Tensor, B: int, *cols: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Group rows by sample (stable, order kept): counts (B,) and padded (B, E) columns."""
    device = b.device
    if b.numel() == 0:
        counts = torch.zeros(B, dtype=torch.long, device=device)
        return (counts, *[c.new_zeros((B, 1)) for c in cols])
    order = torch.argsort(b, stable=True)
    b = b[order]
    counts = torch.bincount(b, minlength=B)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(b.numel(), device=device) - starts[b]
    E = int(counts.max())
    out = []
    for c in cols:
        p = c.new_zeros((B, E))
        p[b, rank] = c[order]
        out.append(p)
    return (counts, *out)


def forward(
    events: EventBatch, layers: list[LayerTensors], cfg: EngineConfig, keep_states: bool
) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor], ExactTape]:
    """Run the network with exact spike times; same outputs as the grid backends.

    ``v_out[:, n]`` is the readout voltage averaged over step n; ``first_spike_time`` the exact
    time of the first readout spike (``T*dt`` where none).
    """
    readout = layers[-1]
    device, dtype = readout.w_in.device, readout.w_in.dtype
    B, T, dt, theta = events.batch_size, events.n_steps, cfg.dt, cfg.theta
    L = len(layers)
    spiking = [True] * (L - 1) + [cfg.spiking_readout]
    taus = [_Taus(layer.tau_m.detach(), layer.tau_s.detach()) for layer in layers]
    w_in = [layer.w_in.detach() for layer in layers]
    w_rec = [layer.w_rec.detach() if layer.w_rec is not None else None for layer in layers]

    ptr = events.step_pointers().to(device)
    start = ptr[:-1].view(B, T)
    n_in = (ptr[1:] - ptr[:-1]).view(B, T)
    in_off = (events.offset.to(device=device, dtype=torch.float64) * dt).to(dtype)
    in_ch = events.channel.to(device=device, dtype=torch.long)
    max_in = n_in.max(dim=0).values.tolist()

    V = [torch.zeros(B, layer.size, device=device, dtype=dtype) for layer in layers]
    I = [torch.zeros_like(v) for v in V]
    counts = [torch.zeros_like(v) for v in V]
    v_out = torch.empty(B, T, readout.size, device=device, dtype=dtype)
    first = torch.full((B, readout.size), T * dt, device=device, dtype=dtype)
    # per spiking layer: record columns (lists of tensors)
    rec = [{"b": [], "n": [], "j": [], "den": [], "t": [], "first": []} for _ in layers]
    n_rec = [0] * L
    steps: list[list[_StepLayer]] = []
    states = [([], []) for _ in layers] if keep_states else None
    counters = dict.fromkeys(COUNTERS, 0)
    n_clamped = 0
    bidx = torch.arange(B, device=device)
    # spike bounds (see exact_spec): per sample over all layers, per layer and step
    n_spiking = sum(layer.size for layer, s in zip(layers, spiking) if s)
    max_spikes = sample_spike_limit(n_spiking, T)
    fired = torch.zeros(B, dtype=torch.long, device=device)

    for n in range(T):
        below: tuple[torch.Tensor, ...] | None = None  # spikes of the layer below in this step
        per_layer: list[_StepLayer] = []
        for li in range(L):
            k = taus[li]
            Vl, Il = V[li], I[li]
            if states is not None:
                states[li][0].append(Vl.clone())
                states[li][1].append(Il.clone())
            # arrivals of this step, padded per sample
            if li == 0:
                E = max(int(max_in[n]), 1)
                cnt = n_in[:, n]
                idx = start[:, n, None] + torch.arange(E, device=device)[None]
                idx = torch.minimum(idx, torch.full_like(idx, max(len(in_ch) - 1, 0)))
                arr_t = in_off[idx] if len(in_ch) else torch.zeros(B, E, dtype=dtype, device=device)
                arr_row = (
                    in_ch[idx] if len(in_ch) else torch.zeros(B, E, dtype=torch.long, device=device)
                )
                arr_link = torch.full((B, E), -1, dtype=torch.long, device=device)
            else:
                cnt, arr_t, arr_row, arr_link = below
            E = arr_t.shape[1]
            W, R = w_in[li], w_rec[li]
            tb = torch.zeros(B, device=device, dtype=dtype)
            p = torch.zeros(B, dtype=torch.long, device=device)
            J = torch.zeros_like(Vl) if li == L - 1 else None
            reset_mass = torch.zeros_like(Vl)  # theta * a(t - t_k) of this step's resets
            # can the neuron reach theta in this step without same-step hidden spikes? Bound:
            # free evolution V0 + (1 - alpha)(max(I0, 0) - V0)+, plus for each input kick w
            # at most w c(min(t - t_e, t_peak)) (the numba kernels' candidate bound)
            alpha_l = torch.exp(-dt * k.inv_tm)
            bound = Vl + (1.0 - alpha_l) * (Il.clamp_min(0.0) - Vl).clamp_min(0.0)
            if li == 0 and E > 0:
                valid = torch.arange(E, device=device)[None] < cnt[:, None]
                s_e = torch.minimum((dt - arr_t)[..., None], k.t_peak)
                kick = _abc(s_e, k)[2] * W.clamp_min(0.0)[arr_row] * valid[..., None].to(dtype)
                bound = bound + kick.sum(1)
            cascade = bound < theta * (1.0 - _BOUND_MARGIN)
            spiked = torch.zeros_like(Vl, dtype=torch.bool)
            fired_step = torch.zeros(B, dtype=torch.long, device=device)
            step_limit = step_spike_limit(Vl.shape[1])
            out_b, out_t, out_j, out_r = [], [], [], []
            iterations: list[_Iteration] = []
            while True:
                has_arr = p < cnt
                pc = p.clamp(max=E - 1)[:, None]
                t_arr = torch.where(
                    has_arr, arr_t.gather(1, pc).squeeze(1), torch.full_like(tb, dt)
                )
                S = (t_arr - tb).clamp_min(0.0)
                spk = torch.zeros(B, dtype=torch.bool, device=device)
                if spiking[li]:
                    s_c, j_c, unres = _earliest_crossing(Vl, Il, S, k, theta)
                    counters["unresolved"] += unres
                    spk = s_c <= S
                arr = has_arr & ~spk
                s_adv = torch.where(spk, s_c, S) if spiking[li] else S
                # advance every neuron of the layer to the event
                a, b_, c = _abc(s_adv[:, None], k)
                if J is not None:
                    kv, ki = _integral_coefs(s_adv[:, None], a, b_, c, k)
                    J = J + kv * Vl + ki * Il
                Vl, Il = a * Vl + c * Il, b_ * Il
                reset_mass = a * reset_mass
                tb = tb + s_adv
                if not bool(spk.any() | arr.any()):
                    break
                kind = torch.zeros(B, dtype=torch.long, device=device)
                ev_idx = torch.zeros(B, dtype=torch.long, device=device)
                link = torch.full((B,), -1, dtype=torch.long, device=device)
                if bool(spk.any()):
                    bs = bidx[spk]
                    js = j_c[spk]
                    den = Il[bs, js] - theta
                    low = den < cfg.min_denominator
                    n_clamped += int(low.sum())
                    den = torch.where(low, torch.full_like(den, cfg.min_denominator), den)
                    tk = tb[bs]
                    counters["multi_crossings"] += int(spiked[bs, js].sum())
                    counters["cascades"] += int(cascade[bs, js].sum())
                    spiked[bs, js] = True
                    Vl = Vl.index_put((bs, js), torch.zeros_like(den))
                    reset_mass = reset_mass.index_put((bs, js), torch.full_like(den, theta), True)
                    if R is not None:
                        Il = Il.index_add(0, bs, R[js])
                    ids = torch.arange(n_rec[li], n_rec[li] + bs.numel(), device=device)
                    n_rec[li] += bs.numel()
                    counts[li] = counts[li].index_put((bs, js), torch.ones_like(den), True)
                    is_first = torch.zeros_like(bs, dtype=torch.bool)
                    if li == L - 1:
                        is_first = first[bs, js] >= T * dt
                        first[bs[is_first], js[is_first]] = n * dt + tk[is_first]
                    for key, val in (("b", bs), ("j", js), ("den", den), ("first", is_first)):
                        rec[li][key].append(val)
                    rec[li]["n"].append(torch.full_like(bs, n))
                    rec[li]["t"].append(n * dt + tk.to(torch.float64))
                    kind[spk] = 2
                    ev_idx[spk] = js
                    link[spk] = ids
                    out_b.append(bs)
                    out_t.append(tk)
                    out_j.append(js)
                    out_r.append(ids)
                    fired = fired + spk.long()
                    fired_step = fired_step + spk.long()
                    _check_spike_bounds(
                        fired, fired_step, max_spikes, step_limit, li, L, n, T, n_spiking
                    )
                if bool(arr.any()):
                    ba = bidx[arr]
                    rows = arr_row[ba, p[ba]]
                    Il = Il.index_add(0, ba, W[rows])
                    kind[arr] = 1
                    ev_idx[arr] = rows
                    link[arr] = arr_link[ba, p[ba]]
                    p = p + arr.long()
                iterations.append(
                    _Iteration(kind, ev_idx, link, tb.clone(), (Vl, Il) if keep_states else None)
                )
            # end of step: the neuron's voltage without this step's resets
            transient = spiked & (Vl + reset_mass < theta)
            counters["transient_crossings"] += int(transient.sum())
            V[li], I[li] = Vl, Il
            if J is not None:
                v_out[:, n] = J / dt
            per_layer.append(
                _StepLayer(
                    iterations,
                    (states[li][0][-1], states[li][1][-1]) if states is not None else None,
                )
            )
            if out_b:
                below = _padded(
                    torch.cat(out_b), B, torch.cat(out_t), torch.cat(out_j), torch.cat(out_r)
                )
            else:
                z = torch.zeros((B, 1), device=device)
                below = (
                    torch.zeros(B, dtype=torch.long, device=device),
                    z.to(dtype),
                    z.long(),
                    z.long(),
                )
        steps.append(per_layer)

    counters["missed_by_grid"] = counters["multi_crossings"] + counters["transient_crossings"]
    tape = _make_tape(rec, spiking, layers, device, dtype, states, n_clamped, counters)
    tape._exact_torch = (steps, rec)  # type: ignore[attr-defined]
    return v_out, first, counts[: L - 1], tape


def _check_spike_bounds(
    fired: torch.Tensor,
    fired_step: torch.Tensor,
    max_spikes: int,
    step_limit: int,
    layer: int,
    n_layers: int,
    step: int,
    n_steps: int,
    n_spiking: int,
) -> None:
    """Raise :class:`SpikeLimitError` for the first sample past a bound (as the numba kernels).

    Checked after every commit of spikes: a runaway step would otherwise loop for minutes.
    """
    per_step = fired_step > step_limit
    over = (fired > max_spikes) | per_step
    if not bool(over.any()):
        return
    b = int(torch.nonzero(over)[0, 0])
    is_step = bool(per_step[b])
    raise SpikeLimitError(
        layer=layer,
        n_layers=n_layers,
        sample=b,
        step=step,
        n_steps=n_steps,
        limit=step_limit if is_step else max_spikes,
        per_step=is_step,
        layer_size=0 if not is_step else (step_limit - 1024) // 64,
        n_spiking=n_spiking,
    )


def _make_tape(rec, spiking, layers, device, dtype, states, n_clamped, counters) -> ExactTape:
    offsets = [0]
    cols = {"b": [], "n": [], "j": [], "den": [], "t": []}
    for li, (r, s) in enumerate(zip(rec, spiking)):
        if not s:
            continue
        for key in cols:
            if r[key]:
                val = torch.cat(r[key])
                if key == "j":
                    val = val + offsets[-1]
                cols[key].append(val)
        offsets.append(offsets[-1] + layers[li].size)
    if cols["b"]:
        b, n, j = (torch.cat(cols[k]).to(torch.int32) for k in ("b", "n", "j"))
        den, t = torch.cat(cols["den"]), torch.cat(cols["t"])
        order = torch.argsort(n.long(), stable=True)  # by step; layers in order within a step
        b, n, j, den, t = b[order], n[order], j[order], den[order], t[order]
    else:
        b = n = j = torch.zeros(0, dtype=torch.int32, device=device)
        den = torch.zeros(0, dtype=dtype, device=device)
        t = torch.zeros(0, dtype=torch.float64, device=device)
    return ExactTape(
        records=SpikeRecord(b, n, j, den),
        offsets=offsets,
        states=(
            [(torch.stack(v), torch.stack(i)) for v, i in states] if states is not None else None
        ),
        n_clamped=n_clamped,
        times=t,
        counters=counters,
    )


# --------------------------------------------------------------------------- backward
def backward(
    events: EventBatch,
    layers: list[LayerTensors],
    cfg: EngineConfig,
    tape: ExactTape,
    grad_v: torch.Tensor | None,
    grad_first: torch.Tensor | None,
    grad_counts: list[torch.Tensor | None],
) -> list[LayerGrads]:
    """Integrate the adjoint system backwards through the recorded events of every step."""
    steps, rec = tape._exact_torch  # type: ignore[attr-defined]
    readout = layers[-1]
    device, dtype = readout.w_in.device, readout.w_in.dtype
    B, T, dt, theta = events.batch_size, events.n_steps, cfg.dt, cfg.theta
    L = len(layers)
    taus = [_Taus(layer.tau_m.detach(), layer.tau_s.detach()) for layer in layers]
    w_in = [layer.w_in.detach() for layer in layers]
    w_rec = [layer.w_rec.detach() if layer.w_rec is not None else None for layer in layers]
    keep = tape.states is not None

    # per layer, per record: denominator, neuron, first-spike flag; target sums from above
    dens = [torch.cat(r["den"]) if r["den"] else None for r in rec]
    firsts = [torch.cat(r["first"]) if r["first"] else None for r in rec]
    tsum = [
        torch.zeros(d.numel(), device=device, dtype=dtype) if d is not None else None for d in dens
    ]
    reg = [
        layer.tau_m.detach() ** 2 * g if g is not None else None
        for layer, g in zip(layers[: L - 1], grad_counts)
    ]
    has_gf = grad_first is not None and cfg.spiking_readout

    pV = [torch.zeros(B, layer.size, device=device, dtype=dtype) for layer in layers]
    pI = [torch.zeros_like(p) for p in pV]
    g_w_in = [torch.zeros_like(w) for w in w_in]
    g_w_rec = [torch.zeros_like(r) if r is not None else None for r in w_rec]
    g_tm = [torch.zeros(layer.size, device=device, dtype=dtype) for layer in layers]
    g_ts = [torch.zeros_like(g) for g in g_tm]

    for n in range(T - 1, -1, -1):
        for li in range(L - 1, -1, -1):
            k = taus[li]
            sl: _StepLayer = steps[n][li]
            src = None
            if li == L - 1 and grad_v is not None:
                src = grad_v[:, n] / dt
            t_cur = torch.full((B,), dt, device=device, dtype=dtype)
            for it in reversed(sl.iterations):
                s = (t_cur - it.t)[:, None]
                if keep:
                    _tau_grads(g_tm[li], g_ts[li], pV[li], pI[li], it.state, s, k, src)
                pV[li], pI[li] = _propagate(pV[li], pI[li], s, k, src)
                _apply_event(it, li, L, pV, pI, w_in, w_rec, g_w_in, g_w_rec, k, tsum, dens,
                             firsts, reg, grad_first if has_gf else None, theta)  # fmt: skip
                t_cur = it.t
            s = t_cur[:, None]
            if keep:
                _tau_grads(g_tm[li], g_ts[li], pV[li], pI[li], sl.start, s, k, src)
            pV[li], pI[li] = _propagate(pV[li], pI[li], s, k, src)

    out = []
    for li, layer in enumerate(layers):
        ga = gb = gc = None
        if keep:
            tm, ts = taus[li].tm, taus[li].ts
            ga = g_tm[li] * tm * tm / (dt * layer.alpha.detach())
            gb = g_ts[li] * ts * ts / (dt * layer.beta.detach())
            gc = torch.zeros_like(ga)
        out.append(LayerGrads(w_in=g_w_in[li], w_rec=g_w_rec[li], alpha=ga, beta=gb, c=gc))
    return out


def _propagate(pV, pI, s, k: _Taus, src):
    """Adjoint from the end of an interval of length ``s`` to its start (source ``src``)."""
    a, b, c = _abc(s, k)
    new_pI = b * pI + c * pV
    new_pV = a * pV
    if src is not None:
        kv, ki = _integral_coefs(s, a, b, c, k)
        new_pV = new_pV + src * kv
        new_pI = new_pI + src * ki
    return new_pV, new_pI


def _tau_grads(g_tm, g_ts, pV, pI, state, s, k: _Taus, src) -> None:
    """Add p(t_b)^T dPhi(s)/dtau x(t_a) (and the readout integral's term) over one interval."""
    V0, I0 = state
    _, _, _, da_m, db_s, dc_m, dc_s, dkv_m, dki_m, dki_s = _tau_derivatives(s, k)
    gm = pV * (da_m * V0 + dc_m * I0)
    gs = pV * dc_s * I0 + pI * db_s * I0
    if src is not None:
        gm = gm + src * (dkv_m * V0 + dki_m * I0)
        gs = gs + src * dki_s * I0
    g_tm += gm.sum(0)
    g_ts += gs.sum(0)


def _apply_event(it, li, L, pV, pI, w_in, w_rec, g_w_in, g_w_rec, k, tsum, dens, firsts, reg,
                 grad_first, theta) -> None:  # fmt: skip
    arr = it.kind == 1
    if bool(arr.any()):
        ba = arr.nonzero(as_tuple=True)[0]
        rows = it.idx[ba]
        g_w_in[li].index_add_(0, rows, pI[li][ba])
        if li > 0:  # the arriving spike's target sum, for its jump in the layer below
            q = pV[li][ba] * k.inv_tm - pI[li][ba] * k.inv_ts
            tsum[li - 1][it.link[ba]] = (w_in[li][rows] * q).sum(1)
    spk = it.kind == 2
    if bool(spk.any()):
        bs = spk.nonzero(as_tuple=True)[0]
        js = it.idx[bs]
        r = it.link[bs]
        target = torch.zeros(bs.numel(), device=pV[li].device, dtype=pV[li].dtype)
        if w_rec[li] is not None:
            q = pV[li][bs] * k.inv_tm - pI[li][bs] * k.inv_ts
            target = target + (w_rec[li][js] * q).sum(1)
            g_w_rec[li].index_add_(0, js, pI[li][bs])
        if li < L - 1:
            target = target + tsum[li][r]
        tm_j = k.tm[js]
        drive = theta * pV[li][bs, js] + tm_j * target
        if li == L - 1 and grad_first is not None:
            drive = drive - tm_j * grad_first[bs, js] * firsts[li][r].to(drive.dtype)
        jump = drive / dens[li][r]
        if li < L - 1 and reg[li] is not None:
            jump = jump + reg[li][bs, js]
        pV[li] = pV[li].index_put((bs, js), jump, accumulate=True)
