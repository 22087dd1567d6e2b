"""The ``torch`` backend: EventProp in plain PyTorch tensor operations (CPU and CUDA).

This is the readable reference of the engine's semantics; the ``numba`` backend implements
exactly the same steps event by event. One time step ``n`` covers ``[n*dt, (n+1)*dt)``:

forward, for every step n
    1. arrivals at time ``n*dt``: input spikes of step n, and the hidden spikes emitted at the
       end of step n-1, add their weight rows to the synaptic currents ``I`` of their targets;
    2. the readout's output ``v_out[:, n]`` is the average of its voltage over the step,
       ``a_avg*V + c_avg*I`` of the state just formed (exact: the integral of the closed form);
    3. exact free evolution over the step: ``V <- alpha*V + c*I``, ``I <- beta*I``;
    4. threshold: neurons with ``V >= theta`` spike at ``(n+1)*dt``, record
       ``(sample, step n, neuron, I(n*dt) - V((n+1)*dt))`` and reset ``V <- 0``.

backward (the adjoint of the same map, ``p_V = dL/dV``, ``p_I = dL/dI``), for n = T-1 .. 0
    4'. jumps for the spikes recorded at step n (all computed from the adjoints just after the
        spike, i.e. before any jump of this time point is applied)::

            p_V,j += [theta*p_V,j + tau_m,j * sum_m w_jm (p_V,m/tau_m,m - p_I,m/tau_s,m)
                      - tau_m,j * dl/dt_j] / (I_j - V_j)  +  tau_m,j**2 * dR/dN_j

        with ``m`` over the targets of j (own layer, next layer or readout), ``dl/dt_j`` the
        gradient of a loss on the spike time (first readout spike), and ``dR/dN_j`` the
        gradient of a loss on spike counts (the regulariser);
    3'. back through the free evolution of step n: ``p_I <- beta*p_I + c*p_V``,
        ``p_V <- alpha*p_V``; gradients of ``alpha, c, beta`` (hence of the time constants)
        accumulate ``p_V*V``, ``p_V*I``, ``p_I*I`` with the states at the start of the step;
    2'. the loss source of step n: ``p_V += a_avg * dL/dv_out[:, n]``,
        ``p_I += c_avg * dL/dv_out[:, n]`` on the readout -- a source constant over the step,
        integrated exactly with the propagators, which is the adjoint of an integral loss;
    1'. weight gradients: each arrival at ``n*dt`` of a spike from ``i`` into ``j`` adds
        ``p_I,j`` to ``dL/dw[i, j]``.

Why these two choices (docs/exact-timing.md, "Grid timing"): a loss source applied as a delta
at each step end makes a hidden spike delivered at that time point read the readout's timing
sensitivity from one side only, an error of order ``dt/tau_m`` against a true value of order
``tau_s/T``, which flips the sign of the hidden-layer gradient at dt = 1 ms; and the jump
denominator ``I(n*dt) - V((n+1)*dt)`` (the one GeNN stores) stays away from zero where the
current at an interpolated crossing minus theta does not.

In the notation of the method doc, ``lambda_V = p_V/tau_m`` and ``lambda_I = p_I/tau_s``.
"""

from __future__ import annotations

import torch

from eventprop.engine.spec import EngineConfig, LayerGrads, LayerTensors, SpikeRecord, Tape
from eventprop.events import EventBatch

__all__ = ["backward", "forward", "grid_denominator"]


