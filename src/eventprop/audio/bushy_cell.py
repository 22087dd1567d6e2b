"""Bushy cells: each channel's output neuron pools the spikes of its afferent fibres.

Per channel, ``n_convergence`` auditory-nerve fibres fire independently in every time step with
the hair cell's probability ``p(t)``; a fibre that fired is silent for the refractory period
``tau_refrac`` (it may fire again ``ceil(tau_refrac / dt)`` steps later). Their spikes drive one
leaky integrate-and-fire neuron with exponential synapses (exact per-step decays):

    I[t]  = I[t-1] exp(-dt / tau_syn) + (fibre spikes at t)
    V[t]  = V[t-1] exp(-dt / tau_mem) + (weight / n_convergence) I[t] dt,   V capped at 1

The cell spikes when ``V`` reaches 1 (the spike is dated to that step), then is reset to 0 and
neither integrates nor leaks for ``tau_refrac``; the synaptic current keeps decaying and
summing meanwhile. This is the discrete scheme of the SHD cochlea, step for step.

Sampling. Only the NUMBER of fibres that fire matters to the cell, so instead of one Bernoulli
draw per fibre and step, the kernel tracks how many fibres are out of their refractory period
(``n``) and draws the count from Binomial(n, p(t)) by inversion with a single uniform number
per step; fibres that fired return to the pool ``ceil(tau_refrac / dt)`` steps later. This has
exactly the distribution of the per-fibre scheme at 1/n_convergence of the random numbers.

Random numbers: every channel has its own SplitMix64 stream, seeded from
``numpy.random.SeedSequence(seed)``, so results do not depend on the thread count or on how
channels are scheduled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

__all__ = ["BushyCellParams", "BushyCellState", "bushy_cell", "channel_seeds"]


@dataclass(frozen=True)
class BushyCellParams:
    """Bushy-cell constants (SI units)."""

    n_convergence: int = 40  #: afferent fibres per channel
    tau_mem: float = 1e-3  #: membrane time constant, s
    tau_syn: float = 5e-4  #: synaptic time constant, s
    tau_refrac: float = 1e-3  #: refractory period of fibres and of the cell, s
    weight: float = 13e3  #: total synaptic weight of all fibres (1/s per unit current)


def channel_seeds(seed: int | None, channels: int) -> np.ndarray:
    """One 64-bit stream state per channel; ``seed=None`` draws fresh entropy."""
    return np.random.SeedSequence(seed).generate_state(channels, dtype=np.uint64)


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_INV53 = 1.0 / 9007199254740992.0  # 2**-53


@njit(inline="always")
def _uniform(state):  # pragma: no cover - numba
    """SplitMix64 step: returns (new state, uniform float in [0, 1))."""
    state = state + _GOLDEN
    z = state
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    z = z ^ (z >> _S31)
    return state, float(z >> _S11) * _INV53


@njit(parallel=True, cache=True, nogil=True)
def _bushy(
    prob, seeds, ints, floats, t0, decay_syn, decay_mem, gain, refrac, spikes, counts
):  # pragma: no cover - numba
    """Advance every channel by ``prob.shape[1]`` steps from global step ``t0``.

    Per-channel state, read at the start and written back at the end: ``seeds`` (the random
    stream), ``ints[ch] = (slot, available fibres, fibres returning in 0..dead_steps-1
    slots)``, ``floats[ch] = (synaptic current, membrane potential, refractory countdown)``.
    """
    n_ch, n_t = prob.shape
    dead_steps = ints.shape[1] - 2
    for ch in prange(n_ch):
        state = seeds[ch]
        returning = ints[ch, 2:]  # fibres back from refractoriness, by slot
        slot = ints[ch, 0]  # t mod dead_steps (a counter: integer division is slow)
        available = ints[ch, 1]
        current = floats[ch, 0]
        v = floats[ch, 1]
        countdown = floats[ch, 2]
        n_spk = 0
        for t in range(n_t):
            available += returning[slot]
            returning[slot] = 0
            # fibre spikes this step: Binomial(available, p) by inversion of one uniform u
            p = prob[ch, t]
            fired = 0
            if available > 0 and p > 0.0:
                state, u = _uniform(state)
                # P(none fires) = (1 - p)^n >= 1 - n p: below that bound the answer is 0
                # without computing the power (most steps)
                if u >= 1.0 - available * p:
                    if p >= 1.0:
                        fired = available
                    else:
                        term = (1.0 - p) ** available
                        total = term
                        if u >= total:
                            odds = p / (1.0 - p)
                            while u >= total and fired < available:
                                term *= (available - fired) / (fired + 1.0) * odds
                                fired += 1
                                total += term
                    available -= fired
                    returning[slot] += fired
            slot += 1
            if slot == dead_steps:
                slot = 0
            # the cell
            if t0 + t > 0:
                if countdown <= 0.0:
                    if v < 1.0:
                        v *= decay_mem
                    else:
                        spikes[ch, n_spk] = t0 + t - 1
                        n_spk += 1
                        countdown = refrac
                        v = 0.0
                current *= decay_syn
            current += fired
            if countdown <= 0.0:
                v += gain * current
            if v > 1.0:
                v = 1.0
            countdown -= 1.0
        counts[ch] = n_spk
        seeds[ch] = state
        ints[ch, 0] = slot
        ints[ch, 1] = available
        floats[ch, 0] = current
        floats[ch, 1] = v
        floats[ch, 2] = countdown


@dataclass(eq=False)
class BushyCellState:
    """Every channel's fibres, cell and random stream between consecutive blocks of one clip.

    Passing one state through :func:`bushy_cell` block after block gives exactly the spikes
    of the whole clip at once (the same random numbers in the same order), so long clips can
    be processed in blocks of bounded memory.
    """

    seeds: np.ndarray  #: (channels,) uint64 stream states
    ints: np.ndarray  #: (channels, 2 + dead_steps) int64: slot, available fibres, returning
    floats: np.ndarray  #: (channels, 3) float64: synaptic current, potential, countdown
    step: int = 0  #: global index of the next step

    @classmethod
    def start(
        cls, streams: np.ndarray, sample_rate: float, params: BushyCellParams | None = None
    ) -> BushyCellState:
        """The resting state at step 0 with the given per-channel streams (copied)."""
        p = params or BushyCellParams()
        seeds = np.array(streams, dtype=np.uint64).reshape(-1)
        n_ch = seeds.size
        ints = np.zeros((n_ch, 2 + _dead_steps(p, sample_rate)), dtype=np.int64)
        ints[:, 1] = int(p.n_convergence)
        return cls(seeds, ints, np.zeros((n_ch, 3), dtype=np.float64))


def _dead_steps(p: BushyCellParams, sample_rate: float) -> int:
    return max(1, math.ceil(p.tau_refrac * float(sample_rate)))


def bushy_cell(
    prob: np.ndarray,
    sample_rate: float,
    params: BushyCellParams | None = None,
    *,
    seed: int | None = 0,
    streams: np.ndarray | None = None,
    state: BushyCellState | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Spikes of every channel's bushy cell: ``(steps int64, channels int64)``, time-sorted.

    ``prob`` is ``(channels, steps)``: each fibre's firing probability per step at
    ``sample_rate`` (the hair cells' output). ``streams`` (one uint64 per channel, e.g. a
    slice of :func:`channel_seeds`) replaces the streams derived from ``seed``. ``state``
    (from :meth:`BushyCellState.start`) continues a clip block by block: it replaces
    ``seed``/``streams``, is advanced in place, and the steps returned count from the clip's
    start.
    """
    p = params or BushyCellParams()
    pr = np.ascontiguousarray(prob, dtype=np.float32)
    if pr.ndim != 2:
        raise ValueError(f"bushy_cell: expected (channels, steps), got shape {pr.shape}")
    n_ch, n_t = pr.shape
    dt = 1.0 / float(sample_rate)
    refrac = p.tau_refrac * float(sample_rate)  # in steps, as a float like the reference
    dead_steps = _dead_steps(p, sample_rate)
    if state is None:
        if streams is None:
            streams = channel_seeds(seed, n_ch)
        elif np.shape(streams) != (n_ch,):
            raise ValueError(f"bushy_cell: need {n_ch} streams, got shape {np.shape(streams)}")
        state = BushyCellState.start(streams, sample_rate, p)
    elif state.ints.shape != (n_ch, 2 + dead_steps) or state.seeds.shape != (n_ch,):
        raise ValueError(
            f"bushy_cell: the state holds {state.seeds.size} channels with "
            f"{state.ints.shape[1] - 2} refractory slots, the block needs {n_ch} and {dead_steps}"
        )
    capacity = n_t // dead_steps + 2
    spikes = np.empty((n_ch, capacity), dtype=np.int64)
    counts = np.zeros(n_ch, dtype=np.int64)
    _bushy(
        pr,
        state.seeds,
        state.ints,
        state.floats,
        int(state.step),
        math.exp(-dt / p.tau_syn),
        math.exp(-dt / p.tau_mem),
        p.weight / p.n_convergence * dt,
        refrac,
        spikes,
        counts,
    )
    state.step += n_t
    units = np.repeat(np.arange(n_ch, dtype=np.int64), counts)
    steps = spikes[np.arange(capacity)[None, :] < counts[:, None]]
    order = np.argsort(steps, kind="stable")
    return steps[order], units[order]
