"""The ``numba`` backend: event-driven CPU kernels, parallel over the batch.

Converts the engine's tensors to numpy views, runs :mod:`eventprop.engine.numba_kernels` and
returns torch tensors. Spike records are written into per-sample buffers whose capacity is
learnt from earlier calls; a sample that produces more spikes than fit makes the forward pass
run again with a larger buffer, so no spike is ever dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
import torch

from eventprop.engine import numba_kernels as kernels
from eventprop.engine.spec import EngineConfig, LayerGrads, LayerTensors, SpikeRecord, Tape
from eventprop.events import EventBatch

__all__ = ["backward", "forward"]

#: learnt per-sample record capacity, keyed by (total neurons, steps)
_CAPACITY: dict[tuple[int, int], int] = {}


def _np(t: torch.Tensor) -> np.ndarray:
    if t.device.type != "cpu":
        raise ValueError(
            f"backend 'numba' runs on the CPU, but a tensor is on {t.device}; "
            "use backend='torch' for GPU tensors"
        )
    return np.ascontiguousarray(t.detach().numpy())


@dataclass
class PackedWeights:
    """Every layer's weights in one flat array, the layout the kernels index directly.

    Layer ``l``'s ``(n_pre, n_l)`` input weights start at ``in_off[l]`` and its ``(n_l, n_l)``
    recurrent weights at ``rec_off[l]`` (-1 when the layer has none), rows contiguous. One flat
    array instead of a list of matrices keeps container look-ups (and their reference counting)
    out of the kernels' time loops; the copy costs one pass over the weights per call.
    """

    flat: np.ndarray
    in_off: np.ndarray
    rec_off: np.ndarray
    shapes: list[tuple[tuple[int, int], tuple[int, int] | None]]

    def unpack(self, flat: np.ndarray) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """Split a packed array (e.g. the summed gradients) into per-layer matrices."""
        out = []
        for l, (s_in, s_rec) in enumerate(self.shapes):
            a = int(self.in_off[l])
            w_in = flat[a : a + s_in[0] * s_in[1]].reshape(s_in)
            w_rec = None
            if s_rec is not None:
                a = int(self.rec_off[l])
                w_rec = flat[a : a + s_rec[0] * s_rec[1]].reshape(s_rec)
            out.append((w_in, w_rec))
        return out


def pack_weights(layers: list[LayerTensors]) -> PackedWeights:
    """Pack the weights of ``layers`` (see :class:`PackedWeights`)."""
    parts, in_off, rec_off, shapes = [], [], [], []
    pos = 0
    for layer in layers:
        w_in = _np(layer.w_in)
        in_off.append(pos)
        parts.append(w_in.ravel())
        pos += w_in.size
        if layer.w_rec is None:
            rec_off.append(-1)
            shapes.append((w_in.shape, None))
            continue
        w_rec = _np(layer.w_rec)
        rec_off.append(pos)
        parts.append(w_rec.ravel())
        pos += w_rec.size
        shapes.append((w_in.shape, w_rec.shape))
    return PackedWeights(
        np.concatenate(parts),
        np.array(in_off, dtype=np.int64),
        np.array(rec_off, dtype=np.int64),
        shapes,
    )


def _structure(layers: list[LayerTensors]) -> tuple:
    dtype = _np(layers[-1].alpha).dtype
    offsets = np.zeros(len(layers) + 1, dtype=np.int64)
    for li, layer in enumerate(layers):
        offsets[li + 1] = offsets[li] + layer.size
    cat = {
        name: np.concatenate([_np(getattr(layer, name)) for layer in layers])
        for name in ("alpha", "beta", "c", "tau_m", "tau_s")
    }
    return dtype, offsets, pack_weights(layers), cat


def readout_average(readout: LayerTensors, dtype) -> tuple[np.ndarray, np.ndarray]:
    """The readout's ``(a_avg, c_avg)`` as kernel arrays (its output is the step average of V)."""
    if readout.a_avg is None or readout.c_avg is None:
        raise ValueError("readout: a_avg/c_avg missing (build layers with engine_tensors)")
    a_avg, c_avg = _np(readout.a_avg), _np(readout.c_avg)
    return a_avg.astype(dtype, copy=False), c_avg.astype(dtype, copy=False)


def held_inputs(events: EventBatch) -> tuple[np.ndarray, np.ndarray]:
    """The input events as the kernels read them, in the narrowest integer types that fit.

    ``(pointers, channels)``: CSR pointers over (sample, step) -- int32 unless a batch holds 2**31
    events -- and the channel of every event (uint16 for up to 65 536 channels). This is all the
    backward pass needs of the input, so it is what the tape keeps instead of the whole batch
    (6 bytes per event instead of 20, plus 4 per (sample, step)).
    """
    ptr = _np(events.step_pointers())
    ptr = ptr.astype(np.int32) if len(events) < 2**31 else ptr
    channel = _np(events.channel)
    if events.n_channels <= 2**16:
        channel = channel.astype(np.uint16)
    return ptr, channel


def count_sources(
    grad_counts: list[torch.Tensor | None],
    tau_m: np.ndarray,
    offsets: np.ndarray,
    batch: int,
    dtype,
) -> np.ndarray:
    """``(B, N_hidden)`` jump term of spike-count losses: ``tau_m**2 * dL/dN`` per neuron.

    ``grad_counts[l]`` is ``dL/dN`` of hidden layer ``l`` (None where no loss uses it: zeros).
    """
    reg = np.zeros((batch, int(offsets[-2])), dtype)
    for li, g in enumerate(grad_counts):
        if g is not None:
            tm = tau_m[offsets[li] : offsets[li + 1]]
            reg[:, offsets[li] : offsets[li + 1]] = _np(g) * tm**2
    return reg


def forward_outputs(
    batch: int,
    n_steps: int,
    n_neurons: int,
    n_hidden: int,
    n_out: int,
    dt: float,
    dtype,
    keep_states: bool,
) -> tuple[np.ndarray, ...]:
    """Fresh outputs of a forward kernel: ``(states_v, states_i, v_out, first, counts)``.

    The states are ``(B, T, N)`` when kept (``(1, 1, 1)`` placeholders otherwise), ``first`` is
    pre-filled with ``T * dt`` (no spike) and the hidden spike counts with zeros.
    """
    states_shape = (batch, n_steps, n_neurons) if keep_states else (1, 1, 1)
    return (
        np.zeros(states_shape, dtype),
        np.zeros(states_shape, dtype),
        np.empty((batch, n_steps, n_out), dtype),
        np.full((batch, n_out), n_steps * dt, dtype),
        np.zeros((batch, n_hidden), dtype),
    )


