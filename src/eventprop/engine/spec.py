"""Plain data passed between the autograd seam and the backends.

The backends are functional: they receive the network as a list of :class:`LayerTensors`
(hidden layers, then the readout) and an :class:`EngineConfig`, and return outputs plus a
:class:`Tape` -- everything the backward pass needs, and nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = ["EngineConfig", "LayerGrads", "LayerTensors", "SpikeRecord", "Tape"]


@dataclass(frozen=True)
class EngineConfig:
    """Settings that do not change during training.

    ``min_denominator`` guards the jump factor ``1/(I - V)`` of grazing threshold crossings:
    smaller values are raised to it, and such spikes are counted in :attr:`Tape.n_clamped`.
    With grid timing the denominator is ``I(t_n) - V(t_{n+1})`` (the step-start current after
    the step's arrivals, the step-end voltage before reset), which the guard almost never
    touches; see :func:`eventprop.engine.torch_backend.grid_denominator`.
    """

    dt: float = 1.0
    theta: float = 1.0
    spiking_readout: bool = False
    min_denominator: float = 1e-3
    timing: str = "grid"


@dataclass
class LayerTensors:
    """One layer of the network as the engine sees it.

    Weights use the (pre, post) layout: ``w_in[i, j]`` is the synapse from presynaptic
    neuron/channel ``i`` to neuron ``j`` of this layer, so the weights a spike delivers are
    one contiguous row. ``alpha, beta, c`` are the step propagators
    (:func:`eventprop.engine.coefficients.step_coefficients`); ``tau_m, tau_s`` (detached)
    enter only the jump conditions at spikes. ``a_avg, c_avg`` (readout only; None elsewhere)
    map the step-start state to the step average of ``V``, the grid readout's output
    (:func:`eventprop.engine.coefficients.step_average_coefficients`).
    """

    w_in: torch.Tensor
    w_rec: torch.Tensor | None
    alpha: torch.Tensor
    beta: torch.Tensor
    c: torch.Tensor
    tau_m: torch.Tensor
    tau_s: torch.Tensor
    a_avg: torch.Tensor | None = None
    c_avg: torch.Tensor | None = None

    @property
    def size(self) -> int:
        return int(self.w_in.shape[1])


@dataclass
class LayerGrads:
    """Gradients of one layer (``None`` where there is no such parameter)."""

    w_in: torch.Tensor
    w_rec: torch.Tensor | None
    alpha: torch.Tensor | None
    beta: torch.Tensor | None
    c: torch.Tensor | None
    a_avg: torch.Tensor | None = None
    c_avg: torch.Tensor | None = None


@dataclass
class SpikeRecord:
    """The spikes of one layer: what EventProp keeps per spike.

    ``denominator`` is ``I - V`` of the neuron when its threshold crossing was detected (after
    the guard), the factor of the adjoint jump. ``offset`` is the position of the spike inside
    its step (grid timing: every spike is at the end of its step, offset 1). Records are sorted
    by (sample, step) or (step, sample) depending on the backend; :meth:`canonical` sorts them.
    """

    sample: torch.Tensor
    step: torch.Tensor
    neuron: torch.Tensor
    denominator: torch.Tensor

    def __len__(self) -> int:
        return int(self.sample.numel())

    def nbytes(self) -> int:
        return sum(
            t.numel() * t.element_size()
            for t in (self.sample, self.step, self.neuron, self.denominator)
        )

    def canonical(self) -> SpikeRecord:
        """The same records sorted by (sample, step, neuron), on the CPU."""
        s, t, n = (x.cpu().long() for x in (self.sample, self.step, self.neuron))
        order = torch.from_numpy(np.lexsort((n.numpy(), t.numpy(), s.numpy())))
        return SpikeRecord(s[order], t[order], n[order], self.denominator.cpu()[order])


@dataclass
class Tape:
    """What the forward pass leaves for the backward pass.

    ``records`` holds every spike of every spiking layer (hidden layers, then the readout when
    it spikes), with ``neuron`` a global index: layer ``l`` owns ``offsets[l] .. offsets[l+1]``.
    The order is the backend's (``torch``: by step; ``numba``: by sample, then step).
    ``states`` is only kept when a time constant is trained: for every layer the ``(V, I)`` at
    the start of every step, because the time-constant gradient integrates
    ``lambda * dV/dt``, which needs the trajectories. With fixed time constants the tape is
    spike-sparse: 16 bytes per spike (float32).
    """

    records: SpikeRecord
    offsets: list[int]
    states: list[tuple[torch.Tensor, torch.Tensor]] | None = None
    n_clamped: int = 0
    #: the backend's own compact copy of what the backward pass reads of the input events
    #: (numba: CSR pointers and channels); when set, the batch itself is not kept
    inputs: tuple[np.ndarray, ...] = ()
    #: backend-private views of the same memory (e.g. the numba kernels' state arrays)
    private: dict = field(default_factory=dict, repr=False)

    @property
    def spikes(self) -> list[SpikeRecord]:
        """Per spiking layer, its spikes with layer-local neuron indices (built on demand)."""
        out = []
        neuron = self.records.neuron
        for lo, hi in zip(self.offsets[:-1], self.offsets[1:]):
            sel = (neuron >= lo) & (neuron < hi)
            out.append(
                SpikeRecord(
                    self.records.sample[sel],
                    self.records.step[sel],
                    neuron[sel] - lo,
                    self.records.denominator[sel],
                )
            )
        return out

    def nbytes(self) -> int:
        """Bytes held between the forward and the backward pass."""
        total = self.records.nbytes() + sum(a.nbytes for a in self.inputs)
        if self.states is not None:
            total += sum(
                v.numel() * v.element_size() + i.numel() * i.element_size() for v, i in self.states
            )
        return total
