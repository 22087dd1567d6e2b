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
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from eventprop.engine.spec import SpikeRecord, Tape

__all__ = ["COUNTERS", "ExactTape"]

#: counter names, in the order the numba kernels fill them
COUNTERS = ("multi_crossings", "transient_crossings", "missed_by_grid", "cascades", "unresolved")


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
