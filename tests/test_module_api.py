"""The network behaves like any torch.nn.Module: optimisers, state_dict, devices, dtypes."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from eventprop import EventBatch
from eventprop.losses import make_loss
from eventprop.models import Network, TimeConstants
from tests.conftest import random_events, random_network


def test_state_dict_round_trip_reproduces_outputs() -> None:
    net = random_network(3, trainable=True, heterogeneous=True)
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    other = random_network(99, trainable=True, heterogeneous=True)
    buf.seek(0)
    other.load_state_dict(torch.load(buf))
    events = random_events(1)
    torch.testing.assert_close(net(events).voltage, other(events).voltage, rtol=0, atol=0)
    assert {"hidden.0.tau_m", "hidden.0.weight_rec", "readout.weight"} <= set(net.state_dict())


def test_default_initialisation_follows_the_paper() -> None:
    net = Network.build(700, [512], 20, seed=0)
    w_in, w_rec, w_out = net.hidden[0].weight, net.hidden[0].weight_rec, net.readout.weight
    assert w_in.shape == (700, 512) and w_rec.shape == (512, 512) and w_out.shape == (512, 20)
    assert abs(w_in.mean().item() - 0.02) < 1e-3 and abs(w_in.std().item() - 0.01) < 1e-3
    assert abs(w_rec.mean().item()) < 1e-3 and abs(w_rec.std().item() - 0.02) < 1e-3
    assert abs(w_out.std().item() - 0.3) < 0.01
    assert torch.all(net.hidden[0].tau_m == 20.0) and torch.all(net.hidden[0].tau_s == 5.0)


def test_heterogeneous_taus_are_drawn_and_bounded() -> None:
    taus = TimeConstants(20.0, 5.0, tau_m_std=5.0, tau_s_std=2.0, trainable=True)
    net = Network.build(10, [2000], 2, taus=taus, seed=0)
    tm, ts = net.hidden[0].tau_m.detach(), net.hidden[0].tau_s.detach()
    assert abs(tm.mean().item() - 20.0) < 0.5 and abs(tm.std().item() - 5.0) < 0.5
    assert tm.min() >= 3.0 and ts.min() >= 1.0
    assert isinstance(net.hidden[0].tau_m, torch.nn.Parameter)
    with torch.no_grad():
        net.hidden[0].tau_m[0] = 0.5
    net.constrain_()
    assert net.hidden[0].tau_m[0] == 3.0


def test_self_connections_can_be_excluded_and_stay_excluded() -> None:
    net = Network.build(20, [8], 3, seed=0, backend="numba")
    net.hidden[0].self_connections = False
    net.hidden[0].rec_mask.fill_diagonal_(0.0)
    events = random_events(2)
    out = net(events)
    make_loss("sum")(out, torch.zeros(events.batch_size, dtype=torch.long)).backward()
    assert torch.count_nonzero(torch.diagonal(net.hidden[0].weight_rec.grad)) == 0


@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_adam_training_learns_a_separable_task(backend: str) -> None:
    """Class 0 fires channels 0-9, class 1 channels 10-19: EventProp + Adam must learn it."""
    rng = np.random.default_rng(0)
    labels = torch.tensor([0, 1] * 4)
    times, units = [], []
    for label in labels.tolist():
        n = rng.poisson(150)
        times.append(np.sort(rng.uniform(0, 80, n)))
        units.append(rng.integers(0, 10, n) + 10 * label)
    events = EventBatch.from_spike_times(times, units, n_steps=80, n_channels=20)
    net = random_network(5, hidden=(24,), n_out=2, backend=backend, dtype=torch.float32)
    loss_fn = make_loss("sum_weigh_exp")
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        out = net(events)
        loss = loss_fn(out, labels)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]
    assert torch.equal(loss_fn.predict(net(events)), labels)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_torch_backend_on_cuda_matches_cpu() -> None:
    cpu = random_network(1, backend="torch")
    gpu = random_network(1, backend="torch").cuda()
    events = random_events(1)
    out_c, out_g = cpu(events), gpu(events.to("cuda"))
    out_c.voltage.sum().backward()
    out_g.voltage.sum().backward()
    torch.testing.assert_close(out_g.voltage.cpu(), out_c.voltage)
    for (name, p), q in zip(cpu.named_parameters(), gpu.parameters()):
        torch.testing.assert_close(q.grad.cpu(), p.grad, msg=name)
