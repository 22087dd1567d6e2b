"""Surrogate-gradient BPTT for the same networks the EventProp engine trains.

:class:`BPTTNetwork` wraps an :class:`eventprop.models.Network` (sharing its parameters) and
simulates it with ordinary PyTorch operations, so that autograd back-propagates through time.
The model and its time grid are the engine's (``docs/engine.md``): per step ``n``

1. arrivals at ``n*dt``: input spikes of step n and the hidden spikes emitted at the end of
   step n-1 add their weight rows to the synaptic currents of their targets;
2. the readout's step average of ``V``, ``a_avg*V + c_avg*I``, is ``voltage[:, n]``;
3. exact free evolution ``V <- alpha*V + c*I``, ``I <- beta*I`` with the propagators of
   :func:`eventprop.engine.coefficients.step_coefficients`;
4. threshold ``V >= theta``: spike, ``V <- 0``.

The forward pass therefore produces the engine's spikes and voltages (to round-off: sums of
weights are added in a different order) for networks with the engine's grid timing
(``timing="grid"``); a network in exact-timing mode is refused, since BPTT's model is the grid.
Only the backward pass differs: the Heaviside step of the threshold gets the derivative of
SuperSpike's fast sigmoid (Zenke & Ganguli 2018),

    dS/dV = 1 / (1 + slope * |V - theta|)**2,

and the reset is not differentiated (``detach_reset``, as in SuperSpike/spytorch and
snnTorch). The default ``slope = 10`` (per unit of the threshold, ``theta = 1``) is SuperSpike's
steepness in the normalised units of Zenke & Vogels (2021), who found surrogate-gradient
learning robust to the surrogate's shape but sensitive to its scale, with steepness around 10
learning well; snnTorch's ``fast_sigmoid`` defaults to 25. As ``slope -> inf`` the surrogate
tends to the true (zero almost everywhere) derivative; the forward pass does not depend on it.

Gradients that do not pass through a threshold are the exact gradients of the discrete model,
as EventProp's are: the readout's weights and time constants get the same gradients from both
methods (``tests/test_bptt.py``).

Input currents of the first layer are built for all steps at once as one sparse-dense product
(the per-event sum of weight rows, ``S @ W`` with ``S`` the (time*batch, channels) spike-count
matrix in CSR form), never as a dense (batch, time, channels) spike tensor; its backward pass is
the transposed sparse product. Memory held for the backward pass is autograd's: per step and
spiking layer, ``V - theta`` (float), the spikes (float) and the reset mask (bool), i.e.
``(2*itemsize + 1) * B * N`` bytes per step -- it grows with ``T x N``, not with the spikes.
Measure it with :class:`SavedTensorMeter`.
"""

from __future__ import annotations

import warnings
from contextlib import AbstractContextManager
from typing import Any

import torch
from torch import nn

from eventprop.engine.spec import SpikeRecord, Tape
from eventprop.engine.torch_backend import grid_denominator
from eventprop.events import EventBatch
from eventprop.models.network import Network, NetworkOutput

__all__ = [
    "DEFAULT_SURROGATE_SLOPE",
    "BPTTNetwork",
    "SavedTensorMeter",
    "superspike",
]

DEFAULT_SURROGATE_SLOPE = 10.0


