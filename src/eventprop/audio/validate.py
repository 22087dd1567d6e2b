"""Agreement of two cochleas' spike trains, and a runner for the reference implementation.

The model is stochastic (the afferent fibres fire at random), so two encodings of one clip
are compared statistically, over several seeds each. :func:`compare_spikes` reports

- ``total_rel_diff``: relative difference of the mean total spike count;
- ``channel_corr``: Pearson correlation of the mean spike count per channel;
- ``band_psth_corr``: per band of ``channels / bands`` adjacent channels, Pearson correlation
  of the mean peri-stimulus time histograms (``bin_s`` bins over the clip), and
  ``psth_corr_min``: its minimum over the bands that hold at least ``min_band_spikes``
  spikes per run in the reference (sparser bands are dominated by counting noise);
- ``noise_channel_corr``: the same channel correlation between two halves of the reference's
  runs, the ceiling that counting noise leaves (``nan`` with fewer than 2 runs).

:func:`lauscher_encode` runs ``lauscher`` (Cramer et al.; ``pip install lauscher``, not a
dependency of eventprop), the SHD authors' code, on a waveform, with its global numpy seed set
per run so that its output is reproducible.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["SpikeAgreement", "compare_spikes", "lauscher_encode", "psth"]

Spikes = tuple[np.ndarray, np.ndarray]


def psth(
    runs: Sequence[Spikes], channels: int, bands: int, bin_s: float, duration_s: float
) -> np.ndarray:
    """Mean spike count per (band, time bin) over ``runs``: shape ``(bands, n_bins)``."""
    n_bins = max(1, int(np.ceil(duration_s / bin_s)))
    hist = np.zeros((bands, n_bins))
    for times, units in runs:
        band = np.minimum(np.asarray(units) * bands // channels, bands - 1)
        b = np.minimum((np.asarray(times) / bin_s).astype(np.int64), n_bins - 1)
        np.add.at(hist, (band, b), 1.0)
    return hist / max(1, len(runs))


def _channel_counts(runs: Sequence[Spikes], channels: int) -> np.ndarray:
    return np.mean([np.bincount(np.asarray(u), minlength=channels) for _, u in runs], axis=0)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


@dataclass(frozen=True)
class SpikeAgreement:
    """Agreement measures of a candidate against a reference (see the module docstring)."""

    total_candidate: float  #: mean total spikes per run
    total_reference: float
    total_rel_diff: float
    channel_corr: float
    band_psth_corr: tuple[float, ...]
    psth_corr_min: float
    band_spikes_reference: tuple[float, ...] = field(default=())
    noise_channel_corr: float = float("nan")

    def passes(
        self, *, total_tol: float = 0.05, channel_min: float = 0.95, psth_min: float = 0.9
    ) -> bool:
        """The acceptance rule: all three measures within their thresholds."""
        return (
            abs(self.total_rel_diff) <= total_tol
            and self.channel_corr >= channel_min
            and self.psth_corr_min >= psth_min
        )


def compare_spikes(
    candidate: Sequence[Spikes],
    reference: Sequence[Spikes],
    *,
    channels: int,
    duration_s: float,
    bands: int = 10,
    bin_s: float = 0.01,
    min_band_spikes: float = 200.0,
) -> SpikeAgreement:
    """Statistical agreement of two sets of encodings (several seeds each) of one clip."""
    if not candidate or not reference:
        raise ValueError("compare_spikes: need at least one run on each side")
    tot_c = float(np.mean([np.size(t) for t, _ in candidate]))
    tot_r = float(np.mean([np.size(t) for t, _ in reference]))
    cc = _channel_counts(candidate, channels)
    cr = _channel_counts(reference, channels)
    hc = psth(candidate, channels, bands, bin_s, duration_s)
    hr = psth(reference, channels, bands, bin_s, duration_s)
    band_corr = tuple(_corr(hc[i], hr[i]) for i in range(bands))
    band_spikes = tuple(float(s) for s in hr.sum(axis=1))
    dense = [c for c, s in zip(band_corr, band_spikes) if s >= min_band_spikes]
    noise = float("nan")
    if len(reference) >= 2:
        half = len(reference) // 2
        noise = _corr(
            _channel_counts(reference[:half], channels), _channel_counts(reference[half:], channels)
        )
    return SpikeAgreement(
        total_candidate=tot_c,
        total_reference=tot_r,
        total_rel_diff=(tot_c - tot_r) / tot_r if tot_r else float("nan"),
        channel_corr=_corr(cc, cr),
        band_psth_corr=band_corr,
        psth_corr_min=float(np.min(dense)) if dense else float("nan"),
        band_spikes_reference=band_spikes,
        noise_channel_corr=noise,
    )


def lauscher_encode(
    signal: np.ndarray,
    sample_rate: int,
    *,
    channels: int = 700,
    seeds: Sequence[int] = (0,),
    jobs: int | None = None,
) -> tuple[list[Spikes], dict[str, np.ndarray]]:
    """Encode ``signal`` with lauscher: one run of its bushy cells per seed.

    Its deterministic stages run once; returns ``(runs, stages)`` with ``runs[i] = (times_s,
    units)`` for ``seeds[i]`` and ``stages`` holding its membrane velocity (``velocity``) and
    firing probability (``probability``), their ``sample_rate``, and the wall-clock seconds of
    the deterministic stages (``deterministic_s``) and of each bushy-cell run (``bushy_s``).
    Raises ``ImportError`` without lauscher.
    """
    from lauscher.audiowaves import MonoAudioWave
    from lauscher.helpers import CommandLineArguments
    from lauscher.transformations import (
        BasilarMembrane,
        BushyCell,
        HairCell,
        HanningWindow,
        RmsNormalizer,
    )

    CommandLineArguments().num_concurrent_jobs = jobs
    start = time.perf_counter()
    wave = MonoAudioWave(np.asarray(signal, dtype=np.float64), int(sample_rate))
    wave = wave.transform(RmsNormalizer(0.3)).transform(HanningWindow())
    velocity = wave.transform(BasilarMembrane(channels=channels))
    probability = velocity.transform(HairCell())
    deterministic_s = time.perf_counter() - start
    bushy_s = []
    runs: list[Spikes] = []
    state = np.random.get_state()  # noqa: NPY002 (lauscher draws from the global RNG)
    try:
        for s in seeds:
            np.random.seed(int(s))  # noqa: NPY002
            start = time.perf_counter()
            spikes = probability.transform(BushyCell())
            bushy_s.append(time.perf_counter() - start)
            times = np.asarray(spikes.spike_times, dtype=np.float64)
            units = np.asarray(spikes.spike_labels).astype(np.int64)
            order = np.argsort(times, kind="stable")
            runs.append((times[order], units[order]))
    finally:
        np.random.set_state(state)  # noqa: NPY002
    stages = {
        "velocity": np.asarray(velocity.channels),
        "probability": np.asarray(probability.channels),
        "sample_rate": np.asarray(velocity.sample_rate),
        "deterministic_s": np.asarray(deterministic_s),
        "bushy_s": np.asarray(bushy_s),
    }
    return runs, stages
