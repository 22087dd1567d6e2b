"""Input conditioning of the cochlea: level normalisation and on/off ramps (tapers).

The SHD cochlea sees every word at the same loudness: the waveform is scaled to a fixed RMS
(0.3 of full scale), so spike counts reflect spectral content and not the recording gain.

It is then tapered so that the clip starts and ends at zero and the filter bank sees no click.
SHD used a Hann window spanning the whole clip (``"whole"``: rising over the first half,
falling over the second). For a word that is part of the data set's character; for anything
longer it is damage: a steady 30 s tone would reach full level only in its middle. ``"edges"``
ramps only the first and last ``EDGE_RAMP_S`` (raised-cosine halves), ``"none"`` keeps the
signal as it is. Which taper a clip gets by default is the policy of
:mod:`eventprop.audio.policy`.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "DEFAULT_RMS",
    "EDGE_RAMP_S",
    "apply_taper",
    "edge_taper",
    "hann_taper",
    "rms_normalize",
]

#: target RMS of the normalised waveform (full scale = 1)
DEFAULT_RMS = 0.3
#: length of each ramp of the ``"edges"`` taper (s): long enough to avoid an onset click in
#: the filter bank (its slowest channels ring for ~50 ms, a 10 ms ramp has no energy there
#: that a word lacks), short enough to leave the clip's level alone
EDGE_RAMP_S = 0.01


def rms_normalize(signal: np.ndarray, level: float = DEFAULT_RMS) -> np.ndarray:
    """``signal`` scaled to RMS ``level`` (float64 copy). An all-zero signal stays zero."""
    x = np.array(signal, dtype=np.float64)
    rms = float(np.sqrt(np.mean(np.square(x)))) if x.size else 0.0
    if rms > 0.0:
        x *= level / rms
    return x


def _ramp_in_place(x: np.ndarray, half: int) -> None:
    """Multiply the first and last ``half`` samples by the rising/falling Hann halves."""
    if half == 0:
        return
    ramp = np.hanning(2 * half)[:half]
    x[:half] *= ramp
    x[x.size - half :] *= ramp[::-1]


def hann_taper(signal: np.ndarray, *, copy: bool = True) -> np.ndarray:
    """``signal`` times a Hann window: rising half over the first ``n // 2`` samples, falling
    half over the last ``n // 2`` (the middle sample of an odd-length clip is kept).

    ``copy=False`` works in place on a float64 array (long clips: no second copy).
    """
    x = np.array(signal, dtype=np.float64) if copy else signal
    _ramp_in_place(x, x.size // 2)
    return x


def edge_taper(
    signal: np.ndarray, sample_rate: float, ramp_s: float = EDGE_RAMP_S, *, copy: bool = True
) -> np.ndarray:
    """``signal`` with raised-cosine ramps of ``ramp_s`` at both ends (at most half the clip
    each, so a clip shorter than two ramps gets the whole-clip Hann window)."""
    x = np.array(signal, dtype=np.float64) if copy else signal
    _ramp_in_place(x, min(x.size // 2, round(ramp_s * float(sample_rate))))
    return x


def apply_taper(
    signal: np.ndarray, sample_rate: float, taper: str, *, copy: bool = True
) -> np.ndarray:
    """``signal`` with the taper ``"whole"``, ``"edges"`` or ``"none"``."""
    if taper == "whole":
        return hann_taper(signal, copy=copy)
    if taper == "edges":
        return edge_taper(signal, sample_rate, copy=copy)
    if taper == "none":
        return np.array(signal, dtype=np.float64) if copy else signal
    raise ValueError(f"taper must be 'whole', 'edges' or 'none', got {taper!r}")
