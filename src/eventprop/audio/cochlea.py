"""The SHD cochlea: audio waveform to spike trains of ``channels`` (default 700) bushy cells.

Model chain (Cramer et al. 2020, "The Heidelberg Spiking Data Sets"; reference code: lauscher):

1. RMS normalisation to 0.3 and a taper: SHD's Hann window over the whole clip for words,
   short ramps at the ends of longer clips (:mod:`.normalize`, :mod:`.policy`);
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
inputs instead (every input is resampled to it); the file tools do that by default
(:data:`eventprop.audio.policy.DEFAULT_MODEL_RATE`), since the spike count depends on the rate.

Memory. Words are processed whole (in blocks of channels when there are many). Clips of
``WORD_MAX_S`` and longer are streamed in blocks of time: the membrane stage of each block
sees ``STREAM_MARGIN_S`` of the signal on either side (its responses are shorter), and the
hair and bushy cells carry their state from block to block, so memory does not grow with the
clip's length beyond the signal itself and its spikes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache

import numba
import numpy as np
from scipy.signal import resample_poly

from eventprop.audio.bushy_cell import BushyCellParams, BushyCellState, bushy_cell, channel_seeds
from eventprop.audio.filterbank import (
    BasilarMembraneParams,
    MembraneResponse,
    basilar_membrane,
    characteristic_frequencies,
    membrane_response,
)
from eventprop.audio.hair_cell import HairCellParams, hair_cell, hair_state
from eventprop.audio.normalize import DEFAULT_RMS, apply_taper, rms_normalize
from eventprop.audio.policy import TAPERS, WORD_MAX_S, resolve_taper

__all__ = ["MAX_RATE", "MIN_RATE", "STREAM_MARGIN_S", "Cochlea", "CochleaStages", "encode_waveform"]

#: input rates the model runs at natively (Hz); others are resampled to the nearest bound
MIN_RATE = 16000
MAX_RATE = 48000
#: channels x half-rate steps processed at once by ``Cochlea.encode`` (~80 MB of float32)
_BLOCK_VALUES = 20_000_000
#: signal (s) on either side of a time block that the membrane stage sees: the membrane's
#: impulse responses keep all but 3e-4 of their energy within +-0.1 s (the slowest, apical
#: channels ring for ~50 ms)
STREAM_MARGIN_S = 0.1


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
    #: ``auto`` (SHD's ``whole`` for clips under ``WORD_MAX_S``, ``edges`` for longer ones),
    #: ``whole``, ``edges`` or ``none`` (see :mod:`eventprop.audio.normalize`)
    taper: str = "auto"
    #: channels x steps held at once (bounds the memory of an encoding, ~4 bytes per value
    #: in each of a few arrays); results do not depend on it except where it makes a long
    #: clip stream in time blocks
    block_values: int = _BLOCK_VALUES
    membrane: BasilarMembraneParams = field(default_factory=BasilarMembraneParams)
    hair: HairCellParams = field(default_factory=HairCellParams)
    bushy: BushyCellParams = field(default_factory=BushyCellParams)

    def __post_init__(self) -> None:
        if int(self.channels) != self.channels or self.channels < 1:
            raise ValueError(f"channels must be a positive integer, got {self.channels!r}")
        if self.taper not in TAPERS:
            raise ValueError(f"taper must be one of {', '.join(TAPERS)}, got {self.taper!r}")
        if int(self.block_values) != self.block_values or self.block_values < 1:
            raise ValueError(f"block_values must be a positive integer, got {self.block_values!r}")
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

    def taper_for(self, duration_s: float) -> str:
        """The taper a clip of ``duration_s`` seconds gets (``auto`` resolved)."""
        return resolve_taper(self.taper, duration_s)

    def _prepare(self, signal: np.ndarray, sample_rate: int) -> tuple[np.ndarray, int]:
        """Checked, resampled, normalised and tapered input, and the model rate."""
        x = _check_signal(signal)
        rate = _check_rate(sample_rate)
        target = self.model_rate(rate)
        taper = self.taper_for(x.size / rate)
        # one copy of the signal (made by rms_normalize), tapered in place: long clips
        audio = rms_normalize(resample(x, rate, target), self.rms_level)
        return apply_taper(audio, target, taper, copy=False), target

    def stages(self, signal: np.ndarray, sample_rate: int) -> CochleaStages:
        """Run the deterministic stages (normalisation, membrane, hair cells) on the whole
        clip at once (for inspection: memory grows with the clip's length)."""
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
        streams = channel_seeds(seed, n_ch)
        half_rate = 0.5 * target
        steps_per_channel = (audio.size + 1) // 2
        block_steps = self._time_block_steps(target)
        if audio.size / target < WORD_MAX_S or steps_per_channel <= block_steps:
            steps, units = self._encode_whole(audio, target, streams)
            return steps.astype(np.float64) / half_rate, units
        blocks = self._encode_streamed(audio, target, streams, block_steps)
        del audio  # the signal's copy is not needed while the spikes are assembled
        times = np.concatenate([b for b, _ in blocks]).astype(np.float64)
        times /= half_rate
        units = np.concatenate([u for _, u in blocks]).astype(np.int64)
        return times, units

    def _time_block_steps(self, rate: int) -> int:
        """Half-rate steps per time block of a streamed clip: a quarter of ``block_values``
        (a streamed block holds several arrays of that size at once, a whole clip's stages
        fewer), but at least 8 margins long so that the margins cost < 25 % more membrane."""
        margin_steps = math.ceil(STREAM_MARGIN_S * rate / 2)
        return max(int(self.block_values) // (4 * int(self.channels)), 8 * margin_steps)

    def _encode_whole(
        self, audio: np.ndarray, target: int, streams: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The whole clip at once, in blocks of channels (words: SHD's computation)."""
        n_ch = int(self.channels)
        response = self.response
        threads = numba.get_num_threads()
        half_rate = 0.5 * target
        steps_per_channel = (audio.size + 1) // 2
        block = max(16, int(self.block_values) // max(1, steps_per_channel))
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
        return steps, units

    def _encode_streamed(
        self, audio: np.ndarray, target: int, streams: np.ndarray, block_steps: int
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """A long clip in blocks of time, all channels at once; memory bounded by the block.

        Block ``[s, e)`` of the half-rate output is the membrane response to input samples
        ``[2 s - margin, 2 e + margin)`` (zeros outside the clip), cut to its middle; the hair
        and bushy cells continue from the previous block's state, so only the membrane's
        tails beyond the margin differ from a whole-clip computation. Returns each block's
        ``(steps, units)`` in the narrowest integer types (a long clip has millions of spikes).
        """
        n_ch = int(self.channels)
        response = self.response
        threads = numba.get_num_threads()
        half_rate = 0.5 * target
        n = audio.size
        total = (n + 1) // 2
        margin = 2 * math.ceil(STREAM_MARGIN_S * target / 2)  # input samples, even
        hair = hair_state(n_ch, self.hair)
        bushy = BushyCellState.start(streams, half_rate, self.bushy)
        step_type = np.int32 if total < 2**31 else np.int64
        unit_type = np.min_scalar_type(n_ch - 1)
        blocks: list[tuple[np.ndarray, np.ndarray]] = []
        segment = np.zeros(2 * block_steps + 2 * margin, dtype=np.float64)
        for s in range(0, total, block_steps):
            e = min(total, s + block_steps)
            a, b = 2 * s - margin, 2 * e + margin
            seg = segment[: b - a]
            seg[:] = 0.0
            lo, hi = max(a, 0), min(b, n)
            seg[lo - a : hi - a] = audio[lo:hi]
            keep = slice(margin // 2, margin // 2 + (e - s))
            velocity = basilar_membrane(seg, target, response, steps=keep, workers=threads)
            probability = hair_cell(velocity, half_rate, self.hair, state=hair)
            del velocity
            steps, units = bushy_cell(probability, half_rate, self.bushy, state=bushy)
            del probability
            # blocks are in time order and a block's spikes are sorted: no global sort needed
            blocks.append((steps.astype(step_type), units.astype(unit_type)))
        return blocks


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
