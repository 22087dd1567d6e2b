"""The spiking network as a ``torch.nn.Module``: hidden LIF layers and a readout."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from eventprop.engine.function import BACKENDS, TIMINGS, run_network
from eventprop.engine.spec import EngineConfig, Tape
from eventprop.events import EventBatch
from eventprop.models.layers import LIFLayer, LIReadout, TimeConstants

__all__ = ["Network", "NetworkOutput"]


class NetworkOutput(NamedTuple):
    """What a forward pass returns; tensors take part in autograd."""

    voltage: torch.Tensor  #: (B, T, K) readout voltage at the end of each step
    first_spike_time: torch.Tensor  #: (B, K) first readout spike time in ms (T*dt if none)
    hidden_counts: list[torch.Tensor]  #: per hidden layer, (B, n_l) spike counts
    tape: Tape  #: what the engine kept for the backward pass
    dt: float  #: step length (ms)


class Network(nn.Module):
    """Input -> hidden LIF layers (any depth, feed-forward or recurrent) -> readout.

    ``backend`` selects the engine (``"numba"``: event-driven CPU kernels; ``"torch"``:
    plain PyTorch, CPU or CUDA); both compute the same numbers. ``timing`` selects how spike
    times relate to the time grid (``"grid"``: every event on a step boundary, the paper's
    discretisation; ``"exact"``: spikes at their real times inside steps). Standard PyTorch
    machinery works: optimisers over ``parameters()``, ``state_dict``, ``.to(device)``,
    ``.double()``.
    """

    def __init__(
        self,
        hidden: Sequence[LIFLayer],
        readout: LIReadout,
        *,
        dt: float = 1.0,
        backend: str = "numba",
        theta: float = 1.0,
        min_denominator: float = 1e-3,
        timing: str = "grid",
    ) -> None:
        super().__init__()
        if backend not in BACKENDS:
            raise ValueError(f"backend: unknown {backend!r}; choose one of {sorted(BACKENDS)}")
        if not (dt > 0):
            raise ValueError(f"dt: must be positive, got {dt!r}")
        self.hidden = nn.ModuleList(hidden)
        self.readout = readout
        sizes = [layer.n_in for layer in hidden] + [readout.n_in]
        outs = [layer.n_out for layer in hidden]
        for li, (n_in, n_prev) in enumerate(zip(sizes[1:], outs)):
            name = f"hidden[{li + 1}]" if li + 1 < len(hidden) else "readout"
            if n_in != n_prev:
                raise ValueError(f"{name}: takes {n_in} inputs but the layer below has {n_prev}")
        self.dt = float(dt)
        self.backend = backend
        self.theta = float(theta)
        self.min_denominator = float(min_denominator)
        if timing not in TIMINGS:
            raise ValueError(f"timing: unknown mode {timing!r}; choose one of {list(TIMINGS)}")
        self.timing = timing

    @classmethod
    def build(
        cls,
        n_in: int,
        hidden: Sequence[int],
        n_out: int,
        *,
        recurrent: bool = True,
        taus: TimeConstants | None = None,
        readout_taus: TimeConstants | None = None,
        spiking_readout: bool = False,
        seed: int | None = None,
        w_in_mean: float = 0.02,
        w_in_std: float = 0.01,
        w_rec_std: float = 0.02,
        w_out_std: float = 0.3,
        **kwargs,
    ) -> Network:
        """A network with the paper's default initialisation, seeded."""
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        layers, prev = [], n_in
        for n in hidden:
            layers.append(
                LIFLayer(
                    prev,
                    n,
                    recurrent=recurrent,
                    taus=taus,
                    w_in_mean=w_in_mean,
                    w_in_std=w_in_std,
                    w_rec_std=w_rec_std,
                    generator=gen,
                )
            )
            prev = n
        readout = LIReadout(
            prev, n_out, spiking=spiking_readout, taus=readout_taus, w_std=w_out_std, generator=gen
        )
        return cls(layers, readout, **kwargs)

    @property
    def n_in(self) -> int:
        return self.hidden[0].n_in if len(self.hidden) else self.readout.n_in

    def engine_config(self) -> EngineConfig:
        return EngineConfig(
            dt=self.dt,
            theta=self.theta,
            spiking_readout=self.readout.spiking,
            min_denominator=self.min_denominator,
            timing=self.timing,
        )

    def forward(self, events: EventBatch, backend: str | None = None) -> NetworkOutput:
        layers = [layer.engine_tensors(self.dt) for layer in self.hidden]
        layers.append(self.readout.engine_tensors(self.dt))
        out = run_network(events, layers, self.engine_config(), backend or self.backend)
        return NetworkOutput(
            out.voltage, out.first_spike_time, out.hidden_counts, out.tape, self.dt
        )

    def constrain_(self) -> None:
        """Project trainable time constants onto their bounds (call after optimiser steps)."""
        for layer in [*self.hidden, self.readout]:
            if layer.taus.trainable:
                layer.constrain_()
