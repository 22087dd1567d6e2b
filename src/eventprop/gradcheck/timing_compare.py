"""Grid-timed against exact-timed EventProp gradients on the same network and input.

Exact timing gives the gradient of the continuous model at any ``dt`` (verified against finite
differences), so it is the yardstick for the grid scheme at coarse steps: the cosine between
the two hidden-weight gradients, and whether a step along the grid gradient lowers the grid
network's own loss (a descent direction of the model it trains). Used by the test suite and by
``benchmarks/bench_grid_gradient.py``.

The cosine has a ceiling of its own: on a recurrent network with dense activity, the exact
gradient of some losses (``sum`` and ``max`` without the regulariser) changes by as much when
the weights move by 1 % of their spread (:func:`gradient_stability`); two discretisations of
the model cannot agree better than the model agrees with itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from eventprop.events import EventBatch
from eventprop.losses import SpikeCountRegularizer, make_loss
from eventprop.models import Network

__all__ = [
    "TimingComparison",
    "compare_timings",
    "cosine",
    "gradient_stability",
    "hidden_gradient",
    "paper_network",
]


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Cosine of two flattened tensors."""
    a, b = a.flatten(), b.flatten()
    return float(a @ b / (a.norm() * b.norm()).clamp_min(1e-300))


def paper_network(
    n_in: int, hidden: int, n_out: int, seed: int, dt: float, timing: str, recurrent: bool = True
) -> Network:
    """The paper's SHD initialisation (``Network.build`` defaults), float64, numba backend."""
    net = Network.build(n_in, [hidden], n_out, recurrent=recurrent, seed=seed, dt=dt)
    net.timing = timing
    return net.double()


def _objective(
    net: Network, events: EventBatch, labels: torch.Tensor, loss: str, regularizer: float | None
) -> tuple[torch.Tensor, Network]:
    out = net(events)
    value = make_loss(loss)(out, labels)
    if regularizer is not None:
        value = value + SpikeCountRegularizer(regularizer)(out.hidden_counts)
    return value, out


def hidden_gradient(
    net: Network,
    events: EventBatch,
    labels: torch.Tensor,
    loss: str = "sum_weigh_exp",
    regularizer: float | None = None,
) -> tuple[float, torch.Tensor]:
    """``(loss, gradient of every hidden layer's weights, flattened and concatenated)``.

    ``regularizer``: target spike count of :class:`SpikeCountRegularizer` (None: no regulariser).
    """
    net.zero_grad()
    value, _ = _objective(net, events, labels, loss, regularizer)
    value.backward()
    return float(value.detach()), torch.cat([p.grad.flatten() for p in _hidden_params(net)])


def _hidden_params(net: Network) -> list[torch.Tensor]:
    params = []
    for layer in net.hidden:
        params.append(layer.weight)
        if layer.weight_rec is not None:
            params.append(layer.weight_rec)
    return params


@torch.no_grad()
def _step_loss(
    net: Network,
    events: EventBatch,
    labels: torch.Tensor,
    loss: str,
    regularizer: float | None,
    direction: torch.Tensor,
    eps: float,
) -> float:
    """Loss after moving the hidden weights by ``eps * direction`` (weights restored after)."""
    params = _hidden_params(net)
    saved = [p.detach().clone() for p in params]
    k = 0
    for p in params:
        p.add_(eps * direction[k : k + p.numel()].view_as(p))
        k += p.numel()
    try:
        value, _ = _objective(net, events, labels, loss, regularizer)
        return float(value)
    finally:
        for p, s in zip(params, saved):
            p.copy_(s)


@dataclass
class TimingComparison:
    """Grid against exact timing at one setting."""

    loss_grid: float
    loss_exact: float
    cosine: float  #: between the grid and exact hidden-weight gradients
    grid_descent: list[float]  #: change of the grid network's loss along -g_grid/|g_grid|
    exact_descent: list[float]  #: change of the exact network's loss along -g_exact/|g_exact|
    norm_grid: float
    norm_exact: float


def compare_timings(
    net_grid: Network,
    net_exact: Network,
    events: EventBatch,
    labels: torch.Tensor,
    loss: str = "sum_weigh_exp",
    regularizer: float | None = None,
    eps: tuple[float, ...] = (0.01, 0.03, 0.1),
) -> TimingComparison:
    """Gradients of both networks (same weights), their cosine and the loss change along each.

    ``eps`` are step lengths along the normalised negative gradient (weights are restored).
    """
    loss_g, g_grid = hidden_gradient(net_grid, events, labels, loss, regularizer)
    loss_e, g_exact = hidden_gradient(net_exact, events, labels, loss, regularizer)
    d_grid = -g_grid / g_grid.norm().clamp_min(1e-300)
    d_exact = -g_exact / g_exact.norm().clamp_min(1e-300)
    grid_descent = [
        _step_loss(net_grid, events, labels, loss, regularizer, d_grid, e) - loss_g for e in eps
    ]
    exact_descent = [
        _step_loss(net_exact, events, labels, loss, regularizer, d_exact, e) - loss_e for e in eps
    ]
    return TimingComparison(
        loss_g,
        loss_e,
        cosine(g_grid, g_exact),
        grid_descent,
        exact_descent,
        float(g_grid.norm()),
        float(g_exact.norm()),
    )


def gradient_stability(
    net: Network,
    events: EventBatch,
    labels: torch.Tensor,
    loss: str = "sum_weigh_exp",
    regularizer: float | None = None,
    relative: float = 0.01,
    seed: int = 0,
) -> float:
    """Cosine between the hidden-weight gradient at the weights and at perturbed weights.

    Every hidden weight matrix gets Gaussian noise of ``relative`` times its own standard
    deviation (weights restored after). Near 1: the gradient is a smooth field there; far
    below: it changes on that scale, and no discretisation can agree with it better.
    """
    _, g0 = hidden_gradient(net, events, labels, loss, regularizer)
    gen = torch.Generator().manual_seed(seed)
    params = _hidden_params(net)
    saved = [p.detach().clone() for p in params]
    try:
        with torch.no_grad():
            for p in params:
                noise = torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p)
                p.add_(relative * float(p.std()) * noise)
        _, g1 = hidden_gradient(net, events, labels, loss, regularizer)
    finally:
        with torch.no_grad():
            for p, s in zip(params, saved):
                p.copy_(s)
    return cosine(g0, g1)
