"""What the exact-timing backends leave for the backward pass (shared by torch and numba).

In exact timing every spike has a real time inside its step. :class:`ExactTape` extends the
grid engine's :class:`~eventprop.engine.spec.Tape` with that time and with counters of the
within-step situations the grid cannot represent (so that they are reported, not ignored):

``multi_crossings``
    spikes of a neuron that had already spiked earlier in the same step (double crossings);
``transient_crossings``
    (neuron, step) pairs with a spike although the neuron's voltage without the resets of that
    step ends the step below threshold: an end-of-step threshold test sees no crossing at all;
``missed_by_grid``
    ``multi_crossings + transient_crossings``: spikes found inside a step that a check at the
    step end would have missed;
``cascades``
    spikes of a neuron that, earlier in the same step, received a (positive) spike of a hidden
    neuron of its own layer or of the layer below -- the grid delays such spikes by a step;
``unresolved``
    intervals where the rigorous bound said a crossing was possible but the root finder did not
    converge (should always be 0; the spike is then placed where the search stopped).

Spike bound. Exact timing lets a neuron fire several times per step, so a strongly excitatory
recurrent network can fire without end (a 16-neuron layer fired 150 000 spikes in one 80-step
sample, where the grid allows 1 280) and a forward pass would never finish. Both backends stop
a sample once it has fired more than :func:`sample_spike_limit` spikes (default: the grid's own
limit, one spike per spiking neuron and step) or more than :func:`step_spike_limit` spikes of
one layer in one step, and raise :class:`SpikeLimitError` naming the layer, the sample and the
step. Normal activity is far below either (the busiest sample of real training runs used 1.7 % to
8.5 % of the default bound: Yin-Yang, SHD recipes; docs/reliability.md); :func:`spike_limit`
changes the bound.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

from eventprop.engine.spec import SpikeRecord, Tape

__all__ = [
    "COUNTERS",
    "DEFAULT_SPIKES_PER_NEURON_STEP",
    "ExactTape",
    "SpikeLimitError",
    "get_spike_limit",
    "sample_spike_limit",
    "set_spike_limit",
    "spike_limit",
    "step_spike_limit",
]

#: counter names, in the order the numba kernels fill them
COUNTERS = ("multi_crossings", "transient_crossings", "missed_by_grid", "cascades", "unresolved")

#: default of the per-sample spike bound, in spikes per spiking neuron and step: the grid's limit
DEFAULT_SPIKES_PER_NEURON_STEP = 1.0
#: the bound in force (process-wide; the training config sets it from model.exact_spike_limit)
_spikes_per_neuron_step = DEFAULT_SPIKES_PER_NEURON_STEP
#: largest bound a kernel is given (int64 arithmetic with room to count past it)
_MAX_BOUND = 2**62


def get_spike_limit() -> float:
    """The per-sample spike bound in force, in spikes per spiking neuron and step."""
    return _spikes_per_neuron_step


def set_spike_limit(per_neuron_step: float) -> float:
    """Set the per-sample spike bound (spikes per spiking neuron and step); returns the old one.

    ``math.inf`` removes the per-sample bound (the per-step guard stays). The value must be
    positive: a bound of zero would reject every network that fires at all.
    """
    global _spikes_per_neuron_step
    value = float(per_neuron_step)
    if math.isnan(value) or value <= 0.0:
        raise ValueError(
            f"spike limit: {per_neuron_step!r} spikes per neuron and step is not positive; "
            f"use a value > 0 (default {DEFAULT_SPIKES_PER_NEURON_STEP}, math.inf for no bound)"
        )
    old = _spikes_per_neuron_step
    _spikes_per_neuron_step = value
    return old


@contextmanager
def spike_limit(per_neuron_step: float) -> Iterator[None]:
    """Use another per-sample spike bound inside a ``with`` block (restored on exit)."""
    old = set_spike_limit(per_neuron_step)
    try:
        yield
    finally:
        set_spike_limit(old)


def sample_spike_limit(n_spiking: int, n_steps: int) -> int:
    """Most spikes one sample may fire: the bound in force x spiking neurons x steps (>= 1)."""
    bound = _spikes_per_neuron_step * max(int(n_spiking), 1) * max(int(n_steps), 1)
    if not math.isfinite(bound) or bound >= _MAX_BOUND:
        return _MAX_BOUND
    return max(int(bound), 1)


def step_spike_limit(layer_size: int) -> int:
    """Most spikes one layer of one sample may fire in one step (runaway-cascade guard).

    ``64`` per neuron plus ``1024``: no physiological network comes near it, while a runaway
    cascade passes it within one step. Fixed (not configurable) because it only guards a step
    against never ending; the per-sample bound is the one to tune.
    """
    return 64 * int(layer_size) + 1024


class SpikeLimitError(RuntimeError):
    """An exact-timing forward pass fired more spikes than the bound allows (runaway excitation).

    ``layer`` (0-based, the readout being the last), ``sample`` (index in the batch) and
    ``step`` locate where the bound was passed; ``limit`` is the bound that was passed and
    ``per_step`` says which one (the per-step guard or the per-sample bound).
    """

    def __init__(
        self,
        *,
        layer: int,
        n_layers: int,
        sample: int,
        step: int,
        n_steps: int,
        limit: int,
        per_step: bool,
        layer_size: int,
        n_spiking: int,
    ) -> None:
        self.layer, self.sample, self.step, self.limit = layer, sample, step, limit
        self.per_step = per_step
        name = "the readout" if layer == n_layers - 1 else f"hidden layer {layer}"
        if per_step:
            what = (
                f"more than {limit} spikes in this one step (the per-step guard: 64 per "
                f"neuron + 1024 for {layer_size} neurons)"
            )
        else:
            what = (
                f"more than {limit} spikes in this sample (the bound: "
                f"{_spikes_per_neuron_step:g} per spiking neuron and step, {n_spiking} "
                f"neurons x {n_steps} steps)"
            )
        super().__init__(
            f"exact timing: runaway excitation in sample {sample} of the batch, {name}, step "
            f"{step} (0-based, of {n_steps}): {what}; weaken the recurrent or input weights "
            "(e.g. model.init.w_rec_mean)"
            + (
                ""
                if per_step
                else ", or raise the bound (config model.exact_spike_limit, or "
                "eventprop.engine.exact_spec.spike_limit)"
            )
        )


@dataclass
class ExactTape(Tape):
    """A :class:`Tape` whose spikes carry their exact time.

    ``times[r]`` is the time (ms, float64) of ``records[r]``; its offset inside the step is
    ``times[r] / dt - step[r]`` (in ``(0, 1]``: a crossing exactly at a step end stays in its
    step). ``counters`` holds the counts of :data:`COUNTERS`, summed over the batch.
    """

    times: torch.Tensor | None = None
    counters: dict[str, int] = field(default_factory=dict)

    def exact_spikes(self) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Per spiking layer ``(sample, local neuron, time)`` sorted by (sample, time, neuron)."""
        out = []
        sample = self.records.sample.cpu().long()
        neuron = self.records.neuron.cpu().long()
        times = self.times.cpu() if self.times is not None else torch.zeros(len(sample))
        for lo, hi in zip(self.offsets[:-1], self.offsets[1:]):
            sel = ((neuron >= lo) & (neuron < hi)).numpy()
            s, n, t = sample.numpy()[sel], neuron.numpy()[sel] - lo, times.numpy()[sel]
            order = np.lexsort((n, t, s))
            out.append(
                (
                    torch.from_numpy(s[order]),
                    torch.from_numpy(n[order]),
                    torch.from_numpy(np.ascontiguousarray(t[order])),
                )
            )
        return out

    def canonical_exact(self) -> tuple[SpikeRecord, torch.Tensor]:
        """All records sorted by (sample, time, neuron), with their times."""
        s = self.records.sample.cpu().long().numpy()
        n = self.records.neuron.cpu().long().numpy()
        t = self.times.cpu().numpy()
        order = torch.from_numpy(np.lexsort((n, t, s)))
        r = self.records
        rec = SpikeRecord(
            r.sample.cpu()[order],
            r.step.cpu()[order],
            r.neuron.cpu()[order],
            r.denominator.cpu()[order],
        )
        return rec, self.times.cpu()[order]

    def nbytes(self) -> int:
        total = super().nbytes()
        if self.times is not None:
            total += self.times.numel() * self.times.element_size()
        return total
