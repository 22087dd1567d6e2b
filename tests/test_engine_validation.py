"""Bad input fails loudly, naming what is wrong."""

from __future__ import annotations

import pytest
import torch

from eventprop import EventBatch
from eventprop.models import LIFLayer, LIReadout, Network, TimeConstants
from tests.conftest import random_events, random_network


def test_channel_count_mismatch_is_named() -> None:
    net = random_network(0)  # 20 input channels
    events = EventBatch.from_dense(torch.ones(1, 5, 21))
    with pytest.raises(ValueError, match=r"layers\[0\]\.w_in: expected shape \(21, n\)"):
        net(events)


@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_nan_parameters_are_rejected(backend: str) -> None:
    net = random_network(0, backend=backend)
    with torch.no_grad():
        net.hidden[1].weight_rec[0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"layers\[1\]\.w_rec: contains NaN"):
        net(random_events(0))


def test_dt_mismatch_is_rejected() -> None:
    net = random_network(0)
    events = EventBatch.from_dense(torch.zeros(1, 5, 20), dt=0.5)
    with pytest.raises(ValueError, match=r"events\.dt = 0\.5 ms but the network runs at dt = 1\.0"):
        net(events)


def test_integer_weights_are_rejected() -> None:
    net = random_network(0)
    net.hidden[0].weight.data = net.hidden[0].weight.data.to(torch.float16)
    with pytest.raises(TypeError, match="dtype"):
        net(random_events(0))


def test_non_event_input_is_rejected() -> None:
    net = random_network(0)
    with pytest.raises(TypeError, match="expected an EventBatch"):
        net(torch.zeros(1, 5, 20))


def test_layer_sizes_must_chain() -> None:
    with pytest.raises(ValueError, match="readout: takes 7 inputs but the layer below has 5"):
        Network([LIFLayer(3, 5)], LIReadout(7, 2))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tau_m": -1.0}, "tau_m: must be a positive"),
        ({"tau_s": float("nan")}, "tau_s: must be a positive"),
        ({"tau_m_std": -1.0}, "tau_m_std: must be >= 0"),
        ({"tau_m": 2.0}, "below their lower bounds"),
    ],
)
def test_bad_time_constants(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TimeConstants(**kwargs)


def test_unknown_backend() -> None:
    with pytest.raises(ValueError, match="backend: unknown 'cuda'"):
        Network.build(3, [4], 2, backend="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_numba_backend_refuses_gpu_tensors() -> None:
    net = random_network(0, backend="numba").cuda()
    with pytest.raises(ValueError, match="backend 'numba' runs on the CPU"):
        net(random_events(0).to("cuda"))
