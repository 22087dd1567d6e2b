"""Exact one-step propagators of the LIF/LI dynamics, differentiable in the time constants.

Over one step of length ``dt`` with no input, ``tau_m dV/dt = -V + I`` and ``tau_s dI/dt = -I``
map ``(V, I)`` to ``(alpha*V + c*I, beta*I)`` with

    alpha = exp(-dt/tau_m),  beta = exp(-dt/tau_s),  c = tau_s/(tau_m - tau_s) * (alpha - beta).

The engine consumes ``(alpha, beta, c)`` and returns the gradient of the loss with respect to
them; autograd then carries it to the time constants (whatever parametrisation, bound or
sharing the model uses). ``c`` is written as ``alpha * dt/tau_m * exprel(u)`` with
``u = dt/tau_m - dt/tau_s`` and ``exprel(u) = (exp(u) - 1)/u``, which is smooth through
``tau_m == tau_s`` (where ``c = alpha * dt/tau_m``), so values and gradients stay accurate there.

The grid readout reports the *step average* of its voltage, ``(1/dt) * integral of V`` over
the step, which is ``a_avg*V + c_avg*I`` of the state at the step start
(:func:`step_average_coefficients`). A loss on those averages is a loss on the integral of
``V``: its adjoint source is constant over each step and integrated exactly, as in the
continuous model, instead of a delta at each step end.
"""

from __future__ import annotations

import torch

__all__ = ["step_average_coefficients", "step_coefficients"]

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


def step_average_coefficients(
    tau_m: torch.Tensor, tau_s: torch.Tensor, dt: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(a_avg, c_avg)``: the step average of ``V`` is ``a_avg*V + c_avg*I`` (step-start state).

    From ``tau_m dV/dt = I - V``, the integral of ``V`` over a step is
    ``tau_m (V_0 - V_1) + integral of I``, i.e. ``a_avg = tau_m (1 - alpha)/dt`` and
    ``c_avg = (tau_s (1 - beta) - tau_m c)/dt``. The second difference cancels to
    ``O(dt/tau)``, so it is evaluated in float64 (relative error ~1e-16 * tau/dt) and cast back.
    """
    tm, ts = tau_m.to(torch.float64), tau_s.to(torch.float64)
    _, _, c = step_coefficients(tm, ts, dt)
    a_avg = -torch.expm1(-dt / tm) * (tm / dt)
    c_avg = (-torch.expm1(-dt / ts) * ts - tm * c) / dt
    return a_avg.to(tau_m.dtype), c_avg.to(tau_m.dtype)
