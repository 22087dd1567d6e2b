"""Exact one-step propagators of the LIF/LI dynamics, differentiable in the time constants.

Over one step of length ``dt`` with no input, ``tau_m dV/dt = -V + I`` and ``tau_s dI/dt = -I``
map ``(V, I)`` to ``(alpha*V + c*I, beta*I)`` with

    alpha = exp(-dt/tau_m),  beta = exp(-dt/tau_s),  c = tau_s/(tau_m - tau_s) * (alpha - beta).

The engine consumes ``(alpha, beta, c)`` and returns the gradient of the loss with respect to
them; autograd then carries it to the time constants (whatever parametrisation, bound or
sharing the model uses). ``c`` is written as ``alpha * dt/tau_m * exprel(u)`` with
``u = dt/tau_m - dt/tau_s`` and ``exprel(u) = (exp(u) - 1)/u``, which is smooth through
``tau_m == tau_s`` (where ``c = alpha * dt/tau_m``), so values and gradients stay accurate there.
"""

from __future__ import annotations

import torch

__all__ = ["step_coefficients"]

_SERIES_BELOW = 1e-4


def _exprel(u: torch.Tensor) -> torch.Tensor:
    """(exp(u) - 1)/u, with its Taylor series near 0 so that autograd sees no 0/0."""
    small = u.abs() < _SERIES_BELOW
    safe = torch.where(small, torch.ones_like(u), u)
    series = 1.0 + u / 2.0 + u * u / 6.0
    return torch.where(small, series, torch.expm1(safe) / safe)


def step_coefficients(
    tau_m: torch.Tensor, tau_s: torch.Tensor, dt: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return ``(alpha, beta, c)`` for per-neuron time constants (ms) and step ``dt`` (ms)."""
    alpha = torch.exp(-dt / tau_m)
    beta = torch.exp(-dt / tau_s)
    u = dt / tau_m - dt / tau_s
    c = alpha * (dt / tau_m) * _exprel(u)
    return alpha, beta, c
