"""``eventprop train`` / ``eval`` / ``crossval`` from the command line, and ``method: bptt``."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from eventprop.cli.main import main
from eventprop.train.config import dump_config
from eventprop.train.crossval import crossval
from eventprop.train.loop import train
from eventprop.train.model import MethodUnavailableError


@pytest.fixture
def cfg_file(tiny_config, tmp_path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(dump_config(tiny_config({"train": {"epochs": 2}})), encoding="utf-8")
    return path


def test_train_then_eval(cfg_file, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(cfg_file), "--run-dir", str(run), "--set", "optim.lr=2e-3"]) == 0
    out = capsys.readouterr().out
    assert "epoch 2/2" in out and f"run directory: {run}" in out and "test" in out
    assert "lr: 0.002" in (run / "config.yaml").read_text()
    assert main(["eval", str(run)]) == 0
    out = capsys.readouterr().out
    assert "test set (90 samples), best checkpoint" in out
    result = json.loads((run / "eval_test_best.json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    assert result["accuracy"] == summary["test"]["accuracy"]  # same numbers as the run
    assert main(["eval", str(run), "--split", "validation", "--checkpoint", "last"]) == 0
    assert (run / "eval_validation_last.json").exists()


def test_config_errors_exit_2_with_the_key_path(cfg_file, tmp_path, capsys):
    code = main(["train", str(cfg_file), "--set", "optim.lr=fast", "model.hiden=3"])
    err = capsys.readouterr().err
    assert code == 2
    assert "optim.lr: expected a number, got 'fast' (str)" in err
    assert "model.hiden: unknown key" in err
    assert main(["train", "nonexistent_config"]) == 2
    assert "no built-in config" in capsys.readouterr().err
    assert main(["train", str(cfg_file), "--resume", str(tmp_path)]) == 2
    assert "--resume continues a run with its own config" in capsys.readouterr().err
    blocker = tmp_path / "f"
    blocker.write_text("")
    assert main(["train", str(cfg_file), "--run-dir", str(blocker / "x")]) == 2
    assert "not writable" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "nope")]) == 2
    assert "no such run directory" in capsys.readouterr().err


def test_print_and_list_configs(capsys):
    assert main(["train", "--print-config", "--epochs", "7", "--seed", "9"]) == 0
    out = capsys.readouterr().out
    assert "name: yinyang" in out and "epochs: 7" in out and "seed: 9" in out
    assert main(["train", "--list-configs"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("yinyang", "shd", "shd_small", "ssc"))


def test_crossval_leave_one_speaker_out(tiny_config, speaker_file, tmp_path, capsys):
    cfg = tiny_config(
        {
            "data": {
                "dataset": "hdf5",
                "train_file": str(speaker_file),
                "dt": 2.0,
                "duration_ms": 100.0,
                "cache": False,
                "validation": {"kind": "split"},
                "test": False,
            },
            "model": {"hidden": [16], "init": {"w_in_mean": 0.3, "w_in_std": 0.1}},
            "train": {"epochs": 2, "batch_size": 8},
        }
    )
    result = crossval(cfg, tmp_path / "cv", speakers=[0, 2])
    out = capsys.readouterr().out
    assert [f["speaker"] for f in result.folds] == [0, 2]
    assert all(f["n_validation"] == 8 for f in result.folds)  # 4 classes x 2 per speaker
    saved = json.loads((tmp_path / "cv" / "crossval.json").read_text())
    mean, std = result.stats()
    assert saved["final_accuracy_mean"] == pytest.approx(mean)
    assert saved["final_accuracy_std"] == pytest.approx(std)
    assert "+-" in out
    fold = json.loads((tmp_path / "cv" / "speaker-2" / "summary.json").read_text())
    assert fold["validation_source"] == "speaker 2 held out" and fold["test"] is None
    again = crossval(cfg, tmp_path / "cv", speakers=[0, 2])  # finished folds are reused
    assert "already done" in capsys.readouterr().out
    assert again.as_dict()["folds"] == result.as_dict()["folds"]
    with pytest.raises(ValueError, match=r"\[7\] not in the training set"):
        crossval(cfg, tmp_path / "cv2", speakers=[7])
    stale = tmp_path / "cv3" / "speaker-1"
    stale.mkdir(parents=True)
    (stale / "train.log").write_text("killed during epoch 1\n")
    redo = crossval(cfg, tmp_path / "cv3", speakers=[1])
    assert "restarting" in capsys.readouterr().out and len(redo.folds) == 1


def test_crossval_cli_rejects_data_without_speakers(cfg_file, tmp_path, capsys):
    assert main(["crossval", str(cfg_file), "--out", str(tmp_path / "cv"), "-q"]) == 1
    assert "no speaker ids" in capsys.readouterr().err


def test_bptt_method(tiny_config, tmp_path, monkeypatch):
    cfg = tiny_config({"method": "bptt", "bptt": {"surrogate_slope": 5.0}, "train": {"epochs": 2}})
    if importlib.util.find_spec("eventprop.baselines.bptt") is not None:
        result = train(cfg, run_dir=tmp_path / "run", quiet=True)
        assert result.summary["method"] == "bptt" and result.summary["status"] == "completed"
        assert result.summary["last_epoch"]["train_loss"] < 2.0
    monkeypatch.setitem(sys.modules, "eventprop.baselines.bptt", None)  # as if not installed
    with pytest.raises(MethodUnavailableError, match=r"eventprop\.baselines\.bptt"):
        train(cfg, run_dir=tmp_path / "run2", quiet=True)
    assert not (tmp_path / "run2").exists()  # refused before a run directory was made