def run_with_growing_buffers(
    capacities: dict[tuple[int, int], int],
    n_neurons: int,
    n_steps: int,
    batch: int,
    dtypes: tuple,
    run: Callable[[int, list[np.ndarray], np.ndarray], Any],
) -> tuple[np.ndarray, list[np.ndarray], Any]:
    """Run a forward kernel into per-sample record buffers, again with larger ones on overflow.

    ``run(capacity, buffers, rec_count)`` runs the kernel once: ``buffers`` holds one
    ``(B, capacity)`` array per record column (``dtypes``), ``rec_count`` receives the spikes
    of every sample (which may exceed the capacity: those are not written). It allocates its
    other outputs itself, since a re-run starts from scratch, and returns them. The capacity is
    learnt in ``capacities``, keyed by ``(n_neurons, n_steps)``: it follows the activity.

    Returns the sample of every record, the record columns compacted into flat arrays
    (sample-major, in the kernel's order within a sample) and what the last ``run`` returned.
    """
    key = (n_neurons, n_steps)
    capacity = capacities.get(key, max(256, n_neurons * n_steps // 64))
    while True:
        buffers = [np.empty((batch, capacity), d) for d in dtypes]
        rec_count = np.zeros(batch, np.int64)
        result = run(capacity, buffers, rec_count)
        most = int(rec_count.max()) if batch else 0
        if most <= capacity:
            break
        capacity = int(most * 1.25) + 16  # a sample overflowed: run again, nothing is dropped
    capacities[key] = int(most * 1.25) + 16  # follows the activity, up or down
    # compact the per-sample buffers into flat records: O(spikes)
    total = int(rec_count.sum())
    sample = np.repeat(np.arange(batch, dtype=np.int32), rec_count)
    columns = [np.empty(total, d) for d in dtypes]
    start = 0
    for b in range(batch):
        k = int(rec_count[b])
        for col, buf in zip(columns, buffers):
            col[start : start + k] = buf[b, :k]
        start += k
    return sample, columns, result


def layer_views(
    states: tuple[np.ndarray, np.ndarray] | None,
    counts: np.ndarray,
    offsets: np.ndarray,
    n_layers: int,
) -> tuple[list[tuple[torch.Tensor, torch.Tensor]] | None, list[torch.Tensor]]:
    """Per-layer torch views of the kept ``(B, T, N)`` states (as ``(T, B, n_l)``, None when
    not kept) and of the hidden layers' ``(B, n_l)`` spike counts."""
    views = None
    if states is not None:
        sv = torch.from_numpy(states[0]).permute(1, 0, 2)  # (T, B, N) views
        si = torch.from_numpy(states[1]).permute(1, 0, 2)
        views = [
            (sv[:, :, offsets[li] : offsets[li + 1]], si[:, :, offsets[li] : offsets[li + 1]])
            for li in range(n_layers)
        ]
    hidden_counts = [
        torch.from_numpy(counts[:, offsets[li] : offsets[li + 1]]) for li in range(n_layers - 1)
    ]
    return views, hidden_counts


def forward(
    events: EventBatch, layers: list[LayerTensors], cfg: EngineConfig, keep_states: bool
) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor], Tape]:
    """See :func:`eventprop.engine.torch_backend.forward`; same outputs and semantics."""
    dtype, offsets, packed, cat = _structure(layers)
    in_ptr, in_channel = held_inputs(events)
    B, T, dt = events.batch_size, events.n_steps, cfg.dt
    N = int(offsets[-1])
    avg = readout_average(layers[-1], dtype)

    def run(capacity: int, buffers: list[np.ndarray], rec_count: np.ndarray) -> tuple:
        outputs = forward_outputs(
            B, T, N, int(offsets[-2]), layers[-1].size, dt, dtype, keep_states
        )
        clamped = np.zeros(B, np.int64)
        kernels.forward_kernel(
            in_ptr, in_channel, T, packed.flat, packed.in_off, packed.rec_off, offsets,
            cat["alpha"], cat["beta"], cat["c"], *avg, cfg.theta, cfg.min_denominator,
            cfg.spiking_readout, dt, keep_states, *outputs, capacity, *buffers, rec_count, clamped,
        )  # fmt: skip
        return outputs, clamped

    sample, (steps, neurons, dens), result = run_with_growing_buffers(
        _CAPACITY, N, T, B, (np.int32, np.int32, dtype), run
    )
    (states_v, states_i, v_out, first, counts), clamped = result
    records = SpikeRecord(
        torch.from_numpy(sample),
        torch.from_numpy(steps),
        torch.from_numpy(neurons),
        torch.from_numpy(dens),
    )
    n_spiking = len(layers) if cfg.spiking_readout else len(layers) - 1
    states, hidden_counts = layer_views(
        (states_v, states_i) if keep_states else None, counts, offsets, len(layers)
    )
    tape = Tape(
        records=records,
        offsets=[int(o) for o in offsets[: n_spiking + 1]],
        states=states,
        n_clamped=int(clamped.sum()),
        inputs=(in_ptr, in_channel),
        private={"states": (states_v, states_i)} if keep_states else {},
    )
    return torch.from_numpy(v_out), torch.from_numpy(first), hidden_counts, tape