def _step_sorted_inputs(events: EventBatch, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Input events re-sorted by step, with per-step pointers (python list)."""
    step = events.step.to(device=device, dtype=torch.int64)
    order = torch.argsort(step, stable=True)
    b = events.sample.to(device=device, dtype=torch.int64)[order]
    ch = events.channel.to(device=device, dtype=torch.int64)[order]
    bounds = torch.arange(events.n_steps + 1, device=device, dtype=torch.int64)
    ptr = torch.searchsorted(step[order], bounds).tolist()
    return b, ch, ptr


def forward(
    events: EventBatch, layers: list[LayerTensors], cfg: EngineConfig, keep_states: bool
) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor], Tape]:
    """Run the network; ``layers`` are the hidden layers followed by the readout.

    Returns ``(v_out (B, T, K), first_spike_time (B, K), hidden spike counts [(B, n_l)], tape)``.
    ``first_spike_time`` is the readout's first spike time in ms (``T*dt`` when it does not
    spike, or for a non-spiking readout).
    """
    readout = layers[-1]
    device, dtype = readout.w_in.device, readout.w_in.dtype
    B, T, dt = events.batch_size, events.n_steps, cfg.dt
    in_b, in_c, in_ptr = _step_sorted_inputs(events, device)
    n_hidden = len(layers) - 1
    spiking = [True] * n_hidden + [cfg.spiking_readout]

    V = [torch.zeros(B, layer.size, device=device, dtype=dtype) for layer in layers]
    I = [torch.zeros_like(v) for v in V]
    prev = [torch.zeros_like(v) for v in V]  # spikes emitted at the end of the previous step
    counts = [torch.zeros_like(v) for v in V]
    v_out = torch.empty(B, T, readout.size, device=device, dtype=dtype)
    first = torch.full((B, readout.size), T * dt, device=device, dtype=dtype)
    records: list[list[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor]]] = [[] for _ in layers]
    states = [([], []) for _ in layers] if keep_states else None
    n_clamped = 0

    for n in range(T):
        # 1. arrivals at time n*dt
        lo, hi = in_ptr[n], in_ptr[n + 1]
        for li, layer in enumerate(layers):
            if li == 0:
                if hi > lo:
                    I[0].index_add_(0, in_b[lo:hi], layer.w_in[in_c[lo:hi]])
            else:
                I[li] = I[li] + prev[li - 1] @ layer.w_in
            if layer.w_rec is not None:
                I[li] = I[li] + prev[li] @ layer.w_rec
            if states is not None:
                states[li][0].append(V[li].clone())
                states[li][1].append(I[li].clone())
        # 2.-4. output, evolution, threshold
        for li, layer in enumerate(layers):
            v0, i0 = V[li], I[li]
            if li == n_hidden:
                v_out[:, n] = layer.a_avg * v0 + layer.c_avg * i0
            V[li] = layer.alpha * v0 + layer.c * i0
            I[li] = layer.beta * i0
            if not spiking[li]:
                continue
            fired = V[li] >= cfg.theta
            idx = fired.nonzero()
            if idx.numel():
                denom, low = grid_denominator(i0[fired], V[li][fired], cfg.min_denominator)
                n_clamped += low
                records[li].append((n, idx[:, 0], idx[:, 1], denom))
                V[li] = V[li].masked_fill(fired, 0.0)
            spikes = fired.to(dtype)
            counts[li] += spikes
            prev[li] = spikes
            if li == n_hidden:
                first = torch.where(fired & (first >= T * dt), (n + 1) * dt, first)

    offsets = [0]
    for layer, s in zip(layers, spiking):
        if s:
            offsets.append(offsets[-1] + layer.size)
    parts = [_stack_records(rec, device, dtype) for rec, s in zip(records, spiking) if s]
    tape = Tape(
        records=_merge_by_step(parts, offsets),
        offsets=offsets,
        states=(
            [(torch.stack(v), torch.stack(i)) for v, i in states] if states is not None else None
        ),
        n_clamped=n_clamped,
    )
    return v_out, first, counts[:n_hidden], tape


def grid_denominator(
    i_start: torch.Tensor, v_end: torch.Tensor, min_denominator: float
) -> tuple[torch.Tensor, int]:
    """Jump denominator of a crossing detected at a step end: ``I(t_n) - V(t_{n+1})``.

    ``i_start`` is the current at the step start after the step's arrivals, ``v_end`` the
    step-end voltage before reset. Both tend to the continuous model's ``I - theta`` at the
    crossing as dt -> 0; at dt = 1 ms this value (GeNN's) is never near zero on SHD-like input,
    while ``I - theta`` at an interpolated crossing often is and then dominates the gradient.
    Values below ``min_denominator`` (a guard only) are raised to it; returns the
    denominators and how many were raised.
    """
    denom = i_start - v_end
    low = denom < min_denominator
    return torch.where(low, torch.full_like(denom, min_denominator), denom), int(low.sum())


def _stack_records(
    rec: list[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor]],
    device: torch.device,
    dtype: torch.dtype,
) -> SpikeRecord:
    if not rec:
        empty = torch.zeros(0, dtype=torch.int32, device=device)
        return SpikeRecord(empty, empty, empty, torch.zeros(0, dtype=dtype, device=device))
    return SpikeRecord(
        sample=torch.cat([r[1] for r in rec]).to(torch.int32),
        step=torch.cat([torch.full_like(r[1], r[0]) for r in rec]).to(torch.int32),
        neuron=torch.cat([r[2] for r in rec]).to(torch.int32),
        denominator=torch.cat([r[3] for r in rec]),
    )


def _merge_by_step(parts: list[SpikeRecord], offsets: list[int]) -> SpikeRecord:
    """One record of all layers, global neuron indices, sorted by step (stable)."""
    if not parts:
        empty = torch.zeros(0, dtype=torch.int32)
        return SpikeRecord(empty, empty, empty, torch.zeros(0))
    step = torch.cat([p.step for p in parts])
    order = torch.argsort(step.to(torch.int64), stable=True)
    neuron = torch.cat([p.neuron + o for p, o in zip(parts, offsets)])
    return SpikeRecord(
        torch.cat([p.sample for p in parts])[order],
        step[order],
        neuron[order],
        torch.cat([p.denominator for p in parts])[order],
    )


class _StepMasks:
    """Dense per-step views (spike mask, 1/denominator) of a step-sorted spike record."""

    def __init__(self, rec: SpikeRecord, B: int, n: int, T: int, like: torch.Tensor) -> None:
        self.rec, self.B, self.n, self.like = rec, B, n, like
        step = rec.step.to(torch.int64)
        bounds = torch.arange(T + 1, device=step.device, dtype=torch.int64)
        self.ptr = torch.searchsorted(step, bounds).tolist()

    def at(self, step: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        if step < 0:
            return None
        lo, hi = self.ptr[step], self.ptr[step + 1]
        if hi == lo:
            return None
        b = self.rec.sample[lo:hi].long()
        j = self.rec.neuron[lo:hi].long()
        mask = torch.zeros(self.B, self.n, dtype=self.like.dtype, device=self.like.device)
        inv = torch.zeros_like(mask)
        mask[b, j] = 1.0
        inv[b, j] = 1.0 / self.rec.denominator[lo:hi]
        return mask, inv


def backward(
    events: EventBatch,
    layers: list[LayerTensors],
    cfg: EngineConfig,
    tape: Tape,
    grad_v: torch.Tensor | None,
    grad_first: torch.Tensor | None,
    grad_counts: list[torch.Tensor | None],
) -> list[LayerGrads]:
    """Integrate the adjoint system backwards and return the gradients of every layer."""
    readout = layers[-1]
    device, dtype = readout.w_in.device, readout.w_in.dtype
    B, T, theta = events.batch_size, events.n_steps, cfg.theta
    n_hidden = len(layers) - 1
    in_b, in_c, in_ptr = _step_sorted_inputs(events, device)
    spikes = tape.spikes
    masks = [_StepMasks(rec, B, layer.size, T, readout.w_in) for rec, layer in zip(spikes, layers)]

    pV = [torch.zeros(B, layer.size, device=device, dtype=dtype) for layer in layers]
    pI = [torch.zeros_like(p) for p in pV]
    g_w_in = [torch.zeros_like(layer.w_in) for layer in layers]
    g_w_rec = [
        torch.zeros_like(layer.w_rec) if layer.w_rec is not None else None for layer in layers
    ]
    keep = tape.states is not None
    g_alpha = [torch.zeros(layer.size, device=device, dtype=dtype) for layer in layers]
    g_beta = [torch.zeros_like(g) for g in g_alpha]
    g_c = [torch.zeros_like(g) for g in g_alpha]
    g_a_avg = torch.zeros(readout.size, device=device, dtype=dtype)
    g_c_avg = torch.zeros_like(g_a_avg)
    reg = [
        (layer.tau_m**2 * g) if g is not None else None
        for layer, g in zip(layers[:n_hidden], grad_counts)
    ]
    if cfg.spiking_readout and grad_first is not None:
        first_step = torch.round(_first_steps(spikes[-1], B, readout.size, T)).long()
    current = [m.at(T - 1) for m in masks]

    for n in range(T - 1, -1, -1):
        # 4'. jumps at (n+1)*dt, all from the adjoints just after the spikes
        if any(c is not None for c in current):
            q = [p_v / layer.tau_m - p_i / layer.tau_s for p_v, p_i, layer in zip(pV, pI, layers)]
            jumps: list[torch.Tensor | None] = []
            for li, layer in enumerate(layers):
                if li >= len(masks) or current[li] is None:
                    jumps.append(None)
                    continue
                mask, inv = current[li]
                if li == n_hidden:  # spiking readout: no targets, only a spike-time loss
                    drive = theta * pV[li]
                    if grad_first is not None:
                        is_first = (first_step == n).to(dtype) * mask
                        drive = drive - layer.tau_m * grad_first * is_first
                    jumps.append(drive * inv)
                    continue
                target = q[li] @ layers[li].w_rec.T if layer.w_rec is not None else 0.0
                target = target + q[li + 1] @ layers[li + 1].w_in.T
                jump = (theta * pV[li] + layer.tau_m * target) * inv
                if reg[li] is not None:
                    jump = jump + reg[li] * mask
                jumps.append(jump)
            for li, jump in enumerate(jumps):
                if jump is not None:
                    pV[li] = pV[li] + jump
        # 3'. back through the free evolution of step n
        for li, layer in enumerate(layers):
            if keep:
                v0, i0 = tape.states[li][0][n], tape.states[li][1][n]
                g_alpha[li] += (pV[li] * v0).sum(0)
                g_c[li] += (pV[li] * i0).sum(0)
                g_beta[li] += (pI[li] * i0).sum(0)
            pI[li] = layer.beta * pI[li] + layer.c * pV[li]
            pV[li] = layer.alpha * pV[li]
        # 2'. loss source of step n: the output is the step average a_avg*V + c_avg*I
        if grad_v is not None:
            gv = grad_v[:, n]
            pV[n_hidden] = pV[n_hidden] + readout.a_avg * gv
            pI[n_hidden] = pI[n_hidden] + readout.c_avg * gv
            if keep:
                v0, i0 = tape.states[n_hidden][0][n], tape.states[n_hidden][1][n]
                g_a_avg += (gv * v0).sum(0)
                g_c_avg += (gv * i0).sum(0)
        # 1'. arrivals at n*dt: weight gradients sample p_I of the targets
        lo, hi = in_ptr[n], in_ptr[n + 1]
        if hi > lo:
            g_w_in[0].index_add_(0, in_c[lo:hi], pI[0][in_b[lo:hi]])
        previous = [m.at(n - 1) for m in masks]
        for li in range(len(layers)):
            if li > 0 and previous[li - 1] is not None:
                g_w_in[li] += previous[li - 1][0].T @ pI[li]
            if layers[li].w_rec is not None and previous[li] is not None:
                g_w_rec[li] += previous[li][0].T @ pI[li]
        current = previous

    return [
        LayerGrads(
            w_in=g_w_in[li],
            w_rec=g_w_rec[li],
            alpha=g_alpha[li] if keep else None,
            beta=g_beta[li] if keep else None,
            c=g_c[li] if keep else None,
            a_avg=g_a_avg if keep and li == n_hidden else None,
            c_avg=g_c_avg if keep and li == n_hidden else None,
        )
        for li in range(len(layers))
    ]


def _first_steps(rec: SpikeRecord, B: int, K: int, T: int) -> torch.Tensor:
    """Step of the first spike of each readout neuron (``T`` where it never spikes)."""
    out = torch.full((B * K,), float(T), dtype=torch.float64, device=rec.step.device)
    if len(rec):
        key = rec.sample.long() * K + rec.neuron.long()
        out.scatter_reduce_(0, key, rec.step.to(torch.float64), reduce="amin")
    return out.view(B, K)
