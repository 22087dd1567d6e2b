"""Run directories stay usable: one writer, failed starts restart, results of finished runs
survive failed resumes, and temporary files of killed writers do not pile up."""

from __future__ import annotations

import json
import os

import pytest
import torch

from eventprop.cli.main import main
from eventprop.train.loop import resume, train
from eventprop.train.metrics import read_metrics
from eventprop.train.runs import RunDirError, RunLock, RunPaths, is_failed_start
from tests.train.conftest import write_speaker_file

FAST = {"train": {"epochs": 2}, "data": {"yinyang": {"train_size": 96}}}


def _hdf5_config(tiny_config, path):
    return tiny_config(
        {
            "data": {
                "dataset": "hdf5",
                "train_file": str(path),
                "dt": 2.0,
                "duration_ms": 100.0,
                "cache": False,
                "validation": {"kind": "split"},
                "test": False,
            },
            "model": {"hidden": [8]},
            "train": {"epochs": 1, "batch_size": 8},
        }
    )


def test_a_second_writer_is_refused_while_a_run_is_live(tiny_config, tmp_path):
    cfg = tiny_config({**FAST, "train": {"epochs": 3}})
    run = tmp_path / "run"
    refused = []

    def second_writer(trainer, epoch, row):
        if epoch == 0:  # the run is live and holds its lock: a --resume now must be refused
            with pytest.raises(RunDirError) as info:
                resume(run, quiet=True)
            refused.append(str(info.value))

    train(cfg, run_dir=run, quiet=True, on_epoch_end=second_writer)
    assert refused and f"in use by process {os.getpid()}" in refused[0]
    assert "one writer" in refused[0]
    rows = read_metrics(RunPaths(run).metrics)
    assert [r["epoch"] for r in rows] == [1, 2, 3]  # every epoch once
    assert not (run / ".lock").exists()  # released at the end


