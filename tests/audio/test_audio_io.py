"""Reading audio files: formats, scaling, mono mixdown, errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.io import wavfile

from eventprop.audio import AudioReadError, read_audio


@pytest.mark.parametrize(
    ("dtype", "scale"),
    [(np.int16, 32768.0), (np.int32, 2.0**31), (np.float32, 1.0)],
)
def test_wav_is_scaled_to_unit_range(tmp_path, dtype, scale):
    x = np.array([0.0, 0.25, -0.5, 0.99])
    path = tmp_path / "a.wav"
    wavfile.write(path, 16000, (x * scale).astype(dtype))
    y, rate = read_audio(path)
    assert rate == 16000 and y.dtype == np.float64
    np.testing.assert_allclose(y, x, atol=1e-4)


def test_stereo_is_mixed_down(tmp_path):
    left = np.full(50, 0.5)
    right = np.full(50, -0.25)
    path = tmp_path / "s.wav"
    wavfile.write(path, 22050, np.stack([left, right], axis=1).astype(np.float32))
    y, rate = read_audio(path)
    assert rate == 22050 and y.shape == (50,)
    np.testing.assert_allclose(y, 0.125)


def test_flac(tmp_path):
    soundfile = pytest.importorskip("soundfile")
    x = 0.5 * np.sin(np.linspace(0, 50, 4000))
    path = tmp_path / "a.flac"
    soundfile.write(path, x, 16000, subtype="PCM_16")
    y, rate = read_audio(path)
    assert rate == 16000
    np.testing.assert_allclose(y, x, atol=1e-4)


def test_scipy_fallback_reads_wav(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_soundfile(name, *args, **kwargs):
        if name == "soundfile":
            raise ImportError("soundfile hidden")
        return real_import(name, *args, **kwargs)

    path = tmp_path / "u8.wav"
    wavfile.write(path, 8000, np.array([128, 192, 64], dtype=np.uint8))
    monkeypatch.setattr(builtins, "__import__", no_soundfile)
    y, rate = read_audio(path)
    assert rate == 8000
    np.testing.assert_allclose(y, [0.0, 0.5, -0.5])


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nothere\.wav"):
        read_audio(tmp_path / "nothere.wav")


def test_unreadable_file_names_the_file(tmp_path):
    path = tmp_path / "broken.wav"
    path.write_bytes(b"RIFF\x00\x00garbage")
    with pytest.raises(AudioReadError, match=r"broken\.wav"):
        read_audio(path)
    empty = tmp_path / "empty.wav"
    wavfile.write(empty, 16000, np.zeros(0, dtype=np.int16))
    with pytest.raises(AudioReadError, match=r"empty\.wav"):
        read_audio(empty)
