"""One-line errors that name the file, the field and what to do -- never a traceback -- and
warnings for runs that complete without learning."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import torch

from eventprop.cli.main import main
from eventprop.data.hdf5 import write_hdf5
from eventprop.train.config import dump_config
from eventprop.train.loop import resume, train
from eventprop.train.runs import RunPaths
from tests.train.conftest import write_speaker_file

FAST = {"train": {"epochs": 1}, "data": {"yinyang": {"train_size": 96}}}


def _one_line_error(capsys, code: int, expected_code: int = 1) -> str:
    err = capsys.readouterr().err.strip()
    assert code == expected_code, err
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    return err


def _empty_file(path):
    with h5py.File(path, "w") as f:
        f.create_dataset("spikes/times", (0,), dtype=h5py.vlen_dtype(np.float32))
        f.create_dataset("spikes/units", (0,), dtype=h5py.vlen_dtype(np.uint16))
        f.create_dataset("labels", data=np.zeros(0, np.uint16))
    return path


def test_empty_data_file_is_named_by_training_and_by_data_info(tiny_config, tmp_path, capsys):
    empty = _empty_file(tmp_path / "empty.h5")
    assert main(["data", "info", str(empty), "--lenient"]) == 1
    err = capsys.readouterr().err
    assert str(empty) in err and "holds no samples" in err
    cfg_path = tmp_path / "c.yaml"
    cfg = tiny_config(
        {
            "data": {
                "dataset": "hdf5",
                "train_file": str(empty),
                "dt": 2.0,
                "duration_ms": 100.0,
                "cache": False,
                "validation": {"kind": "split"},
                "test": False,
            }
        }
    )
    cfg_path.write_text(dump_config(cfg))
    code = main(["train", str(cfg_path), "--run-dir", str(tmp_path / "run"), "-q"])
    err = _one_line_error(capsys, code)
    assert str(empty) in err and "holds no samples" in err


def test_a_split_that_leaves_no_training_sample_names_the_file(tiny_config, tmp_path):
    one = write_speaker_file(tmp_path / "one.h5", n_speakers=1)
    cfg = tiny_config(
        {
            "data": {
                "dataset": "hdf5",
                "train_file": str(one),
                "dt": 2.0,
                "duration_ms": 100.0,
                "cache": False,
                "validation": {"kind": "speaker", "speaker": 0},
                "test": False,
            }
        }
    )
    try:
        train(cfg, run_dir=tmp_path / "run", quiet=True)
    except ValueError as exc:
        assert str(one) in str(exc) and "data.validation" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("an empty training set was accepted")


def test_foreign_checkpoint_names_its_missing_keys(tiny_config, tmp_path, capsys):
    run = train(tiny_config(FAST), run_dir=tmp_path / "run", quiet=True).run_dir
    summary = (run / "summary.json").read_bytes()
    torch.save({"format": 1, "state_dict": {}}, run / "checkpoints" / "best.pt")
    err = _one_line_error(capsys, main(["eval", str(run)]))
    assert "missing keys: epoch, model, optimizer" in err and "best.pt" in err
    torch.save({"format": 1, "epoch": 0}, run / "checkpoints" / "last.pt")
    err = _one_line_error(capsys, main(["train", "--resume", str(run), "-q"]))
    assert "missing keys: model, optimizer" in err and "last.pt" in err
    assert (run / "summary.json").read_bytes() == summary


def test_checkpoint_of_another_network_names_shapes_and_config_keys(tiny_config, tmp_path, capsys):
    cfg = tiny_config({**FAST, "train": {"epochs": 2}})
    run = tmp_path / "run"

    def stop_after_first(trainer, epoch, row):
        raise KeyboardInterrupt

    try:
        train(cfg, run_dir=run, quiet=True, on_epoch_end=stop_after_first)
    except KeyboardInterrupt:
        pass
    config = RunPaths(run).config
    text = config.read_text()
    assert "hidden: [24]" in text
    config.write_text(text.replace("hidden: [24]", "hidden: [31]"))  # model.hidden edited
    err = _one_line_error(capsys, main(["train", "--resume", str(run), "-q"]))
    assert "does not fit this config's network" in err
    assert "hidden.0.weight (5, 24) in the checkpoint, (5, 31) here" in err
    assert "model.hidden ([24] in the checkpoint, [31] now)" in err


def test_unsafe_checkpoint_is_refused_without_advising_weights_only_false(
    tiny_config, tmp_path, capsys
):
    run = train(tiny_config(FAST), run_dir=tmp_path / "run", quiet=True).run_dir
    torch.save({"format": 1, "payload": np.random.default_rng(0)}, run / "checkpoints" / "last.pt")
    err = _one_line_error(capsys, main(["train", "--resume", str(run), "-q"]))
    assert "refused" in err and "last.pt" in err
    assert "weights_only=False" not in err and "weights_only` set to `False" not in err


def test_disk_full_during_checkpoint_metrics_and_data_file_writes_is_one_line(tmp_path):
    """A real failing write: the file-size limit makes write() fail as a full disk does."""
    code = textwrap.dedent(
        f"""
        import resource, signal
        from pathlib import Path
        import torch
        from eventprop.train.checkpoint import load_checkpoint, save_checkpoint
        from eventprop.train.metrics import MetricsLog
        root = Path({str(tmp_path)!r})
        save_checkpoint(root / "last.pt", {{"epoch": 0, "w": torch.zeros(10)}})
        log = MetricsLog(root, tensorboard=False)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, resource.RLIM_INFINITY))
        import numpy as np
        from eventprop.data.hdf5 import write_hdf5
        spikes = [np.linspace(0.0, 0.5, 20_000)] * 3
        for write in (
            lambda: save_checkpoint(root / "last.pt", {{"epoch": 1, "w": torch.zeros(10**5)}}),
            lambda: log.append({{"epoch": 1, "train_loss": 0.5, "lr": "x" * 30_000}}),
            lambda: write_hdf5(root / "enc.h5", spikes, [np.zeros(20_000, int)] * 3, [0, 1, 2]),
        ):
            try:
                write()
            except OSError as exc:
                print("ERROR", exc)
        print("EPOCH", load_checkpoint(root / "last.pt")["epoch"])
        print("FILES", sorted(p.name for p in root.iterdir()))
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    errors = [line for line in lines if line.startswith("ERROR")]
    assert len(errors) == 3, proc.stdout
    assert str(tmp_path / "last.pt") in errors[0] and "previous checkpoint is intact" in errors[0]
    assert str(tmp_path / "metrics.csv") in errors[1] and "--resume" in errors[1]
    assert str(tmp_path / "enc.h5") in errors[2] and "nothing was written there" in errors[2]
    assert "Traceback" not in proc.stderr and "RuntimeError" not in proc.stderr
    assert "unexpected pos" not in proc.stdout
    assert "EPOCH 0" in lines  # the previous checkpoint survived
    assert not any(".tmp" in line for line in lines if line.startswith("FILES"))


