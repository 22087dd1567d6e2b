"""Surrogate-gradient BPTT baseline: same forward as the engine, exact where no threshold is
crossed, trains, and agrees with snnTorch's autograd on the same model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eventprop import EventBatch
from eventprop.baselines import (
    METHODS,
    BPTTNetwork,
    SavedTensorMeter,
    build_model,
    snntorch_available,
    superspike,
)
from eventprop.losses import SpikeCountRegularizer, make_loss
from eventprop.models import Network, TimeConstants
from tests.conftest import random_events, random_network

NETWORKS = {
    "recurrent": {},
    "feedforward": {"recurrent": False},
    "one-layer": {"hidden": (16,)},
    "heterogeneous": {"heterogeneous": True},
    "spiking-readout": {"spiking_readout": True},
}


def _records(out):
    r = out.tape.records.canonical()
    return r.sample, r.step, r.neuron, r.denominator


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_forward_reproduces_engine(name: str) -> None:
    net = random_network(3, **NETWORKS[name])
    events = random_events(4)
    ref = net(events)
    out = BPTTNetwork(net)(events)
    assert sum(int(c.sum()) for c in ref.hidden_counts) > 50  # the test means something
    torch.testing.assert_close(out.voltage, ref.voltage, rtol=0, atol=1e-12)
    torch.testing.assert_close(out.first_spike_time, ref.first_spike_time, rtol=0, atol=1e-12)
    for a, b in zip(out.hidden_counts, ref.hidden_counts):
        assert torch.equal(a, b)
    s1, t1, n1, d1 = _records(out)
    s2, t2, n2, d2 = _records(ref)
    assert torch.equal(s1, s2) and torch.equal(t1, t2) and torch.equal(n1, n2)
    torch.testing.assert_close(d1, d2, rtol=0, atol=1e-12)
    assert out.tape.offsets == ref.tape.offsets
    assert out.tape.n_clamped == ref.tape.n_clamped
    assert out.dt == ref.dt


def test_forward_matches_numba_backend_in_float32() -> None:
    net = random_network(5, hidden=(16,), backend="numba", dtype=torch.float32)
    events = random_events(6)
    ref = net(events)
    out = BPTTNetwork(net, record_spikes=False)(events)
    torch.testing.assert_close(out.voltage, ref.voltage, rtol=1e-5, atol=1e-5)
    assert torch.equal(out.hidden_counts[0], ref.hidden_counts[0])
    assert len(out.tape.records) == 0  # not recorded


@pytest.mark.parametrize("recurrent", [True, False])
def test_readout_gradients_equal_eventprop(recurrent: bool) -> None:
    """The readout does not cross a threshold: both methods give its exact gradient."""
    net = random_network(7, recurrent=recurrent, trainable=True, heterogeneous=True)
    events = random_events(8)
    labels = torch.tensor([0, 1, 2, 3])
    loss_fn = make_loss("sum_weigh_exp")
    grads = []
    for model in (net, BPTTNetwork(net)):
        net.zero_grad()
        loss_fn(model(events), labels).backward()
        grads.append({k: p.grad.clone() for k, p in net.named_parameters()})
    for key in ("readout.weight", "readout.tau_m", "readout.tau_s"):
        torch.testing.assert_close(grads[1][key], grads[0][key], rtol=1e-10, atol=1e-14)
    # hidden gradients exist in both but differ: the surrogate is not EventProp's jump
    assert grads[1]["hidden.0.weight"].abs().sum() > 0


def test_readout_only_network_gradients_equal_eventprop() -> None:
    taus = TimeConstants(trainable=True, tau_m_std=3.0, tau_s_std=1.0)
    net = Network.build(20, [], 4, seed=0, readout_taus=taus, backend="torch").double()
    events = random_events(9)
    labels = torch.tensor([3, 2, 1, 0])
    grads = []
    for model in (net, build_model(net, "bptt")):
        net.zero_grad()
        make_loss("sum")(model(events), labels).backward()
        grads.append([p.grad.clone() for p in net.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-14)


def test_first_spike_loss_and_regulariser_backpropagate() -> None:
    net = random_network(11, hidden=(16,), spiking_readout=True)
    events = random_events(12)
    out = BPTTNetwork(net)(events)
    ref = net(events)
    torch.testing.assert_close(out.first_spike_time, ref.first_spike_time, rtol=0, atol=1e-12)
    loss = make_loss("first_spike")(out, torch.tensor([0, 1, 2, 3]))
    loss = loss + SpikeCountRegularizer(5.0, 1e-3, 1e-3)(out.hidden_counts)
    loss.backward()
    for p in (net.hidden[0].weight, net.readout.weight):
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


def test_superspike_value_and_derivative() -> None:
    x = torch.tensor([-1.0, -0.1, 0.0, 0.05, 2.0], dtype=torch.float64, requires_grad=True)
    s = superspike(x, 10.0)
    assert s.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0]
    s.sum().backward()
    torch.testing.assert_close(x.grad, 1.0 / (1.0 + 10.0 * x.detach().abs()) ** 2)


def test_surrogate_slope_changes_gradients_not_forward() -> None:
    net = random_network(13, hidden=(16,))
    events = random_events(14)
    labels = torch.tensor([0, 1, 2, 3])
    outs, grads = [], []
    for slope in (5.0, 50.0):
        net.zero_grad()
        out = BPTTNetwork(net, surrogate_slope=slope)(events)
        make_loss("sum_weigh_exp")(out, labels).backward()
        outs.append(out.voltage.detach())
        grads.append(net.hidden[0].weight.grad.clone())
    assert torch.equal(outs[0], outs[1])
    assert not torch.allclose(grads[0], grads[1])


def test_bptt_trains_a_separable_task() -> None:
    """Two classes: early bursts on channels 0-9 vs 10-19; BPTT reaches 100 %."""
    rng = np.random.default_rng(0)
    B, T, C = 16, 60, 20
    labels = torch.arange(B) % 2
    dense = np.zeros((B, T, C), dtype=np.int64)
    for b in range(B):
        lo = 0 if labels[b] == 0 else 10
        dense[b, :30, lo : lo + 10] = rng.random((30, 10)) < 0.2
    events = EventBatch.from_dense(dense)
    torch.manual_seed(0)
    net = Network.build(C, [24], 2, seed=1, w_in_mean=0.1, w_in_std=0.05, backend="torch")
    model = build_model(net, "bptt")
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = make_loss("sum_weigh_exp")
    losses = []
    for _ in range(40):
        opt.zero_grad()
        out = model(events)
        loss = loss_fn(out, labels)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
    with torch.no_grad():
        acc = (loss_fn.predict(model(events)) == labels).float().mean()
    assert acc == 1.0


def test_build_model_and_parameter_sharing() -> None:
    net = random_network(15, hidden=(8,))
    assert METHODS == ("eventprop", "bptt")
    assert build_model(net, "eventprop") is net
    bptt = build_model(net, "bptt", surrogate_slope=25.0)
    assert isinstance(bptt, BPTTNetwork) and bptt.surrogate_slope == 25.0
    assert {id(p) for p in bptt.parameters()} == {id(p) for p in net.parameters()}
    with pytest.raises(ValueError, match="method: unknown 'adjoint'"):
        build_model(net, "adjoint")


def test_input_validation() -> None:
    net = random_network(16, hidden=(8,))
    bptt = BPTTNetwork(net)
    with pytest.raises(TypeError, match="expected an eventprop Network"):
        BPTTNetwork(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="surrogate_slope"):
        BPTTNetwork(net, surrogate_slope=0.0)
    with pytest.raises(ValueError, match="input channels but the network takes 20"):
        bptt(random_events(1, n_channels=12))
    events = random_events(1)
    coarse = EventBatch.from_arrays(
        events.sample, events.step, events.channel, batch_size=4, n_steps=80, n_channels=20, dt=2.0
    )
    with pytest.raises(ValueError, match=r"events\.dt"):
        bptt(coarse)
    with pytest.raises(TypeError, match="expected an EventBatch"):
        bptt(torch.zeros(4, 80, 20))
    exact = Network.build(20, [8], 4, seed=0, timing="exact")
    with pytest.raises(ValueError, match="timing: BPTT steps through the time grid"):
        BPTTNetwork(exact)


def test_saved_tensor_meter_counts_distinct_storages() -> None:
    w = torch.nn.Parameter(torch.randn(8, 8, dtype=torch.float64))
    x = torch.randn(4, 8, dtype=torch.float64, requires_grad=True)
    with SavedTensorMeter([w]) as meter:
        y = x @ w  # saves x and w (w excluded)
        z = (y * y).sum()  # saves y once (same storage twice)
    assert meter.nbytes == x.numel() * 8 + y.numel() * 8
    z.backward()


def test_bptt_held_memory_grows_with_trial_length() -> None:
    net = random_network(17, hidden=(16,), dtype=torch.float32)
    held = []
    for T in (40, 80):
        events = random_events(18, n_steps=T)
        with SavedTensorMeter([*net.parameters(), *net.buffers()]) as meter:
            out = BPTTNetwork(net, record_spikes=False)(events)
            make_loss("sum")(out, torch.tensor([0, 1, 2, 3])).backward()
        held.append(meter.nbytes)
    # per step and spiking layer: V - theta (4 B), spikes (4 B), reset mask (1 B) per neuron
    per_step = 4 * 16 * 9
    assert held[1] - held[0] == pytest.approx(40 * per_step, rel=0.15)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")
def test_forward_on_cuda() -> None:  # pragma: no cover - needs a GPU
    net = random_network(19, hidden=(16,))
    events = random_events(20)
    ref = net(events)
    out = BPTTNetwork(net.to("cuda"))(events.to("cuda"))
    torch.testing.assert_close(out.voltage.cpu(), ref.voltage, rtol=0, atol=1e-10)


@pytest.mark.skipif(not snntorch_available(), reason="snnTorch not installed")
def test_snntorch_peer_simulates_the_same_model_and_gradients() -> None:
    from eventprop.baselines import SnnTorchPeer
    from eventprop.models import NetworkOutput

    net = random_network(21, hidden=(16,), dtype=torch.float32)
    events = random_events(22)
    labels = torch.tensor([0, 1, 2, 3])
    loss_fn = make_loss("sum_weigh_exp")
    peer = SnnTorchPeer(net)
    v, counts = peer(events)
    ref = net(events)
    torch.testing.assert_close(v, ref.voltage, rtol=1e-5, atol=1e-5)
    assert torch.equal(counts, ref.hidden_counts[0])
    loss_fn(NetworkOutput(v, None, [counts], None, 1.0), labels).backward()
    net.zero_grad()
    loss_fn(BPTTNetwork(net)(events), labels).backward()
    c = float(net.hidden[0].engine_tensors(1.0).c[0])
    c_out = float(net.readout.engine_tensors(1.0).c[0])
    pairs = [
        (net.hidden[0].weight.grad, peer.fc_in.weight.grad.T * c),
        (net.hidden[0].weight_rec.grad, peer.lif.recurrent.weight.grad.T * c),
        (net.readout.weight.grad, peer.fc_out.weight.grad.T * c_out),
    ]
    for ours, theirs in pairs:
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-6)
