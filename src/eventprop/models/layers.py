"""LIF hidden layers and the leaky-integrator readout.

Layers own parameters only; the simulation is the engine's. Weights are stored in the
(pre, post) layout, ``weight[i, j]`` = synapse from ``i`` to ``j``, because a spike of ``i``
delivers one contiguous row -- the engine's inner operation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from eventprop.engine.coefficients import step_average_coefficients, step_coefficients
from eventprop.engine.spec import LayerTensors

__all__ = ["LIFLayer", "LIReadout", "TimeConstants"]


@dataclass(frozen=True)
class TimeConstants:
    """Membrane and synaptic time constants of a layer (ms).

    ``tau_m_std``/``tau_s_std`` > 0 make the layer heterogeneous: per-neuron values are drawn
    at initialisation from a gamma distribution with the given mean and standard deviation
    (positive, right-skewed, as membrane time constants in cortex), then raised to the lower
    bounds. ``trainable`` makes them parameters; the engine uses ``max(tau, bound)``, the
    paper's bounds being ``tau_m >= 3 ms`` and ``tau_s >= 1 ms``.
    """

    tau_m: float = 20.0
    tau_s: float = 5.0
    tau_m_std: float = 0.0
    tau_s_std: float = 0.0
    trainable: bool = False
    tau_m_min: float = 3.0
    tau_s_min: float = 1.0

    def __post_init__(self) -> None:
        for name in ("tau_m", "tau_s", "tau_m_min", "tau_s_min"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name}: must be a positive number of ms, got {value!r}")
        for name in ("tau_m_std", "tau_s_std"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name}: must be >= 0, got {value!r}")
        if self.tau_m < self.tau_m_min or self.tau_s < self.tau_s_min:
            raise ValueError("tau_m/tau_s: below their lower bounds tau_m_min/tau_s_min")


def _draw(
    mean: float, std: float, n: int, bound: float, gen: torch.Generator | None
) -> torch.Tensor:
    if std == 0:
        return torch.full((n,), float(mean))
    shape = (mean / std) ** 2
    rate = mean / std**2
    # gamma via torch's generator-aware sampler: Gamma(k, 1) / rate
    sample = torch._standard_gamma(torch.full((n,), shape, dtype=torch.float64), generator=gen)
    return torch.clamp(sample / rate, min=bound).float()


class _TauMixin(nn.Module):
    """Holds per-neuron tau_m, tau_s as parameters (trainable) or buffers (fixed)."""

    def _init_taus(self, n: int, taus: TimeConstants, gen: torch.Generator | None) -> None:
        self.taus = taus
        tau_m = _draw(taus.tau_m, taus.tau_m_std, n, taus.tau_m_min, gen)
        tau_s = _draw(taus.tau_s, taus.tau_s_std, n, taus.tau_s_min, gen)
        if taus.trainable:
            self.tau_m = nn.Parameter(tau_m)
            self.tau_s = nn.Parameter(tau_s)
        else:
            self.register_buffer("tau_m", tau_m)
            self.register_buffer("tau_s", tau_s)

    def effective_taus(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Time constants as the engine uses them (raised to their lower bounds)."""
        return (
            torch.clamp(self.tau_m, min=self.taus.tau_m_min),
            torch.clamp(self.tau_s, min=self.taus.tau_s_min),
        )

    @torch.no_grad()
    def constrain_(self) -> None:
        """Project trainable time constants back onto their bounds (call after a step)."""
        self.tau_m.clamp_(min=self.taus.tau_m_min)
        self.tau_s.clamp_(min=self.taus.tau_s_min)

    def _engine_tensors(
        self, w_in: torch.Tensor, w_rec: torch.Tensor | None, dt: float, readout: bool = False
    ) -> LayerTensors:
        tau_m, tau_s = self.effective_taus()
        tau_m, tau_s = tau_m.to(w_in.dtype), tau_s.to(w_in.dtype)
        alpha, beta, c = step_coefficients(tau_m, tau_s, dt)
        a_avg = c_avg = None
        if readout:  # the readout reports step averages of V (engine.coefficients)
            a_avg, c_avg = step_average_coefficients(tau_m, tau_s, dt)
        return LayerTensors(
            w_in, w_rec, alpha, beta, c, tau_m.detach(), tau_s.detach(), a_avg, c_avg
        )


class LIFLayer(_TauMixin):
    """A layer of LIF neurons, feed-forward or recurrent.

    Default initialisation (Nowotny et al., SHD): input weights ~ N(0.02, 0.01), recurrent
    weights ~ N(0, 0.02). ``self_connections=False`` keeps the recurrent diagonal at zero
    (its gradient is masked too).
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        *,
        recurrent: bool = True,
        self_connections: bool = True,
        taus: TimeConstants | None = None,
        w_in_mean: float = 0.02,
        w_in_std: float = 0.01,
        w_rec_mean: float = 0.0,
        w_rec_std: float = 0.02,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        _check_size(n_in, "n_in")
        _check_size(n_out, "n_out")
        self.n_in, self.n_out = n_in, n_out
        self.weight = nn.Parameter(_normal((n_in, n_out), w_in_mean, w_in_std, generator))
        self.recurrent = recurrent
        if recurrent:
            self.weight_rec = nn.Parameter(
                _normal((n_out, n_out), w_rec_mean, w_rec_std, generator)
            )
            mask = torch.ones(n_out, n_out)
            if not self_connections:
                mask.fill_diagonal_(0.0)
                with torch.no_grad():
                    self.weight_rec.mul_(mask)
            self.register_buffer("rec_mask", mask)
            self.self_connections = self_connections
        else:
            self.register_parameter("weight_rec", None)
            self.self_connections = False
        self._init_taus(n_out, taus or TimeConstants(), generator)

    def engine_tensors(self, dt: float) -> LayerTensors:
        w_rec = None
        if self.weight_rec is not None:
            w_rec = self.weight_rec if self.self_connections else self.weight_rec * self.rec_mask
        return self._engine_tensors(self.weight, w_rec, dt)

    def extra_repr(self) -> str:
        return f"{self.n_in} -> {self.n_out}, recurrent={self.recurrent}, taus={self.taus}"


class LIReadout(_TauMixin):
    """Leaky-integrator readout (``spiking=True``: LIF readout for time-to-first-spike losses).

    Default weights ~ N(0, 0.3) (Nowotny et al.).
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        *,
        spiking: bool = False,
        taus: TimeConstants | None = None,
        w_mean: float = 0.0,
        w_std: float = 0.3,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        _check_size(n_in, "n_in")
        _check_size(n_out, "n_out")
        self.n_in, self.n_out, self.spiking = n_in, n_out, spiking
        self.weight = nn.Parameter(_normal((n_in, n_out), w_mean, w_std, generator))
        self._init_taus(n_out, taus or TimeConstants(), generator)

    def engine_tensors(self, dt: float) -> LayerTensors:
        return self._engine_tensors(self.weight, None, dt, readout=True)

    def extra_repr(self) -> str:
        return f"{self.n_in} -> {self.n_out}, spiking={self.spiking}, taus={self.taus}"


def _normal(
    shape: tuple[int, int], mean: float, std: float, gen: torch.Generator | None
) -> torch.Tensor:
    return torch.randn(shape, generator=gen) * std + mean


def _check_size(n: object, name: str) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
        raise ValueError(f"{name}: must be a positive integer, got {n!r}")
