"""Evaluation reports accuracy per speaker when the data names its speakers."""

from __future__ import annotations

import json

from eventprop.train import train
from eventprop.train.runeval import evaluate_run


def test_per_speaker_accuracy_adds_up_to_the_total(tiny_config, speaker_file, tmp_path) -> None:
    cfg = tiny_config(
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
    result = train(cfg, run_dir=tmp_path / "run", quiet=True)
    summary = result.summary
    per = summary["test"]["per_speaker"]
    assert sorted(per) == ["0", "1", "2"]  # the file's three speakers, 8 samples each
    assert all(v["n"] == 8 for v in per.values())
    correct = sum(v["accuracy"] * v["n"] for v in per.values())
    assert correct / 24 == summary["test"]["accuracy"]
    again = evaluate_run(result.run_dir, plots=False)
    assert again["per_speaker"] == per
    written = json.loads((result.run_dir / "eval_test_best.json").read_text())
    assert written["per_speaker"] == per
