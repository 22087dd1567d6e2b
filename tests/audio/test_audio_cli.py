"""``eventprop audio encode``: folders to one SHD-format file."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from scipy.io import wavfile

from eventprop.audio.encode import collect_inputs, encode_files
from eventprop.audio.synth import spoken_word, tone
from eventprop.cli.main import main
from eventprop.data.hdf5 import read_hdf5

RATE = 16000


def _write(path, x, rate=RATE):
    path.parent.mkdir(parents=True, exist_ok=True)
    wavfile.write(path, rate, (np.clip(x, -1, 1) * 32767).astype(np.int16))
    return path


@pytest.fixture
def class_folders(tmp_path):
    root = tmp_path / "words"
    _write(root / "yes" / "a.wav", spoken_word(RATE, 0.3, seed=0))
    _write(root / "yes" / "speaker2" / "b.wav", spoken_word(RATE, 0.3, seed=1, pitch_hz=200))
    _write(root / "no" / "a.wav", tone(440.0, 0.3, RATE))
    _write(root / "go" / "c.wav", tone(2000.0, 0.25, 22050), rate=22050)
    return root


def test_encode_folder_to_shd_file(class_folders, tmp_path, capsys):
    out = tmp_path / "out.h5"
    argv = ["audio", "encode", str(class_folders), "--out", str(out), "--channels", "32"]
    assert main([*argv, "--workers", "1", "--no-progress"]) == 0
    assert "3 classes (go, no, yes)" in capsys.readouterr().out
    raw = read_hdf5(out, n_channels=32)
    assert raw.class_names == ("go", "no", "yes")
    assert raw.labels.tolist() == [0, 1, 2, 2]  # sorted by class, then path
    assert raw.speakers.tolist() == [0, 0, 0, 0]
    assert np.all(raw.counts() > 0)
    assert raw.units.max() < 32 and raw.times.max() < 0.31
    with h5py.File(out) as f:
        assert h5py.check_vlen_dtype(f["spikes/times"].dtype) == np.float16
        assert h5py.check_vlen_dtype(f["spikes/units"].dtype) == np.uint16
        assert f["labels"].dtype == np.uint16
        assert f["extra/speaker"].dtype == np.uint16
        assert [k.decode() for k in f["extra/keys"][()]] == ["go", "no", "yes"]
        assert "eventprop.audio" in f.attrs["note"]


def test_pool_gives_the_same_spikes_as_one_process(class_folders):
    items, _ = collect_inputs([class_folders])
    paths = [it.path for it in items]
    one = encode_files(paths, channels=16, workers=1, progress=False)
    two = encode_files(paths, channels=16, workers=2, progress=False)
    for (t1, u1), (t2, u2) in zip(one, two):
        np.testing.assert_array_equal(t1, t2)
        np.testing.assert_array_equal(u1, u2)
    # files get independent streams: equal audio, different spikes
    assert not np.array_equal(one[0][1][:50], one[1][1][:50])


def test_files_and_flat_folders(tmp_path):
    a = _write(tmp_path / "up" / "x.wav", tone(300.0, 0.2, RATE))
    _write(tmp_path / "down" / "y.wav", tone(600.0, 0.2, RATE))
    _write(tmp_path / "down" / "z.wav", tone(700.0, 0.2, RATE))
    items, names = collect_inputs([a, tmp_path / "down", a])
    assert names == ["down", "up"]
    assert [(it.path.name, it.class_name) for it in items] == [
        ("y.wav", "down"),
        ("z.wav", "down"),
        ("x.wav", "up"),
    ]


def test_flac_input(tmp_path):
    soundfile = pytest.importorskip("soundfile")
    path = tmp_path / "cls" / "a.flac"
    path.parent.mkdir()
    soundfile.write(path, tone(500.0, 0.2, RATE), RATE)
    out = tmp_path / "f.h5"
    argv = ["audio", "encode", str(path), "--out", str(out), "--channels", "16", "--workers", "1"]
    assert main([*argv, "--no-progress"]) == 0
    raw = read_hdf5(out, n_channels=16)
    assert raw.class_names == ("cls",) and len(raw) == 1


def test_errors_are_reported(tmp_path, capsys):
    out = tmp_path / "x.h5"
    assert main(["audio", "encode", str(tmp_path / "missing"), "--out", str(out)]) == 1
    assert "input not found" in capsys.readouterr().err
    mixed = tmp_path / "mixed"
    _write(mixed / "yes" / "a.wav", tone(300.0, 0.1, RATE))
    _write(mixed / "loose.wav", tone(300.0, 0.1, RATE))
    assert main(["audio", "encode", str(mixed), "--out", str(out), "--no-progress"]) == 1
    assert "loose.wav" in capsys.readouterr().err
    bad = tmp_path / "bad" / "c" / "broken.wav"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not audio")
    argv = ["audio", "encode", str(tmp_path / "bad"), "--out", str(out), "--workers", "1"]
    assert main([*argv, "--no-progress"]) == 1
    assert "broken.wav" in capsys.readouterr().err
    assert not out.exists()
