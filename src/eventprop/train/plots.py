"""The figures of a run directory (matplotlib, Agg backend: no display needed).

- ``curves.png``: training and validation loss and accuracy per epoch, the learning rate and
  hidden activity -- whether a run learned, over-fitted or stalled, at a glance;
- ``raster.png``: input spikes, hidden-layer spikes and readout voltages of one sample -- the
  activity the gradients flow through;
- ``spike_counts.png``: histogram of spikes per trial of every hidden neuron (silent neurons and
  the regulariser's target marked);
- ``confusion.png``: confusion matrix on the evaluation set (row-normalised).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["plot_confusion", "plot_curves", "plot_raster", "plot_spike_counts"]


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)
    return path


def _col(rows: Sequence[dict[str, Any]], key: str) -> np.ndarray:
    return np.array([math.nan if r.get(key) is None else float(r[key]) for r in rows])


def plot_curves(rows: Sequence[dict[str, Any]], path: Path, title: str = "") -> Path:
    """Loss, accuracy, learning rate and hidden spikes per neuron, per epoch."""
    ep = _col(rows, "epoch")
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
    ax = axes[0, 0]
    ax.plot(ep, _col(rows, "train_loss"), label="train")
    ax.plot(ep, _col(rows, "val_loss"), label="validation")
    ax.set_ylabel("loss")
    ax.legend()
    ax = axes[0, 1]
    ax.plot(ep, 100 * _col(rows, "train_accuracy"), label="train")
    ax.plot(ep, 100 * _col(rows, "val_accuracy"), label="validation")
    best = [r.get("best_epoch") for r in rows]
    if best and best[-1] is not None:
        b = int(best[-1])
        ax.axvline(b, color="grey", ls=":", label=f"best (epoch {b})")
    ax.set_ylabel("accuracy (%)")
    ax.legend()
    ax = axes[1, 0]
    ax.plot(ep, _col(rows, "lr"))
    ax.set_yscale("log")
    ax.set_ylabel("learning rate")
    ax.set_xlabel("epoch")
    ax = axes[1, 1]
    ax.plot(ep, _col(rows, "train_spikes_per_neuron"), label="train")
    ax.plot(ep, _col(rows, "val_spikes_per_neuron"), label="validation")
    ax.set_ylabel("hidden spikes / neuron / trial")
    ax.set_xlabel("epoch")
    ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def plot_raster(activity: dict[str, Any], path: Path, class_names: Sequence[str] = ()) -> Path:
    """Input raster, hidden raster (layers stacked) and readout voltages of one sample."""
    sizes = activity["sizes"]
    fig, axes = plt.subplots(
        3, 1, figsize=(10, 9), sharex=True, gridspec_kw={"height_ratios": [1, 2, 1]}
    )
    ax = axes[0]
    n_in = max(1, len(activity["input_times"]))
    size = float(np.clip(4000.0 / n_in, 2.0, 80.0))  # sparse codes (Yin-Yang) stay visible
    ax.scatter(activity["input_times"], activity["input_channels"], s=size, c="k", marker="|")
    ax.set_ylabel("input channel")
    ax = axes[1]
    offset = 0
    n_hid = max(1, sum(len(t) for t in activity["times"]))
    size = float(np.clip(20000.0 / n_hid, 2.0, 40.0))
    for li, (t, n) in enumerate(zip(activity["times"], activity["neurons"])):
        ax.scatter(t, n + offset, s=size, marker="|", label=f"hidden layer {li}")
        offset += sizes[li]
        if li + 1 < len(sizes):
            ax.axhline(offset - 0.5, color="grey", lw=0.5)
    ax.set_ylabel("hidden neuron")
    ax.set_ylim(-0.5, max(1, offset) - 0.5)
    n_spikes = sum(len(t) for t in activity["times"])
    ax.set_title(f"{n_spikes} hidden spikes")
    ax = axes[2]
    v = activity["voltage"]
    t = (np.arange(v.shape[0]) + 1) * activity["dt"]
    label = activity["label"]
    few = v.shape[1] <= 10
    for k in range(v.shape[1]):
        name = class_names[k] if k < len(class_names) else str(k)
        if k == label:
            name += " (true)"
        ax.plot(
            t, v[:, k], lw=2.0 if k == label else 0.7, label=name if few or k == label else None
        )
    ax.set_ylabel("readout V")
    ax.set_xlabel("time (ms)")
    ax.legend(loc="upper left", fontsize=8, ncol=2 if few and v.shape[1] > 5 else 1)
    true = class_names[label] if label < len(class_names) else str(label)
    fig.suptitle(f"one sample (true class: {true})")
    fig.tight_layout()
    return _save(fig, path)


def plot_spike_counts(
    rates: Sequence[np.ndarray], path: Path, target: float | None = None, what: str = ""
) -> Path:
    """Histogram of every hidden neuron's mean spike count per trial."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    allr = np.concatenate([np.asarray(r) for r in rates]) if rates else np.zeros(0)
    if allr.size:
        hi = max(1.0, float(allr.max()))
        bins = np.linspace(0, hi, 41)
        for li, r in enumerate(rates):
            ax.hist(r, bins=bins, alpha=0.7, label=f"hidden layer {li}")
        silent = int((allr == 0).sum())
        ax.set_title(
            f"hidden spikes per neuron per trial{f' ({what})' if what else ''}: "
            f"mean {allr.mean():.2f}, silent {silent}/{allr.size}"
        )
    if target is not None:
        ax.axvline(target, color="r", ls="--", label=f"regulariser target {target:g}")
    ax.set_xlabel("spikes per trial")
    ax.set_ylabel("neurons")
    ax.legend()
    fig.tight_layout()
    return _save(fig, path)


def plot_confusion(
    confusion: np.ndarray, path: Path, class_names: Sequence[str] = (), what: str = ""
) -> Path:
    """Row-normalised confusion matrix (true class on the rows)."""
    c = np.asarray(confusion, dtype=np.float64)
    k = c.shape[0]
    norm = c / np.maximum(1.0, c.sum(1, keepdims=True))
    size = max(4.5, 0.35 * k + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    names = list(class_names) if len(class_names) == k else [str(i) for i in range(k)]
    ax.set_xticks(range(k), names, rotation=90 if k > 6 else 0, fontsize=8 if k > 12 else 10)
    ax.set_yticks(range(k), names, fontsize=8 if k > 12 else 10)
    if k <= 12:
        for i in range(k):
            for j in range(k):
                if c[i, j]:
                    ax.text(
                        j,
                        i,
                        int(c[i, j]),
                        ha="center",
                        va="center",
                        fontsize=8,
                        color="white" if norm[i, j] > 0.5 else "black",
                    )
    acc = np.trace(c) / max(1.0, c.sum())
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"confusion{f' ({what})' if what else ''}: accuracy {100 * acc:.2f} %")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return _save(fig, path)
