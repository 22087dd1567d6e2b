"""Basilar-membrane stage: tuning, interpolation accuracy, linearity, sampling."""

from __future__ import annotations

import numpy as np
import pytest

from eventprop.audio.filterbank import (
    BasilarMembraneParams,
    basilar_membrane,
    characteristic_frequencies,
    membrane_response,
    place_coordinates,
    transfer_function,
)
from eventprop.audio.synth import tone


def test_characteristic_frequencies_span_the_hearing_range():
    cf = characteristic_frequencies(700)
    assert cf.shape == (700,)
    assert np.all(np.diff(cf) < 0)  # base (channel 0) is high, apex low
    assert cf[0] == pytest.approx(22508, rel=1e-3)
    assert cf[-1] == pytest.approx(110.3, rel=1e-3)
    assert place_coordinates(700)[[0, -1]].tolist() == [0.0, 3.5]


@pytest.mark.parametrize("channel", [100, 300, 500, 650])
def test_response_peaks_just_below_the_characteristic_frequency(channel):
    places = place_coordinates(700)[[channel]]
    cf = characteristic_frequencies(700)[channel]
    f = np.geomspace(0.2 * cf, 2.0 * cf, 4000)
    mag = np.abs(transfer_function(f, places)[0])
    peak = f[np.argmax(mag)]
    # damping and fluid loading pull the peak 5-15 % below the undamped resonance
    assert 0.8 * cf < peak < cf
    # a band-pass: an octave above the peak the place barely moves (evanescent wave)
    assert np.abs(transfer_function([2 * peak], places)[0, 0]) < 0.01 * mag.max()


def test_tabulated_response_matches_exact_evaluation():
    resp = membrane_response(32, use_cache=False)
    rng = np.random.default_rng(1)
    f = np.sort(rng.uniform(20.0, 11000.0, 3000))
    exact = transfer_function(f, place_coordinates(32))
    pos = (np.log(f) - resp.log_f_min) / resp.log_ratio
    j = np.floor(pos).astype(int)
    w = pos - j
    interp = resp.table[:, j] * (1 - w) + resp.table[:, j + 1] * w
    rel = np.abs(interp - exact).max(axis=1) / np.abs(exact).max(axis=1)
    assert rel.max() < 1e-3


def test_disk_cache_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("EVENTPROP_COCHLEA_CACHE", str(tmp_path))
    params = BasilarMembraneParams(f_max=12000.0)  # distinct key: not in the memory cache
    first = membrane_response(8, params)
    files = list(tmp_path.glob("membrane-8ch-*.npy"))
    assert len(files) == 1
    membrane_response.cache_clear()
    second = membrane_response(8, params)
    np.testing.assert_array_equal(first.table, second.table)
    # a damaged file is recomputed, not trusted
    files[0].write_bytes(b"garbage")
    membrane_response.cache_clear()
    third = membrane_response(8, params)
    np.testing.assert_array_equal(first.table, third.table)


@pytest.mark.parametrize("freq", [300.0, 1000.0, 3000.0])
def test_a_tone_moves_the_place_tuned_to_it(freq):
    rate = 16000
    resp = membrane_response(128)
    v = basilar_membrane(tone(freq, 0.2, rate), rate, resp)
    rms = np.sqrt(np.mean(v.astype(np.float64) ** 2, axis=1))
    best = int(np.argmax(rms))
    cf = characteristic_frequencies(128)
    assert freq < cf[best] < 1.3 * freq
    # tuning: places a quarter of the cochlea away move far less
    far = [c for c in (best - 32, best + 32) if 0 <= c < 128]
    assert all(rms[c] < 0.2 * rms[best] for c in far)


def test_linear_and_half_rate():
    rate = 16000
    resp = membrane_response(32)
    x = tone(500.0, 0.101, rate)
    v1 = basilar_membrane(x, rate, resp)
    v2 = basilar_membrane(3.0 * x, rate, resp)
    assert v1.shape == (32, (x.size + 1) // 2) and v1.dtype == np.float32
    np.testing.assert_allclose(v2, 3.0 * v1, rtol=1e-4, atol=1e-5 * np.abs(v1).max())


def test_rates_above_the_table_are_refused():
    with pytest.raises(ValueError, match="tabulated range"):
        basilar_membrane(np.zeros(100), 96000, membrane_response(8))
