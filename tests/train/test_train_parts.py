"""Building blocks of a run: LR schedules, lifting silent neurons, checkpoints, seeds, data."""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest
import torch

from eventprop.models import Network
from eventprop.train.checkpoint import (
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from eventprop.train.config import ScheduleConfig, load_config
from eventprop.train.data import load_run_data
from eventprop.train.model import build_network
from eventprop.train.rewire import lift_silent
from eventprop.train.schedule import LRSchedule
from eventprop.train.seeds import derive_seed, stream_seeds


def _opt(lr: float = 1e-3) -> torch.optim.Optimizer:
    return torch.optim.Adam([torch.nn.Parameter(torch.zeros(2))], lr=lr)


def test_ema_rule_follows_the_reference_implementation():
    cfg = ScheduleConfig(kind="ema", fast=0.8, slow=0.85, factor=0.5, min_epochs=3)
    opt = _opt()
    sched = LRSchedule(opt, cfg, 1e-3, epochs=100)
    accs = [0.5, 0.6, 0.7, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.1, 0.1]
    fast = slow = 0.0
    lr, last, expected = 1e-3, 0, []
    for epoch, a in enumerate(accs):
        fast = 0.8 * fast + 0.2 * a
        slow = 0.85 * slow + 0.15 * a
        if epoch - last > 3 and fast <= slow:
            lr *= 0.5
            last = epoch
        expected.append(lr)
        sched.step(epoch, a)
        assert opt.param_groups[0]["lr"] == sched.lr
    # a rising accuracy keeps the fast EMA above the slow one: no halving while improving
    assert expected[:4] == [1e-3] * 4
    assert min(expected) < 1e-3  # the drop at the end triggers the rule
    replay = LRSchedule(_opt(), cfg, 1e-3, 100)
    got = []
    for epoch, a in enumerate(accs):
        replay.step(epoch, a)
        got.append(replay.lr)
    assert got == expected


def test_ema_rule_never_before_min_epochs():
    sched = LRSchedule(_opt(), ScheduleConfig(kind="ema", min_epochs=50), 1e-3, 200)
    for epoch in range(51):
        sched.step(epoch, 0.5 if epoch < 10 else 0.1)  # accuracy collapses early
        assert sched.lr == 1e-3
    sched.step(51, 0.1)
    assert sched.lr == 5e-4


def test_cosine_and_step_and_state_round_trip():
    cos = LRSchedule(_opt(), ScheduleConfig(kind="cosine", min_lr=1e-4), 1e-2, epochs=10)
    lrs = []
    for e in range(10):
        cos.step(e, None)
        lrs.append(cos.lr)
    assert lrs[-1] == pytest.approx(1e-4) and all(a >= b for a, b in itertools.pairwise(lrs))
    step = LRSchedule(_opt(), ScheduleConfig(kind="step", every=2, factor=0.1), 1.0, 10)
    for e in range(4):
        step.step(e, None)
    assert step.lr == pytest.approx(0.01)
    ema = LRSchedule(_opt(), ScheduleConfig(kind="ema", min_epochs=0), 1.0, 10)
    ema.step(0, 0.9)
    ema.step(1, 0.1)
    opt2 = _opt()
    other = LRSchedule(opt2, ScheduleConfig(kind="ema", min_epochs=0), 1.0, 10)
    other.load_state_dict(ema.state_dict())
    assert other.state_dict() == ema.state_dict() and opt2.param_groups[0]["lr"] == ema.lr


def test_lift_silent_raises_only_silent_columns():
    net = Network.build(5, [4, 3], 2, seed=0)
    before = [layer.weight.detach().clone() for layer in net.hidden]
    rec_before = net.hidden[0].weight_rec.detach().clone()
    masks = [torch.tensor([True, False, False, True]), torch.tensor([False, False, False])]
    assert lift_silent(net, masks, 0.002) == 2
    diff = net.hidden[0].weight.detach() - before[0]
    assert torch.allclose(diff[:, [0, 3]], torch.full((5, 2), 0.002))
    assert torch.equal(diff[:, [1, 2]], torch.zeros(5, 2))
    assert torch.equal(net.hidden[1].weight.detach(), before[1])
    assert torch.equal(net.hidden[0].weight_rec.detach(), rec_before)  # recurrent untouched
    with pytest.raises(ValueError, match="expected 2 masks"):
        lift_silent(net, masks[:1], 0.1)


def test_checkpoint_is_atomic_and_loads_without_pickle(tmp_path, monkeypatch):
    path = tmp_path / "ck" / "last.pt"
    save_checkpoint(path, {"epoch": 1, "w": torch.ones(3), "rows": [{"a": 1.5, "b": None}]})
    state = load_checkpoint(path)
    assert state["epoch"] == 1 and state["rows"] == [{"a": 1.5, "b": None}]

    def broken_save(obj, fh):
        fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"epoch": 2})
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1  # the previous checkpoint survives intact
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temp file left
    path.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_checkpoint(path)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "none.pt")