def backward(
    events: EventBatch,
    layers: list[LayerTensors],
    cfg: EngineConfig,
    tape: Tape,
    grad_v: torch.Tensor | None,
    grad_first: torch.Tensor | None,
    grad_counts: list[torch.Tensor | None],
) -> list[LayerGrads]:
    """See :func:`eventprop.engine.torch_backend.backward`; same gradients."""
    dtype, offsets, packed, cat = _structure(layers)
    in_ptr, in_channel = tape.inputs  # the forward pass's copy: the batch may be gone
    B, T = events.batch_size, events.n_steps
    K = layers[-1].size
    n_chunks = max(1, min(B, numba.get_num_threads()))
    rec = tape.records
    rec_sample = rec.sample.numpy()
    rec_ptr = np.searchsorted(rec_sample, np.arange(B + 1)).astype(np.int64)

    dummy3 = np.zeros((1, 1, 1), dtype)
    dummy2 = np.zeros((1, 1), dtype)
    gv = _np(grad_v).astype(dtype, copy=False) if grad_v is not None else dummy3
    has_gf = grad_first is not None and cfg.spiking_readout
    gf = _np(grad_first).astype(dtype, copy=False) if has_gf else dummy2
    first_step = np.full((B, K), T, np.int64)
    if has_gf:
        sel = rec.neuron.numpy() >= offsets[-2]
        np.minimum.at(
            first_step,
            (rec_sample[sel], rec.neuron.numpy()[sel] - offsets[-2]),
            rec.step.numpy()[sel].astype(np.int64),
        )
    has_reg = any(g is not None for g in grad_counts)
    reg = count_sources(grad_counts, cat["tau_m"], offsets, B, dtype) if has_reg else dummy2
    keep = tape.states is not None
    states_v, states_i = tape.private["states"] if keep else (dummy3, dummy3)

    grads = np.zeros((n_chunks, packed.flat.size), dtype)
    N = int(offsets[-1])
    g_alpha = np.zeros((n_chunks, N), dtype)
    g_beta = np.zeros((n_chunks, N), dtype)
    g_c = np.zeros((n_chunks, N), dtype)
    g_avg = np.zeros((n_chunks, 2, K), dtype)
    kernels.backward_kernel(
        in_ptr, in_channel, T, packed.flat, packed.in_off, packed.rec_off, offsets,
        cat["alpha"], cat["beta"], cat["c"], *readout_average(layers[-1], dtype),
        cat["tau_m"], cat["tau_s"], cfg.theta,
        cfg.spiking_readout, rec_ptr,
        rec.step.numpy(), rec.neuron.numpy(), rec.denominator.numpy(),
        gv, grad_v is not None, gf, first_step, has_gf, reg, has_reg, keep, states_v, states_i,
        grads, g_alpha, g_beta, g_c, g_avg,
    )  # fmt: skip
    g_avg = g_avg.sum(0)
    weight_grads = packed.unpack(grads.sum(0))
    out = []
    for li in range(len(layers)):
        sl = slice(offsets[li], offsets[li + 1])
        out.append(
            LayerGrads(
                w_in=torch.from_numpy(weight_grads[li][0]),
                w_rec=torch.from_numpy(gr) if (gr := weight_grads[li][1]) is not None else None,
                alpha=torch.from_numpy(g_alpha[:, sl].sum(0)) if keep else None,
                beta=torch.from_numpy(g_beta[:, sl].sum(0)) if keep else None,
                c=torch.from_numpy(g_c[:, sl].sum(0)) if keep else None,
                a_avg=torch.from_numpy(g_avg[0]) if keep and li == len(layers) - 1 else None,
                c_avg=torch.from_numpy(g_avg[1]) if keep and li == len(layers) - 1 else None,
            )
        )
    return out