class _SuperSpike(torch.autograd.Function):
    """Heaviside ``x >= 0`` forward; SuperSpike's fast-sigmoid derivative backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, slope: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.slope = slope
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad / (1.0 + ctx.slope * x.abs()) ** 2, None


def superspike(x: torch.Tensor, slope: float = DEFAULT_SURROGATE_SLOPE) -> torch.Tensor:
    """Spikes ``(x >= 0)`` with the surrogate derivative ``1/(1 + slope*|x|)**2``."""
    return _SuperSpike.apply(x, slope)


class _SparseInput(torch.autograd.Function):
    """``S @ W`` for a fixed sparse CSR matrix ``S``; backward ``S^T @ grad`` (also CSR)."""

    @staticmethod
    def forward(ctx, w: torch.Tensor, s: torch.Tensor, s_t: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(s_t)
        return s @ w

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, None]:  # type: ignore[override]
        (s_t,) = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None
        return s_t @ grad.contiguous(), None, None


def _csr(
    row: torch.Tensor, col: torch.Tensor, n_rows: int, n_cols: int, dtype: torch.dtype
) -> torch.Tensor:
    """CSR matrix of event counts (duplicates summed) from unsorted (row, col) pairs."""
    key = row * n_cols + col
    key, count = torch.unique(key, sorted=True, return_counts=True)
    r = torch.div(key, n_cols, rounding_mode="floor")
    c = key - r * n_cols
    bounds = torch.arange(n_rows + 1, device=row.device, dtype=torch.int64)
    crow = torch.searchsorted(r, bounds)
    with warnings.catch_warnings():  # "sparse CSR support is in beta state"
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, c, count.to(dtype), (n_rows, n_cols))


def input_currents(events: EventBatch, w_in: torch.Tensor) -> torch.Tensor:
    """Per-step input currents ``(T, B, N)``: for each (step, sample) the sum of the weight
    rows of the channels that spike, differentiable in ``w_in`` (shape ``(C, N)``)."""
    device, dtype = w_in.device, w_in.dtype
    B, T, C = events.batch_size, events.n_steps, events.n_channels
    b = events.sample.to(device=device, dtype=torch.int64)
    n = events.step.to(device=device, dtype=torch.int64)
    ch = events.channel.to(device=device, dtype=torch.int64)
    row = n * B + b  # time-major: the rows of step n are contiguous
    s = _csr(row, ch, T * B, C, dtype)
    s_t = _csr(ch, row, C, T * B, dtype)
    return _SparseInput.apply(w_in, s, s_t).view(T, B, -1)


class BPTTNetwork(nn.Module):
    """Surrogate-gradient BPTT on the network ``network`` (same model, same parameters).

    ``forward(events)`` returns the same :class:`~eventprop.models.NetworkOutput` as the
    network itself, so every loss of :mod:`eventprop.losses` works unchanged; the difference is
    the backward pass (autograd through time, surrogate derivative at the threshold).

    The parameters are shared, not copied: ``BPTTNetwork(net).parameters()`` are
    ``net.parameters()``, an optimiser over either trains both, and ``net.state_dict()`` is the
    checkpoint. ``record_spikes`` fills ``output.tape.records`` with the spikes (as the engine
    does; handy for rasters and comparisons); BPTT's backward pass does not need them.
    ``output.tape`` never holds what autograd keeps -- see :class:`SavedTensorMeter`.
    """

    def __init__(
        self,
        network: Network,
        *,
        surrogate_slope: float = DEFAULT_SURROGATE_SLOPE,
        detach_reset: bool = True,
        record_spikes: bool = True,
    ) -> None:
        super().__init__()
        if not isinstance(network, Network):
            raise TypeError(f"network: expected an eventprop Network, got {type(network).__name__}")
        if not (isinstance(surrogate_slope, (int, float)) and surrogate_slope > 0):
            raise ValueError(f"surrogate_slope: must be a positive number, got {surrogate_slope!r}")
        self._check_timing(network)
        self.network = network
        self.surrogate_slope = float(surrogate_slope)
        self.detach_reset = bool(detach_reset)
        self.record_spikes = bool(record_spikes)

    @property
    def dt(self) -> float:
        return self.network.dt

    def constrain_(self) -> None:
        """Project trainable time constants onto their bounds (as ``Network.constrain_``)."""
        self.network.constrain_()

    def extra_repr(self) -> str:
        return (
            f"surrogate=superspike(slope={self.surrogate_slope}), detach_reset={self.detach_reset}"
        )

    @staticmethod
    def _check_timing(network: Network) -> None:
        timing = getattr(network, "timing", "grid")
        if timing != "grid":
            raise ValueError(
                f"timing: BPTT steps through the time grid (timing 'grid'); this network uses "
                f"timing {timing!r}, whose spikes fall inside steps. Build the network with "
                "timing='grid' (config: model.timing: grid) to train it with method 'bptt'"
            )

    def _check(self, events: EventBatch, dtype: torch.dtype) -> None:
        net = self.network
        self._check_timing(net)
        if not isinstance(events, EventBatch):
            raise TypeError(f"events: expected an EventBatch, got {type(events).__name__}")
        if abs(events.dt - net.dt) > 1e-12 * net.dt:
            raise ValueError(f"events.dt = {events.dt} ms but the network runs at dt = {net.dt} ms")
        if events.n_channels != net.n_in:
            raise ValueError(
                f"events: {events.n_channels} input channels but the network takes {net.n_in}"
            )
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"weights: dtype must be float32 or float64, got {dtype}")

    def forward(self, events: EventBatch) -> NetworkOutput:
        net = self.network
        layers = [layer.engine_tensors(net.dt) for layer in net.hidden]
        layers.append(net.readout.engine_tensors(net.dt))
        readout = layers[-1]
        device, dtype = readout.w_in.device, readout.w_in.dtype
        self._check(events, dtype)
        B, T, dt, theta = events.batch_size, events.n_steps, net.dt, net.theta
        n_hidden = len(layers) - 1
        spiking = [True] * n_hidden + [net.readout.spiking]
        slope = self.surrogate_slope

        drive = input_currents(events, layers[0].w_in).unbind(0)  # T tensors (B, N0)
        V = [torch.zeros(B, layer.size, device=device, dtype=dtype) for layer in layers]
        I = [torch.zeros_like(v) for v in V]
        prev: list[torch.Tensor | None] = [None] * len(layers)  # spikes of the previous step
        counts: list[torch.Tensor | int] = [0] * n_hidden
        volts: list[torch.Tensor] = []
        records: list[list[tuple[int, torch.Tensor, torch.Tensor]]] = [[] for _ in layers]
        denoms: list[list[torch.Tensor]] = [[] for _ in layers]
        n_clamped = 0
        not_yet = None  # readout neurons that have not spiked yet (spiking readout)
        first_sum = None

        for n in range(T):
            # 1. arrivals at n*dt
            for li, layer in enumerate(layers):
                if li == 0:
                    I[0] = I[0] + drive[n]
                elif prev[li - 1] is not None:
                    I[li] = I[li] + prev[li - 1] @ layer.w_in
                if layer.w_rec is not None and prev[li] is not None:
                    I[li] = I[li] + prev[li] @ layer.w_rec
            # 2.-4. output, evolution, threshold
            for li, layer in enumerate(layers):
                if li == n_hidden:
                    volts.append(layer.a_avg * V[li] + layer.c_avg * I[li])
                v = layer.alpha * V[li] + layer.c * I[li]
                if self.record_spikes and spiking[li]:
                    i_before = I[li]
                I[li] = layer.beta * I[li]
                if not spiking[li]:
                    V[li] = v
                    continue
                s = superspike(v - theta, slope)
                fired = s.detach() > 0
                if self.detach_reset:
                    V[li] = v.masked_fill(fired, 0.0)
                else:
                    V[li] = v * (1.0 - s)
                prev[li] = s
                if li < n_hidden:
                    counts[li] = counts[li] + s
                else:  # first readout spike time: dt * (1 + sum_{m<T-1} prod_{k<=m} (1 - s_k))
                    not_yet = (1.0 - s) if not_yet is None else not_yet * (1.0 - s)
                    if n < T - 1:
                        first_sum = not_yet if first_sum is None else first_sum + not_yet
                if self.record_spikes:
                    with torch.no_grad():
                        idx = fired.nonzero()
                        if idx.numel():
                            # the engine's jump denominator, for identical spike records
                            d, low = grid_denominator(
                                i_before[fired], v[fired], net.min_denominator
                            )
                            n_clamped += low
                            records[li].append((n, idx[:, 0], idx[:, 1]))
                            denoms[li].append(d)

        voltage = torch.stack(volts, dim=1)
        hidden_counts = [
            c if isinstance(c, torch.Tensor) else torch.zeros(B, layers[i].size).to(readout.w_in)
            for i, c in enumerate(counts)
        ]
        K = readout.size
        if net.readout.spiking:
            first = dt * (1.0 + (first_sum if first_sum is not None else 0.0))
            if not isinstance(first, torch.Tensor):
                first = torch.full((B, K), dt * T, device=device, dtype=dtype)
        else:
            first = torch.full((B, K), dt * T, device=device, dtype=dtype)
        tape = self._tape(records, denoms, layers, spiking, n_clamped, device, dtype)
        return NetworkOutput(voltage, first, hidden_counts, tape, dt)

    @staticmethod
    def _tape(
        records: list[list[tuple[int, torch.Tensor, torch.Tensor]]],
        denoms: list[list[torch.Tensor]],
        layers: list[Any],
        spiking: list[bool],
        n_clamped: int,
        device: torch.device,
        dtype: torch.dtype,
    ) -> Tape:
        """The spikes in the engine's tape format (global neuron index, sorted by step)."""
        offsets = [0]
        parts = []
        for li, (layer, s) in enumerate(zip(layers, spiking)):
            if not s:
                continue
            rec = records[li]
            if rec:
                step = torch.cat([torch.full_like(r[1], r[0]) for r in rec])
                parts.append(
                    (
                        torch.cat([r[1] for r in rec]),
                        step,
                        torch.cat([r[2] for r in rec]) + offsets[-1],
                        torch.cat(denoms[li]),
                    )
                )
            offsets.append(offsets[-1] + layer.size)
        if parts:
            sample, step, neuron, den = (torch.cat(x) for x in zip(*parts))
            order = torch.argsort(step, stable=True)
            rec = SpikeRecord(
                sample[order].to(torch.int32),
                step[order].to(torch.int32),
                neuron[order].to(torch.int32),
                den[order],
            )
        else:
            empty = torch.zeros(0, dtype=torch.int32, device=device)
            rec = SpikeRecord(empty, empty, empty, torch.zeros(0, dtype=dtype, device=device))
        return Tape(records=rec, offsets=offsets, states=None, n_clamped=n_clamped)


