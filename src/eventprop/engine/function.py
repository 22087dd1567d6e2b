"""The seam between PyTorch autograd and the EventProp backends.

:func:`run_network` runs the spiking network on an :class:`~eventprop.events.EventBatch` and
returns tensors that PyTorch treats like any other: the readout voltages, the readout's first
spike times and the hidden spike counts. Any loss computed from them with PyTorch operations
back-propagates: the backward pass receives ``dL/dv_out`` (the readout adjoint's source),
``dL/dt_first`` (the spike-time term of the jump) and ``dL/dN`` (spike-count losses such as the
regulariser) and returns exact EventProp gradients for every weight and step propagator.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from dataclasses import dataclass
from typing import Any

import torch

from eventprop.engine import numba_backend, torch_backend
from eventprop.engine.coefficients import step_average_coefficients
from eventprop.engine.spec import EngineConfig, LayerTensors, Tape
from eventprop.events import EventBatch

__all__ = [
    "BACKENDS",
    "TIMINGS",
    "EngineOutput",
    "EventShape",
    "backend_module",
    "run_network",
    "validate_network",
]

BACKENDS = {"torch": torch_backend, "numba": numba_backend}
#: timing modes: "grid" (events on step boundaries, the paper's discretisation) and "exact"
#: (spikes at their real times inside steps); modules are imported on first use
TIMINGS = ("grid", "exact")
_EXACT_MODULES = {"torch": "eventprop.engine.exact_torch", "numba": "eventprop.engine.exact_numba"}


def backend_module(backend: str, timing: str = "grid") -> Any:
    """The module implementing ``forward``/``backward`` for a backend and timing mode."""
    if backend not in BACKENDS:
        raise ValueError(f"backend: unknown {backend!r}; choose one of {sorted(BACKENDS)}")
    if timing not in TIMINGS:
        raise ValueError(f"timing: unknown mode {timing!r}; choose one of {list(TIMINGS)}")
    if timing == "grid":
        return BACKENDS[backend]
    return importlib.import_module(_EXACT_MODULES[backend])


@dataclass
class EngineOutput:
    """Outputs of one run; tensors take part in autograd."""

    voltage: torch.Tensor  #: (B, T, K) readout voltage averaged over every step
    first_spike_time: torch.Tensor  #: (B, K) first readout spike (ms); T*dt if none
    hidden_counts: list[torch.Tensor]  #: per hidden layer (B, n_l) spike counts
    tape: Tape  #: what was kept for the backward pass (spike records, sizes, guard counts)


@dataclass(frozen=True)
class EventShape:
    """The sizes of an :class:`EventBatch`, without its events.

    Stands in for the batch between the passes when the backend's tape keeps its own compact
    copy of the inputs (:attr:`Tape.inputs`), so that the batch can be freed by its owner.
    """

    batch_size: int
    n_steps: int
    n_channels: int
    dt: float


class _Session:
    """Non-tensor context of one call (structure, events, backend, config)."""

    def __init__(
        self, events: EventBatch, layers: list[LayerTensors], cfg: EngineConfig, backend: Any
    ) -> None:
        self.events, self.cfg, self.backend = events, cfg, backend
        self.has_rec = [layer.w_rec is not None for layer in layers]
        self.has_avg = [layer.a_avg is not None for layer in layers]
        self.tau_m = [layer.tau_m.detach() for layer in layers]
        self.tau_s = [layer.tau_s.detach() for layer in layers]
        self.tape: Tape | None = None

    @staticmethod
    def flatten(layers: list[LayerTensors]) -> list[torch.Tensor]:
        flat: list[torch.Tensor] = []
        for layer in layers:
            flat.append(layer.w_in)
            if layer.w_rec is not None:
                flat.append(layer.w_rec)
            flat.extend((layer.alpha, layer.beta, layer.c))
            if layer.a_avg is not None:
                flat.extend((layer.a_avg, layer.c_avg))
        return flat

    def unflatten(self, flat: tuple[torch.Tensor, ...]) -> list[LayerTensors]:
        layers, k = [], 0
        for li, (rec, avg) in enumerate(zip(self.has_rec, self.has_avg)):
            w_in = flat[k]
            k += 1
            w_rec = None
            if rec:
                w_rec = flat[k]
                k += 1
            alpha, beta, c = flat[k : k + 3]
            k += 3
            a_avg = c_avg = None
            if avg:
                a_avg, c_avg = flat[k : k + 2]
                k += 2
            layers.append(
                LayerTensors(
                    w_in, w_rec, alpha, beta, c, self.tau_m[li], self.tau_s[li], a_avg, c_avg
                )
            )
        return layers


class _EventProp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, session: _Session, keep_states: bool, *flat: torch.Tensor):  # type: ignore[override]
        layers = session.unflatten(flat)
        v_out, first, counts, tape = session.backend.forward(
            session.events, layers, session.cfg, keep_states
        )
        session.tape = tape
        if tape.inputs:  # the tape has what the backward pass needs of the batch
            ev = session.events
            session.events = EventShape(ev.batch_size, ev.n_steps, ev.n_channels, ev.dt)
        ctx.session = session
        ctx.layers = layers
        ctx.needs = [t.requires_grad for t in flat]
        ctx.set_materialize_grads(False)
        return (v_out, first, *counts)

    @staticmethod
    def backward(ctx, grad_v, grad_first, *grad_counts):  # type: ignore[override]
        session: _Session = ctx.session
        if grad_v is None and grad_first is None and all(g is None for g in grad_counts):
            return (None, None, *([None] * len(ctx.needs)))
        grads = session.backend.backward(
            session.events,
            ctx.layers,
            session.cfg,
            session.tape,
            grad_v,
            grad_first if session.cfg.spiking_readout else None,
            list(grad_counts),
        )
        flat: list[torch.Tensor | None] = []
        for g, rec, avg in zip(grads, session.has_rec, session.has_avg):
            flat.append(g.w_in)
            if rec:
                flat.append(g.w_rec)
            flat.extend((g.alpha, g.beta, g.c))
            if avg:
                flat.extend((g.a_avg, g.c_avg))
        flat = [g if need else None for g, need in zip(flat, ctx.needs)]
        return (None, None, *flat)


def validate_network(events: EventBatch, layers: list[LayerTensors], cfg: EngineConfig) -> None:
    """Raise a clear error for any input the engine cannot run on."""
    if not isinstance(events, EventBatch):
        raise TypeError(f"events: expected an EventBatch, got {type(events).__name__}")
    if not layers:
        raise ValueError("layers: the network needs at least a readout layer")
    if not math.isclose(events.dt, cfg.dt, rel_tol=1e-12):
        raise ValueError(f"events.dt = {events.dt} ms but the network runs at dt = {cfg.dt} ms")
    if cfg.timing not in TIMINGS:
        raise ValueError(f"timing: unknown mode {cfg.timing!r}; choose one of {list(TIMINGS)}")
    dtype, device = layers[-1].w_in.dtype, layers[-1].w_in.device
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"weights: dtype must be float32 or float64, got {dtype}")
    n_pre = events.n_channels
    for li, layer in enumerate(layers):
        name = "readout" if li == len(layers) - 1 else f"layers[{li}]"
        n = layer.w_in.shape[1] if layer.w_in.dim() == 2 else -1
        if layer.w_in.dim() != 2 or layer.w_in.shape[0] != n_pre:
            what = "input channels" if li == 0 else "neurons in the layer below"
            raise ValueError(
                f"{name}.w_in: expected shape ({n_pre}, n) for {n_pre} {what}, "
                f"got {tuple(layer.w_in.shape)}"
            )
        tensors = {
            "w_in": layer.w_in,
            "alpha": layer.alpha,
            "beta": layer.beta,
            "c": layer.c,
            "tau_m": layer.tau_m,
            "tau_s": layer.tau_s,
        }
        if layer.a_avg is not None:
            tensors["a_avg"] = layer.a_avg
            tensors["c_avg"] = layer.c_avg
        if layer.w_rec is not None:
            tensors["w_rec"] = layer.w_rec
            if tuple(layer.w_rec.shape) != (n, n):
                raise ValueError(
                    f"{name}.w_rec: expected shape ({n}, {n}), got {tuple(layer.w_rec.shape)}"
                )
        for key, t in tensors.items():
            if key not in ("w_in", "w_rec") and tuple(t.shape) != (n,):
                raise ValueError(f"{name}.{key}: expected shape ({n},), got {tuple(t.shape)}")
            if t.dtype != dtype:
                raise TypeError(f"{name}.{key}: dtype {t.dtype} differs from the network's {dtype}")
            if t.device != device:
                raise ValueError(f"{name}.{key}: on {t.device}, the network is on {device}")
            if not bool(torch.isfinite(t).all()):
                raise ValueError(f"{name}.{key}: contains NaN or infinite values")
        if bool((layer.tau_m <= 0).any()) or bool((layer.tau_s <= 0).any()):
            raise ValueError(f"{name}: time constants must be positive")
        n_pre = n


def run_network(
    events: EventBatch,
    layers: list[LayerTensors],
    cfg: EngineConfig,
    backend: str = "numba",
) -> EngineOutput:
    """Run hidden layers + readout (``layers[-1]``) on ``events`` with EventProp gradients."""
    impl = backend_module(backend, cfg.timing)
    readout = layers[-1] if layers else None
    if readout is not None and (readout.a_avg is None or readout.c_avg is None):
        # the grid readout outputs step averages; derive the map from the (fixed) taus
        a_avg, c_avg = step_average_coefficients(readout.tau_m, readout.tau_s, cfg.dt)
        layers = [*layers[:-1], dataclasses.replace(readout, a_avg=a_avg, c_avg=c_avg)]
    validate_network(events, layers, cfg)
    session = _Session(events, layers, cfg, impl)
    flat = _Session.flatten(layers)
    keep_states = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad
        for layer in layers
        for t in (layer.alpha, layer.beta, layer.c, layer.a_avg, layer.c_avg)
    )
    out = _EventProp.apply(session, keep_states, *flat)
    return EngineOutput(
        voltage=out[0], first_spike_time=out[1], hidden_counts=list(out[2:]), tape=session.tape
    )