def test_a_run_that_learns_nothing_ends_with_a_warning(tiny_config, tmp_path):
    cfg = tiny_config({**FAST, "train": {"epochs": 5}, "optim": {"lr": 1.0e6}})
    result = train(cfg, run_dir=tmp_path / "run", quiet=True)
    warnings = result.summary["warnings"]
    assert result.summary["status"] == "completed"
    assert any("stayed at chance (33.3 %, 3 classes) in epochs 1..5" in w for w in warnings)
    assert (
        "WARNING: training accuracy stayed at chance"
        in (tmp_path / "run" / "train.log").read_text()
    )
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert saved["warnings"] == warnings


def test_a_run_whose_hidden_layer_is_silent_ends_with_a_warning(tiny_config, tmp_path):
    cfg = tiny_config({**FAST, "model": {"init": {"w_in_mean": -5.0, "w_in_std": 0.1}}})
    result = train(cfg, run_dir=tmp_path / "run", quiet=True)
    assert result.summary["status"] == "completed"
    assert any("every hidden neuron (24) was silent" in w for w in result.summary["warnings"])
    assert "WARNING: every hidden neuron" in (tmp_path / "run" / "train.log").read_text()


def test_a_healthy_run_has_no_warnings(tiny_config, tmp_path):
    cfg = tiny_config(
        {
            "train": {"epochs": 5},
            "model": {"recurrent": False, "hidden": [64]},
            "optim": {"lr": 2.0e-2},
        }
    )
    result = train(cfg, run_dir=tmp_path / "run", quiet=True)
    assert result.summary["last_epoch"]["train_accuracy"] > 0.5  # it learnt
    assert result.summary["warnings"] == []


def test_written_data_files_get_the_usual_file_mode(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        path = write_hdf5(tmp_path / "x.h5", [np.array([0.1])], [np.array([1])], [0])
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_resume_on_a_checkpoint_that_fits_still_works(tiny_config, tmp_path):
    """The checks above refuse only what does not fit (control)."""
    cfg = tiny_config({**FAST, "train": {"epochs": 2}})
    run = tmp_path / "run"

    def stop(trainer, epoch, row):
        raise KeyboardInterrupt

    try:
        train(cfg, run_dir=run, quiet=True, on_epoch_end=stop)
    except KeyboardInterrupt:
        pass
    assert resume(run, quiet=True).summary["epochs_completed"] == 2
