"""Synthetic test sounds: tones, chirps and a speech-like word, with no external program.

Used to check and benchmark the cochlea (``tests/audio``, ``benchmarks/bench_cochlea.py``):
a pure tone must excite the channels tuned to it, and the word has what makes speech hard for
a cochlea -- a fricative (broadband noise above 3 kHz), voiced syllables with a gliding pitch
and formants, and silence around them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["chirp", "spoken_word", "tone"]


def tone(
    freq_hz: float, duration_s: float, sample_rate: int, *, amplitude: float = 0.5
) -> np.ndarray:
    """A sine tone with 5 ms raised-cosine on/off ramps."""
    t = np.arange(round(duration_s * sample_rate)) / sample_rate
    x = amplitude * np.sin(2 * np.pi * freq_hz * t)
    return x * _ramps(x.size, int(0.005 * sample_rate))


def chirp(f0_hz: float, f1_hz: float, duration_s: float, sample_rate: int) -> np.ndarray:
    """Exponential sweep from ``f0_hz`` to ``f1_hz`` (amplitude 0.5, 5 ms ramps)."""
    n = round(duration_s * sample_rate)
    t = np.arange(n) / sample_rate
    k = np.log(f1_hz / f0_hz) / duration_s
    phase = 2 * np.pi * f0_hz * (np.exp(k * t) - 1.0) / k
    return 0.5 * np.sin(phase) * _ramps(n, int(0.005 * sample_rate))


def _ramps(n: int, ramp: int) -> np.ndarray:
    env = np.ones(n)
    ramp = min(ramp, n // 2)
    if ramp > 0:
        r = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
        env[:ramp] = r
        env[n - ramp :] = r[::-1]
    return env


def _voiced(
    t: np.ndarray, f0: np.ndarray, formants: tuple[tuple[float, float], ...], sample_rate: int
) -> np.ndarray:
    """Harmonics of the pitch contour ``f0`` weighted by a formant envelope."""
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    out = np.zeros_like(t)
    for k in range(1, int(0.5 * sample_rate / f0.max())):
        fk = k * f0
        gain = sum(1.0 / (1.0 + ((fk - fc) / bw) ** 2) for fc, bw in formants) / k**0.5
        out += gain * np.sin(k * phase)
    return out


def spoken_word(
    sample_rate: int = 22050, duration_s: float = 0.75, *, seed: int = 0, pitch_hz: float = 130.0
) -> np.ndarray:
    """A two-syllable word-like sound ("s" + two vowels), peak amplitude 0.5.

    0.05 s of silence, a 0.1 s fricative, a vowel /e/ (0.2 s), a vowel /o/ (0.25 s), then
    silence; the pitch falls by 30 % over the voiced part. Deterministic for a given ``seed``.
    """
    rng = np.random.default_rng(seed)
    n = round(duration_s * sample_rate)
    t = np.arange(n) / sample_rate
    x = np.zeros(n)
    # fricative: white noise high-passed by differencing twice, 0.05-0.15 s
    lo, hi = int(0.05 * sample_rate), min(n, int(0.15 * sample_rate))
    noise = np.diff(rng.standard_normal(hi - lo + 2), n=2)
    x[lo:hi] += 0.08 * noise * _ramps(hi - lo, int(0.01 * sample_rate))
    # vowels with a falling pitch
    f0 = pitch_hz * (1.0 - 0.3 * np.clip((t - 0.15) / 0.45, 0.0, 1.0))
    for start, stop, formants in (
        (0.15, 0.35, ((530.0, 80.0), (1840.0, 120.0), (2480.0, 150.0))),
        (0.35, 0.60, ((570.0, 80.0), (840.0, 90.0), (2410.0, 150.0))),
    ):
        a, b = int(start * sample_rate), min(n, int(stop * sample_rate))
        if b <= a:
            continue
        seg = _voiced(t[a:b], f0[a:b], formants, sample_rate)
        x[a:b] += seg / np.abs(seg).max() * _ramps(b - a, int(0.03 * sample_rate))
    peak = np.abs(x).max()
    return 0.5 * x / peak if peak > 0 else x
