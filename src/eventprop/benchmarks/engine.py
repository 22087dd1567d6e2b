"""Training-step speed and memory of the EventProp engine.

Measures forward + backward time per sample and the memory held between the two passes on a
recurrent network fed with SHD-like input. Hidden activity is set to a realistic level first:
the input weights are scaled until hidden neurons fire ``target_rate`` spikes per trial on
average (the paper's regulariser target is 14), because an untrained network at the default
initialisation is almost silent on this input and would flatter an event-driven engine.
"""

from __future__ import annotations

import gc
import resource
import time
from dataclasses import dataclass

import numpy as np
import torch

from eventprop.baselines import SavedTensorMeter
from eventprop.events import EventBatch
from eventprop.losses import SpikeCountRegularizer, make_loss
from eventprop.models import Network

__all__ = ["EngineResult", "calibrate_activity", "held_bytes", "measure_engine"]


@dataclass
class EngineResult:
    backend: str
    hidden: int
    batch: int
    n_steps: int
    input_spikes: float  #: per sample
    hidden_spikes: float  #: per sample
    forward_ms: float  #: per sample
    backward_ms: float  #: per sample
    tape_kb: float  #: the engine's tape (spike records, its copy of the inputs), per sample
    held_kb: float  #: everything held between the passes (tape + what autograd saved), per sample
    peak_rss_mb: float  #: peak resident memory of the process so far

    @property
    def total_ms(self) -> float:
        return self.forward_ms + self.backward_ms


def calibrate_activity(net: Network, events: EventBatch, target_rate: float) -> float:
    """Scale the first layer's input weights so hidden neurons fire ``target_rate``/trial."""
    layer = net.hidden[0]
    base = layer.weight.detach().clone()
    lo, hi = 0.0, 1.0

    def rate(scale: float) -> float:
        with torch.no_grad():
            layer.weight.copy_(base * scale)
            out = net(events)
        return float(out.hidden_counts[0].mean())

    while rate(hi) < target_rate:
        lo, hi = hi, hi * 2.0
        if hi > 1e4:
            raise RuntimeError("calibrate_activity: cannot reach the target rate")
    for _ in range(20):
        mid = 0.5 * (lo + hi)
        if rate(mid) < target_rate:
            lo = mid
        else:
            hi = mid
    rate(hi)
    return hi


def held_bytes(events: EventBatch, out, autograd_saved: int) -> int:
    """Memory kept alive for the backward pass of an EventProp training step.

    The engine's tape (spike records and, for the numba backend, its own compact copy of the
    input events; backends that keep the batch itself are charged its arrays) plus what
    autograd saved for the loss's backward, measured with the same
    :class:`~eventprop.baselines.SavedTensorMeter` that measures BPTT, so both methods are
    accounted for alike. The readout voltages are charged only where the loss saves them.
    """
    held = out.tape.nbytes() + autograd_saved
    if not out.tape.inputs:
        held += sum(
            t.numel() * t.element_size()
            for t in (events.sample, events.step, events.channel, events.offset)
        )
        held += events.step_pointers().numel() * 8
    return held


def measure_engine(
    events: EventBatch,
    hidden: int,
    backend: str,
    *,
    repeats: int = 3,
    target_rate: float = 14.0,
    seed: int = 0,
    n_out: int = 20,
) -> EngineResult:
    """Best-of-``repeats`` time of one training step (forward, loss, backward)."""
    torch.manual_seed(seed)
    net = Network.build(events.n_channels, [hidden], n_out, seed=seed, backend=backend)
    calibrate_activity(net, events, target_rate)
    labels = torch.from_numpy(np.arange(events.batch_size) % n_out)
    loss_fn = make_loss("sum_weigh_exp")
    reg = SpikeCountRegularizer(14.0, 1e-9, 1e-9)
    exclude = [*net.parameters(), *net.buffers()]
    fwd, bwd = [], []
    for _ in range(repeats + 1):  # the first run compiles / warms caches
        gc.collect()
        net.zero_grad()
        meter = SavedTensorMeter(exclude)
        t0 = time.perf_counter()
        out = net(events)
        t1 = time.perf_counter()
        with meter:  # the loss's saved tensors (the engine itself saves none with autograd)
            loss = loss_fn(out, labels) + reg(out.hidden_counts)
        loss.backward()
        t2 = time.perf_counter()
        fwd.append(t1 - t0)
        bwd.append(t2 - t1)
    B = events.batch_size
    return EngineResult(
        backend=backend,
        hidden=hidden,
        batch=B,
        n_steps=events.n_steps,
        input_spikes=len(events) / B,
        hidden_spikes=float(sum(c.detach().sum() for c in out.hidden_counts)) / B,
        forward_ms=1e3 * min(fwd[1:]) / B,
        backward_ms=1e3 * min(bwd[1:]) / B,
        tape_kb=out.tape.nbytes() / B / 1024,
        held_kb=held_bytes(events, out, meter.nbytes) / B / 1024,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )
