"""Exact spike timing: the engine follows the continuous model inside every step.

Checked against the independent float64 reference (``eventprop.gradcheck.reference``): spike
times within 1e-9 ms, readout values equal to its step-integral loss, EventProp gradients equal
to central finite differences (relative error <= 1e-4 per parameter group) at dt = 1 and 2 ms;
both backends agree with each other; cascades, double crossings and transient crossings inside
one step are constructed on purpose and counted.
"""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

from eventprop.cli.gradcheck_exact import add_timing_option, run_with_timing
from eventprop.engine import exact_numba
from eventprop.engine.exact_spec import COUNTERS, ExactTape
from eventprop.gradcheck.check import _compare, engine_network
from eventprop.gradcheck.exact_check import (
    _events,
    _fd,
    check_network,
    exact_engine_gradients,
    run_exact_linear_check,
    spike_time_error,
)
from eventprop.gradcheck.reference import (
    RefLayer,
    RefNetwork,
    random_network,
    random_samples,
    readout_values,
    simulate,
)
from eventprop.losses import SpikeCountRegularizer, make_loss
from tests.conftest import random_events
from tests.conftest import random_network as engine_random_network

BACKENDS = ("numba", "torch")


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """The torch backend issues many tiny ops: intra-op threads only add overhead."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# --------------------------------------------------------------------------- gradients vs FD
@pytest.fixture(scope="module", params=[1.0, 2.0], ids=["dt=1", "dt=2"])
def fd_case(request):
    dt = request.param
    ref, samples, labels = check_network(seed=0, n_samples=2)
    params = list(ref.parameters())  # weights and time constants
    fd, info = _fd(ref, samples, labels, 40.0, params, "sum_weigh_exp", dt, "step_integral")
    assert info.ok, "finite differences crossed a spike change"
    return dt, ref, samples, labels, fd


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradients_equal_finite_differences_at_coarse_steps(fd_case, backend: str) -> None:
    dt, ref, samples, labels, fd = fd_case
    grads, out = exact_engine_gradients(
        ref, samples, labels, 40.0, dt, backend, trainable_taus=True
    )
    hidden = float(out.hidden_counts[0].detach().sum()) / len(samples)
    assert hidden >= 50, f"check network too quiet: {hidden} hidden spikes per sample"
    errors = {e.name: e.rel_error for e in _compare(grads, fd)}
    assert set(errors) >= {"layers.0.w_in", "layers.0.w_rec", "w_out", "layers.0.tau_m"}
    for name, err in errors.items():
        assert err <= 1e-4, f"{name}: relative error {err:.2e} at dt = {dt} ({backend})"
    err, same = spike_time_error(ref, samples, 40.0, out)
    assert same and err <= 1e-9
    assert out.tape.counters["unresolved"] == 0


def test_readout_output_is_the_step_average_of_the_exact_voltage() -> None:
    ref, samples, labels = check_network(seed=1, n_samples=2)
    for dt in (1.0, 2.0):
        _, out = exact_engine_gradients(ref, samples, labels, 40.0, dt, "numba")
        T = out.voltage.shape[1]
        w = np.exp(-(np.arange(T) + 1.0) * dt / 40.0) * dt / 40.0
        for b, (t, u) in enumerate(samples):
            z_ref = readout_values(simulate(ref, t, u, 40.0), "sum_weigh_exp", "step_integral", dt)
            z = out.voltage[b].detach().numpy().T @ w
            np.testing.assert_allclose(z, z_ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_readout_only_network_matches_to_round_off(backend: str) -> None:
    report = run_exact_linear_check(dt=2.0, backend=backend)
    assert report.passed, report.table()


# --------------------------------------------------------------------------- spike times
SPIKE_CASES = [
    pytest.param({"hidden": [10]}, id="recurrent"),
    pytest.param({"hidden": [12, 8], "tau_jitter": 0.3}, id="2-layers-heterogeneous"),
    pytest.param({"hidden": [10], "recurrent": False}, id="feedforward"),
    pytest.param({"hidden": [10], "spiking_readout": True}, id="spiking-readout"),
]


@pytest.mark.parametrize("kwargs", SPIKE_CASES)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dt", [1.0, 2.0])
def test_spike_times_match_the_event_driven_reference(kwargs, backend, dt) -> None:
    kwargs = dict(kwargs)
    hidden = kwargs.pop("hidden")
    ref = random_network(
        20, hidden, 3, seed=5, w_in_mean=0.5, w_in_std=0.25, w_rec_std=0.2, w_out_std=0.5,
        **kwargs,
    )  # fmt: skip
    for layer in ref.layers[1:]:
        layer.w_in *= 1.5
    if ref.spiking_readout:
        ref.w_out += 0.6
    samples, _ = random_samples(2, 20, 40.0, 70, 3, seed=11)
    net = engine_network(ref, dt, backend, trainable_taus=False)
    net.timing = "exact"
    out = net(_events(ref, samples, 40.0, dt))
    err, same = spike_time_error(ref, samples, 40.0, out)
    n_spikes = len(out.tape.records)
    assert n_spikes > 80
    assert same, "spike counts or neurons differ from the reference"
    assert err <= 1e-9, f"spike times off by {err:.2e} ms"


# --------------------------------------------------------------------------- backends agree
AGREE_CASES = [
    pytest.param({}, id="recurrent-2-layers"),
    pytest.param({"recurrent": False, "hidden": (24,)}, id="feedforward"),
    pytest.param({"hidden": (10, 10, 8)}, id="3-layers"),
    pytest.param({"hidden": ()}, id="readout-only"),
    pytest.param({"trainable": True, "heterogeneous": True}, id="trainable-taus"),
    pytest.param({"spiking_readout": True, "hidden": (16,)}, id="first-spike"),
]


def _run(backend: str, seed: int, dtype=torch.float64, **net_kwargs):
    net = engine_random_network(seed, backend=backend, dtype=dtype, **net_kwargs)
    net.timing = "exact"
    events = random_events(seed + 100)
    labels = torch.arange(events.batch_size) % net.readout.n_out
    out = net(events)
    spiking = net_kwargs.get("spiking_readout", False)
    loss_fn = make_loss("first_spike" if spiking else "sum_weigh_exp")
    loss = loss_fn(out, labels) + SpikeCountRegularizer(3.0, 1e-4, 5e-5)(out.hidden_counts)
    if not spiking:  # an arbitrary extra readout loss exercises every step's source
        g = torch.Generator().manual_seed(seed)
        noise = torch.randn(out.voltage.shape, generator=g, dtype=torch.float64).to(dtype)
        loss = loss + (out.voltage * noise).mean()
    loss.backward()
    return out, {name: p.grad.clone() for name, p in net.named_parameters()}


@pytest.mark.parametrize("net_kwargs", AGREE_CASES)
def test_numba_and_torch_agree(net_kwargs: dict) -> None:
    out_t, g_t = _run("torch", 7, **net_kwargs)
    out_n, g_n = _run("numba", 7, **net_kwargs)
    assert isinstance(out_t.tape, ExactTape) and isinstance(out_n.tape, ExactTape)
    rec_t, time_t = out_t.tape.canonical_exact()
    rec_n, time_n = out_n.tape.canonical_exact()
    assert torch.equal(rec_t.sample, rec_n.sample) and torch.equal(rec_t.neuron, rec_n.neuron)
    assert torch.equal(rec_t.step, rec_n.step)
    torch.testing.assert_close(time_t, time_n, rtol=0, atol=1e-9)
    torch.testing.assert_close(rec_t.denominator, rec_n.denominator, rtol=1e-9, atol=1e-9)
    if net_kwargs.get("hidden", (16,)):
        assert sum(c.sum().item() for c in out_t.hidden_counts) > 100
    for ct, cn in zip(out_t.hidden_counts, out_n.hidden_counts):
        assert torch.equal(ct, cn)
    torch.testing.assert_close(out_t.voltage, out_n.voltage, rtol=1e-9, atol=1e-11)
    torch.testing.assert_close(out_t.first_spike_time, out_n.first_spike_time, rtol=0, atol=1e-9)
    assert {k: out_n.tape.counters[k] for k in COUNTERS} == out_t.tape.counters
    assert g_t.keys() == g_n.keys()
    for name in g_t:
        scale = g_t[name].abs().max().clamp_min(1e-30)
        assert scale > 1e-12, f"{name}: gradient vanished"
        err = ((g_t[name] - g_n[name]).abs().max() / scale).item()
        assert err <= 1e-9, f"{name}: relative difference {err:.2e}"


def test_numba_fast_and_dense_backward_kernels_agree() -> None:
    _, fast = _run("numba", 3, hidden=(20, 12))
    exact_numba.FORCE_DENSE = True
    try:
        _, dense = _run("numba", 3, hidden=(20, 12))
    finally:
        exact_numba.FORCE_DENSE = False
    for name in fast:
        torch.testing.assert_close(fast[name], dense[name], rtol=1e-10, atol=1e-13)


def test_float32_network_gets_the_float64_spikes() -> None:
    # the numba kernels compute in float64 (the float32 weights differ from the float64 ones
    # by the rounding of the test network's scaling only)
    out64, g64 = _run("numba", 4)
    out32, g32 = _run("numba", 4, dtype=torch.float32)
    assert out32.voltage.dtype == torch.float32
    for c32, c64 in zip(out32.hidden_counts, out64.hidden_counts):
        assert torch.equal(c32.double(), c64)
    torch.testing.assert_close(out32.tape.times, out64.tape.times, rtol=0, atol=1e-5)
    for name in g64:
        assert g32[name].dtype == torch.float32
        scale = g64[name].abs().max()
        assert ((g32[name].double() - g64[name]).abs().max() / scale).item() <= 1e-4, name


def test_numba_reruns_when_the_spike_buffer_overflows() -> None:
    _, reference = _run("numba", 2)
    saved = dict(exact_numba._CAPACITY)
    try:
        for key in exact_numba._CAPACITY:
            exact_numba._CAPACITY[key] = 1
        out, grads = _run("numba", 2)
    finally:
        exact_numba._CAPACITY.clear()
        exact_numba._CAPACITY.update(saved)
    for name in reference:
        torch.testing.assert_close(grads[name], reference[name], rtol=1e-12, atol=0)
    assert len(out.tape.records) == sum(c.sum().item() for c in out.hidden_counts)


# --------------------------------------------------------------------------- constructed events
def _constructed() -> tuple[RefNetwork, list, list[int]]:
    """Three recurrent neurons, dt = 2 ms; events placed so that inside single steps

    - neuron 0 (input 30 at 0.3 ms) crosses twice in step 0 (double crossing),
    - its spike drives neuron 1 over threshold in the same step (cascade),
    - neuron 2 crosses in step 1 (input at 2.1 ms), then a strong inhibitory input at 3.0 ms
      pulls its reset-free voltage below theta before the step ends (transient crossing).
    """
    w_in = np.zeros((3, 3))
    w_in[0, 0] = 30.0
    w_in[1, 2] = 30.0
    w_in[2, 2] = -200.0
    w_rec = np.zeros((3, 3))
    w_rec[0, 1] = 40.0
    w_rec[1, 1] = -60.0
    w_rec[1, 2] = 0.05
    w_rec[2, 0] = -0.5
    layer = RefLayer(w_in, w_rec, np.full(3, 20.0), np.full(3, 5.0))
    w_out = np.array([[0.5, -0.3], [-0.2, 0.4], [0.3, 0.1]])
    net = RefNetwork([layer], w_out, np.full(2, 20.0), np.full(2, 5.0))
    samples = [(np.array([0.3, 2.1, 3.0, 9.5]), np.array([0, 1, 2, 0]))]
    return net, samples, [1]


@pytest.mark.parametrize("backend", BACKENDS)
def test_cascades_double_and_transient_crossings_inside_one_step(backend: str) -> None:
    ref, samples, labels = _constructed()
    dt, t_end = 2.0, 12.0
    grads, out = exact_engine_gradients(ref, samples, labels, t_end, dt, backend)
    err, same = spike_time_error(ref, samples, t_end, out)
    assert same and err <= 1e-9
    c = out.tape.counters
    assert c["multi_crossings"] >= 1
    assert c["cascades"] >= 1
    assert c["transient_crossings"] >= 1
    assert c["missed_by_grid"] == c["multi_crossings"] + c["transient_crossings"]
    assert c["unresolved"] == 0
    # the spikes of step 0: neuron 0 twice, neuron 1 in between or after, all in (0, dt]
    rec, times = out.tape.canonical_exact()
    first_step = rec.step == 0
    assert (rec.neuron[first_step] == 0).sum() >= 2 and (rec.neuron[first_step] == 1).sum() >= 1
    offsets = times / dt - rec.step.double()
    assert bool(((offsets >= 0) & (offsets <= 1)).all())
    fd, info = _fd(ref, samples, labels, t_end, None, "sum_weigh_exp", dt, "step_integral")
    assert info.ok
    for e in _compare(grads, fd):
        assert e.rel_error <= 1e-4, f"{e.name}: {e.rel_error:.2e}"


def test_tape_records_exact_times_inside_their_steps() -> None:
    out, _ = _run("numba", 5)
    tape = out.tape
    assert tape.times is not None and tape.times.dtype == torch.float64
    assert len(tape.times) == len(tape.records)
    offsets = tape.times / 1.0 - tape.records.step.double()
    assert bool(((offsets >= 0) & (offsets <= 1)).all())
    assert bool((tape.records.denominator > 0).all())
    assert tape.nbytes() == tape.records.nbytes() + tape.times.numel() * 8
    for layer in tape.exact_spikes():  # sorted by (sample, time)
        s, t = layer[0].numpy(), layer[2].numpy()
        assert np.all(np.diff(s) >= 0)
        same = np.diff(s) == 0
        assert np.all(np.diff(t)[same] >= 0)


# --------------------------------------------------------------------------- CLI
def test_exact_gradcheck_command(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dt", type=float, nargs="+", default=[0.01])
    parser.add_argument("--backend", default="numba")
    parser.add_argument("--loss", default="sum_weigh_exp")
    parser.add_argument("--taus", action="store_true")
    parser.add_argument("--tol", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=2)
    add_timing_option(parser)
    args = parser.parse_args(["--timing", "exact", "--dt", "2.0", "--samples", "1"])
    assert run_with_timing(args) == 0
    text = capsys.readouterr().out
    assert "layers.0.tau_m" in text and "PASSED" in text and "1.0e-04" in text
