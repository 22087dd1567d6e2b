"""What eventprop's audio tools choose for a clip: model rate, taper, stored time precision.

Shared by ``eventprop audio encode`` (:mod:`eventprop.audio.encode`) and ``eventprop data
make-shd`` (:mod:`eventprop.builders.shd_replica`) so that both treat the same sound alike.

- **Model rate.** The cochlea's output depends on the rate it runs at (the hair cell's 0.11 ms
  cleft time constant is not resolved by the Euler steps: lower rates give more spikes), so a
  tool that took each file's own rate would give the same word ~14,000 spikes at 16 kHz and
  ~7,000 at 48 kHz. The tools therefore resample every file to ``DEFAULT_MODEL_RATE`` (24 kHz,
  where the cochlea gives SHD's level of about 8,000 spikes per digit); ``native`` keeps each
  file's own rate, as the reference implementation does.
- **Word length.** A clip shorter than ``WORD_MAX_S`` is a word: it gets SHD's treatment
  (Hann taper over the whole clip, float16 times). Longer clips get short ramps at the edges
  (see :mod:`eventprop.audio.normalize`) and wider float types.
- **Time precision.** Spike times are stored in the narrowest float type whose spacing at the
  longest clip's duration is ``TIME_RESOLUTION_S`` or finer: float16 below 2 s (SHD's layout),
  float32 below 16384 s (4.5 h), float64 beyond.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "DEFAULT_MODEL_RATE",
    "TAPERS",
    "TIME_RESOLUTION_S",
    "WORD_MAX_S",
    "parse_model_rate",
    "resolve_taper",
    "time_dtype",
]

#: model rate (Hz) the file tools resample to by default
DEFAULT_MODEL_RATE = 24000
#: coarsest spacing of stored spike times (s)
TIME_RESOLUTION_S = 1e-3
#: clips shorter than this (s) are words: SHD's taper and float16 times (float16's spacing is
#: 2**-10 s = 0.98 ms just below 2 s and 1.95 ms from 2 s on)
WORD_MAX_S = 2.0
#: taper choices; ``auto`` = ``whole`` for words, ``edges`` for longer clips
TAPERS = ("auto", "whole", "edges", "none")


def parse_model_rate(text: str) -> int | None:
    """``"native"`` -> None (each file's own rate), else a positive rate in Hz.

    Raises ``ValueError`` with a message naming the accepted forms.
    """
    if text.strip().lower() == "native":
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"expected a rate in Hz or 'native', got {text!r}")
    return value


def resolve_taper(taper: str, duration_s: float) -> str:
    """The taper a clip of ``duration_s`` gets: ``auto`` resolved by the clip's length."""
    if taper not in TAPERS:
        raise ValueError(f"taper must be one of {', '.join(TAPERS)}, got {taper!r}")
    if taper == "auto":
        return "whole" if duration_s < WORD_MAX_S else "edges"
    return taper


def time_dtype(duration_s: float, resolution_s: float = TIME_RESOLUTION_S) -> np.dtype:
    """Narrowest float type whose spacing below ``duration_s`` is ``resolution_s`` or finer."""
    d = float(duration_s)
    if not math.isfinite(d) or d < 0:
        raise ValueError(f"duration must be a finite number >= 0, got {duration_s!r}")
    # values just below d lie in [2**e, 2**(e + 1)) with e = floor(log2(d))
    exponent = math.frexp(d)[1] - 1 if d > 0 else -1074
    for dtype in (np.float16, np.float32):
        info = np.finfo(dtype)
        if d < float(info.max) and 2.0 ** (exponent - info.nmant) <= resolution_s:
            return np.dtype(dtype)
    return np.dtype(np.float64)
