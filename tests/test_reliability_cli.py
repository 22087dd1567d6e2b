"""The command line: a closed output pipe ends quietly, and every report numbers epochs from 1."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from eventprop.cli.main import EXIT_BROKEN_PIPE, main
from eventprop.data.hdf5 import write_hdf5
from eventprop.train.checkpoint import load_checkpoint
from eventprop.train.config import load_config
from eventprop.train.loop import train


def test_closed_pipe_ends_quietly(tmp_path):
    """``eventprop data info FILE | head -1``: no BrokenPipeError traceback."""
    path = write_hdf5(tmp_path / "f.h5", [np.array([0.1, 0.2])], [np.array([1, 2])], [0])
    proc = subprocess.Popen(
        [sys.executable, "-m", "eventprop.cli.main", "data", "info", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # the reader is gone before anything was written
    _, err = proc.communicate(timeout=120)
    assert b"Traceback" not in err and b"BrokenPipe" not in err, err.decode()
    assert proc.returncode == EXIT_BROKEN_PIPE


def test_eval_reports_the_epoch_the_summary_reports(tmp_path, capsys):
    cfg = load_config(
        "yinyang",
        [
            "data.yinyang.train_size=96",
            "data.yinyang.valid_size=48",
            "data.yinyang.test_size=48",
            "model.hidden=[16]",
            "train.epochs=2",
            "train.progress=false",
            "run.plots=false",
            "run.tensorboard=false",
        ],
    )
    run = train(cfg, run_dir=tmp_path / "run", quiet=True).run_dir
    summary = json.loads((run / "summary.json").read_text())
    best_epoch = summary["best"]["epoch"]  # counted from 1, like metrics.csv
    assert load_checkpoint(run / "checkpoints" / "best.pt")["epoch"] == best_epoch - 1
    assert main(["eval", str(run), "--no-plot"]) == 0
    out = capsys.readouterr().out
    assert f"best checkpoint (epoch {best_epoch})" in out
    assert json.loads((run / "eval_test_best.json").read_text())["epoch"] == best_epoch
