"""The offline spoken-digits dataset: espeak-ng speech -> cochlea -> SHD-layout files.

Tests that speak need espeak-ng and skip without it; tests that build files also need the
cochlea model (``eventprop.audio``) and skip while it is absent. The missing-espeak-ng error is
tested everywhere, by hiding the program from ``PATH``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from eventprop.builders import spoken_digits as sd
from eventprop.builders.espeak import (
    INSTALL_HINT,
    EspeakNotFoundError,
    SpeechSettings,
    find_espeak,
    list_language_voices,
    list_variants,
    synthesize,
)
from eventprop.cli.main import main
from eventprop.data.hdf5 import read_hdf5

HAVE_ESPEAK = shutil.which("espeak-ng") is not None
needs_espeak = pytest.mark.skipif(not HAVE_ESPEAK, reason="espeak-ng is not installed")

SHARED_FILE = Path(__file__).resolve().parents[2].parent / "shared/data/spoken_digits_espeak.h5"


# --- without espeak-ng ----------------------------------------------------------------------


def test_missing_espeak_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no espeak-ng on PATH
    with pytest.raises(EspeakNotFoundError, match="sudo apt-get install espeak-ng"):
        find_espeak()
    assert INSTALL_HINT == "sudo apt-get install espeak-ng"


def test_missing_espeak_cli_fails_cleanly(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    out = tmp_path / "digits"
    assert main(["data", "make-spoken-digits", "--out", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "espeak-ng" in err and "sudo apt-get install espeak-ng" in err
    assert not out.exists() or not any(out.iterdir())


def test_class_names_follow_shd_order():
    assert len(sd.CLASS_NAMES) == 20
    assert sd.CLASS_NAMES[0] == "english-zero" and sd.CLASS_NAMES[9] == "english-nine"
    assert sd.CLASS_NAMES[10] == "german-null" and sd.CLASS_NAMES[19] == "german-neun"
    assert sd.CLASS_NAMES[15] == "german-fuenf"  # ASCII, as in SHD's keys


def test_class_names_match_the_shared_shd_format_file():
    if not SHARED_FILE.is_file():
        pytest.skip(f"{SHARED_FILE} is not present")
    assert read_hdf5(SHARED_FILE).class_names == sd.CLASS_NAMES


def test_speakers_are_seeded_and_split_without_overlap():
    variants = [f"v{i}" for i in range(7)]
    voices = ["en-gb", "en-us"]
    a = sd.draw_speakers(10, 3, variants, voices, test_fraction=0.2)
    assert a == sd.draw_speakers(10, 3, variants, voices, test_fraction=0.2)
    assert a != sd.draw_speakers(10, 4, variants, voices, test_fraction=0.2)
    assert [s.index for s in a] == list(range(10))
    assert sum(s.split == "test" for s in a) == 2
    # every variant is used once before any is reused
    assert sorted(s.variant for s in a[:7]) == sorted(variants)
    for s in a:
        assert sd.SPEED_WPM[0] <= s.speed <= sd.SPEED_WPM[1]
        assert sd.PITCH[0] <= s.pitch <= sd.PITCH[1]
        assert s.english_voice in voices and s.german_voice == "de"
    # distinct speakers even when variants repeat
    keys = {(s.variant, s.english_voice, s.speed, s.pitch) for s in a}
    assert len(keys) == 10
    two = sd.draw_speakers(2, 0, variants, voices, test_fraction=0.9)
    assert sorted(s.split for s in two) == ["test", "train"]
    with pytest.raises(ValueError, match="at least 2"):
        sd.draw_speakers(1, 0, variants, voices)
    with pytest.raises(ValueError, match="test_fraction"):
        sd.draw_speakers(5, 0, variants, voices, test_fraction=1.0)


def test_plan_covers_every_class_per_repetition_in_label_order():
    speakers = sd.draw_speakers(3, 0, ["m3", "f2"], ["en-gb"])
    specs = sd.plan_samples(speakers, 2, seed=0)
    assert len(specs) == 3 * 2 * 20
    assert specs == sd.plan_samples(speakers, 2, seed=0)
    for k in range(0, len(specs), 20):
        block = specs[k : k + 20]
        assert [s.label for s in block] == list(range(20))
        assert len({(s.speaker, s.repeat) for s in block}) == 1
    first = specs[:20]
    assert [s.text for s in first[:10]] == list(sd.ENGLISH_WORDS)
    assert [s.text for s in first[10:]] == list(sd.GERMAN_WORDS)
    assert first[0].settings.voice.startswith("en-gb+")
    assert first[10].settings.voice.startswith("de+")
    # repetitions differ (speed/pitch/silences), cochlea seeds are all distinct
    assert specs[0] != specs[20]
    assert len({s.cochlea_seed for s in specs}) == len(specs)


# --- with espeak-ng -------------------------------------------------------------------------


@needs_espeak
def test_voice_enumeration():
    variants = list_variants()
    assert len(variants) >= 10 and "m3" in variants and "f2" in variants
    assert "fast" not in variants  # a speed experiment, not a voice
    assert all(" " not in v for v in variants)
    english = list_language_voices("en")
    assert "en-us" in english and "en-gb" in english
    assert all(not v.startswith("mb") for v in english)
    assert list_language_voices("de") == ["de"]


@needs_espeak
def test_synthesis_is_deterministic_audio(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = SpeechSettings("de+f2", speed=160, pitch=60, amplitude=90)
    x, rate = synthesize("fünf", settings)
    y, rate2 = synthesize("fünf", settings)
    assert rate == rate2 == 22050
    assert x.dtype == np.float64 and x.ndim == 1
    np.testing.assert_array_equal(x, y)
    assert 0.2 < x.size / rate < 2.0
    assert 0.05 < np.abs(x).max() <= 1.0
    z, _ = synthesize("fünf", SpeechSettings("de+f2", speed=220, pitch=60, amplitude=90))
    assert z.size < x.size  # faster speech is shorter
    assert list(tmp_path.iterdir()) == []  # nothing written to disk
    framed = sd.frame_word(x, rate, 0.1, 0.2)
    word = framed[int(0.1 * rate) : framed.size - int(0.2 * rate)]
    assert word.size < x.size  # espeak-ng's own silence is cut
    assert not np.any(framed[: int(0.1 * rate)]) and not np.any(framed[-int(0.2 * rate) :])
    assert abs(word[0]) > 0 and abs(word[-1]) > 0


def test_wav_stream_header_is_repaired_or_rejected():
    import io
    import struct

    from scipy.io import wavfile

    from eventprop.builders.espeak import EspeakError, _fix_stream_header

    buf = io.BytesIO()
    wavfile.write(buf, 22050, np.arange(100, dtype=np.int16))
    wav = bytearray(buf.getvalue())
    struct.pack_into("<I", wav, 4, 0x7FFFFFFF)  # what a streamed header holds
    struct.pack_into("<I", wav, 40, 0x7FFFFFFF)
    fixed = _fix_stream_header(bytes(wav))
    assert fixed == buf.getvalue()
    with pytest.raises(EspeakError, match="WAV"):
        _fix_stream_header(b"not a wav file")
    with pytest.raises(EspeakError, match="data chunk"):
        _fix_stream_header(buf.getvalue()[:36])


# --- full builds (espeak-ng and the cochlea) ------------------------------------------------

# fewer cochlea channels than SHD's 700 keep the builds quick; the files' layout is the same
SPEAKERS, REPEATS, CHANNELS = 3, 1, 128


@pytest.fixture(scope="module")
def cochlea():
    if not HAVE_ESPEAK:
        pytest.skip("espeak-ng is not installed")
    return pytest.importorskip("eventprop.audio")


@pytest.fixture(scope="module")
def built(cochlea, tmp_path_factory):
    out = tmp_path_factory.mktemp("digits")
    result = sd.build_spoken_digits(
        out,
        speakers=SPEAKERS,
        repeats=REPEATS,
        channels=CHANNELS,
        seed=5,
        workers=2,
        progress=False,
    )
    return out, result


def test_build_writes_official_layout(built):
    out, result = built
    assert sorted(p.name for p in out.iterdir()) == ["README.txt", "shd_test.h5", "shd_train.h5"]
    for name in ("shd_train.h5", "shd_test.h5"):
        with h5py.File(out / name, "r") as f:
            assert h5py.check_vlen_dtype(f["spikes/times"].dtype) == np.float16
            assert h5py.check_vlen_dtype(f["spikes/units"].dtype) == np.uint16
            assert f["labels"].dtype == np.uint16
            assert f["extra/speaker"].dtype == np.uint16
            keys = [k.decode() for k in f["extra/keys"][()]]
            assert tuple(keys) == sd.CLASS_NAMES
            assert "NOT SHD" in f.attrs["note"] and "espeak-ng" in f.attrs["note"]
            assert '"seed": 5' in f.attrs["build"]
    readme = (out / "README.txt").read_text()
    assert "NOT SHD" in readme and "seed: 5" in readme
    for s in result.speakers:
        assert s.variant in readme


def test_build_splits_by_speaker_with_all_classes(built):
    out, result = built
    train, test = read_hdf5(out / "shd_train.h5"), read_hdf5(out / "shd_test.h5")
    assert len(train) + len(test) == SPEAKERS * REPEATS * 20
    assert (len(train), len(test)) == (result.n_train, result.n_test)
    assert set(train.speakers.tolist()).isdisjoint(test.speakers.tolist())
    assert set(train.speakers.tolist()) | set(test.speakers.tolist()) == set(range(SPEAKERS))
    for raw in (train, test):
        for spk in np.unique(raw.speakers):
            assert sorted(raw.labels[raw.speakers == spk].tolist()) == sorted(
                list(range(20)) * REPEATS
            )


def test_build_spikes_are_plausible(built):
    out, result = built
    for split in ("train", "test"):
        raw = read_hdf5(out / f"shd_{split}.h5")
        counts = raw.counts()
        assert np.all(counts > 0)
        assert raw.units.max() < CHANNELS
        assert raw.units.min() >= 0
        durations = result.durations[split]
        assert durations.shape == (len(raw),)
        sample_of_spike = np.repeat(np.arange(len(raw)), counts)
        times = raw.times.astype(np.float64)
        assert np.all(times >= 0)
        # float16 rounding: relative 2**-11
        assert np.all(times <= durations[sample_of_spike] * (1 + 2**-10))


def test_build_is_deterministic_serial_or_parallel(built, tmp_path):
    out, _ = built
    again = sd.build_spoken_digits(
        tmp_path,
        speakers=SPEAKERS,
        repeats=REPEATS,
        channels=CHANNELS,
        seed=5,
        workers=1,
        progress=False,
    )
    for split in ("train", "test"):
        a = read_hdf5(out / f"shd_{split}.h5")
        b = read_hdf5(getattr(again, f"{split}_path"))
        for field in ("times", "units", "pointers", "labels", "speakers"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_build_loads_through_load_shd(built):
    from eventprop.data.datasets import load_shd

    out, result = built
    data = load_shd("train", directory=out, cache=False)
    assert len(data) == result.n_train
    assert data.n_channels == 700
    assert data.class_names == sd.CLASS_NAMES
    test = load_shd("test", directory=out, cache=False)
    assert len(test) == result.n_test


def test_existing_files_need_force(built):
    out, _ = built
    with pytest.raises(FileExistsError, match="force"):
        sd.build_spoken_digits(out, speakers=2, repeats=1, progress=False)


def test_cli_refuses_to_overwrite_without_force(built, capsys):
    out, _ = built
    before = (out / "shd_train.h5").stat().st_mtime_ns
    assert main(["data", "make-spoken-digits", "--out", str(out), "--no-progress"]) == 1
    assert "--force" in capsys.readouterr().err
    assert (out / "shd_train.h5").stat().st_mtime_ns == before


def test_failed_write_leaves_no_partial_files(cochlea, tmp_path, monkeypatch):
    real = sd.write_hdf5
    calls = []

    def write_then_fail(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(sd, "write_hdf5", write_then_fail)
    # stop after the first word: the failure under test is in writing, not rendering
    specs_of = sd.plan_samples
    monkeypatch.setattr(sd, "plan_samples", lambda sp, r, s: specs_of(sp, r, s)[::20])
    with pytest.raises(OSError, match="disk full"):
        sd.build_spoken_digits(
            tmp_path, speakers=2, repeats=1, channels=CHANNELS, workers=1, progress=False
        )
    assert list(tmp_path.iterdir()) == []
