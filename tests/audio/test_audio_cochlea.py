"""The whole chain through ``encode_waveform``: interface, errors, tuning, silence."""

from __future__ import annotations

import numpy as np
import pytest

from eventprop.audio import Cochlea, encode_waveform
from eventprop.audio.cochlea import MAX_RATE, MIN_RATE
from eventprop.audio.normalize import hann_taper, rms_normalize
from eventprop.audio.synth import chirp, spoken_word, tone


def test_interface_types_and_ranges():
    x = spoken_word(16000, 0.5)
    times, units = encode_waveform(x, 16000, channels=64)
    assert times.dtype == np.float64 and units.dtype == np.int64
    assert times.shape == units.shape and times.size > 100
    assert np.all(np.diff(times) >= 0)
    assert times.min() >= 0 and times.max() < x.size / 16000
    assert units.min() >= 0 and units.max() < 64


def test_deterministic_for_a_seed():
    x = spoken_word(16000, 0.4)
    a = encode_waveform(x, 16000, channels=64, seed=7)
    b = encode_waveform(x, 16000, channels=64, seed=7)
    c = encode_waveform(x, 16000, channels=64, seed=8)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not (a[0].size == c[0].size and np.array_equal(a[1], c[1]))
    d = encode_waveform(x, 16000, channels=64, seed=None)
    e = encode_waveform(x, 16000, channels=64, seed=None)
    assert not (d[0].size == e[0].size and np.array_equal(d[1], e[1]))


@pytest.mark.parametrize(
    ("signal", "match"),
    [
        (np.zeros(0), "empty"),
        (np.array([0.0, np.nan, 0.1]), "non-finite"),
        (np.array([0.0, np.inf, 0.1]), "non-finite"),
        (np.zeros((100, 2)), "mono"),
        (np.zeros((2, 3, 4)), "mono"),
        (np.array(["a", "b"]), "real-valued"),
    ],
)
def test_bad_signals_are_refused(signal, match):
    with pytest.raises(ValueError, match=match):
        encode_waveform(signal, 16000, channels=8)


@pytest.mark.parametrize("rate", [0, -16000, 16000.5, float("nan")])
def test_bad_rates_are_refused(rate):
    with pytest.raises(ValueError, match="sample_rate"):
        encode_waveform(np.ones(100), rate, channels=8)


def test_bad_channel_counts_are_refused():
    with pytest.raises(ValueError, match="channels"):
        encode_waveform(np.ones(100), 16000, channels=0)
    with pytest.raises(ValueError, match="channels"):
        Cochlea(2.5)


def test_column_vector_is_mono():
    x = spoken_word(16000, 0.3)
    a = encode_waveform(x, 16000, channels=16)
    b = encode_waveform(x[:, None], 16000, channels=16)
    np.testing.assert_array_equal(a[1], b[1])


def test_level_does_not_matter():
    """The input is RMS-normalised: a quieter recording gives the same spikes."""
    x = spoken_word(16000, 0.4)
    a = encode_waveform(x, 16000, channels=64)
    b = encode_waveform(0.01 * x, 16000, channels=64)
    assert a[0].size == pytest.approx(b[0].size, rel=0.01)


@pytest.mark.parametrize("freq", [250.0, 1000.0, 4000.0])
def test_a_tone_excites_the_channels_around_it(freq, cochlea64):
    rate = 16000
    _times, units = cochlea64.encode(tone(freq, 0.3, rate), rate)
    counts = np.bincount(units, minlength=64).astype(float)
    smooth = np.convolve(counts, np.ones(3) / 3, mode="same")
    best = int(np.argmax(smooth))
    cf = cochlea64.characteristic_frequencies()
    assert 0.7 * freq < cf[best] < 1.5 * freq
    # off-place channels stay near their spontaneous rate
    far = np.abs(np.arange(64) - best) > 16
    assert counts[far].mean() < 0.2 * counts[best]


def test_a_chirp_sweeps_from_base_to_apex(cochlea64):
    """A falling sweep excites high-frequency (low-index) channels first."""
    rate = 16000
    times, units = cochlea64.encode(chirp(6000.0, 200.0, 0.6, rate), rate)
    early = units[(times > 0.1) & (times < 0.2)]
    late = units[(times > 0.4) & (times < 0.5)]
    assert np.median(early) < np.median(late) - 10


def test_silence_gives_only_spontaneous_spikes(cochlea64):
    rate = 16000
    quiet = cochlea64.encode(np.zeros(8000), rate)[0].size
    word = cochlea64.encode(spoken_word(rate, 0.5), rate)[0].size
    # a few spikes/s per channel of spontaneous activity (fibres at ~65/s), none driven
    assert 0.5 < quiet / 64 / 0.5 < 8.0
    assert quiet < 0.3 * word


def test_model_rate_policy(cochlea64):
    assert cochlea64.model_rate(8000) == MIN_RATE
    assert cochlea64.model_rate(22050) == 22050
    assert cochlea64.model_rate(96000) == MAX_RATE
    assert Cochlea(8, sample_rate=24000).model_rate(44100) == 24000
    x = spoken_word(8000, 0.4)
    st = cochlea64.stages(x, 8000)
    assert st.sample_rate == MIN_RATE and st.audio.size == 2 * x.size
    times, _ = cochlea64.encode(x, 8000)
    assert times.max() < 0.4
    with pytest.raises(ValueError, match="above the model's range"):
        Cochlea(8, sample_rate=96000)


def test_normalisation_and_taper():
    x = np.ones(101)
    y = rms_normalize(x)
    assert np.sqrt(np.mean(y**2)) == pytest.approx(0.3)
    np.testing.assert_array_equal(rms_normalize(np.zeros(5)), np.zeros(5))
    z = hann_taper(np.ones(101))
    assert z[0] == 0.0 and z[-1] == 0.0 and z[50] == 1.0
    np.testing.assert_allclose(z, z[::-1])


def test_long_clips_are_processed_in_channel_blocks(monkeypatch):
    """Blocking bounds memory and changes nothing: same streams, same spikes."""
    import eventprop.audio.cochlea as cochlea_module

    x = spoken_word(16000, 0.4)
    cochlea = Cochlea(40)
    whole = cochlea.encode(x, 16000, seed=3)
    monkeypatch.setattr(cochlea_module, "_BLOCK_VALUES", 3200 * 16)  # 16 channels per block
    blocked = cochlea.encode(x, 16000, seed=3)
    np.testing.assert_array_equal(whole[0], blocked[0])
    np.testing.assert_array_equal(whole[1], blocked[1])


def test_stages_are_consistent_with_encode(cochlea64):
    x = spoken_word(16000, 0.3)
    st = cochlea64.stages(x, 16000)
    assert st.sample_rate == 16000 and st.audio.size == x.size
    assert st.velocity.shape == st.probability.shape == (64, (x.size + 1) // 2)
    times, _ = cochlea64.encode(x, 16000)
    assert times.max() < st.velocity.shape[1] / 8000


def test_tiny_clips():
    times, units = encode_waveform(np.ones(1), 16000, channels=8)
    assert times.size == units.size
