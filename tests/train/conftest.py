"""Fixtures of the training tests: a tiny, fast Yin-Yang config and a tiny SHD-format file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from eventprop.data.hdf5 import write_hdf5
from eventprop.train.config import ExperimentConfig, load_config

#: a Yin-Yang run of well under a second per epoch (small sets, small network, dt = 1 ms)
TINY = {
    "name": "tiny",
    "seed": 3,
    "data": {
        "dataset": "yinyang",
        "dt": 1.0,
        "duration_ms": 35.0,
        "yinyang": {"train_size": 240, "valid_size": 90, "test_size": 90},
    },
    "model": {
        "hidden": [24],
        "recurrent": True,
        "init": {"w_in_mean": 2.0, "w_in_std": 3.0, "w_rec_std": 0.1, "w_out_std": 0.5},
    },
    "loss": {"name": "sum"},
    "optim": {"lr": 5.0e-3},
    "train": {"epochs": 3, "batch_size": 32, "eval_batch_size": 128, "progress": False},
    "run": {"plots": False, "tensorboard": False},
}


def _merge(base: dict, top: dict) -> dict:
    out = dict(base)
    for k, v in top.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


@pytest.fixture
def tiny_config():
    """``tiny_config(**sections)`` -> a validated tiny config with the sections merged in."""

    def make(overrides: dict | None = None, sets: list[str] | None = None) -> ExperimentConfig:
        return load_config(_merge(TINY, overrides or {}), sets or [])

    return make


def write_speaker_file(path: Path, n_speakers: int = 3, per_class: int = 2, n_classes: int = 4):
    """An SHD-layout file whose classes differ by the channel band they excite."""
    rng = np.random.default_rng(7)
    times, units, labels, speakers = [], [], [], []
    for s in range(n_speakers):
        for c in range(n_classes):
            for _ in range(per_class):
                n = 60
                t = np.sort(rng.uniform(0.0, 0.09, n))
                u = rng.integers(c * 40, c * 40 + 40, n)
                times.append(t)
                units.append(u)
                labels.append(c)
                speakers.append(s)
    return write_hdf5(
        path,
        times,
        units,
        labels,
        speakers=speakers,
        class_names=[f"class{c}" for c in range(n_classes)],
        time_dtype=np.float32,
    )


@pytest.fixture
def speaker_file(tmp_path) -> Path:
    return write_speaker_file(tmp_path / "speakers.h5")


@pytest.fixture
def speaker_config(tiny_config, speaker_file):
    """A tiny config training and testing on :func:`speaker_file` (three speakers)."""
    return tiny_config(
        {
            "data": {
                "dataset": "hdf5",
                "train_file": str(speaker_file),
                "test_file": str(speaker_file),
                "dt": 2.0,
                "duration_ms": 100.0,
                "cache": False,
                "validation": {"kind": "split"},
                "test": True,
            },
            "model": {"hidden": [16], "init": {"w_in_mean": 0.3, "w_in_std": 0.1}},
            "train": {"epochs": 2, "batch_size": 8},
        }
    )
