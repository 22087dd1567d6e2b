"""Audio longer than a word: taper, stored time precision, bounded memory, one model rate.

Word-length clips keep SHD's computation bit for bit; longer clips get short ramps instead of
the whole-clip Hann window, times that keep 1 ms precision, and time-block streaming whose
memory does not grow with the clip. The file tools resample to one model rate, so the same
sound gives the same spike count whatever rate it was recorded at.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import pytest
from scipy.io import wavfile
from scipy.signal import resample_poly

from eventprop.audio.bushy_cell import BushyCellState, bushy_cell, channel_seeds
from eventprop.audio.cochlea import Cochlea, resample
from eventprop.audio.encode import LongClipWarning, encode_files, encode_to_hdf5
from eventprop.audio.filterbank import basilar_membrane
from eventprop.audio.hair_cell import hair_cell, hair_state
from eventprop.audio.io import read_audio
from eventprop.audio.normalize import edge_taper, hann_taper, rms_normalize
from eventprop.audio.policy import parse_model_rate, resolve_taper, time_dtype
from eventprop.audio.synth import spoken_word, tone
from eventprop.cli.main import main
from eventprop.data.hdf5 import read_hdf5

SHARED_FLAC = Path("/work/shared/data/spoken_digit/spoken_digit.flac")


def _write(path: Path, x: np.ndarray, rate: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    wavfile.write(path, rate, (np.clip(x, -1, 1) * 32767).astype(np.int16))
    return path


# --- words keep SHD's computation ---------------------------------------------------------


@pytest.mark.skipif(not SHARED_FLAC.is_file(), reason="shared spoken-digit FLAC not present")
def test_word_default_is_shds_computation_bit_for_bit(tmp_path):
    """A word under the default policy: resampled to 24 kHz, whole-clip Hann taper, the whole
    clip through the three stages at once, float16 in the file: exactly SHD's chain."""
    signal, rate = read_audio(SHARED_FLAC)
    assert signal.size / rate < 2.0
    target = 24000
    audio = hann_taper(rms_normalize(resample(signal, rate, target)))
    cochlea = Cochlea(700, target)
    velocity = basilar_membrane(audio, target, cochlea.response)
    prob = hair_cell(velocity, target / 2)
    steps, units = bushy_cell(prob, target / 2, streams=channel_seeds(5, 700))
    times, got_units = cochlea.encode(signal, rate, seed=5)
    np.testing.assert_array_equal(times, steps / (target / 2))
    np.testing.assert_array_equal(got_units, units)

    folder = tmp_path / "digit"
    folder.mkdir()
    (folder / "a.flac").write_bytes(SHARED_FLAC.read_bytes())
    out, _, _ = encode_to_hdf5([folder], tmp_path / "w.h5", progress=False)
    with h5py.File(out) as f:
        assert h5py.check_vlen_dtype(f["spikes/times"].dtype) == np.float16
    ((t_file, u_file),) = encode_files([folder / "a.flac"], progress=False)
    data = read_hdf5(out)
    np.testing.assert_array_equal(data.times, t_file.astype(np.float16))
    np.testing.assert_array_equal(data.units, u_file)


# --- taper ----------------------------------------------------------------------------------


def test_steady_tone_fires_evenly_along_a_long_clip():
    """30 s of a steady tone: with the default (``edges`` for long clips) every 6 s fires
    alike; SHD's whole-clip window would make the middle fire twice as much as the ends."""
    x = tone(1000.0, 30.0, 24000)
    assert resolve_taper("auto", 30.0) == "edges"
    times, _ = Cochlea(16, 24000).encode(x, 24000)
    counts = np.histogram(times, bins=5, range=(0.0, 30.0))[0]
    assert counts.max() / counts.min() < 1.25, counts
    times, _ = Cochlea(16, 24000, taper="whole").encode(x, 24000)
    whole = np.histogram(times, bins=5, range=(0.0, 30.0))[0]
    assert whole[2] > 1.8 * max(whole[0], whole[-1]), whole