def test_cli_resume_of_a_locked_run_exits_2_naming_the_holder(tiny_config, tmp_path, capsys):
    cfg = tiny_config(FAST)
    run = train(cfg, run_dir=tmp_path / "run", quiet=True).run_dir
    before = (run / "summary.json").read_bytes()
    with RunLock(run):
        code = main(["train", "--resume", str(run), "-q"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert f"in use by process {os.getpid()}" in err
    assert (run / "summary.json").read_bytes() == before


def test_stale_lock_of_a_dead_process_is_taken_over(tiny_config, tmp_path):
    cfg = tiny_config({**FAST, "train": {"epochs": 1}})
    run = train(cfg, run_dir=tmp_path / "run", quiet=True).run_dir
    (run / ".lock").write_text("999999999 somehost 0\n")  # left by kill -9: no flock held
    lock = RunLock(run).acquire()
    assert lock.took_over == 999999999
    lock.release()
    (run / ".lock").write_text("999999999 somehost 0\n")
    resume(run, quiet=True)  # the completed run is re-evaluated, not refused
    assert not (run / ".lock").exists()


def test_temporary_files_of_killed_writers_are_removed(tiny_config, tmp_path):
    cfg = tiny_config({**FAST, "train": {"epochs": 1}})
    run = train(cfg, run_dir=tmp_path / "run", quiet=True).run_dir
    left = [
        run / "checkpoints" / ".last.pt.4242.tmp",
        run / "checkpoints" / ".best.pt.4242.tmp",
        run / ".write-test-4242",
        run / ".summary.json.tmp",
        run / ".config.yaml.tmp",
    ]
    for p in left:
        p.write_bytes(b"torn")
    mine = run / "notes.txt"
    mine.write_text("kept")
    resume(run, quiet=True)
    assert not any(p.exists() for p in left)
    assert mine.read_text() == "kept"  # only the package's own temporary names are removed
    names = {p.name for p in run.rglob("*")}
    assert not any(n.endswith(".tmp") or n.startswith(".write-test") for n in names)


@pytest.mark.parametrize("damage", ["garbage", "foreign"])
def test_failed_resume_keeps_the_summary_of_a_finished_run(tiny_config, tmp_path, damage):
    cfg = tiny_config({**FAST, "train": {"epochs": 1}})
    run = train(cfg, run_dir=tmp_path / "run", quiet=True).run_dir
    summary = (run / "summary.json").read_bytes()
    assert json.loads(summary)["status"] == "completed"
    last = run / "checkpoints" / "last.pt"
    if damage == "garbage":
        last.write_bytes(b"\x00not a checkpoint")
    else:
        torch.save({"format": 1, "weights": torch.zeros(3)}, last)
    with pytest.raises(ValueError):
        resume(run, quiet=True)
    assert (run / "summary.json").read_bytes() == summary
    assert "kept unchanged" in (run / "train.log").read_text()


def test_failed_start_with_a_bad_data_file_restarts_in_place(tiny_config, tmp_path, capsys):
    data = tmp_path / "train.h5"
    data.write_bytes(b"this is not an HDF5 file")
    cfg = _hdf5_config(tiny_config, data)
    run = tmp_path / "run"
    with pytest.raises((OSError, ValueError)):
        train(cfg, run_dir=run, quiet=True)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "failed"
    assert "starts again at epoch 1" in summary["resume_with"]
    assert (run / "config.yaml").is_file() and is_failed_start(run)
    write_speaker_file(data)  # the user fixes the file
    # the command the summary recommends works ...
    assert main(["train", "--resume", str(run), "-q"]) == 0
    capsys.readouterr()
    done = json.loads((run / "summary.json").read_text())
    assert done["status"] == "completed" and done["epochs_completed"] == 1
    assert done["resumed_from_epoch"] is None


def test_run_killed_before_its_first_checkpoint_restarts_with_the_same_command(
    tiny_config, tmp_path
):
    cfg = tiny_config({**FAST, "train": {"epochs": 1}})
    run = tmp_path / "run"

    def killed(trainer, epoch, batch):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, run_dir=run, quiet=True, on_batch=killed)
    assert is_failed_start(run) and not (run / "checkpoints" / "last.pt").exists()
    result = train(cfg, run_dir=run, quiet=True)  # the same --run-dir is accepted again
    assert result.summary["status"] == "completed"
    assert [r["epoch"] for r in read_metrics(RunPaths(run).metrics)] == [1]
    with pytest.raises(RunDirError, match="--resume"):  # now it holds a run
        train(cfg, run_dir=run, quiet=True)


def test_a_directory_with_foreign_files_is_never_taken(tiny_config, tmp_path):
    cfg = tiny_config(FAST)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    with pytest.raises(RunDirError, match="exists and is not empty"):
        train(cfg, run_dir=mine, quiet=True)
    assert (mine / "thesis.tex").read_text() == "precious"
    assert not is_failed_start(mine)


def test_kill_9_before_the_first_checkpoint_then_two_writers(tiny_config, tmp_path):
    """Real processes: while a run is live a second one is refused; after kill -9 (no
    checkpoint yet, a stale lock) the recommended --resume starts it again from epoch 1."""
    import signal
    import subprocess
    import sys
    import time

    from eventprop.train.config import dump_config

    cfg = tiny_config({"data": {"yinyang": {"train_size": 4000}}, "train": {"epochs": 1}})
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(dump_config(cfg), encoding="utf-8")
    run = tmp_path / "run"
    cli = [sys.executable, "-m", "eventprop.cli.main", "train"]
    proc = subprocess.Popen([*cli, str(cfg_file), "--run-dir", str(run), "-q"])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if (run / ".lock").exists() and (run / "metrics.csv").exists():
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before the test could act"
    assert not (run / "checkpoints" / "last.pt").exists()
    with pytest.raises(RunDirError, match=f"in use by process {proc.pid}"):
        resume(run, quiet=True)  # a second writer, while the first one lives
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (run / ".lock").exists() and not (run / "checkpoints" / "last.pt").exists()
    assert is_failed_start(run)
    result = resume(run, quiet=True)  # takes the stale lock over, starts at epoch 1
    assert result.summary["status"] == "completed" and result.summary["epochs_completed"] == 1
    assert [r["epoch"] for r in read_metrics(RunPaths(run).metrics)] == [1]