def test_rng_state_round_trip(tmp_path):
    state = capture_rng_state()
    save_checkpoint(tmp_path / "r.pt", {"rng": state})
    a = (torch.rand(3), np.random.rand(3), random.random())  # noqa: NPY002 (global state)
    restore_rng_state(load_checkpoint(tmp_path / "r.pt")["rng"])
    b = (torch.rand(3), np.random.rand(3), random.random())  # noqa: NPY002
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def test_seeds_are_per_stream_and_overridable(tiny_config):
    cfg = tiny_config()
    seeds = stream_seeds(cfg)
    assert len(set(seeds.values())) == 4
    assert seeds == stream_seeds(tiny_config())
    assert derive_seed(3, "init") == seeds["init"]
    other = stream_seeds(tiny_config({"seeds": {"data_order": 11}}))
    assert other["data_order"] == 11 and other["init"] == seeds["init"]


def test_network_initialisation_follows_the_config(tiny_config):
    cfg = tiny_config(
        {"model": {"hidden": [30, 20], "init": {"w_in_mean": 0.5, "w_fwd_mean": -0.5}}}
    )
    a = build_network(cfg, 5, 3, seed=1)
    b = build_network(cfg, 5, 3, seed=1)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    assert a.hidden[0].weight.mean() > 0 and a.hidden[1].weight.mean() < 0
    het = tiny_config({"model": {"taus": {"tau_m_std": 5.0, "trainable": True}}})
    net = build_network(het, 5, 3, seed=1)
    assert net.hidden[0].tau_m.requires_grad and net.hidden[0].tau_m.std() > 0


def test_validation_splits(tiny_config, speaker_file):
    cfg = tiny_config({"data": {"validation": {"kind": "split", "fraction": 0.25}}})
    data = load_run_data(cfg, stream_seeds(cfg))
    assert len(data.train) + len(data.validation) == 240 and len(data.validation) == 60
    again = load_run_data(cfg, stream_seeds(cfg))
    assert np.array_equal(data.validation.labels, again.validation.labels)
    files = {
        "dataset": "hdf5",
        "train_file": str(speaker_file),
        "dt": 2.0,
        "duration_ms": 100.0,
        "cache": False,
        "validation": {"kind": "speaker", "speaker": 1},
        "test": False,
    }
    spk = load_run_data(tiny_config({"data": files}), stream_seeds(cfg))
    assert set(spk.validation.speakers.tolist()) == {1}
    assert 1 not in set(spk.train.speakers.tolist())
    assert spk.n_classes == 4 and spk.class_names[0] == "class0"
    bad = tiny_config({"data": {**files, "validation": {"kind": "speaker", "speaker": 9}}})
    with pytest.raises(ValueError, match="speaker 9 is not in the training set"):
        load_run_data(bad, stream_seeds(bad))
    delay = tiny_config({"data": {**files, "delay": {"n_delays": 2, "delay_ms": 10.0}}})
    assert load_run_data(delay, stream_seeds(delay)).n_channels == 3 * 700
    missing = tiny_config({"data": {**files, "train_file": str(speaker_file) + ".nope"}})
    with pytest.raises(FileNotFoundError, match=r"data\.train_file"):
        load_run_data(missing, stream_seeds(missing))
    assert math.isfinite(load_config("yinyang").data.dt)