def test_taper_options():
    x = np.ones(24000)  # 1 s at 24 kHz
    edges = edge_taper(x, 24000)
    assert edges[0] == 0.0 and edges[-1] == 0.0
    assert np.all(edges[240:-240] == 1.0) and edges[100] < 1.0  # 10 ms ramps
    assert hann_taper(x)[6000] == pytest.approx(0.5, abs=1e-3)
    assert resolve_taper("auto", 1.99) == "whole" and resolve_taper("none", 1.0) == "none"
    with pytest.raises(ValueError, match="taper"):
        Cochlea(8, taper="hann")
    # 'none' keeps the clip's level up to its last sample
    c = Cochlea(8, 16000, taper="none")
    audio = c._prepare(x, 24000)[0]
    assert abs(audio[-1]) > 0.1


def test_whole_taper_on_a_long_clip_warns_naming_the_file(tmp_path, capsys):
    long = _write(tmp_path / "talk" / "long.wav", tone(500.0, 2.5, 16000), 16000)
    _write(tmp_path / "talk" / "short.wav", tone(500.0, 0.3, 16000), 16000)
    with pytest.warns(LongClipWarning, match="long.wav.*2.5 s.*'whole'"):
        encode_to_hdf5(
            [tmp_path / "talk"], tmp_path / "a.h5", channels=8, taper="whole", progress=False
        )
    argv = ["audio", "encode", str(tmp_path / "talk"), "--out", str(tmp_path / "b.h5")]
    argv += ["--channels", "8", "--taper", "whole", "--no-progress"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert f"warning: {long}" in err and "short.wav" not in err
    assert main([*argv[:-3], "--no-progress"]) == 0  # the default taper: no warning
    assert "warning" not in capsys.readouterr().err


# --- time precision ------------------------------------------------------------------------


def test_time_dtype_keeps_1ms():
    assert time_dtype(0.8) == np.float16 and time_dtype(1.999) == np.float16
    assert time_dtype(2.0) == np.float32 and time_dtype(600.0) == np.float32
    assert time_dtype(16383.0) == np.float32 and time_dtype(16384.0) == np.float64
    for d in (0.5, 1.9, 2.0, 30.0, 600.0, 16000.0):
        dtype = time_dtype(d)
        below = np.nextafter(dtype.type(d), dtype.type(0))
        assert float(np.spacing(below)) <= 1e-3


def test_long_clip_times_keep_1ms_precision_in_the_file(tmp_path):
    """A 5 s clip among words: the file stores float32 times, equal to the encoder's within
    float32 rounding (float16 would be off by up to 2 ms at 5 s)."""
    _write(tmp_path / "a" / "long.wav", tone(800.0, 5.0, 16000), 16000)
    _write(tmp_path / "b" / "word.wav", spoken_word(16000, 0.5), 16000)
    out, items, _ = encode_to_hdf5(
        [tmp_path / "a", tmp_path / "b"], tmp_path / "x.h5", channels=8, progress=False
    )
    with h5py.File(out) as f:
        assert h5py.check_vlen_dtype(f["spikes/times"].dtype) == np.float32
    data = read_hdf5(out)
    exact = encode_files([it.path for it in items], channels=8, progress=False)
    got = np.split(data.times, np.cumsum(data.counts())[:-1])
    assert exact[0][0].max() > 4.0
    for (t, _), stored in zip(exact, got):
        assert np.abs(stored.astype(np.float64) - t).max() < 1e-6


# --- streaming -----------------------------------------------------------------------------


def test_cell_states_carry_exactly_across_blocks(cochlea64):
    """Hair and bushy cells run block by block with their state give the whole clip's output
    bit for bit (the same random numbers in the same order)."""
    x = np.concatenate([spoken_word(16000, 0.75, seed=s) for s in range(2)])
    prob_whole = cochlea64.stages(x, 16000).probability
    velocity = cochlea64.stages(x, 16000).velocity
    state = hair_state(64)
    parts = [
        hair_cell(velocity[:, a : a + 1001], 8000.0, state=state)
        for a in range(0, velocity.shape[1], 1001)
    ]
    np.testing.assert_array_equal(np.concatenate(parts, axis=1), prob_whole)
    steps, units = bushy_cell(prob_whole, 8000.0, seed=4)
    bushy = BushyCellState.start(channel_seeds(4, 64), 8000.0)
    blocks = [
        bushy_cell(prob_whole[:, a : a + 777], 8000.0, state=bushy)
        for a in range(0, prob_whole.shape[1], 777)
    ]
    np.testing.assert_array_equal(np.concatenate([b[0] for b in blocks]), steps)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in blocks]), units)


