"""Input conditioning of the cochlea: level normalisation and on/off ramps.

The SHD cochlea sees every word at the same loudness: the waveform is scaled to a fixed RMS
(0.3 of full scale), so spike counts reflect spectral content and not the recording gain. It
is then tapered by a Hann window spanning the whole clip (rising over the first half, falling
over the second), so the clip starts and ends at zero and the filter bank sees no click.
"""

from __future__ import annotations

import numpy as np

__all__ = ["DEFAULT_RMS", "hann_taper", "rms_normalize"]

#: target RMS of the normalised waveform (full scale = 1)
DEFAULT_RMS = 0.3


def rms_normalize(signal: np.ndarray, level: float = DEFAULT_RMS) -> np.ndarray:
    """``signal`` scaled to RMS ``level`` (float64 copy). An all-zero signal stays zero."""
    x = np.array(signal, dtype=np.float64)
    rms = float(np.sqrt(np.mean(np.square(x)))) if x.size else 0.0
    if rms > 0.0:
        x *= level / rms
    return x


def hann_taper(signal: np.ndarray) -> np.ndarray:
    """``signal`` times a Hann window: rising half over the first ``n // 2`` samples, falling
    half over the last ``n // 2`` (the middle sample of an odd-length clip is kept)."""
    x = np.array(signal, dtype=np.float64)
    half = x.size // 2
    if half == 0:
        return x
    ramp = np.hanning(2 * half)[:half]
    x[:half] *= ramp
    x[x.size - half :] *= ramp[::-1]
    return x
