"""Evaluation reports accuracy per speaker when the data names its speakers."""

from __future__ import annotations

import json

from eventprop.train import train
from eventprop.train.runeval import evaluate_run


def test_per_speaker_accuracy_adds_up_to_the_total(speaker_config, tmp_path) -> None:
    cfg = speaker_config
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
