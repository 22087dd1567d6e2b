"""Exact timing: a runaway network stops quickly with an error naming layer, sample and step.

The storm is the one from the field: the Yin-Yang config with a strongly excitatory recurrent
layer (``w_rec_mean = w_in_mean = 5``), 16 neurons and 50 steps. Without a bound it fired about
93 000 spikes per sample where the grid allows 800, and at 128 neurons a forward pass did not
finish in minutes.
"""

from __future__ import annotations

import time

import pytest
import torch

from eventprop.engine.exact_spec import (
    DEFAULT_SPIKES_PER_NEURON_STEP,
    SpikeLimitError,
    get_spike_limit,
    sample_spike_limit,
    set_spike_limit,
    spike_limit,
    step_spike_limit,
)
from eventprop.train.config import load_config
from eventprop.train.data import load_run_data
from eventprop.train.model import build_network
from eventprop.train.seeds import stream_seeds

STORM = [
    "model.timing=exact",
    "model.recurrent=true",
    "model.init.w_rec_mean=5.0",
    "model.init.w_in_mean=5.0",
    "model.hidden=[16]",
    "data.dt=0.8",  # 50 steps over the config's 40 ms
    "data.yinyang.train_size=64",
    "data.yinyang.valid_size=32",
    "data.yinyang.test_size=32",
]


def _batch_and_net(sets: list[str], backend: str, batch: int = 8):
    cfg = load_config("yinyang", [*sets, f"model.backend={backend}"])
    seeds = stream_seeds(cfg)
    data = load_run_data(cfg, seeds)
    net = build_network(cfg, data.n_channels, data.n_classes, seeds["init"])
    epoch = data.epoch_train_data(0, seeds["augment"])
    events, labels = next(iter(data.train_batches(epoch, 0, seeds["data_order"], batch, False)))
    return net, events, labels


@pytest.fixture(autouse=True)
def _default_bound():
    """Every test starts and ends with the default bound (it is process-wide).

    The torch backend walks a storm one spike per sample per iteration on tiny tensors, where
    intra-op threads only wait for each other (10x slower on a loaded 2-core machine): one
    thread keeps the timings of these tests meaningful.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    set_spike_limit(DEFAULT_SPIKES_PER_NEURON_STEP)
    yield
    set_spike_limit(DEFAULT_SPIKES_PER_NEURON_STEP)
    torch.set_num_threads(threads)


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_storm_stops_quickly_naming_layer_sample_step(backend):
    net, events, _ = _batch_and_net(STORM, backend, batch=8 if backend == "numba" else 2)
    with pytest.raises(SpikeLimitError):  # compiles the kernels (not timed)
        net(events)
    start = time.perf_counter()
    with pytest.raises(SpikeLimitError) as info:
        net(events)
    took = time.perf_counter() - start
    err = info.value
    assert took < 20.0, f"the storm took {took:.1f} s to be stopped"
    msg = str(err)
    assert "\n" not in msg
    assert f"sample {err.sample} of the batch" in msg
    assert f"hidden layer {err.layer}" in msg
    assert f"step {err.step} (0-based, of 50)" in msg
    assert "model.exact_spike_limit" in msg
    assert err.layer == 0 and 0 <= err.sample < events.batch_size and 0 <= err.step < 50
    assert err.limit == sample_spike_limit(16, 50) == 800 and not err.per_step


def test_storm_raises_on_first_call():
    """No warm-up needed: the very first forward of a storm raises (nothing was cached)."""
    net, events, _ = _batch_and_net(STORM, "numba")
    with pytest.raises(SpikeLimitError):
        net(events)


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_per_step_guard_when_the_sample_bound_is_lifted(backend):
    """With no per-sample bound, the per-step guard still ends a runaway step."""
    net, events, _ = _batch_and_net(STORM, backend, batch=1)
    with spike_limit(float("inf")), pytest.raises(SpikeLimitError) as info:
        net(events)
    err = info.value
    assert err.per_step and err.limit == step_spike_limit(16) == 64 * 16 + 1024
    assert "in this one step" in str(err) and "model.exact_spike_limit" not in str(err)


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_bound_is_configurable_and_normal_activity_is_far_below_it(backend):
    """The default Yin-Yang network in exact timing passes; a bound below its activity stops it."""
    normal = ["model.timing=exact", "model.hidden=[32]", "data.yinyang.train_size=64"]
    normal += ["data.yinyang.valid_size=32", "data.yinyang.test_size=32"]
    net, events, _ = _batch_and_net(normal, backend)
    out = net(events)
    per_sample = torch.bincount(out.tape.records.sample.long(), minlength=8).max().item()
    steps = events.n_steps
    assert 0 < per_sample < 0.2 * sample_spike_limit(32, steps)  # far below the default
    factor = 0.5 * per_sample / (32 * steps)
    with spike_limit(factor):
        tight = sample_spike_limit(32, steps)
        with pytest.raises(SpikeLimitError) as info:
            net(events)
    assert info.value.limit == tight < per_sample
    assert get_spike_limit() == DEFAULT_SPIKES_PER_NEURON_STEP  # restored by the with block


def test_bound_arithmetic_and_validation():
    assert sample_spike_limit(16, 50) == 800
    with spike_limit(2.5):
        assert sample_spike_limit(16, 50) == 2000
        assert sample_spike_limit(16, 1) == 40
    with spike_limit(1e-9):
        assert sample_spike_limit(16, 50) == 1  # never zero
    with spike_limit(float("inf")):
        assert sample_spike_limit(10**6, 10**6) == 2**62
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="not positive"):
            set_spike_limit(bad)


def test_config_sets_the_bound():
    cfg = load_config("yinyang", [*STORM, "model.exact_spike_limit=3.0"])
    seeds = stream_seeds(cfg)
    data = load_run_data(cfg, seeds)
    build_network(cfg, data.n_channels, data.n_classes, seeds["init"])
    assert get_spike_limit() == 3.0
    with pytest.raises(ValueError, match=r"model\.exact_spike_limit"):
        load_config("yinyang", ["model.exact_spike_limit=0.0"])


def test_training_on_the_storm_ends_with_a_one_line_error(tmp_path, capsys):
    from eventprop.cli.main import main

    start = time.perf_counter()
    sets = [*STORM, "train.epochs=3", "train.progress=false", "run.plots=false"]
    sets += ["run.tensorboard=false"]
    code = main(["train", "yinyang", "--run-dir", str(tmp_path / "run"), "-q", "--set", *sets])
    took = time.perf_counter() - start
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert took < 60.0
    assert len(err.splitlines()) == 1, err
    assert "training diverged at epoch 0, batch 0" in err
    assert "runaway excitation" in err and "hidden layer 0" in err
