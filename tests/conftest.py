"""Shared fixtures: random networks and inputs that produce a healthy number of spikes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from eventprop import EventBatch
from eventprop.models import Network, TimeConstants

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def random_events(
    seed: int, batch: int = 4, n_steps: int = 80, n_channels: int = 20, rate: float = 0.06
) -> EventBatch:
    """Poisson-like input with exact (sub-step) spike times."""
    rng = np.random.default_rng(seed)
    times, units = [], []
    for _ in range(batch):
        n = rng.poisson(rate * n_steps * n_channels)
        times.append(np.sort(rng.uniform(0.0, n_steps, n)))
        units.append(rng.integers(0, n_channels, n))
    return EventBatch.from_spike_times(times, units, n_steps=n_steps, n_channels=n_channels, dt=1.0)


def random_network(
    seed: int,
    hidden: tuple[int, ...] = (16, 12),
    n_in: int = 20,
    n_out: int = 4,
    *,
    recurrent: bool = True,
    trainable: bool = False,
    heterogeneous: bool = False,
    spiking_readout: bool = False,
    backend: str = "torch",
    dtype: torch.dtype = torch.float64,
) -> Network:
    """A network whose every layer spikes on :func:`random_events` input."""
    taus = TimeConstants(
        20.0,
        5.0,
        tau_m_std=4.0 if heterogeneous else 0.0,
        tau_s_std=1.0 if heterogeneous else 0.0,
        trainable=trainable,
    )
    net = Network.build(
        n_in,
        list(hidden),
        n_out,
        recurrent=recurrent,
        taus=taus,
        readout_taus=taus,
        spiking_readout=spiking_readout,
        seed=seed,
        w_in_mean=0.25,
        w_in_std=0.1,
        w_rec_std=0.05,
        w_out_std=1.5 if spiking_readout else 0.3,
        backend=backend,
    ).to(dtype)
    with torch.no_grad():
        for layer in net.hidden[1:]:
            layer.weight.mul_(2.5)
        if spiking_readout:
            net.readout.weight.add_(0.6)
    return net


@pytest.fixture
def shared_data_dir() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA
