"""The SHD cochlea: audio waveform to spike trains of ``channels`` (default 700) bushy cells.

Model chain (Cramer et al. 2020, "The Heidelberg Spiking Data Sets"; reference code: lauscher):

1. RMS normalisation to 0.3 and a Hann taper over the clip (:mod:`.normalize`);
2. basilar-membrane velocity at ``channels`` places (:mod:`.filterbank`), delivered at half the
   input rate;
3. Meddis inner hair cells: per-step firing probability of the afferent fibres
   (:mod:`.hair_cell`);
4. bushy cells pooling 40 refractory fibres each, the spiking output (:mod:`.bushy_cell`).

Channel 0 is the base of the cochlea (highest frequencies), channel ``channels - 1`` the apex.

Sample rate. Like the reference, the model works at the audio's own rate, so a file gives the
same spikes here as in the published pipeline; rates outside 16-48 kHz are resampled to the
nearest end of that range (below it the half-rate stages would be too coarse for the 0.5 ms
synapses, above it only cost grows). ``Cochlea(sample_rate=...)`` fixes one model rate for all
inputs instead (every input is resampled to it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache

import numba
import numpy as np
from scipy.signal import resample_poly

from eventprop.audio.bushy_cell import BushyCellParams, bushy_cell, channel_seeds
from eventprop.audio.filterbank import (
    BasilarMembraneParams,
    MembraneResponse,
    basilar_membrane,
    characteristic_frequencies,
    membrane_response,
)
from eventprop.audio.hair_cell import HairCellParams, hair_cell
from eventprop.audio.normalize import DEFAULT_RMS, hann_taper, rms_normalize

__all__ = ["MAX_RATE", "MIN_RATE", "Cochlea", "CochleaStages", "encode_waveform"]

#: input rates the model runs at natively (Hz); others are resampled to the nearest bound
MIN_RATE = 16000
MAX_RATE = 48000
#: channels x half-rate steps processed at once by ``Cochlea.encode`` (~80 MB of float32)
_BLOCK_VALUES = 20_000_000


@dataclass(frozen=True, eq=False)
class CochleaStages:
    """Intermediate signals of one encoding (for inspection and tests)."""

    sample_rate: int  #: model input rate (Hz) after any resampling
    audio: np.ndarray  #: normalised, tapered waveform at ``sample_rate``
    velocity: np.ndarray  #: (channels, steps) membrane velocity at ``sample_rate / 2``
    probability: np.ndarray  #: (channels, steps) fibre firing probability per step


def _check_signal(signal: np.ndarray) -> np.ndarray:
    x = np.asarray(signal)
    if x.ndim == 2 and 1 in x.shape:
        x = x.reshape(-1)
    if x.ndim != 1:
        raise ValueError(
            f"expected a mono signal (1-D array), got shape {x.shape}; mix the channels down "
            "first (eventprop.audio.read_audio does)"
        )
    if x.size == 0:
        raise ValueError("the signal is empty (0 samples)")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise ValueError(f"expected a real-valued signal, got dtype {x.dtype}")
    x = x.astype(np.float64, copy=False)
    if not np.all(np.isfinite(x)):
        bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
        raise ValueError(f"the signal has {bad} non-finite samples (NaN or inf)")
    return x


def _check_rate(sample_rate: float) -> int:
    rate = float(sample_rate)
    if not math.isfinite(rate) or rate <= 0 or rate != round(rate):
        raise ValueError(f"sample_rate must be a positive integer (Hz), got {sample_rate!r}")
    return round(rate)


def resample(signal: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Polyphase resampling (``scipy.signal.resample_poly``) from ``rate`` to ``target`` Hz."""
    if rate == target:
        return signal
    ratio = Fraction(target, rate)
    return resample_poly(signal, ratio.numerator, ratio.denominator)


@dataclass(frozen=True, eq=False)
class Cochlea:
    """The cochlea model with its parameters; ``encode`` turns a waveform into spikes.

    Construction is cheap; the membrane response table is built (or loaded from the disk
    cache) on first use.
    """

    channels: int = 700
    #: fixed model input rate (Hz), or None: the audio's own rate within [MIN_RATE, MAX_RATE]
    sample_rate: int | None = None
    rms_level: float = DEFAULT_RMS
    membrane: BasilarMembraneParams = field(default_factory=BasilarMembraneParams)
    hair: HairCellParams = field(default_factory=HairCellParams)
    bushy: BushyCellParams = field(default_factory=BushyCellParams)

    def __post_init__(self) -> None:
        if int(self.channels) != self.channels or self.channels < 1:
            raise ValueError(f"channels must be a positive integer, got {self.channels!r}")
        if self.sample_rate is not None:
            rate = _check_rate(self.sample_rate)
            if rate > 2 * self.membrane.f_max:
                raise ValueError(
                    f"sample_rate {rate} Hz is above the model's range "
                    f"(at most {2 * self.membrane.f_max:g} Hz)"
                )

    @property
    def response(self) -> MembraneResponse:
        """The membrane response table (built or loaded on first access)."""
        return membrane_response(int(self.channels), self.membrane)

    def characteristic_frequencies(self) -> np.ndarray:
        """Resonance frequency (Hz) of each channel, decreasing from base (0) to apex."""
        return characteristic_frequencies(int(self.channels), self.membrane)

    def model_rate(self, sample_rate: int) -> int:
        """The rate (Hz) an input at ``sample_rate`` is processed at."""
        if self.sample_rate is not None:
            return int(self.sample_rate)
        return min(max(sample_rate, MIN_RATE), MAX_RATE)

    def _prepare(self, signal: np.ndarray, sample_rate: int) -> tuple[np.ndarray, int]:
        """Checked, resampled, normalised and tapered input, and the model rate."""
        x = _check_signal(signal)
        rate = _check_rate(sample_rate)
        target = self.model_rate(rate)
        return hann_taper(rms_normalize(resample(x, rate, target), self.rms_level)), target

    def stages(self, signal: np.ndarray, sample_rate: int) -> CochleaStages:
        """Run the deterministic stages (normalisation, membrane, hair cells)."""
        audio, target = self._prepare(signal, sample_rate)
        threads = numba.get_num_threads()
        velocity = basilar_membrane(audio, target, self.response, workers=threads)
        probability = hair_cell(velocity, 0.5 * target, self.hair)
        return CochleaStages(target, audio, velocity, probability)

    def encode(
        self, signal: np.ndarray, sample_rate: int, *, seed: int | None = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Spike trains of ``signal``: ``(times_s float64 ascending, units int64)``.

        Deterministic for a given ``seed`` (``None``: fresh randomness). Times run from 0 to
        the clip's duration, on the grid of the half-rate stages.
        """
        audio, target = self._prepare(signal, sample_rate)
        n_ch = int(self.channels)
        response = self.response
        streams = channel_seeds(seed, n_ch)
        threads = numba.get_num_threads()
        half_rate = 0.5 * target
        # channels in blocks of at most _BLOCK_VALUES samples: bounded memory for long clips
        # (a 0.75 s word at 700 channels is one block)
        steps_per_channel = (audio.size + 1) // 2
        block = max(16, _BLOCK_VALUES // max(1, steps_per_channel))
        all_steps, all_units = [], []
        for lo in range(0, n_ch, block):
            sl = slice(lo, min(n_ch, lo + block))
            velocity = basilar_membrane(audio, target, response, channels=sl, workers=threads)
            probability = hair_cell(velocity, half_rate, self.hair)
            del velocity
            steps, units = bushy_cell(probability, half_rate, self.bushy, streams=streams[sl])
            all_steps.append(steps)
            all_units.append(units + lo)
        steps = np.concatenate(all_steps)
        units = np.concatenate(all_units)
        if len(all_steps) > 1:
            order = np.lexsort((units, steps))
            steps, units = steps[order], units[order]
        return steps.astype(np.float64) / half_rate, units


@lru_cache(maxsize=8)
def _default_cochlea(channels: int) -> Cochlea:
    return Cochlea(channels=channels)


def encode_waveform(
    signal: np.ndarray, sample_rate: int, *, channels: int = 700, seed: int | None = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Encode a mono waveform with the default cochlea of ``channels`` channels.

    Returns ``(times_s, units)``: float64 spike times in seconds, ascending, and int64 channel
    indices in ``0..channels-1`` (0 = highest frequency). Deterministic for a given ``seed``.
    Raises ``ValueError`` for empty, non-finite or multi-channel input.
    """
    if int(channels) != channels or channels < 1:
        raise ValueError(f"channels must be a positive integer, got {channels!r}")
    return _default_cochlea(int(channels)).encode(signal, sample_rate, seed=seed)
