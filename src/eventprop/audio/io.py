"""Reading audio files for the cochlea: any WAV or FLAC (and what else libsndfile reads).

Files are decoded with ``soundfile`` (libsndfile, bundled with its wheels), which reads PCM of
any width, float WAV and FLAC; if it is missing, WAV files still load through
``scipy.io.wavfile``. Integer PCM is scaled to [-1, 1) and multi-channel audio is mixed down to
mono (the mean of the channels), which is what the cochlea takes.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["AUDIO_SUFFIXES", "AudioReadError", "read_audio"]

#: file name suffixes picked up when a folder is given (lower case)
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".aiff", ".aif")


class AudioReadError(ValueError):
    """An audio file exists but cannot be decoded (the message names the file)."""


def _pcm_to_float(data: np.ndarray) -> np.ndarray:
    if data.dtype == np.uint8:  # 8-bit WAV is unsigned, centred on 128
        return (data.astype(np.float64) - 128.0) / 128.0
    if np.issubdtype(data.dtype, np.integer):
        return data.astype(np.float64) / float(-np.iinfo(data.dtype).min)
    return data.astype(np.float64)


def _read_scipy(path: Path) -> tuple[np.ndarray, int]:
    from scipy.io import wavfile

    rate, data = wavfile.read(path)
    return _pcm_to_float(np.asarray(data)), int(rate)


def _read_soundfile(path: Path) -> tuple[np.ndarray, int]:
    import soundfile

    data, rate = soundfile.read(path, dtype="float64", always_2d=False)
    return np.asarray(data), int(rate)


def read_audio(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """Decode ``path``: ``(mono float64 signal in [-1, 1], sample rate in Hz)``.

    Raises :class:`FileNotFoundError` for a missing file and :class:`AudioReadError` (a
    ``ValueError``) naming the file when it cannot be decoded or holds no samples.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"audio file not found: {p}")
    try:
        import soundfile  # noqa: F401
    except (ImportError, OSError):  # no wheel, or libsndfile failed to load
        reader = _read_scipy
    else:
        reader = _read_soundfile
    try:
        data, rate = reader(p)
    except Exception as exc:  # every decoder has its own error types
        raise AudioReadError(f"cannot read audio file {p}: {exc}") from exc
    if data.ndim == 2:
        data = data.mean(axis=1)
    if data.ndim != 1 or data.size == 0:
        raise AudioReadError(f"audio file {p} holds no samples")
    if rate <= 0:
        raise AudioReadError(f"audio file {p} has an invalid sample rate ({rate} Hz)")
    return np.ascontiguousarray(data, dtype=np.float64), rate
