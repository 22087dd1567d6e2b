"""The numba and torch backends compute the same numbers on random networks and inputs."""

from __future__ import annotations

import pytest
import torch

from eventprop.losses import SpikeCountRegularizer, make_loss
from tests.conftest import random_events, random_network


def _run(backend: str, dtype: torch.dtype, seed: int, **net_kwargs):
    net = random_network(seed, backend=backend, dtype=dtype, **net_kwargs)
    events = random_events(seed + 100)
    labels = torch.arange(events.batch_size) % net.readout.n_out
    out = net(events)
    spiking = net_kwargs.get("spiking_readout", False)
    loss_fn = make_loss("first_spike" if spiking else "sum_weigh_exp")
    loss = loss_fn(out, labels) + SpikeCountRegularizer(3.0, 1e-4, 5e-5)(out.hidden_counts)
    if not spiking:  # a second, arbitrary readout loss exercises every step's source
        g = torch.Generator().manual_seed(seed)
        loss = (
            loss + (out.voltage * torch.randn(out.voltage.shape, generator=g, dtype=dtype)).mean()
        )
    loss.backward()
    grads = {name: p.grad.clone() for name, p in net.named_parameters()}
    return out, grads


CASES = [
    pytest.param({}, id="recurrent-2-layers"),
    pytest.param({"recurrent": False, "hidden": (24,)}, id="feedforward"),
    pytest.param({"hidden": (10, 10, 8)}, id="3-layers"),
    pytest.param({"hidden": ()}, id="readout-only"),
    pytest.param({"trainable": True, "heterogeneous": True}, id="trainable-taus"),
    pytest.param({"spiking_readout": True, "hidden": (16,)}, id="first-spike"),
]


@pytest.mark.parametrize("net_kwargs", CASES)
@pytest.mark.parametrize(("dtype", "rtol"), [(torch.float64, 1e-5), (torch.float32, 1e-4)])
def test_backends_agree(net_kwargs: dict, dtype: torch.dtype, rtol: float) -> None:
    out_t, g_t = _run("torch", dtype, 7, **net_kwargs)
    out_n, g_n = _run("numba", dtype, 7, **net_kwargs)
    # identical spikes first: the gradients are only comparable on the same trajectory
    for rt, rn in zip(out_t.tape.spikes, out_n.tape.spikes):
        ct, cn = rt.canonical(), rn.canonical()
        assert torch.equal(ct.sample, cn.sample) and torch.equal(ct.step, cn.step)
        assert torch.equal(ct.neuron, cn.neuron)
        torch.testing.assert_close(ct.denominator, cn.denominator, rtol=rtol, atol=rtol)
    n_spikes = sum(c.sum().item() for c in out_t.hidden_counts)
    if net_kwargs.get("hidden", (16,)):
        assert n_spikes > 20, "test network too quiet to exercise the jumps"
    for layer_t, layer_n in zip(out_t.hidden_counts, out_n.hidden_counts):
        assert torch.equal(layer_t, layer_n)
        assert layer_t.sum() > 0, "every hidden layer must spike"
    torch.testing.assert_close(out_t.voltage, out_n.voltage, rtol=rtol, atol=rtol * 1e-2)
    torch.testing.assert_close(out_t.first_spike_time, out_n.first_spike_time)
    if net_kwargs.get("spiking_readout"):
        assert (out_t.first_spike_time < out_t.voltage.shape[1]).any(), "readout never spikes"
    assert g_t.keys() == g_n.keys()
    for name in g_t:
        scale = g_t[name].abs().max().clamp_min(1e-30)
        assert scale > 1e-12 or "tau" in name, f"{name}: gradient vanished"
        err = (g_t[name] - g_n[name]).abs().max() / scale
        assert err <= rtol, f"{name}: relative difference {err:.2e} > {rtol:.0e}"


def test_numba_reruns_when_the_spike_buffer_overflows() -> None:
    from eventprop.engine import numba_backend

    _, reference = _run("numba", torch.float64, 3)
    numba_backend._CAPACITY.clear()
    original = dict(numba_backend._CAPACITY)
    try:
        # a tiny learnt capacity forces the overflow path; nothing may be lost
        net = random_network(3, backend="numba")
        key = (sum(layer.n_out for layer in net.hidden) + net.readout.n_out, 80)
        numba_backend._CAPACITY[key] = 1
        out, grads = _run("numba", torch.float64, 3)
        assert numba_backend._CAPACITY[key] > 1
    finally:
        numba_backend._CAPACITY.clear()
        numba_backend._CAPACITY.update(original)
    for name in reference:
        torch.testing.assert_close(grads[name], reference[name], rtol=1e-12, atol=0)
    assert len(out.tape.records) == sum(c.sum().item() for c in out.hidden_counts)
