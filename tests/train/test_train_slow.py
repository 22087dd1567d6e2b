"""Long checks (``pytest -m slow``): the shipped recipes actually learn."""

from __future__ import annotations

import time
from pathlib import Path

import h5py
import pytest

from eventprop.train.config import load_config
from eventprop.train.loop import train
from eventprop.train.metrics import read_metrics
from eventprop.train.runs import RunPaths

pytestmark = pytest.mark.slow


def _shd_format_files(folder: Path) -> list[Path]:
    """HDF5 files in ``folder`` with the SHD layout (spikes/times, spikes/units, labels)."""
    found = []
    for path in sorted(folder.glob("*.h5")):
        try:
            with h5py.File(path, "r") as f:
                if all(k in f for k in ("spikes/times", "spikes/units", "labels")):
                    found.append(path)
        except OSError:
            continue
    return found


def test_shd_small_learns_on_the_shared_shd_format_data(shared_data_dir, tmp_path):
    files = _shd_format_files(shared_data_dir)
    if not files:
        pytest.skip(f"no SHD-format file in {shared_data_dir}")
    path = files[0]
    cfg = load_config(
        "shd_small",
        [
            "data.dataset=hdf5",
            f"data.train_file={path}",
            f"data.test_file={path}",
            "data.cache=false",
            # a handful of samples: learn them, and score on them (above chance = it learns)
            "data.validation.kind=train",
            "train.epochs=20",
            "train.batch_size=4",
            "run.plots=false",
            "run.tensorboard=false",
            "train.progress=false",
        ],
    )
    result = train(cfg, run_dir=tmp_path / "run", quiet=True)
    rows = read_metrics(RunPaths(result.run_dir).metrics)
    n_classes = result.summary["data"]["n_classes"]
    first, last = rows[0], rows[-1]
    assert last["train_loss"] < first["train_loss"]
    assert last["val_accuracy"] > first["val_accuracy"]
    assert max(r["val_accuracy"] for r in rows) > 2.0 / n_classes  # well above chance
    assert result.summary["status"] == "completed"


def test_default_yinyang_reaches_97_percent_within_5_minutes(tmp_path):
    start = time.perf_counter()
    result = train(load_config(None), run_dir=tmp_path / "run", quiet=True)
    elapsed = time.perf_counter() - start
    assert result.summary["test"]["accuracy"] >= 0.97
    assert elapsed < 300, f"took {elapsed:.0f} s"
