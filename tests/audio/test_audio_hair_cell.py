"""Meddis hair cell: resting state, level dependence, adaptation."""

from __future__ import annotations

import numpy as np
import pytest

from eventprop.audio.hair_cell import HairCellParams, hair_cell, resting_state

RATE = 11025.0


def test_silence_keeps_the_resting_state():
    p = HairCellParams()
    q, c, w = resting_state(p)
    assert (q, c, w) == pytest.approx((0.3587, 1.2954e-3, 0.12857), rel=1e-3)
    out = hair_cell(np.zeros((3, 500)), RATE, p)
    np.testing.assert_allclose(out, c * p.h / RATE, rtol=1e-5)
    # ~65 spikes/s per fibre: the spontaneous rate of Meddis' high-rate fibre
    assert out[0, 0] * RATE == pytest.approx(64.8, abs=0.5)


def test_firing_rises_with_level():
    t = np.arange(4000) / RATE
    levels = [0.0, 10.0, 30.0, 100.0, 300.0]
    v = np.stack([a * np.sin(2 * np.pi * 500.0 * t) for a in levels])
    rate = hair_cell(v, RATE).mean(axis=1) * RATE
    assert np.all(np.diff(rate) > 0)
    # the sustained rate saturates (~110/s here): the transmitter pool adapts
    assert 1.5 * rate[0] < rate[-1] < 2.0 * rate[0]


def test_onset_adapts():
    v = np.zeros((1, 6000))
    v[0, 1000:] = 50.0  # a step
    p = hair_cell(v, RATE)[0]
    onset = p[1000:1050].max()
    sustained = p[5000:].mean()
    assert onset > 2.0 * sustained > 2.0 * p[:1000].mean()


def test_rejects_wrong_shapes():
    with pytest.raises(ValueError, match="channels, steps"):
        hair_cell(np.zeros(10), RATE)
