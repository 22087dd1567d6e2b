"""Readout losses (method doc section 4).

``output.voltage[:, n]`` is the readout voltage at ``t_n = (n+1)*dt``. Integral losses use the
Riemann sum ``(1/T) * sum_n w(t_n) * V(t_n) * dt`` with ``T = n_steps*dt``; its gradient,
``w(t_n) * dt / T * dL/dlogit``, becomes the per-step source of the readout adjoint.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from eventprop.models.network import NetworkOutput

__all__ = [
    "LOSSES",
    "AvgCrossEntropyLoss",
    "FirstSpikeLoss",
    "MaxLoss",
    "ReadoutLoss",
    "SumLoss",
    "WeightedSumLoss",
    "make_loss",
]


class ReadoutLoss(nn.Module):
    """Base class: ``loss(output, labels)`` is the batch-mean loss, ``predict`` the classes."""

    spiking_readout = False

    def readout_values(self, output: NetworkOutput) -> torch.Tensor:
        """Per-class values whose argmax is the prediction, ``(B, K)``."""
        raise NotImplementedError

    def forward(self, output: NetworkOutput, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.readout_values(output), labels.to(output.voltage.device))

    @torch.no_grad()
    def predict(self, output: NetworkOutput) -> torch.Tensor:
        return self.readout_values(output).argmax(dim=1)


def _times(output: NetworkOutput) -> tuple[torch.Tensor, float]:
    T = output.voltage.shape[1]
    t = (torch.arange(T, device=output.voltage.device, dtype=output.voltage.dtype) + 1) * output.dt
    return t, T * output.dt


class WeightedSumLoss(ReadoutLoss):
    """Cross-entropy on ``(1/T) sum_n w(t_n) V_k(t_n) dt`` for a time weighting ``w``.

    ``weighting``: ``"none"`` (the plain ``sum`` loss), ``"exp"`` (``exp(-t/T)``, the paper's
    loss shaping), ``"linear"`` (``1 - t/T``), ``"sigmoid"`` (``1/(1 + exp((t/T - 0.5)/0.2))``).
    """

    _WEIGHTS: ClassVar[dict[str, Callable[[torch.Tensor], torch.Tensor]]] = {
        "none": torch.ones_like,
        "exp": lambda x: torch.exp(-x),
        "linear": lambda x: 1.0 - x,
        "sigmoid": lambda x: torch.sigmoid(-(x - 0.5) / 0.2),
    }

    def __init__(self, weighting: str = "exp") -> None:
        super().__init__()
        if weighting not in self._WEIGHTS:
            raise ValueError(
                f"weighting: unknown {weighting!r}; choose one of {sorted(self._WEIGHTS)}"
            )
        self.weighting = weighting

    def readout_values(self, output: NetworkOutput) -> torch.Tensor:
        t, T = _times(output)
        w = self._WEIGHTS[self.weighting](t / T) * (output.dt / T)
        return torch.einsum("btk,t->bk", output.voltage, w)


class SumLoss(WeightedSumLoss):
    """Cross-entropy on the time average of the readout voltage (``sum``)."""

    def __init__(self) -> None:
        super().__init__("none")


class MaxLoss(ReadoutLoss):
    """Cross-entropy on ``max_t V_k(t)`` (EventProp paper, latency MNIST)."""

    def readout_values(self, output: NetworkOutput) -> torch.Tensor:
        return output.voltage.amax(dim=1)


class AvgCrossEntropyLoss(ReadoutLoss):
    """Time average of the per-step cross-entropy of ``V(t)``; predicts by the summed voltage."""

    def readout_values(self, output: NetworkOutput) -> torch.Tensor:
        return output.voltage.mean(dim=1)

    def forward(self, output: NetworkOutput, labels: torch.Tensor) -> torch.Tensor:
        B, T, K = output.voltage.shape
        lab = labels.to(output.voltage.device).repeat_interleave(T)
        return F.cross_entropy(output.voltage.reshape(B * T, K), lab)


class FirstSpikeLoss(ReadoutLoss):
    """Time-to-first-spike loss of Wunderlich & Pehle (spiking readout).

    ``-log softmax(-t_k / tau_0)[label] + alpha * (exp(t_label / tau_1) - 1)``; a readout
    neuron that does not spike has ``t = T`` (no gradient through it). Predicts the earliest.
    """

    spiking_readout = True

    def __init__(self, tau_0: float = 0.5, tau_1: float = 6.4, alpha: float = 3e-3) -> None:
        super().__init__()
        for name, v in (("tau_0", tau_0), ("tau_1", tau_1)):
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name}: must be positive, got {v!r}")
        if not (math.isfinite(alpha) and alpha >= 0):
            raise ValueError(f"alpha: must be >= 0, got {alpha!r}")
        self.tau_0, self.tau_1, self.alpha = tau_0, tau_1, alpha

    def readout_values(self, output: NetworkOutput) -> torch.Tensor:
        return -output.first_spike_time / self.tau_0

    def forward(self, output: NetworkOutput, labels: torch.Tensor) -> torch.Tensor:
        labels = labels.to(output.voltage.device)
        ce = F.cross_entropy(self.readout_values(output), labels)
        t_label = output.first_spike_time.gather(1, labels[:, None]).squeeze(1)
        return ce + self.alpha * (torch.exp(t_label / self.tau_1) - 1.0).mean()


LOSSES: dict[str, Callable[..., ReadoutLoss]] = {
    "sum": SumLoss,
    "sum_weigh_exp": lambda: WeightedSumLoss("exp"),
    "sum_weigh_linear": lambda: WeightedSumLoss("linear"),
    "sum_weigh_sigmoid": lambda: WeightedSumLoss("sigmoid"),
    "max": MaxLoss,
    "avg_xentropy": AvgCrossEntropyLoss,
    "first_spike": FirstSpikeLoss,
}


def make_loss(name: str, **kwargs: float) -> ReadoutLoss:
    """The built-in loss ``name`` (see :data:`LOSSES`); kwargs go to ``first_spike``."""
    if name not in LOSSES:
        raise ValueError(f"loss: unknown {name!r}; choose one of {sorted(LOSSES)}")
    if kwargs and name != "first_spike":
        raise ValueError(f"loss {name!r} takes no options, got {sorted(kwargs)}")
    return LOSSES[name](**kwargs)