class SavedTensorMeter(AbstractContextManager):
    """Bytes that autograd saves for the backward pass while the context is active.

    Uses :func:`torch.autograd.graph.saved_tensors_hooks`: every tensor an operation saves is
    seen once at packing; the meter sums the sizes of the distinct storages (a storage saved
    by several operations counts once), leaving out the storages of ``exclude`` (the model's
    parameters and buffers, which exist whether or not a graph is kept). Put the forward pass
    and the loss inside the context; read :attr:`nbytes` afterwards.
    """

    def __init__(self, exclude: Any = ()) -> None:
        self._exclude = {self._key(t) for t in exclude}
        self._seen: dict[tuple[Any, int], int] = {}
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)

    @staticmethod
    def _key(t: torch.Tensor) -> tuple[Any, int]:
        st = t.untyped_storage()
        return (t.device, st.data_ptr())

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        if t.layout == torch.strided:
            key = self._key(t)
            if key not in self._exclude:
                self._seen[key] = t.untyped_storage().nbytes()
        else:  # sparse: count indices and values
            parts = (
                (t.crow_indices(), t.col_indices(), t.values())
                if t.layout == torch.sparse_csr
                else (t._indices(), t._values())
            )
            for p in parts:
                self._seen[self._key(p)] = p.untyped_storage().nbytes()
        return t

    @staticmethod
    def _unpack(t: torch.Tensor) -> torch.Tensor:
        return t

    @property
    def nbytes(self) -> int:
        return sum(self._seen.values())

    def __enter__(self) -> SavedTensorMeter:
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._hooks.__exit__(*exc)