def test_streamed_long_clip_matches_the_whole_clip():
    """A 4 s clip in 1 s time blocks gives nearly the spikes of the whole clip at once: the
    membrane differs by < 0.5 % (its tails beyond the 0.1 s margins, the FFT grid), which now
    and then changes one fibre count; the cell's path then drifts from the other's, but
    most spikes stay identical and the statistics do not change."""
    x = np.concatenate([spoken_word(16000, 0.75, seed=s) for s in range(6)])[: 4 * 16000]
    streamed = Cochlea(32, 16000, block_values=4 * 32 * 8000)
    whole = Cochlea(32, 16000)
    audio, rate = streamed._prepare(x, 16000)
    blocks = streamed._encode_streamed(audio, rate, channel_seeds(0, 32), 8000)
    s_steps = np.concatenate([b[0] for b in blocks]).astype(np.int64)
    s_units = np.concatenate([b[1] for b in blocks]).astype(np.int64)
    w_steps, w_units = whole._encode_whole(audio, rate, channel_seeds(0, 32))
    assert np.all(np.diff(s_steps) >= 0)
    pairs = set(zip(w_steps.tolist(), w_units.tolist()))
    same = len(set(zip(s_steps.tolist(), s_units.tolist())) & pairs)
    assert same >= 0.7 * w_steps.size  # another seed: ~10 %
    assert abs(s_steps.size - w_steps.size) <= 0.02 * w_steps.size
    psth = [np.histogram(t, bins=80, range=(0, 32000))[0] for t in (s_steps, w_steps)]
    assert np.corrcoef(*psth)[0, 1] > 0.99
    # encode() takes the streamed path for this clip
    times, units = streamed.encode(x, 16000)
    np.testing.assert_array_equal(units, s_units)
    np.testing.assert_array_equal(times, s_steps / 8000.0)


def _peak_bytes(cochlea: Cochlea, x: np.ndarray, rate: int) -> int:
    tracemalloc.start()
    try:
        cochlea.encode(x, rate)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_clip_beyond_the_signal():
    """Peak memory of a 40 s clip exceeds that of an 8 s clip only by the signal's own copy
    and its spikes (< 40 bytes per input sample), not by the model's (channels x steps)
    intermediates (~800 bytes per input sample at 64 channels when held whole)."""
    rate = 16000
    cochlea = Cochlea(64, rate, block_values=4 * 64 * 8000)
    x = np.concatenate([spoken_word(rate, 0.75, seed=s % 8) for s in range(54)])[: 40 * rate]
    short = x[: 8 * rate].copy()
    cochlea.encode(short, rate)  # compile and build the table outside the measurement
    extra = _peak_bytes(cochlea, x, rate) - _peak_bytes(cochlea, short, rate)
    assert extra < 40 * (x.size - short.size), extra


# --- one model rate ------------------------------------------------------------------------


def test_same_sound_at_16_and_48_khz_gives_the_same_spike_count(tmp_path):
    word48 = spoken_word(48000, 0.75)
    a = _write(tmp_path / "w48.wav", word48, 48000)
    b = _write(tmp_path / "w16.wav", resample_poly(word48, 1, 3), 16000)
    default = [t.size for t, _ in encode_files([a, b], channels=64, progress=False)]
    assert abs(default[0] - default[1]) <= 0.05 * default[0], default
    native = [
        t.size for t, _ in encode_files([a, b], channels=64, sample_rate=None, progress=False)
    ]
    assert native[1] > 1.5 * native[0], native  # the reference's behaviour: rate-dependent
    argv = ["audio", "encode", str(a), "--out", str(tmp_path / "n.h5"), "--channels", "64"]
    assert main([*argv, "--native-rate", "--no-progress"]) == 0
    n1 = read_hdf5(tmp_path / "n.h5").times.size
    assert main([*argv, "--sample-rate", "native", "--no-progress"]) == 0
    assert read_hdf5(tmp_path / "n.h5").times.size == n1 == native[0]


def test_model_rate_option():
    assert parse_model_rate("native") is None and parse_model_rate("NATIVE") is None
    assert parse_model_rate("24000") == 24000
    for bad in ("0", "-5", "fast", "24k"):
        with pytest.raises(ValueError, match="rate in Hz or 'native'"):
            parse_model_rate(bad)
