"""Evaluation of a network on a whole set: loss, accuracy, confusion matrix, spike counts.

Shared by the per-epoch validation, the final test of a run and ``eventprop eval``, so that
the three always compute the same numbers. Runs without autograd (no tape is kept).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from eventprop.data import SpikeData
from eventprop.losses import ReadoutLoss
from eventprop.train.data import RunData
from eventprop.train.metrics import EpochAccumulator

__all__ = ["EvalResult", "evaluate", "sample_activity"]


@dataclass
class EvalResult:
    """What an evaluation pass measured."""

    loss: float
    accuracy: float
    n: int
    confusion: np.ndarray  #: (K, K) counts, rows: true class, columns: predicted
    spikes_per_neuron: float  #: mean spikes per hidden neuron per trial
    neuron_rates: list[np.ndarray] = field(default_factory=list)  #: per layer, spikes/trial
    seconds: float = 0.0
    #: speaker id -> (correct, samples), when the data names its speakers (SHD, the replica)
    per_speaker: dict[int, tuple[int, int]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "loss": self.loss,
            "accuracy": self.accuracy,
            "n": self.n,
            "spikes_per_neuron": self.spikes_per_neuron,
            "silent_neurons": int(sum(int((r == 0).sum()) for r in self.neuron_rates)),
            "confusion": self.confusion.tolist(),
            "per_speaker": {
                str(s): {"accuracy": c / n, "n": n}
                for s, (c, n) in sorted(self.per_speaker.items())
            },
            "seconds": self.seconds,
        }


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loss_fn: ReadoutLoss,
    data: SpikeData,
    run_data: RunData,
    batch_size: int,
    hidden_sizes: list[int],
) -> EvalResult:
    """Loss and accuracy of ``model`` on ``data`` (in order, no augmentation)."""
    start = time.perf_counter()
    acc = EpochAccumulator(hidden_sizes)
    k = run_data.n_classes
    confusion = np.zeros((k, k), dtype=np.int64)
    hits: list[np.ndarray] = []  # per sample, in the data's order (batches are not shuffled)
    for events, labels in run_data.eval_batches(data, batch_size):
        out = model(events)
        loss = float(loss_fn(out, labels))
        pred = loss_fn.predict(out).cpu()
        np.add.at(confusion, (labels.numpy(), pred.numpy()), 1)
        hits.append((pred == labels).numpy())
        acc.add(loss, 0.0, int((pred == labels).sum()), len(labels), out.hidden_counts)
    rates = [(s / max(1, acc.n)).numpy() for s in acc.neuron_spikes]
    per_speaker: dict[int, tuple[int, int]] = {}
    if data.speakers is not None and hits:
        correct = np.concatenate(hits)
        for s in np.unique(data.speakers):
            sel = data.speakers == s
            per_speaker[int(s)] = (int(correct[sel].sum()), int(sel.sum()))
    return EvalResult(
        loss=acc.loss,
        accuracy=acc.accuracy,
        n=acc.n,
        confusion=confusion,
        spikes_per_neuron=acc.spikes_per_neuron,
        neuron_rates=rates,
        seconds=time.perf_counter() - start,
        per_speaker=per_speaker,
    )


@torch.no_grad()
def sample_activity(
    model: nn.Module, data: SpikeData, run_data: RunData, index: int = 0
) -> dict[str, Any]:
    """Hidden spikes and readout voltages of one sample (for the raster plot)."""
    events, labels = next(run_data.eval_batches(data.subset([index]), 1))
    out = model(events)
    layers = []
    tape = getattr(out, "tape", None)
    if tape is not None:
        for rec in tape.spikes[: len(out.hidden_counts)]:
            layers.append(
                (rec.step.cpu().numpy().astype(np.float64) + 1.0) * out.dt,
            )
        neurons = [rec.neuron.cpu().numpy() for rec in tape.spikes[: len(out.hidden_counts)]]
    else:  # pragma: no cover - a method without a spike tape
        neurons = []
    return {
        "label": int(labels[0]),
        "times": layers,
        "neurons": neurons,
        "sizes": [int(c.shape[1]) for c in out.hidden_counts],
        "voltage": out.voltage[0].detach().cpu().numpy(),
        "dt": out.dt,
        "input_times": (events.step.numpy() + events.offset.numpy()) * events.dt,
        "input_channels": events.channel.numpy(),
    }
