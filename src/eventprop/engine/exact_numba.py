"""The ``numba`` backend of exact spike timing: event-driven CPU kernels, parallel over the batch.

Same semantics and outputs as :mod:`eventprop.engine.exact_torch`; the kernels are in
:mod:`eventprop.engine.exact_kernels`. Spike records (with their exact times) go into
per-sample buffers whose capacity is learnt from earlier calls; a sample that overflows makes
the forward pass run again with a larger buffer, so no spike is ever dropped. A sample that
fires more than the spike bound of :mod:`eventprop.engine.exact_spec` stops the pass with
:class:`~eventprop.engine.exact_spec.SpikeLimitError` (runaway excitation).

The backward pass has two kernels: ``exact_backward_fast`` (superposition inside a step, work
close to the grid kernels) for fixed, layer-wise homogeneous time constants, and
``exact_backward_dense`` (event by event over whole layers) for trainable or per-neuron time
constants.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from numba.typed import List as TypedList

from eventprop.engine import exact_kernels as kernels
from eventprop.engine.exact_spec import (
    COUNTERS,
    ExactTape,
    SpikeLimitError,
    sample_spike_limit,
    step_spike_limit,
)
from eventprop.engine.numba_backend import (
    count_sources,
    forward_outputs,
    layer_views,
    run_with_growing_buffers,
)
from eventprop.engine.spec import EngineConfig, LayerGrads, LayerTensors, SpikeRecord
from eventprop.events import EventBatch

__all__ = ["backward", "forward"]

#: learnt per-sample record capacity, keyed by (total neurons, steps) (see run_with_growing_buffers)
_CAPACITY: dict[tuple[int, int], int] = {}
#: relative separation of 1/tau_m and 1/tau_s (times dt) above which c = kap (a - b) is used
_SEPARATED = 0.1
#: force the dense backward kernel (tests compare the two)
FORCE_DENSE = False


def _np(t: torch.Tensor) -> np.ndarray:
    if t.device.type != "cpu":
        raise ValueError(
            f"backend 'numba' runs on the CPU, but a tensor is on {t.device}; "
            "use backend='torch' for GPU tensors"
        )
    return np.ascontiguousarray(t.detach().numpy())


class _Net:
    """The network as the kernels see it (flat float64 neuron constants, typed weight lists)."""

    def __init__(self, layers: list[LayerTensors], dt: float) -> None:
        self.dtype = _np(layers[-1].w_in).dtype
        self.offsets = np.zeros(len(layers) + 1, dtype=np.int64)
        for li, layer in enumerate(layers):
            self.offsets[li + 1] = self.offsets[li] + layer.size
        # the kernels compute in float64 whatever the network's dtype (a float32 network gets
        # the float64 spikes, its outputs are cast at the end). Weights stay in their own dtype:
        # widening a float32 to float64 is exact, so reading float32 rows inside the kernels
        # gives the same numbers while moving half the bytes through the row loops.
        wt = self.dtype
        self.w_in = TypedList([_np(layer.w_in) for layer in layers])
        self.w_rec = TypedList(
            [
                _np(layer.w_rec) if layer.w_rec is not None else np.zeros((0, 0), wt)
                for layer in layers
            ]
        )
        tm = np.concatenate([_np(layer.tau_m).astype(np.float64) for layer in layers])
        ts = np.concatenate([_np(layer.tau_s).astype(np.float64) for layer in layers])
        self.tau_m, self.tau_s = tm, ts
        inv = np.abs(1.0 / ts - 1.0 / tm)
        self.sep = inv * dt > _SEPARATED
        self.kap = np.where(self.sep, ts / np.where(self.sep, tm - ts, 1.0), 0.0)
        self.homog = np.array(
            [
                bool(np.all(tm[lo:hi] == tm[lo]) and np.all(ts[lo:hi] == ts[lo]))
                for lo, hi in zip(self.offsets[:-1], self.offsets[1:])
            ]
        )
        a = np.exp(-dt / tm)
        b = np.exp(-dt / ts)
        x = dt * inv
        phi = np.where(x < 1e-3, 1.0 - x / 2.0 + x * x / 6.0, -np.expm1(-x) / np.maximum(x, 1e-300))
        c_near = dt / tm * np.where(tm >= ts, a, b) * phi
        self.alpha, self.beta = a, b
        self.c = np.where(self.sep, self.kap * (a - b), c_near)
        self.kv = tm * (1.0 - a)
        self.ki = ts * (1.0 - b) - tm * self.c
        # peak of the voltage response to a unit kick: c(s) rises until t_peak (bounds)
        ratio = tm / ts
        near = np.abs(ratio - 1.0) < 1e-6
        self.tpk = np.where(
            near, tm, tm * ts * np.log(np.where(near, 2.0, ratio)) / np.where(near, 1.0, tm - ts)
        )
        ap, bp = np.exp(-self.tpk / tm), np.exp(-self.tpk / ts)
        xp = self.tpk * inv
        phip = np.where(
            xp < 1e-3, 1.0 - xp / 2.0 + xp * xp / 6.0, -np.expm1(-xp) / np.maximum(xp, 1e-300)
        )
        cp_near = self.tpk / tm * np.where(tm >= ts, ap, bp) * phip
        self.cpk = np.where(self.sep, self.kap * (ap - bp), cp_near)


def _inputs(events: EventBatch, dt: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    ptr = _np(events.step_pointers())
    time = _np(events.offset).astype(np.float64) * dt
    max_in = int(np.diff(ptr).max()) if ptr.size > 1 else 0
    return ptr, _np(events.channel), time, max_in


def forward(
    events: EventBatch, layers: list[LayerTensors], cfg: EngineConfig, keep_states: bool
) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor], ExactTape]:
    """See :func:`eventprop.engine.exact_torch.forward`; same outputs and semantics."""
    B, T, dt = events.batch_size, events.n_steps, cfg.dt
    net = _Net(layers, dt)
    dtype, offsets = net.dtype, net.offsets
    in_ptr, in_channel, in_time, max_in = _inputs(events, dt)
    N = int(offsets[-1])
    f64 = np.float64
    n_spiking = int(offsets[-1] if cfg.spiking_readout else offsets[-2])
    max_spikes = sample_spike_limit(n_spiking, T)
    step_limit = np.array([step_spike_limit(layer.size) for layer in layers], np.int64)

    def run(capacity: int, buffers: list[np.ndarray], rec_count: np.ndarray) -> tuple:
        outputs = forward_outputs(B, T, N, int(offsets[-2]), layers[-1].size, dt, f64, keep_states)
        clamped = np.zeros(B, np.int64)
        counters = np.zeros((B, 6), np.int64)
        storm = np.zeros((B, 3), np.int64)
        kernels.exact_forward_kernel(
            B, in_ptr, in_channel, in_time, T, net.w_in, net.w_rec, offsets, net.alpha, net.beta,
            net.c, net.kv, net.ki, net.tau_m, net.tau_s, net.kap, net.sep, net.homog, net.tpk,
            net.cpk, cfg.theta, cfg.min_denominator, cfg.spiking_readout, dt, max_in, keep_states,
            *outputs, capacity, *buffers, rec_count, clamped, counters, max_spikes, step_limit,
            storm,
        )  # fmt: skip
        hit = np.flatnonzero(storm[:, 0])
        if hit.size:  # raised before the buffers grow: a runaway sample costs no re-run
            b = int(hit[0])
            kind, li, step = (int(x) for x in storm[b])
            raise SpikeLimitError(
                layer=li, n_layers=len(layers), sample=b, step=step, n_steps=T,
                limit=int(step_limit[li]) if kind == 2 else max_spikes, per_step=kind == 2,
                layer_size=layers[li].size, n_spiking=n_spiking,
            )  # fmt: skip
        return outputs, clamped, counters

    sample, (steps, neurons, dens, tin), result = run_with_growing_buffers(
        _CAPACITY, N, T, B, (np.int32, np.int32, f64, f64), run
    )
    (states_v, states_i, v_out, first, counts), clamped, counters = result
    records = SpikeRecord(
        torch.from_numpy(sample),
        torch.from_numpy(steps),
        torch.from_numpy(neurons),
        torch.from_numpy(dens.astype(dtype, copy=False)),
    )
    n_spiking = len(layers) if cfg.spiking_readout else len(layers) - 1
    kept = (states_v, states_i) if keep_states else None
    states, hidden_counts = layer_views(
        (states_v.astype(dtype, copy=False), states_i.astype(dtype, copy=False)) if kept else None,
        counts.astype(dtype, copy=False),
        offsets,
        len(layers),
    )
    summed = counters.sum(0)
    tape = ExactTape(
        records=records,
        offsets=[int(o) for o in offsets[: n_spiking + 1]],
        states=states,
        n_clamped=int(clamped.sum()),
        times=torch.from_numpy(steps.astype(np.float64) * dt + tin),
        counters={name: int(v) for name, v in zip(COUNTERS, summed)},
    )
    tape.counters["candidates"] = int(summed[5])
    tape._numba_exact = (tin, dens, kept)  # type: ignore[attr-defined]
    return (
        torch.from_numpy(v_out.astype(dtype, copy=False)),
        torch.from_numpy(first.astype(dtype, copy=False)),
        hidden_counts,
        tape,
    )


def backward(
    events: EventBatch,
    layers: list[LayerTensors],
    cfg: EngineConfig,
    tape: ExactTape,
    grad_v: torch.Tensor | None,
    grad_first: torch.Tensor | None,
    grad_counts: list[torch.Tensor | None],
) -> list[LayerGrads]:
    """See :func:`eventprop.engine.exact_torch.backward`; same gradients."""
    B, T, dt = events.batch_size, events.n_steps, cfg.dt
    net = _Net(layers, dt)
    dtype, offsets = net.dtype, net.offsets
    in_ptr, in_channel, in_time, max_in = _inputs(events, dt)
    K = layers[-1].size
    N = int(offsets[-1])
    n_chunks = max(1, min(B, numba.get_num_threads()))
    rec = tape.records
    rec_sample = rec.sample.numpy()
    rec_step = rec.step.numpy()
    rec_neuron = rec.neuron.numpy()
    rec_ptr = np.searchsorted(rec_sample, np.arange(B + 1)).astype(np.int64)
    rec_time, den, kept = tape._numba_exact  # type: ignore[attr-defined]

    f64 = np.float64
    dummy3 = np.zeros((1, 1, 1), f64)
    dummy2 = np.zeros((1, 1), f64)
    gv = _np(grad_v).astype(f64) if grad_v is not None else dummy3
    has_gf = grad_first is not None and cfg.spiking_readout
    gf = _np(grad_first).astype(f64) if has_gf else dummy2
    rec_first = np.zeros(len(rec_sample), np.bool_)
    if cfg.spiking_readout:
        sel = np.flatnonzero(rec_neuron >= offsets[-2])
        key = rec_sample[sel].astype(np.int64) * K + (rec_neuron[sel] - offsets[-2])
        _, first_idx = np.unique(key, return_index=True)  # records are in time order
        rec_first[sel[first_idx]] = True
    has_reg = any(g is not None for g in grad_counts)
    reg = count_sources(grad_counts, net.tau_m, offsets, B, f64) if has_reg else dummy2
    keep = tape.states is not None
    states_v, states_i = kept if keep else (dummy3, dummy3)
    g_w_in = TypedList([np.zeros((n_chunks, *w.shape), f64) for w in net.w_in])
    g_w_rec = TypedList([np.zeros((n_chunks, *w.shape), f64) for w in net.w_rec])
    dense = FORCE_DENSE or keep or not bool(net.homog.all())
    # the most events of one (sample, step, layer): inputs + spikes of two layers
    per_step = np.bincount(rec_sample.astype(np.int64) * T + rec_step, minlength=B * T).max(
        initial=0
    )
    max_events = int(max_in + per_step) + 1
    w_in64, w_rec64 = net.w_in, net.w_rec
    g_tm = np.zeros((n_chunks, N), f64)
    g_ts = np.zeros((n_chunks, N), f64)
    common = (
        n_chunks, in_ptr, in_channel, in_time, T, w_in64, w_rec64, offsets, net.tau_m, net.tau_s,
        net.kap, net.sep, cfg.theta, dt, rec_ptr, rec_step, rec_neuron, den, rec_time, rec_first,
        gv, grad_v is not None, gf, has_gf, reg, has_reg, max_events, g_w_in, g_w_rec,
    )  # fmt: skip
    if dense:
        kernels.exact_backward_dense(*common, net.homog, keep, states_v, states_i, g_tm, g_ts)
    else:
        kernels.exact_backward_fast(*common, net.alpha, net.beta, net.c, net.kv, net.ki)
    out = []
    for li, layer in enumerate(layers):
        sl = slice(offsets[li], offsets[li + 1])
        ga = gb = gc = None
        if keep:
            tm, ts = net.tau_m[sl], net.tau_s[sl]
            alpha = _np(layer.alpha).astype(f64)
            beta = _np(layer.beta).astype(f64)
            ga = torch.from_numpy((g_tm[:, sl].sum(0) * tm * tm / (dt * alpha)).astype(dtype))
            gb = torch.from_numpy((g_ts[:, sl].sum(0) * ts * ts / (dt * beta)).astype(dtype))
            gc = torch.zeros_like(ga)
        out.append(
            LayerGrads(
                w_in=torch.from_numpy(g_w_in[li].sum(0).astype(dtype)),
                w_rec=(
                    torch.from_numpy(g_w_rec[li].sum(0).astype(dtype))
                    if layer.w_rec is not None
                    else None
                ),
                alpha=ga,
                beta=gb,
                c=gc,
            )
        )
    return out
