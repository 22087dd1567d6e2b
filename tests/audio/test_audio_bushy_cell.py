"""Bushy cells: determinism, refractoriness, and the binomial sampler against the literal
per-fibre scheme."""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest

from eventprop.audio.bushy_cell import BushyCellParams, bushy_cell

RATE = 11025.0


def _probability(channels: int = 16, steps: int = 3000, seed: int = 0) -> np.ndarray:
    """Resting probability with bursts of different strength per channel."""
    rng = np.random.default_rng(seed)
    p = np.full((channels, steps), 0.0059, dtype=np.float32)
    for c in range(channels):
        a = rng.integers(0, steps - 600)
        p[c, a : a + 500] = 0.01 + 0.004 * c
    return p


def literal_bushy(prob: np.ndarray, seed: int, params: BushyCellParams) -> np.ndarray:
    """The model as stated: one Bernoulli draw per fibre and step, dead time, then the LIF
    recursion; returns spike counts per channel."""
    rng = np.random.default_rng(seed)
    n_ch, n_t = prob.shape
    n = params.n_convergence
    dt = 1.0 / RATE
    refrac = params.tau_refrac * RATE
    draws = rng.random((n_ch, n_t, n)) < prob[:, :, None]
    last = np.full((n_ch, n), -np.inf)
    fired = np.zeros((n_ch, n_t))
    for t in range(n_t):
        ok = draws[:, t] & (t - last >= refrac)
        last[ok] = t
        fired[:, t] = ok.sum(axis=1)
    counts = np.zeros(n_ch, dtype=np.int64)
    ds, dm = math.exp(-dt / params.tau_syn), math.exp(-dt / params.tau_mem)
    gain = params.weight / n * dt
    for c in range(n_ch):
        cur = v = 0.0
        countdown = 0.0
        for t in range(n_t):
            if t > 0:
                if countdown <= 0:
                    if v < 1.0:
                        v *= dm
                    else:
                        counts[c] += 1
                        countdown = refrac
                        v = 0.0
                cur *= ds
            cur += fired[c, t]
            if countdown <= 0:
                v += gain * cur
            v = min(v, 1.0)
            countdown -= 1
    return counts


def test_deterministic_per_seed_and_thread_count():
    prob = _probability()
    a = bushy_cell(prob, RATE, seed=3)
    b = bushy_cell(prob, RATE, seed=3)
    c = bushy_cell(prob, RATE, seed=4)
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        d = bushy_cell(prob, RATE, seed=3)
    finally:
        numba.set_num_threads(threads)
    for x, y in ((a, b), (a, d)):
        np.testing.assert_array_equal(x[0], y[0])
        np.testing.assert_array_equal(x[1], y[1])
    assert a[0].size != c[0].size or not np.array_equal(a[0], c[0])


def test_output_sorted_and_refractory():
    steps, units = bushy_cell(_probability(), RATE, seed=0)
    assert steps.dtype == np.int64 and units.dtype == np.int64
    assert np.all(np.diff(steps) >= 0)
    min_gap = math.ceil(1e-3 * RATE) + 1
    for c in np.unique(units):
        assert np.diff(steps[units == c]).min() >= min_gap


def test_no_input_no_spikes():
    steps, units = bushy_cell(np.zeros((8, 2000), dtype=np.float32), RATE, seed=0)
    assert steps.size == 0 and units.size == 0


def test_sampler_matches_the_per_fibre_scheme():
    params = BushyCellParams()
    prob = _probability(channels=12, steps=2500, seed=1)
    runs = 12
    ours = np.mean(
        [np.bincount(bushy_cell(prob, RATE, seed=s)[1], minlength=12) for s in range(200)], axis=0
    )
    literal = np.mean([literal_bushy(prob, 100 + s, params) for s in range(runs)], axis=0)
    # counts are ~Poisson: compare the means within 4 standard errors of the literal runs
    se = np.sqrt(np.maximum(literal, 1.0) / runs)
    assert np.all(np.abs(ours - literal) < 4 * se + 0.5)
    assert ours.sum() == pytest.approx(literal.sum(), rel=0.05)
