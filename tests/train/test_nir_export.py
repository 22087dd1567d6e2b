"""``eventprop export-nir RUN_DIR --out FILE``: the file runs like the run's best checkpoint."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("nir")

from eventprop.cli.main import main
from eventprop.nir import read_nir
from eventprop.train.checkpoint import load_checkpoint
from eventprop.train.data import load_run_data
from eventprop.train.loop import train
from eventprop.train.model import build_network


def test_export_nir_writes_the_best_checkpoint(tiny_config, tmp_path, capsys):
    cfg = tiny_config({"train": {"epochs": 2}})
    result = train(cfg, run_dir=tmp_path / "run", quiet=True)
    out = tmp_path / "model.nir"
    assert main(["export-nir", str(result.run_dir), "--out", str(out)]) == 0
    assert "written" in capsys.readouterr().out
    ck = load_checkpoint(result.run_dir / "checkpoints" / "best.pt")
    net = build_network(cfg, ck["meta"]["n_channels"], ck["meta"]["n_classes"], 0)
    net.load_state_dict(ck["model"])
    exported = read_nir(out)
    data = load_run_data(cfg, ck["seeds"], need=("test",))
    events, _ = next(iter(data.eval_batches(data.test, 64)))
    a, b = net(events), exported(events)
    assert sum(int(c.sum()) for c in a.hidden_counts) > 0
    assert torch.equal(a.voltage, b.voltage)


def test_export_nir_errors_are_one_line(tmp_path, capsys):
    assert main(["export-nir", str(tmp_path / "nothing"), "--out", str(tmp_path / "m.nir")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("eventprop export-nir:") and "\n" not in err


def test_version(capsys):
    import eventprop

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"eventprop {eventprop.__version__}"
