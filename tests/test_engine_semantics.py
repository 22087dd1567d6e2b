"""The engine's numbers against independent computations of the same discrete model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eventprop import EventBatch
from eventprop.engine.coefficients import step_average_coefficients, step_coefficients
from eventprop.losses import SpikeCountRegularizer
from eventprop.models import Network, TimeConstants
from tests.conftest import random_events, random_network


@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_readout_only_network_is_exact_discrete_gradient(backend: str) -> None:
    """Without hidden spikes the model is linear: gradients equal dense autograd exactly.

    The output of step n is the step average of V, written here from the other closed form of
    the integral (``tau_s/(tau_m - tau_s) * (tau_m (1 - alpha) - tau_s (1 - beta))``).
    """
    taus = TimeConstants(20.0, 5.0, tau_m_std=3.0, tau_s_std=1.0, trainable=True)
    net = Network.build(20, [], 3, seed=1, backend=backend, readout_taus=taus).double()
    x = (torch.rand(4, 60, 20, generator=torch.Generator().manual_seed(0)) < 0.1).double()
    out = net(EventBatch.from_dense(x))
    g = torch.randn(
        out.voltage.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64
    )
    (out.voltage * g).sum().backward()

    w = net.readout.weight.detach().clone().requires_grad_()
    tm = net.readout.tau_m.detach().clone().requires_grad_()
    ts = net.readout.tau_s.detach().clone().requires_grad_()
    a, b, c = step_coefficients(tm, ts, 1.0)
    a_avg = tm * (1 - a)
    c_avg = ts / (tm - ts) * (tm * (1 - a) - ts * (1 - b))
    V = torch.zeros(4, 3, dtype=torch.float64)
    I = torch.zeros_like(V)
    trace = []
    for n in range(60):
        I = I + x[:, n] @ w
        trace.append(a_avg * V + c_avg * I)
        V = a * V + c * I
        I = b * I
    trace = torch.stack(trace, 1)
    (trace * g).sum().backward()
    torch.testing.assert_close(out.voltage, trace, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(net.readout.weight.grad, w.grad, rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(net.readout.tau_m.grad, tm.grad, rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(net.readout.tau_s.grad, ts.grad, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_step_average_coefficients_match_quadrature(dtype: torch.dtype) -> None:
    """a_avg*V + c_avg*I is the mean of the closed-form V(t) over the step, taus near-equal too."""
    tm = torch.tensor([20.0, 5.0, 7.0, 3.0, 30.0], dtype=torch.float64)
    ts = torch.tensor([5.0, 5.0, 7.0 + 1e-7, 2.9, 1.0], dtype=torch.float64)
    for dt in (1.0, 0.1, 0.01):
        a_avg, c_avg = step_average_coefficients(tm.to(dtype), ts.to(dtype), dt)
        s = torch.linspace(0.0, dt, 20001, dtype=torch.float64)[:, None]
        alpha_s = torch.exp(-s / tm)
        u = s / tm - s / ts
        c_s = alpha_s * (s / tm) * torch.where(u.abs() < 1e-9, 1 + u / 2, torch.expm1(u) / u)
        mean_a = torch.trapezoid(alpha_s, s, dim=0) / dt
        mean_c = torch.trapezoid(c_s, s, dim=0) / dt
        tol = 1e-9 if dtype == torch.float64 else 2e-6
        torch.testing.assert_close(a_avg.double(), mean_a, rtol=tol, atol=0)
        torch.testing.assert_close(c_avg.double(), mean_c, rtol=max(tol, 1e-8), atol=0)


def test_step_coefficients_match_closed_form_and_equal_tau_limit() -> None:
    tm = torch.tensor([20.0, 5.0, 7.0, 7.0], dtype=torch.float64, requires_grad=True)
    ts = torch.tensor([5.0, 5.0, 7.0 + 1e-9, 3.0], dtype=torch.float64)
    _, _, c = step_coefficients(tm, ts, 0.5)
    expect = ts / (tm - ts) * (torch.exp(-0.5 / tm) - torch.exp(-0.5 / ts))
    torch.testing.assert_close(c[[0, 3]], expect[[0, 3]], rtol=1e-14, atol=0)
    limit = 0.5 / tm * torch.exp(-0.5 / tm)  # tau_m == tau_s
    torch.testing.assert_close(c[[1, 2]], limit[[1, 2]], rtol=1e-8, atol=0)
    c.sum().backward()
    assert torch.isfinite(tm.grad).all()


@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_silent_hidden_layer_gets_exactly_zero_gradient(backend: str) -> None:
    net = random_network(2, hidden=(8,), backend=backend)
    with torch.no_grad():
        net.hidden[0].weight.mul_(0.01)  # far below threshold
    out = net(random_events(5))
    assert out.hidden_counts[0].sum() == 0
    out.voltage.sum().backward()
    assert torch.count_nonzero(net.hidden[0].weight.grad) == 0
    assert torch.count_nonzero(net.readout.weight.grad) == 0


@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_regulariser_alone_follows_its_formula(backend: str) -> None:
    """With no readout path, the adjoint is driven only by the spike-count rule.

    At each spike of j: p_V <- p_V * (1 + theta / (I - V)) + tau_m^2 * dR/dN_j; between steps
    the exact transposed propagator; dL/dw_in[i, j] sums p_I,j at the arrivals of i.
    """
    net = random_network(4, hidden=(6,), recurrent=False, backend=backend)
    with torch.no_grad():
        net.readout.weight.zero_()
    events = random_events(9, batch=2)
    out = net(events)
    reg = SpikeCountRegularizer(nu=2.0, lambda_upper=0.3, lambda_lower=0.1)
    reg(out.hidden_counts).backward()
    counts = out.hidden_counts[0].detach()
    assert counts.sum() > 10

    layer = net.hidden[0]
    alpha, beta, c = (t.detach().numpy() for t in step_coefficients(layer.tau_m, layer.tau_s, 1.0))
    tau_m = layer.tau_m.detach().numpy()
    B, T = events.batch_size, events.n_steps
    lam = np.where(counts.numpy() > 2.0, 0.3, 0.1)
    dR = lam * (counts.numpy() - 2.0) / B
    rec = out.tape.spikes[0]
    expected = np.zeros_like(layer.weight.detach().numpy())
    for b in range(B):
        pV = np.zeros(6)
        pI = np.zeros(6)
        sel = rec.sample.numpy() == b
        steps, neurons, dens = (
            rec.step.numpy()[sel],
            rec.neuron.numpy()[sel],
            rec.denominator.numpy()[sel],
        )
        ev_sel = events.sample.numpy() == b
        ev_steps, ev_ch = events.step.numpy()[ev_sel], events.channel.numpy()[ev_sel]
        for n in range(T - 1, -1, -1):
            for j, d in zip(neurons[steps == n], dens[steps == n]):
                pV[j] = pV[j] * (1.0 + 1.0 / d) + tau_m[j] ** 2 * dR[b, j]
            pI = beta * pI + c * pV
            pV = alpha * pV
            for ch in ev_ch[ev_steps == n]:
                expected[ch] += pI
    np.testing.assert_allclose(layer.weight.grad.numpy(), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_tape_grows_with_spikes_not_with_time(backend: str) -> None:
    """Appending silent time to a trial adds no spikes and must add no tape memory."""
    net = random_network(1, backend=backend)
    short = random_events(11, n_steps=80)
    long = EventBatch.from_arrays(
        short.sample,
        short.step,
        short.channel,
        batch_size=short.batch_size,
        n_steps=800,
        n_channels=short.n_channels,
        offset=short.offset,
    )
    out_s, out_l = net(short), net(long)
    n_s, n_l = len(out_s.tape.records), len(out_l.tape.records)
    assert n_l >= n_s > 0
    assert n_l - n_s < 0.1 * n_s  # a few late spikes of decaying activity at most
    bytes_per_spike = out_l.tape.records.nbytes() / n_l
    assert bytes_per_spike == 4 + 4 + 4 + 8  # sample, step, neuron (int32) + float64 denominator
    assert out_l.tape.states is None
    if backend == "numba":  # its own copy of the inputs: int32 pointers, uint16 channels
        ptr, channel = out_l.tape.inputs
        assert ptr.dtype == np.int32 and ptr.size == long.batch_size * long.n_steps + 1
        assert channel.dtype == np.uint16 and channel.size == len(long)
        assert out_l.tape.nbytes() == out_l.tape.records.nbytes() + ptr.nbytes + channel.nbytes


def test_trainable_taus_keep_states_and_say_so() -> None:
    net = random_network(1, trainable=True, backend="numba")
    out = net(random_events(3))
    n_neurons = sum(layer.n_out for layer in net.hidden) + net.readout.n_out
    assert out.tape.states is not None
    state_bytes = sum(v.numel() + i.numel() for v, i in out.tape.states) * 8
    assert state_bytes == 2 * 4 * 80 * n_neurons * 8  # (V, I) x batch x steps x neurons
    input_bytes = sum(a.nbytes for a in out.tape.inputs)
    assert out.tape.nbytes() == state_bytes + out.tape.records.nbytes() + input_bytes
    with torch.no_grad():
        out2 = net(random_events(3))
    assert out2.tape.states is None  # no gradient wanted, nothing kept


def test_decayed_state_is_flushed_to_zero_not_subnormal() -> None:
    """Long silence must not leave subnormal floats (100x slower arithmetic on x86)."""
    net = random_network(2, hidden=(), backend="numba", dtype=torch.float32)  # readout only
    ev = EventBatch.from_arrays(
        torch.tensor([0]), torch.tensor([0]), torch.tensor([3]), batch_size=1, n_steps=3000,
        n_channels=20,
    )  # fmt: skip
    v = net(ev).voltage.detach()[0]
    assert bool((v[10] != 0).any())  # the input spike reached the readout
    tail = v[-100:]
    assert bool((tail == 0).all())  # decayed below 1e-30 and set to zero
    tiny = torch.finfo(torch.float32).tiny
    assert not bool(((v != 0) & (v.abs() < tiny)).any())  # never a subnormal on the way


def test_numba_backward_needs_only_the_tape_not_the_batch() -> None:
    """The numba tape keeps its own copy of the inputs: the batch can be freed after forward."""
    import gc
    import weakref

    torch.manual_seed(0)
    net = random_network(3, backend="numba")
    ev = random_events(4)
    ref_grads = None
    for keep_batch in (True, False):
        net.zero_grad()
        events = EventBatch.from_arrays(
            ev.sample, ev.step, ev.channel, batch_size=ev.batch_size, n_steps=ev.n_steps,
            n_channels=ev.n_channels,
        )  # fmt: skip
        alive = weakref.ref(events)
        out = net(events)
        loss = out.voltage.sum() + sum(c.sum() for c in out.hidden_counts)
        if not keep_batch:
            del events
            gc.collect()
            assert alive() is None  # nothing in the graph or the tape holds the batch
        loss.backward()
        grads = [p.grad.clone() for p in net.parameters() if p.grad is not None]
        if ref_grads is None:
            ref_grads = grads
        else:
            for a, b in zip(ref_grads, grads):
                torch.testing.assert_close(a, b, rtol=0, atol=0)
