"""Training runs: what a run directory holds, reproducibility, resume, failures."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from eventprop.train import loop as loop_mod
from eventprop.train.checkpoint import load_checkpoint
from eventprop.train.config import dump_config, load_config
from eventprop.train.loop import TrainingDiverged, resume, train
from eventprop.train.metrics import TIMING_COLUMNS, read_metrics
from eventprop.train.runs import RunDirError, RunPaths

REPO = Path(__file__).resolve().parents[2]


def _strip_timing(rows):
    return [{k: v for k, v in r.items() if k not in TIMING_COLUMNS} for r in rows]


def _same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_run_directory_holds_everything(tiny_config, tmp_path):
    cfg = tiny_config({"run": {"plots": True, "tensorboard": None}, "train": {"epochs": 4}})
    out = io.StringIO()
    result = train(cfg, run_dir=tmp_path / "run", stream=out)
    paths = RunPaths(result.run_dir)
    assert load_config(paths.config) == cfg  # the resolved config reproduces the run
    rows = read_metrics(paths.metrics)
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]  # numbered from 1
    assert all(r["val_accuracy"] is not None for r in rows)  # validation every epoch
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    best, last = load_checkpoint(paths.best), load_checkpoint(paths.last)
    assert last["epoch"] == 3 and best["epoch"] + 1 == result.summary["best"]["epoch"]
    assert best["meta"]["n_classes"] == 3 and best["meta"]["class_names"] == ["yin", "yang", "dot"]
    for name in ("curves", "raster", "spike_counts", "confusion"):
        assert (paths.plots / f"{name}.png").stat().st_size > 1000
    summary = json.loads(paths.summary.read_text())
    assert summary["status"] == "completed" and summary["epochs_completed"] == 4
    assert 0.0 <= summary["test"]["accuracy"] <= 1.0 and summary["test"]["n"] == 90
    assert np.array(summary["test"]["confusion"]).sum() == 90
    assert summary["validation_source"] == "official validation set"
    text = out.getvalue()
    assert "epoch 4/4" in text and f"run directory: {paths.root}" in text
    assert paths.log.read_text().count("epoch ") >= 4
    if loop_mod.MetricsLog(paths.root, None).writer is not None:  # tensorboard installed
        assert list((paths.root / "tensorboard").iterdir())


def test_same_config_gives_identical_metrics_and_weights(tiny_config, tmp_path):
    cfg = tiny_config(
        {
            "data": {"augment": [{"name": "dropout", "p": 0.2}]},
            "model": {"taus": {"tau_m_std": 3.0, "trainable": True}},
            "regularizer": {"enabled": True, "nu_upper": 1.0, "lambda_upper": 1e-3},
            "train": {"rewire": {"enabled": True, "lift": 0.05}},
        }
    )
    a = train(cfg, run_dir=tmp_path / "a", quiet=True)
    b = train(cfg, run_dir=tmp_path / "b", quiet=True)
    ra, rb = read_metrics(RunPaths(a.run_dir).metrics), read_metrics(RunPaths(b.run_dir).metrics)
    assert _strip_timing(ra) == _strip_timing(rb)
    assert ra[0]["train_reg_loss"] is not None
    sa, sb = load_checkpoint(RunPaths(a.run_dir).last), load_checkpoint(RunPaths(b.run_dir).last)
    assert _same_state(sa["model"], sb["model"])
    other = train(tiny_config({"seed": 4}), run_dir=tmp_path / "c", quiet=True)
    assert _strip_timing(read_metrics(RunPaths(other.run_dir).metrics)) != _strip_timing(ra)


def test_resume_after_a_crash_ends_bit_for_bit_where_the_full_run_ends(tiny_config, tmp_path):
    cfg = tiny_config({"train": {"epochs": 4}, "schedule": {"kind": "cosine"}})
    full = train(cfg, run_dir=tmp_path / "full", quiet=True)

    class Crash(Exception):
        pass

    def crash(trainer, epoch, batch):
        if epoch == 2 and batch == 3:
            raise Crash

    with pytest.raises(Crash):
        train(cfg, run_dir=tmp_path / "cut", quiet=True, on_batch=crash)
    cut = RunPaths(tmp_path / "cut")
    assert load_checkpoint(cut.last)["epoch"] == 1
    resumed = resume(cut.root, quiet=True)
    assert resumed.summary["resumed_from_epoch"] == 1
    a, b = load_checkpoint(RunPaths(full.run_dir).last), load_checkpoint(cut.last)
    assert _same_state(a["model"], b["model"])
    assert a["optimizer"]["state"].keys() == b["optimizer"]["state"].keys()
    for k in a["optimizer"]["state"]:
        assert _same_state(a["optimizer"]["state"][k], b["optimizer"]["state"][k])
    assert a["schedule"] == b["schedule"]
    rows_full, rows_cut = read_metrics(RunPaths(full.run_dir).metrics), read_metrics(cut.metrics)
    assert _strip_timing(rows_full) == _strip_timing(rows_cut)  # no duplicated epoch rows
    assert full.summary["test"]["accuracy"] == resumed.summary["test"]["accuracy"]


def _cli(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.Popen(
        [sys.executable, "-m", "eventprop.cli.main", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **kw,
    )


def test_kill_9_then_resume_matches_the_uninterrupted_run(tiny_config, tmp_path):
    cfg = tiny_config(
        {
            "data": {"yinyang": {"train_size": 600}},
            "train": {"epochs": 8},
            "regularizer": {"enabled": True, "lambda_upper": 1e-4, "nu_upper": 2.0},
        }
    )
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(dump_config(cfg), encoding="utf-8")
    full = _cli("train", str(cfg_file), "--run-dir", str(tmp_path / "full"), "-q")
    killed_dir = tmp_path / "killed"
    proc = _cli("train", str(cfg_file), "--run-dir", str(killed_dir), "-q")
    metrics = killed_dir / "metrics.csv"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 3:  # 2 epochs done
            break
        time.sleep(0.005)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (killed_dir / "summary.json").exists()
    done_before = load_checkpoint(killed_dir / "checkpoints" / "last.pt")["epoch"]
    assert done_before < 7
    res = _cli("train", "--resume", str(killed_dir), "-q")
    _, err = res.communicate(timeout=120)
    assert res.returncode == 0, err
    full.communicate(timeout=120)
    assert full.returncode == 0
    a = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.pt")
    b = load_checkpoint(killed_dir / "checkpoints" / "last.pt")
    assert a["epoch"] == b["epoch"] == 7
    assert _same_state(a["model"], b["model"])
    for k in a["optimizer"]["state"]:
        assert _same_state(a["optimizer"]["state"][k], b["optimizer"]["state"][k])
    assert _strip_timing(read_metrics(tmp_path / "full" / "metrics.csv")) == _strip_timing(
        read_metrics(killed_dir / "metrics.csv")
    )
    summary = json.loads((killed_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["resumed_from_epoch"] == done_before


def test_nan_loss_stops_naming_epoch_and_batch_and_keeps_the_checkpoint(
    tiny_config, tmp_path, monkeypatch
):
    cfg = tiny_config({"train": {"epochs": 3}})
    real = loop_mod.build_loss

    def poisoned(cfg):
        loss = real(cfg)
        calls = {"n": 0}
        forward = loss.forward

        def maybe_nan(output, labels):
            value = forward(output, labels)
            if not torch.is_grad_enabled():  # validation
                return value
            calls["n"] += 1
            # epoch 1 (0-based), batch 2: 8 batches per epoch (240 samples / 32)
            return value * float("nan") if calls["n"] == 8 + 3 else value

        loss.forward = maybe_nan
        return loss

    monkeypatch.setattr(loop_mod, "build_loss", poisoned)
    checkpoints = {}

    def remember(trainer, epoch, row):
        checkpoints[epoch] = _sha(trainer.paths.last)

    with pytest.raises(TrainingDiverged) as info:
        train(cfg, run_dir=tmp_path / "run", quiet=True, on_epoch_end=remember)
    assert (info.value.epoch, info.value.batch) == (1, 2)
    assert "epoch 1, batch 2" in str(info.value) and "NaN" in str(info.value)
    paths = RunPaths(tmp_path / "run")
    assert _sha(paths.last) == checkpoints[0]  # last good checkpoint untouched
    state = load_checkpoint(paths.last)
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    summary = json.loads(paths.summary.read_text())
    assert summary["status"] == "diverged"
    assert summary["error"] == {"message": str(info.value), "epoch": 1, "batch": 2}
    assert "--resume" in summary["resume_with"]


def test_unwritable_run_directory_is_reported_before_anything_runs(
    tiny_config, tmp_path, monkeypatch
):
    def no_data(*args, **kwargs):
        raise AssertionError("data was loaded before the run directory was checked")

    monkeypatch.setattr(loop_mod, "load_run_data", no_data)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(RunDirError, match=r"not writable"):
        train(tiny_config(), run_dir=blocker / "run", quiet=True)
    with pytest.raises(RunDirError, match="not writable"):
        train(tiny_config({"run": {"root": str(blocker)}}), quiet=True)
    if os.geteuid() != 0:  # root ignores permission bits
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            with pytest.raises(RunDirError, match="not writable"):
                train(tiny_config(), run_dir=ro / "run", quiet=True)
        finally:
            ro.chmod(0o700)


def test_existing_run_directory_is_not_overwritten(tiny_config, tmp_path):
    cfg = tiny_config({"train": {"epochs": 1}})
    train(cfg, run_dir=tmp_path / "run", quiet=True)
    with pytest.raises(RunDirError, match="--resume"):
        train(cfg, run_dir=tmp_path / "run", quiet=True)
    with pytest.raises(RunDirError, match="no checkpoint to resume from"):
        (tmp_path / "empty").mkdir()
        (tmp_path / "empty" / "config.yaml").write_text(dump_config(cfg))
        (tmp_path / "empty" / "notes.txt").write_text("not a run's file")  # not a failed start
        resume(tmp_path / "empty", quiet=True)


def test_rewiring_lifts_silent_neurons_and_ema_schedule_acts(tiny_config, tmp_path):
    cfg = tiny_config(
        {
            "model": {"init": {"w_in_mean": -0.5, "w_in_std": 0.3}},  # all neurons silent
            "train": {"epochs": 4, "rewire": {"enabled": True, "lift": 1.0}},
            "schedule": {"kind": "ema", "min_epochs": 0, "factor": 0.5},
        }
    )
    result = train(cfg, run_dir=tmp_path / "run", quiet=True)
    rows = read_metrics(RunPaths(result.run_dir).metrics)
    assert rows[0]["silent_neurons"] > 0
    assert rows[0]["rewired_neurons"] == rows[0]["silent_neurons"]
    assert rows[-1]["silent_neurons"] < rows[0]["silent_neurons"]
    state = load_checkpoint(RunPaths(result.run_dir).last)["schedule"]
    assert state["ema_fast"] > 0 and state["ema_slow"] > 0


class _Terminal(io.StringIO):
    def isatty(self) -> bool:  # the progress bar shows only on terminals
        return True


def test_progress_bar_shows_rate_loss_accuracy_spikes_and_eta(tiny_config, tmp_path):
    out = _Terminal()
    train(
        tiny_config({"train": {"progress": True, "epochs": 2}}), run_dir=tmp_path / "r", stream=out
    )
    text = out.getvalue()
    assert "epoch 2/2:" in text  # the bar's description
    for part in ("sample/s", "loss=", "acc=", "spk=", "<"):  # "<" precedes the ETA
        assert part in text, part
    quiet = _Terminal()
    train(tiny_config({"train": {"epochs": 1}}), run_dir=tmp_path / "q", stream=quiet, quiet=True)
    assert quiet.getvalue() == ""
