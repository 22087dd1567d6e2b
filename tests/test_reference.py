"""Checks of the float64 reference simulator against independent computations.

The reference is the ground truth for EventProp gradient tests, so every part of it is
compared with something computed another way: brute-force time stepping, direct root
finding, quadrature and analytic gradients.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.special import softmax

from eventprop.gradcheck import (
    RefLayer,
    RefNetwork,
    batch_loss,
    finite_difference_gradients,
    first_spike_times,
    hidden_voltage,
    random_network,
    random_samples,
    readout_state,
    readout_values,
    readout_voltage,
    sample_loss,
    simulate,
)


def psp(s, tm, ts):
    """Textbook kernel: V after a unit current kick, tau_m != tau_s, zero for s < 0."""
    s = np.asarray(s, dtype=float)
    k = ts / (tm - ts) * (np.exp(-s / tm) - np.exp(-s / ts))
    return np.where(s > 0, k, 0.0)


def linear_net(n_in=5, k=3, seed=0, spiking=False):
    rng = np.random.default_rng(seed)
    return RefNetwork(
        layers=[],
        w_out=rng.normal(0.0, 0.5, (n_in, k)),
        tau_m_out=np.array([20.0, 8.0, 3.0])[:k],
        tau_s_out=np.array([5.0, 12.0, 2.0])[:k],  # one readout with tau_s > tau_m
        spiking_readout=spiking,
    )


def inputs_with_duplicates(n_in=5, t_end=30.0, n=30, seed=1):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0.0, t_end, n))
    t[5] = t[4]  # simultaneous arrivals on different channels
    t[12] = t[11]
    u = rng.integers(0, n_in, n)
    u[12] = u[11]  # ... and on the same channel
    return t, u


# --------------------------------------------------------------------------- L = 0
def rk4_readout(net, times, units, t_end, h=0.01):
    """Brute force: RK4 of the ODEs, with substeps ending exactly on every input time."""
    tm, ts, w = net.tau_m_out, net.tau_s_out, net.w_out
    V = np.zeros(w.shape[1])
    I = np.zeros(w.shape[1])

    def rhs(V, I):
        return (-V + I) / tm, -I / ts

    t = 0.0
    stops = np.append(np.unique(times), t_end)
    out_t, out_V = [], []
    for stop in stops:
        n = max(1, math.ceil((stop - t) / h))
        dt = (stop - t) / n
        for _ in range(n):
            k1 = rhs(V, I)
            k2 = rhs(V + dt / 2 * k1[0], I + dt / 2 * k1[1])
            k3 = rhs(V + dt / 2 * k2[0], I + dt / 2 * k2[1])
            k4 = rhs(V + dt * k3[0], I + dt * k3[1])
            V = V + dt / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
            I = I + dt / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
            t += dt
        t = stop
        out_t.append(stop)
        out_V.append(V.copy())
        for unit in units[times == stop]:
            I = I + w[unit]
    return np.array(out_t), np.array(out_V)


def test_linear_readout_matches_rk4():
    net = linear_net()
    t, u = inputs_with_duplicates()
    traj = simulate(net, t, u, 30.0)
    bt, bV = rk4_readout(net, t, u, 30.0)
    np.testing.assert_allclose(readout_voltage(traj, bt), bV, rtol=0, atol=1e-9)
    # and the textbook superposition of kernels, at arbitrary times
    grid = np.linspace(0.0, 30.0, 301)
    expect = sum(
        net.w_out[unit] * psp(grid[:, None] - ti, net.tau_m_out, net.tau_s_out)
        for ti, unit in zip(t, u)
    )
    np.testing.assert_allclose(readout_voltage(traj, grid), expect, rtol=0, atol=1e-13)


@pytest.mark.parametrize("loss", ["sum", "sum_weigh_exp"])
def test_integral_loss_matches_quadrature(loss):
    net = linear_net()
    t, u = inputs_with_duplicates()
    T = 30.0
    traj = simulate(net, t, u, T)
    # Gauss-Legendre on every inter-event piece (the trajectory is analytic inside each)
    edges = np.unique(np.concatenate([[0.0], t, [T]]))
    x, wq = np.polynomial.legendre.leggauss(20)
    a, b = edges[:-1, None], edges[1:, None]
    nodes = (a + (b - a) * (x + 1) / 2).ravel()
    weights = ((b - a) / 2 * wq).ravel()
    wt = np.ones_like(nodes) if loss == "sum" else np.exp(-nodes / T)
    expect = (weights * wt) @ readout_voltage(traj, nodes) / T
    got = readout_values(traj, loss, "integral")
    np.testing.assert_allclose(got, expect, rtol=1e-9, atol=1e-14)
    label = 1
    ce = np.log(np.sum(np.exp(expect))) - expect[label]
    assert batch_loss(net, [(t, u)], [label], T, loss=loss) == pytest.approx(ce, rel=1e-9)


def test_modes_agree_where_they_must():
    net = linear_net()
    t, u = inputs_with_duplicates()
    traj = simulate(net, t, u, 30.0)
    # w = 1: the step-wise weight is the weight, so step_integral is the integral
    np.testing.assert_allclose(
        readout_values(traj, "sum", "step_integral", dt=1.0),
        readout_values(traj, "sum", "integral"),
        rtol=1e-12,
    )
    # exp weighting: step-constant weight and sampled V converge to the integral as dt -> 0
    exact = readout_values(traj, "sum_weigh_exp", "integral")
    for mode in ("step_integral", "sampled"):
        err = [
            np.abs(readout_values(traj, "sum_weigh_exp", mode, dt=d) - exact).max()
            for d in (0.5, 0.05)
        ]
        assert err[1] < err[0] / 5


def test_simultaneous_inputs_add_up():
    net = linear_net(n_in=2)
    a = simulate(net, [3.0, 3.0, 7.0], [0, 0, 1], 20.0)
    net2 = linear_net(n_in=2)
    net2.w_out[0] *= 2
    b = simulate(net2, [3.0, 7.0], [0, 1], 20.0)
    grid = np.linspace(0, 20, 81)
    np.testing.assert_allclose(readout_voltage(a, grid), readout_voltage(b, grid), atol=1e-15)


# --------------------------------------------------------------------------- one neuron
def test_single_neuron_spike_time_and_reset():
    tm, ts, w = 20.0, 5.0, 2.0
    times = np.array([1.0, 2.0, 2.5, 9.0, 9.5, 10.0, 10.2])
    net = RefNetwork(
        layers=[RefLayer(w_in=[[w]], w_rec=None, tau_m=[tm], tau_s=[ts])],
        w_out=[[1.0]],
        tau_m_out=[10.0],
        tau_s_out=[2.0],
    )
    traj = simulate(net, times, np.zeros(times.size, int), 20.0)
    st, sn = traj.hidden_spikes[0]
    assert st.size == 2 and np.all(sn == 0)

    # independent: first crossing of the superposed kernels, bracketed on a fine grid
    def v_free(t, t_reset=None, i_reset=0.0):
        if t_reset is None:
            return float(np.sum(w * psp(t - times, tm, ts)))
        late = times[times > t_reset]
        return float(np.sum(w * psp(t - late, tm, ts)) + i_reset * psp(t - t_reset, tm, ts))

    def first_crossing(f, t0):
        grid = np.arange(t0 + 1e-9, 20.0, 1e-3)
        vals = np.array([f(x) for x in grid])
        k = np.flatnonzero(vals >= 1.0)[0]
        return brentq(lambda x: f(x) - 1.0, grid[k - 1], grid[k], xtol=1e-15, rtol=1e-15)

    t1 = first_crossing(v_free, 0.0)
    assert abs(st[0] - t1) < 1e-12
    # V resets to 0 and then evolves from (V, I) = (0, I(t1)): current is untouched
    i1 = float(np.sum(w * np.exp(-(t1 - times[times <= t1]) / ts)))
    assert traj.hidden_spike_current[0][0] == pytest.approx(i1, rel=1e-12)
    assert hidden_voltage(traj, 0, [st[0]])[0, 0] == 0.0
    assert hidden_voltage(traj, 0, [st[0] - 1e-9])[0, 0] == pytest.approx(1.0, abs=1e-8)
    t2 = first_crossing(lambda x: v_free(x, st[0], i1), st[0])
    assert abs(st[1] - t2) < 1e-12
    after = st[0] + 0.3
    if not np.any((times > st[0]) & (times < after)):
        expect = i1 * psp(0.3, tm, ts)
        assert hidden_voltage(traj, 0, [after])[0, 0] == pytest.approx(expect, rel=1e-12)


# --------------------------------------------------------------------------- recurrent
def brute_force_spikes(net, times, units, t_end, dt):
    """Exact-step integration on a grid of step dt; a spike is seen at the end of its step."""
    layers = net.layers
    V = [np.zeros(layer.size) for layer in layers]
    I = [np.zeros(layer.size) for layer in layers]
    Vo = np.zeros(net.n_out)
    Io = np.zeros(net.n_out)

    def coeffs(tm, ts):
        a, b = np.exp(-dt / tm), np.exp(-dt / ts)
        return a, b, ts / (tm - ts) * (a - b)

    cs = [coeffs(layer.tau_m, layer.tau_s) for layer in layers]
    co = coeffs(net.tau_m_out, net.tau_s_out)
    steps = np.rint(times / dt).astype(int)
    n_steps = round(t_end / dt)
    spikes = [[] for _ in layers]
    assert steps.min() > 0  # inputs arrive at step ends, like the spikes
    order = np.argsort(steps, kind="stable")
    steps, units = steps[order], units[order]
    ptr = np.searchsorted(steps, np.arange(n_steps + 2))
    for n in range(n_steps):
        for l, (a, b, c) in enumerate(cs):
            V[l] = a * V[l] + c * I[l]
            I[l] = b * I[l]
        Vo = co[0] * Vo + co[2] * Io
        Io = co[1] * Io
        t = (n + 1) * dt
        drive = np.zeros(net.n_inputs)
        np.add.at(drive, units[ptr[n + 1] : ptr[n + 2]], 1.0)
        for l, layer in enumerate(layers):
            I[l] += drive @ layer.w_in
            spk = V[l] >= 1.0
            V[l][spk] = 0.0
            for j in np.flatnonzero(spk):
                spikes[l].append((t, j))
            drive = spk.astype(float)
            if layer.w_rec is not None:
                I[l] += drive @ layer.w_rec
        Io += drive @ net.w_out
    return spikes, Vo


def test_recurrent_spike_times_match_brute_force():
    T = 20.0
    net = random_network(10, [8, 5], 3, seed=3, w_in_mean=0.5, w_in_std=0.2, w_rec_std=0.2)
    rng = np.random.default_rng(4)
    grid = 2.0**-9  # input times lie on every brute-force grid: only spike detection is stepped
    times = np.sort(rng.integers(1, int(T / grid) - 1, 80)) * grid
    units = rng.integers(0, 10, 80)
    traj = simulate(net, times, units, T)
    assert all(st.size > 10 for st, _ in traj.hidden_spikes)  # both layers and recurrence
    errors = []
    for dt in (2.0**-9, 2.0**-11):
        bf, bf_vout = brute_force_spikes(net, times, units, T, dt)
        err = 0.0
        for l, (st, sn) in enumerate(traj.hidden_spikes):
            bt = np.array([s[0] for s in bf[l]])
            bn = np.array([s[1] for s in bf[l]])
            for j in range(net.layers[l].size):
                ref_j, bf_j = st[sn == j], bt[bn == j]
                assert ref_j.size == bf_j.size, (dt, l, j)
                err = max(err, np.abs(bf_j - ref_j).max(initial=0.0))
        # a step-detected spike is late by < dt; its targets inherit (and may amplify) that
        assert err < 8 * dt, (dt, err)
        errors.append(err)
        np.testing.assert_allclose(readout_voltage(traj, [T])[0], bf_vout, atol=20 * dt)
    assert errors[1] < errors[0] / 2  # first order in dt: the two agree as dt -> 0


# --------------------------------------------------------------------------- tau_m == tau_s
def test_equal_taus_limit_is_continuous():
    T = 25.0
    samples, _ = random_samples(1, 6, T, 40, 3, seed=5)

    def run(eps):
        net = random_network(6, [6], 3, seed=6, w_in_mean=0.35, w_rec_std=0.1)
        net.layers[0].tau_m[:] = 10.0
        net.layers[0].tau_s[:] = 10.0 * (1.0 + eps)
        net.tau_m_out[:] = 10.0
        net.tau_s_out[:] = 10.0 * (1.0 - eps)
        tr = simulate(net, *samples[0], T)
        return tr, readout_voltage(tr, np.linspace(0, T, 101)), readout_values(tr)

    tr0, v0, z0 = run(0.0)
    assert tr0.hidden_spikes[0][0].size > 5
    diffs = {}
    for eps in (1e-4, 1e-6, 1e-8, -1e-8, 1e-11):
        tr, v, z = run(eps)
        np.testing.assert_array_equal(tr.hidden_spikes[0][1], tr0.hidden_spikes[0][1])
        diff = max(
            np.abs(v - v0).max(),
            np.abs(z - z0).max(),
            np.abs(tr.hidden_spikes[0][0] - tr0.hidden_spikes[0][0]).max(),
        )
        assert diff < 50 * abs(eps) + 1e-13, (eps, diff)
        diffs[eps] = diff
    assert diffs[1e-6] < diffs[1e-4] / 30  # first order in eps: no jump at eps = 0


def test_equal_taus_closed_form():
    net = RefNetwork(layers=[], w_out=[[0.8]], tau_m_out=[7.0], tau_s_out=[7.0])
    tr = simulate(net, [2.0], [0], 30.0)
    s = np.linspace(0.0, 28.0, 57)
    V, I = readout_state(tr, 2.0 + s)
    np.testing.assert_allclose(V[:, 0], 0.8 * s / 7.0 * np.exp(-s / 7.0), rtol=1e-14, atol=1e-16)
    np.testing.assert_allclose(I[:, 0], 0.8 * np.exp(-s / 7.0), rtol=1e-14)


# --------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("loss", ["sum", "sum_weigh_exp"])
def test_fd_matches_analytic_readout_gradient(loss):
    """L = 0, sampled: logits are linear in w_out, so dL/dw_out is known in closed form."""
    T, dt, n_in = 20.0, 0.5, 6
    net = linear_net(n_in=n_in, seed=7)
    samples, labels = random_samples(3, n_in, T, 25, 3, seed=8)
    tn = (np.arange(round(T / dt)) + 1) * dt
    wt = np.ones_like(tn) if loss == "sum" else np.exp(-tn / T)
    grad = np.zeros_like(net.w_out)
    for (t, u), y in zip(samples, labels):
        # A[c, k] = d logit_k / d w_out[c, k]
        A = np.zeros_like(net.w_out)
        for ti, ci in zip(t, u):
            A[ci] += (wt * dt / T) @ psp(tn[:, None] - ti, net.tau_m_out, net.tau_s_out)
        z = np.einsum("ck,ck->k", A, net.w_out)
        p = softmax(z)
        p[y] -= 1.0
        grad += A * p / len(samples)
    kw = dict(loss=loss, mode="sampled", dt=dt)
    fd = finite_difference_gradients(net, samples, labels, T, params=["w_out"], h=1e-5, **kw)
    err = np.abs(fd["w_out"] - grad).max() / np.abs(grad).max()
    assert err < 1e-7, err


def test_first_spike_fd_matches_implicit_gradient():
    """L = 0 spiking readout: dt_k/dw from V(t_k) = 1 gives dL/dw_out in closed form."""
    T, n_in = 30.0, 4
    rng = np.random.default_rng(9)
    net = RefNetwork(
        layers=[],
        w_out=rng.uniform(0.4, 0.9, (n_in, 3)),
        tau_m_out=[20.0, 10.0, 15.0],
        tau_s_out=[5.0, 10.0, 4.0],
        spiking_readout=True,
    )
    t = np.sort(rng.uniform(0.0, 15.0, 16))
    u = rng.integers(0, n_in, 16)
    tr = simulate(net, t, u, T)
    tk = first_spike_times(tr)
    assert np.all(tk < T)
    label, tau0, tau1, alpha = 2, 0.5, 6.4, 3e-3
    p = softmax(-tk / tau0)
    dl_dt = -p / tau0
    dl_dt[label] += 1.0 / tau0 + alpha / tau1 * math.exp(tk[label] / tau1)
    grad = np.zeros_like(net.w_out)
    for k in range(3):
        tm, ts = net.tau_m_out[k], net.tau_s_out[k]
        before = t < tk[k]
        if tm == ts:
            kern = (tk[k] - t[before]) / tm * np.exp(-(tk[k] - t[before]) / tm)
        else:
            kern = psp(tk[k] - t[before], tm, ts)
        dV_dw = np.bincount(u[before], weights=kern, minlength=n_in)
        i_k = float(np.sum(net.w_out[u[before], k] * np.exp(-(tk[k] - t[before]) / ts)))
        dV_dt = (i_k - 1.0) / tm
        grad[:, k] = -dl_dt[k] * dV_dw / dV_dt
    fd, info = finite_difference_gradients(
        net, [(t, u)], [label], T, params=["w_out"], h=1e-6, return_info=True, loss="first_spike"
    )
    assert info.ok
    assert np.all(np.isfinite(fd["w_out"]))
    np.testing.assert_allclose(fd["w_out"], grad, rtol=1e-6, atol=1e-8 * np.abs(grad).max())


def test_first_spike_loss_with_hidden_layer_runs():
    T = 30.0
    net = random_network(8, [6], 3, seed=10, spiking_readout=True, w_in_mean=0.7, w_out_std=0.8)
    net.w_out[:] = np.abs(net.w_out) + 0.3
    samples, labels = random_samples(2, 8, T, 30, 3, seed=11)
    loss = batch_loss(net, samples, labels, T, loss="first_spike")
    assert np.isfinite(loss)
    assert all(np.all(first_spike_times(simulate(net, t, u, T)) < T) for t, u in samples)
    direct = np.mean(
        [
            sample_loss(simulate(net, t, u, T), y, "first_spike")
            for (t, u), y in zip(samples, labels)
        ]
    )
    assert loss == pytest.approx(direct, rel=1e-15)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        fd = finite_difference_gradients(
            net, samples, labels, T, params=["layers.0.w_in", "w_out"], loss="first_spike"
        )
    assert all(np.all(np.isfinite(g)) for g in fd.values())
    assert np.abs(fd["w_out"]).max() > 0
    with pytest.raises(ValueError, match="spiking readout"):
        batch_loss(linear_net(), [([1.0], [0])], [0], T, loss="first_spike")


def test_fd_of_tau_matches_finer_step_and_hidden_caching():
    """Upstream layers are reused in FD: the result must equal a plain re-simulation."""
    T = 20.0
    net = random_network(6, [5, 4], 3, seed=12, w_in_mean=0.4, tau_jitter=0.2)
    samples, labels = random_samples(2, 6, T, 30, 3, seed=13)
    names = ["layers.1.w_in", "layers.1.tau_m", "tau_s_out"]
    g, info = finite_difference_gradients(
        net, samples, labels, T, params=names, h=1e-6, return_info=True
    )
    assert info.ok
    p = net.parameters()
    for name in names:
        arr = p[name]
        idx = (0,) * arr.ndim
        orig = arr[idx]
        arr[idx] = orig + 1e-6
        lp = batch_loss(net, samples, labels, T)
        arr[idx] = orig - 1e-6
        lm = batch_loss(net, samples, labels, T)
        arr[idx] = orig
        assert g[name][idx] == pytest.approx((lp - lm) / 2e-6, rel=1e-6, abs=1e-12)
    g2 = finite_difference_gradients(net, samples, labels, T, params=names, h=1e-5)
    for name in names:
        np.testing.assert_allclose(g[name], g2[name], rtol=1e-4, atol=1e-6)


def test_fd_reports_spike_count_change():
    """A neuron whose peak sits 1e-9 above threshold: +-h flips its spike."""
    tm, ts = 20.0, 5.0
    s_peak = tm * ts / (tm - ts) * math.log(tm / ts)
    w = (1.0 + 1e-9) / float(psp(s_peak, tm, ts))
    net = RefNetwork(
        layers=[RefLayer(w_in=[[w]], w_rec=None, tau_m=[tm], tau_s=[ts])],
        w_out=[[1.0, -1.0]],
        tau_m_out=[20.0, 20.0],
        tau_s_out=[5.0, 5.0],
    )
    sample = ([1.0], [0])
    assert simulate(net, *sample, 40.0).hidden_spikes[0][0].size == 1
    with pytest.warns(RuntimeWarning, match="spike count changed"):
        finite_difference_gradients(net, [sample], [0], 40.0, params=["layers.0.w_in"], h=1e-6)
    with pytest.raises(RuntimeError, match="spike count changed"):
        finite_difference_gradients(
            net, [sample], [0], 40.0, params=["layers.0.w_in"], on_mismatch="raise"
        )


def test_parameters_are_live_views():
    net = random_network(4, [3], 2, seed=14)
    p = net.parameters()
    assert list(p) == [
        "layers.0.w_in",
        "layers.0.w_rec",
        "layers.0.tau_m",
        "layers.0.tau_s",
        "w_out",
        "tau_m_out",
        "tau_s_out",
    ]
    assert p["layers.0.w_in"] is net.layers[0].w_in
    assert all(a.dtype == np.float64 for a in p.values())
    no_rec = random_network(4, [3], 2, recurrent=False)
    assert "layers.0.w_rec" not in no_rec.parameters()


def test_fd_restart_is_bitwise_a_fresh_simulation():
    """FD restarts runs where a perturbation first acts; that must change no bit."""
    from eventprop.gradcheck.reference import _prepare_input, _simulate_from

    T = 25.0
    net = random_network(6, [5, 4], 3, seed=15, w_in_mean=0.8, w_rec_std=0.2)
    samples, _ = random_samples(1, 6, T, 40, 3, seed=16)
    t, u = samples[0]
    et, es = _prepare_input(net, t, u)
    base = simulate(net, t, u, T)
    assert all(st.size > 3 for st, _ in base.hidden_spikes)
    cases = [  # (parameter, index, layer it belongs to, first time it acts)
        ("layers.0.w_in", (u[5], 2), 0, t[np.flatnonzero(u == u[5])[0]]),
        ("layers.0.w_rec", (base.hidden_spikes[0][1][2], 1), 0, None),
        ("layers.1.w_in", (base.hidden_spikes[0][1][0], 0), 1, base.hidden_spikes[0][0][0]),
        ("w_out", (base.hidden_spikes[1][1][1], 2), 2, None),
    ]
    for name, idx, start, t_c in cases:
        if t_c is None:
            st, sn = base.hidden_spikes[start] if name.endswith("w_rec") else base.hidden_spikes[1]
            t_c = st[np.flatnonzero(sn == idx[0])[0]]
        arr = net.parameters()[name]
        orig = arr[idx]
        arr[idx] = orig + 1e-3
        fresh = simulate(net, t, u, T)
        restarted = _simulate_from(net, start, et, es, T, base, float(t_c))
        arr[idx] = orig
        for a, b in zip([*fresh.hidden, fresh.readout], [*restarted.hidden, restarted.readout]):
            for key in ("spike_t", "spike_n", "spike_I", "seg_t", "seg_V", "seg_I"):
                np.testing.assert_array_equal(getattr(a, key), getattr(b, key), err_msg=name)


def test_crossing_search_against_dense_scan():
    """The bracketing argument (one maximum when I > 0) checked on random states."""
    from eventprop.gradcheck.reference import _Cells, _earliest_crossing

    rng = np.random.default_rng(17)
    checked = crossing = 0
    for _ in range(400):
        tm = rng.uniform(2.0, 30.0)
        ts = tm if rng.random() < 0.2 else rng.uniform(1.0, 30.0)
        V0, I0, S = rng.uniform(-2.0, 0.99), rng.uniform(-3.0, 6.0), rng.uniform(0.01, 30.0)
        s = np.linspace(0.0, S, 20001)
        if tm == ts:
            v = (V0 + s / tm * I0) * np.exp(-s / tm)
        else:
            v = V0 * np.exp(-s / tm) + I0 * psp(s, tm, ts)
        if abs(v.max() - 1.0) < 1e-6:
            continue  # grazing: the scan cannot decide
        checked += 1
        got = _earliest_crossing(
            np.array([V0]), np.array([I0]), S, _Cells(np.array([tm]), np.array([ts]))
        )
        k = np.flatnonzero(v >= 1.0)
        if k.size == 0:
            assert got is None
            continue
        crossing += 1
        assert got is not None and got[1] == 0
        lo, hi = s[k[0] - 1], s[k[0]]
        assert lo <= got[0] <= hi
        if tm == ts:
            resid = (V0 + got[0] / tm * I0) * np.exp(-got[0] / tm) - 1.0
        else:
            resid = V0 * np.exp(-got[0] / tm) + I0 * float(psp(got[0], tm, ts)) - 1.0
        assert abs(resid) < 1e-13
    assert checked > 350 and crossing > 50


def test_identical_neurons_spike_together():
    """Two copies of one neuron cross at the same instant: neither spike may be lost."""
    w = np.array([[2.0, 2.0, 0.3]])
    rec = np.array([[0.0, 0.0, 0.5], [0.0, 0.0, 0.5], [0.0, 0.0, 0.0]])
    net = RefNetwork(
        layers=[RefLayer(w_in=w, w_rec=rec, tau_m=20.0, tau_s=5.0)],
        w_out=np.ones((3, 1)),
        tau_m_out=10.0,
        tau_s_out=5.0,
    )
    times = np.array([1.0, 2.0, 2.5, 9.0, 9.5, 10.0, 10.2])
    st, sn = simulate(net, times, np.zeros(7, int), 20.0).hidden_spikes[0]
    t0, t1 = st[sn == 0], st[sn == 1]
    assert t0.size == t1.size == 2
    np.testing.assert_allclose(t0, t1, rtol=0, atol=1e-13)
