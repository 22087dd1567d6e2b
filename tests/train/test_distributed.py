"""Data-parallel training: N processes reach the weights one process reaches on the same global
batches; resume works across the two; sharding and the launcher behave."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from eventprop import EventBatch
from eventprop.train.checkpoint import load_checkpoint
from eventprop.train.config import dump_config
from eventprop.train.distributed import shard_batch
from eventprop.train.loop import train
from eventprop.train.model import build_network

#: the tiny config with lifting of silent neurons per epoch, so the epoch sums are exercised
_SETS = {"train": {"epochs": 2, "rewire": {"enabled": True, "every": "epoch"}}}


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, "-m", "eventprop", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def _weights(run_dir) -> dict[str, torch.Tensor]:
    return load_checkpoint(run_dir / "checkpoints" / "last.pt")["model"]


def _assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=2e-5, atol=2e-6, msg=key)


def test_two_processes_reach_the_weights_of_one(tiny_config, tmp_path):
    cfg = tiny_config(_SETS)
    one = train(cfg, run_dir=tmp_path / "one", quiet=True)
    path = tmp_path / "tiny.yaml"
    path.write_text(dump_config(cfg))
    res = _cli("train", str(path), "--nproc", "2", "--run-dir", str(tmp_path / "two"), "-q")
    assert res.returncode == 0, res.stderr
    assert "run directory" in res.stdout
    w1, w2 = _weights(one.run_dir), _weights(tmp_path / "two")
    _assert_same_weights(w1, w2)
    ck = load_checkpoint(tmp_path / "two" / "checkpoints" / "last.pt")
    meta = ck["meta"]
    init = build_network(cfg, meta["n_channels"], meta["n_classes"], ck["seeds"]["init"])
    init = init.state_dict()
    moved = max(float((w2[k] - init[k]).abs().max()) for k in w2)
    assert moved > 1e-2  # training moved the weights far beyond the tolerance
    assert len(ck["history"]) == 2
    h1 = load_checkpoint(one.run_dir / "checkpoints" / "last.pt")["history"]
    for r1, r2 in zip(h1, ck["history"]):
        assert r1["train_samples"] == r2["train_samples"] == 240
        assert r1["val_accuracy"] == pytest.approx(r2["val_accuracy"], abs=1.5 / 90)
        assert r1["train_loss"] == pytest.approx(r2["train_loss"], rel=1e-4)
    # only rank 0 wrote: one run directory, no leftovers of the other rank in it
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(
        p.name for p in one.run_dir.iterdir()
    )


def test_resume_with_two_processes_ends_where_one_process_ends(tiny_config, tmp_path):
    cfg = tiny_config(_SETS)
    full = train(cfg, run_dir=tmp_path / "full", quiet=True)

    def stop(trainer, epoch, row):
        if epoch == 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, run_dir=tmp_path / "cut", quiet=True, on_epoch_end=stop)
    res = _cli("train", "--resume", str(tmp_path / "cut"), "--nproc", "2", "-q")
    assert res.returncode == 0, res.stderr
    _assert_same_weights(_weights(full.run_dir), _weights(tmp_path / "cut"))


def test_shards_cover_the_batch_in_order():
    dense = (torch.rand(7, 10, 5, generator=torch.Generator().manual_seed(1)) < 0.4).float()
    events = EventBatch.from_dense(dense)
    labels = torch.arange(7)
    parts = [shard_batch(events, labels, r, 3) for r in range(3)]
    assert [p[0].batch_size for p in parts] == [2, 2, 3]
    assert sum(p[2] for p in parts) == pytest.approx(1.0)
    assert torch.equal(torch.cat([p[1] for p in parts]), labels)
    assert torch.equal(torch.cat([p[0].to_dense() for p in parts]), dense)


def test_batch_averaged_regulariser_is_refused(tiny_config, tmp_path):
    cfg = tiny_config({"regularizer": {"enabled": True, "per_trial": False}})
    path = tmp_path / "bad.yaml"
    path.write_text(dump_config(cfg))
    res = _cli("train", str(path), "--nproc", "2", "--run-dir", str(tmp_path / "x"))
    assert res.returncode == 2
    assert "regularizer.per_trial" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_sharded_evaluation_keeps_per_speaker_counts(speaker_config, tmp_path):
    cfg = speaker_config
    one = train(cfg, run_dir=tmp_path / "one", quiet=True).summary["test"]
    path = tmp_path / "speakers.yaml"
    path.write_text(dump_config(cfg))
    res = _cli("train", str(path), "--nproc", "2", "--run-dir", str(tmp_path / "two"), "-q")
    assert res.returncode == 0, res.stderr
    two = json.loads((tmp_path / "two" / "summary.json").read_text())["test"]
    assert two["n"] == one["n"] == 24
    assert two["confusion"] == one["confusion"]
    assert two["per_speaker"] == one["per_speaker"]
    assert sorted(two["per_speaker"]) == ["0", "1", "2"]
