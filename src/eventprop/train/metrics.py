"""Per-epoch metrics: accumulation over batches, the CSV file, TensorBoard.

The CSV (``metrics.csv``, one row per epoch, fixed columns) is always written: it is the
record a run is judged by, readable without any extra package. Numbers are written with
``repr`` so that two runs can be compared bit for bit (timing columns, ending in ``_s`` or
``per_s``, naturally differ between runs). TensorBoard scalars are added when the
``tensorboard`` package is importable (or required by the config).

On resume, the CSV is rewritten from the history stored in the checkpoint, so that rows of
an epoch that was interrupted never appear twice; TensorBoard gets ``purge_step`` for the same
reason.
"""

from __future__ import annotations

import csv
import errno
import io
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "COLUMNS",
    "TIMING_COLUMNS",
    "EpochAccumulator",
    "MetricsLog",
    "tensorboard_available",
]

#: columns of metrics.csv, in order
COLUMNS = (
    "epoch",
    "lr",
    "train_loss",
    "train_reg_loss",
    "train_accuracy",
    "train_spikes_per_neuron",
    "silent_neurons",
    "rewired_neurons",
    "val_loss",
    "val_accuracy",
    "val_spikes_per_neuron",
    "best_epoch",
    "clamped_spikes",
    "train_samples",
    "train_time_s",
    "val_time_s",
    "samples_per_s",
)
#: columns that measure wall time (differ between otherwise identical runs)
TIMING_COLUMNS = ("train_time_s", "val_time_s", "samples_per_s")


class EpochAccumulator:
    """Sums over the batches of one pass: loss, correct predictions, spike counts."""

    def __init__(self, hidden_sizes: Sequence[int]) -> None:
        self.n = 0
        self.loss_sum = 0.0
        self.reg_sum = 0.0
        self.correct = 0
        self.clamped = 0
        #: per hidden layer, total spikes of every neuron over the pass
        self.neuron_spikes = [torch.zeros(n, dtype=torch.float64) for n in hidden_sizes]

    def add(
        self,
        loss: float,
        reg: float,
        correct: int,
        batch: int,
        hidden_counts: Sequence[torch.Tensor],
        clamped: int = 0,
    ) -> None:
        self.n += batch
        self.loss_sum += loss * batch
        self.reg_sum += reg * batch
        self.correct += int(correct)
        self.clamped += int(clamped)
        for acc, counts in zip(self.neuron_spikes, hidden_counts):
            acc += counts.detach().to(torch.float64).sum(0).cpu()

    @property
    def loss(self) -> float:
        return self.loss_sum / self.n if self.n else math.nan

    @property
    def reg(self) -> float:
        return self.reg_sum / self.n if self.n else math.nan

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else math.nan

    @property
    def spikes_per_neuron(self) -> float:
        """Mean spikes per hidden neuron per trial (all hidden layers)."""
        total = sum(float(s.sum()) for s in self.neuron_spikes)
        neurons = sum(int(s.numel()) for s in self.neuron_spikes)
        return total / (neurons * self.n) if neurons and self.n else math.nan

    def silent(self) -> list[torch.Tensor]:
        """Per hidden layer, the mask of neurons that never spiked in this pass."""
        return [s == 0 for s in self.neuron_spikes]


def write_error(path: Path, what: str, exc: OSError) -> OSError:
    """A one-line ``OSError`` (same errno) naming the file, for disk full and the like."""
    code = exc.errno if exc.errno is not None else errno.EIO
    return OSError(
        code,
        f"{path}: cannot write {what} ({exc.strerror or exc}); free space (or fix the disk), "
        "then continue the run with eventprop train --resume",
    )


def tensorboard_available() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


class MetricsLog:
    """``metrics.csv`` (always) and TensorBoard scalars (optional)."""

    def __init__(self, run_dir: Path, tensorboard: bool | None, purge_step: int | None = None):
        self.path = Path(run_dir) / "metrics.csv"
        use_tb = tensorboard_available() if tensorboard is None else tensorboard
        if use_tb and not tensorboard_available():
            raise RuntimeError(
                "run.tensorboard: true, but the tensorboard package is not installed "
                "(pip install tensorboard, or set run.tensorboard: false)"
            )
        self.writer = None
        if use_tb:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(
                log_dir=str(Path(run_dir) / "tensorboard"), purge_step=purge_step
            )

    def write_history(self, rows: Iterable[dict[str, Any]]) -> None:
        """Rewrite the CSV with exactly ``rows`` (atomic: temp file + rename)."""
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        for row in rows:
            w.writerow({k: _fmt(row.get(k)) for k in COLUMNS})
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        try:
            tmp.write_text(buf.getvalue(), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise write_error(self.path, "the metrics", exc) from exc

    def append(self, row: dict[str, Any]) -> None:
        new = not self.path.exists()
        try:
            with open(self.path, "a", encoding="utf-8", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
                if new:
                    w.writeheader()
                w.writerow({k: _fmt(row.get(k)) for k in COLUMNS})
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise write_error(self.path, "the epoch's metrics", exc) from exc
        if self.writer is not None:
            step = int(row["epoch"])
            for key in COLUMNS[1:]:
                value = row.get(key)
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    group = "val" if key.startswith("val_") else "train"
                    if key in TIMING_COLUMNS or key in ("lr", "best_epoch"):
                        group = "run"
                    self.writer.add_scalar(f"{group}/{key}", value, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Rows of a metrics.csv as dicts of floats/ints (empty cells: None)."""
    rows = []
    with open(path, encoding="utf-8") as fh:
        for raw in csv.DictReader(fh):
            row: dict[str, Any] = {}
            for k, v in raw.items():
                if v == "" or v is None:
                    row[k] = None
                elif k in ("epoch", "silent_neurons", "rewired_neurons", "best_epoch"):
                    row[k] = int(v)
                elif k in ("clamped_spikes", "train_samples"):
                    row[k] = int(v)
                else:
                    row[k] = float(v)
            rows.append(row)
    return rows
