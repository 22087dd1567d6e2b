"""`eventprop bench` code paths on tiny sizes: inputs, cells, report files, scaling, event op.

No timing assertions: these check that every path runs and writes what it promises."""

from __future__ import annotations

import argparse
import csv
import io
import math

import numpy as np
import pytest
import torch

from eventprop import EventBatch
from eventprop.benchmarks import compare
from eventprop.benchmarks.compare import (
    CellResult,
    CellSpec,
    bench_input,
    crop_window,
    delay_line,
    run_benchmark,
    run_cell,
)
from eventprop.benchmarks.event_op import event_op_counts, measure_event_op_rate
from eventprop.benchmarks.scaling import ScalingReport, plot_scaling, run_scaling

TINY = {
    "hidden": 16,
    "delay": False,
    "batch": 2,
    "n_steps": 60,
    "source": "synthetic",
    "threads": 1,
}
CSV_COLUMNS = {
    "label",
    "method",
    "device",
    "hidden",
    "delay",
    "batch",
    "n_steps",
    "measured_steps",
    "extrapolated",
    "input_spikes",
    "hidden_spikes",
    "forward_ms",
    "backward_ms",
    "time_ms",
    "held_mb",
    "held_kb_per_sample",
    "peak_rss_mb",
    "rss_base_mb",
    "repeats",
    "status",
    "note",
    "time_ratio",
    "held_ratio",
    "bound_ms",
    "bound_fraction",
}
TABLE_HEAD = "| method | hidden | delay | batch | ms/sample | x EventProp | held MB | x EventProp |"


def test_delay_line_copies_channels_and_drops_past_the_end() -> None:
    ev = EventBatch.from_arrays(
        [0, 0, 1], [0, 50, 5], [3, 1, 699], batch_size=2, n_steps=100, n_channels=700
    )
    out = delay_line(ev, n_delays=2, delay_ms=30.0)
    assert out.n_channels == 2100 and out.n_steps == 100
    got = sorted(zip(out.sample.tolist(), out.step.tolist(), out.channel.tolist()))
    want = sorted(
        (s, t + 30 * d, c + 700 * d)
        for s, t, c in [(0, 0, 3), (0, 50, 1), (1, 5, 699)]
        for d in range(3)
        if t + 30 * d < 100
    )
    assert got == want  # (0, 50, 1) at delay 2 would arrive at step 110: dropped


def test_crop_window_takes_the_middle_and_shifts() -> None:
    ev = EventBatch.from_arrays(
        [0, 0, 0, 1], [10, 45, 54, 55], [1, 2, 3, 4], batch_size=2, n_steps=100, n_channels=5
    )
    out = crop_window(ev, 10)  # steps 45..54
    assert out.n_steps == 10
    assert list(zip(out.sample.tolist(), out.step.tolist(), out.channel.tolist())) == [
        (0, 0, 2),
        (0, 9, 3),
    ]
    assert crop_window(ev, 100) is ev


def test_bench_input_sources(shared_data_dir) -> None:
    ev, what = bench_input(3, n_steps=200, source="synthetic")
    assert ev.batch_size == 3 and ev.n_channels == 700 and "synthetic" in what
    path = compare.find_shd_file([shared_data_dir])
    assert path is not None
    ev, what = bench_input(3, n_steps=200, delay=True, source=str(path))
    assert ev.n_channels == 7700 and path.name in what and "delay line" in what
    with pytest.raises(FileNotFoundError):
        bench_input(1, source=str(shared_data_dir / "missing.h5"))


@pytest.mark.parametrize("method", ["eventprop-numba", "eventprop-torch", "bptt", "snntorch"])
def test_run_cell_measures_every_method(method: str) -> None:
    res = run_cell(CellSpec(method=method, repeats=1, budget_s=1.0, **TINY))
    if method == "snntorch" and res.status.startswith("skipped"):
        assert res.status == "skipped: snnTorch not installed"
        return
    assert res.status == "ok", res.status
    assert res.time_ms > 0 and res.forward_ms > 0 and res.backward_ms > 0
    assert res.held_mb > 0 and res.peak_rss_mb > 0 and res.repeats >= 1
    assert res.input_spikes > 0 and res.measured_steps == 60 and not res.extrapolated


@pytest.mark.parametrize("timing", ["grid", "exact"])
def test_eventprop_cells_run_the_requested_timing(timing: str) -> None:
    from eventprop.benchmarks.compare import _Runner, build_network

    runner = _Runner("eventprop-numba", build_network(20, 8, delay=False, seed=0), 10.0, timing)
    assert runner.model.timing == timing
    bptt = _Runner("bptt", build_network(20, 8, delay=False, seed=0), 10.0, timing)
    assert bptt.model.network.timing == "grid"  # BPTT's model is the grid
    res = run_cell(
        CellSpec(method="eventprop-numba", repeats=1, budget_s=1.0, timing=timing, **TINY)
    )
    assert res.status == "ok", res.status


def test_dense_method_window_is_scaled_and_marked() -> None:
    full = run_cell(CellSpec(method="bptt", repeats=1, **TINY))
    part = run_cell(CellSpec(method="bptt", repeats=1, max_steps=30, **TINY))
    assert part.extrapolated and part.measured_steps == 30 and "scaled x2" in part.note
    # scaled to the full trial (here the input events, denser in the middle of the trial,
    # dominate the held memory of this tiny network: the estimate is only rough)
    assert 0.5 * full.held_mb < part.held_mb < 2 * full.held_mb


def test_cuda_methods_are_skipped_without_a_gpu() -> None:
    if torch.cuda.is_available():  # pragma: no cover
        pytest.skip("a GPU is present")
    res = run_cell(CellSpec(method="bptt-cuda", **TINY))
    assert res.status == "skipped: CUDA not available"


def test_snntorch_absent_is_reported(monkeypatch) -> None:
    import eventprop.baselines as baselines

    monkeypatch.setattr(baselines, "snntorch_available", lambda: False)
    res = run_cell(CellSpec(method="snntorch", **TINY))
    assert res.status == "skipped: snnTorch not installed"
    report = run_benchmark(
        hidden=(16,),
        delay=(False,),
        batch=(2,),
        methods=["eventprop-numba", "snntorch"],
        n_steps=60,
        source="synthetic",
        repeats=1,
        budget_s=1.0,
        threads=1,
        isolate=False,
        event_op=False,
        log=lambda *a: None,
    )
    assert any("snnTorch not installed" in n for n in report.notes)
    assert "skipped: snnTorch not installed" in report.to_text()


def test_report_ratios_csv_and_markdown(tmp_path) -> None:
    report = run_benchmark(
        hidden=(16,),
        delay=(False, True),
        batch=(2,),
        methods=["eventprop-numba", "bptt"],
        n_steps=60,
        source="synthetic",
        repeats=1,
        budget_s=1.0,
        threads=1,
        isolate=False,
        log=lambda *a: None,
    )
    assert len(report.rows) == 4 and all(r.status == "ok" for r in report.rows)
    for r in report.rows:
        assert r.time_ratio > 0 and r.held_ratio > 0
        if r.method == "eventprop-numba":
            assert r.time_ratio == 1.0 and 0 < r.bound_fraction and r.bound_ms > 0
    text = report.to_csv(tmp_path / "compare.csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert set(rows[0]) == CSV_COLUMNS and len(rows) == 4
    assert (tmp_path / "compare.csv").read_text() == text
    md = report.to_markdown()
    assert md.startswith(TABLE_HEAD)
    assert "event-op" in md.splitlines()[0]
    assert "Event-op rate of this machine" in md
    assert report.event_ops and report.machine["cores"]


def test_passes_keep_one_row_per_cell() -> None:
    report = run_benchmark(
        hidden=(16,), delay=(False,), batch=(2,), methods=["bptt"], n_steps=60,
        source="synthetic", repeats=1, budget_s=1.0, threads=1, isolate=False, passes=2,
        event_op=False, log=lambda *a: None,
    )  # fmt: skip
    assert [r.method for r in report.rows] == ["bptt"] and report.rows[0].status == "ok"


def test_cli_writes_csv_and_markdown(tmp_path, capsys) -> None:
    from eventprop.cli.bench_cmd import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(
        [
            "bench",
            "--quick",
            "--no-isolate",
            "--hidden",
            "16",
            "--batch",
            "2",
            "--steps",
            "60",
            "--input",
            "synthetic",
            "--methods",
            "eventprop-numba",
            "bptt",
            "--budget",
            "1",
            "--no-event-op",
            "--threads",
            "1",
            "--out",
            str(tmp_path),
        ]
    )
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "EventProp (numba)" in printed and "BPTT (ours)" in printed
    rows = list(csv.DictReader((tmp_path / "compare.csv").open()))
    assert set(rows[0]) == CSV_COLUMNS
    assert [r["method"] for r in rows] == ["eventprop-numba", "bptt"]
    md = (tmp_path / "compare.md").read_text()
    assert "Command: `eventprop bench" in md and TABLE_HEAD in md and "Machine:" in md


def test_cli_rejects_bad_options(capsys) -> None:
    from eventprop.cli.bench_cmd import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["bench", "--methods", "bogus"])
    assert args.func(args) == 2
    assert "unknown method 'bogus'" in capsys.readouterr().err


def test_isolated_cell_runs_in_a_worker_process() -> None:
    res = compare.run_cell_isolated(
        CellSpec(method="eventprop-numba", repeats=1, budget_s=1.0, **TINY), timeout_s=120
    )
    assert isinstance(res, CellResult) and res.status == "ok" and res.rss_base_mb > 0


def test_event_op_rate_and_counts() -> None:
    rate = measure_event_op_rate(50, 32, rows_per_thread=2000, repeats=1)
    assert rate.row_add_ns > 0 and rate.grad_add_ns > 0 and rate.row_add_gflops > 0
    assert rate.bound_seconds(1000, 0) == pytest.approx(1e-6 * rate.row_add_ns)
    fwd, bwd = event_op_counts(100.0, 10.0, n_hidden=32, n_out=4)
    hidden_rows = 10.0 * (32 + 4) / 32
    assert fwd == pytest.approx(100 + 2 * hidden_rows)
    assert bwd == pytest.approx(100 + hidden_rows)
    with pytest.raises(ValueError):
        measure_event_op_rate(0, 32)


def test_scaling_sweeps_and_plot(tmp_path) -> None:
    report = run_scaling(
        hidden_sizes=(8, 16),
        input_rates=(1000, 2000),
        trial_lengths=(40, 80),
        base_hidden=8,
        base_steps=40,
        batch=2,
        repeats=1,
        log=lambda *a: None,
    )
    assert {p.axis for p in report.points} == {"hidden", "input", "trial"}
    assert len(report.points) == 12 and all(p.time_ms > 0 for p in report.points)
    for axis in ("hidden", "input", "trial"):
        assert not math.isnan(report.exponent(axis, "bptt"))
    trial = sorted(
        (p for p in report.points if p.axis == "trial" and p.method == "bptt"), key=lambda p: p.x
    )
    assert [p.n_steps for p in trial] == [40, 80]
    png = plot_scaling(report, tmp_path / "scaling.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    rows = list(csv.DictReader(io.StringIO(report.to_csv(tmp_path / "scaling.csv"))))
    assert {"axis", "x", "method", "time_ms"} <= set(rows[0])
    again = ScalingReport.from_csv(tmp_path / "scaling.csv")
    assert [(p.axis, p.x, p.method, p.n_steps) for p in again.points] == [
        (p.axis, p.x, p.method, p.n_steps) for p in report.points
    ]
    assert "exponent" in report.to_text()


def test_scaling_exponent_fit() -> None:
    from eventprop.benchmarks.scaling import ScalingPoint

    pts = [
        ScalingPoint("hidden", x, "bptt", int(x), 100, 1, 1.0, 1.0, 0.0, 0.0, 3.0 * x**2, 1)
        for x in (10.0, 20.0, 40.0)
    ]
    assert ScalingReport(pts).exponent("hidden", "bptt") == pytest.approx(2.0)
    assert np.isnan(ScalingReport(pts[:1]).exponent("hidden", "bptt"))


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_held_bytes_charge_the_tape_and_what_autograd_saved(backend: str) -> None:
    from eventprop.baselines import SavedTensorMeter
    from eventprop.benchmarks.engine import held_bytes
    from eventprop.losses import make_loss
    from tests.conftest import random_events, random_network

    net = random_network(1, backend=backend, dtype=torch.float32)
    ev = random_events(5)
    with SavedTensorMeter([*net.parameters(), *net.buffers()]) as meter:
        out = net(ev)
        loss = make_loss("sum_weigh_exp")(out, torch.arange(ev.batch_size) % net.readout.n_out)
    loss.backward()
    held = held_bytes(ev, out, meter.nbytes)
    assert meter.nbytes > 0
    batch_bytes = len(ev) * 20 + (ev.batch_size * ev.n_steps + 1) * 8
    if backend == "numba":  # its own copy of the inputs, 6 bytes per event + 4 per step
        assert held == out.tape.nbytes() + meter.nbytes
        assert out.tape.nbytes() - out.tape.records.nbytes() < batch_bytes / 3
    else:  # the torch backend keeps the batch: charged in full
        assert held == out.tape.nbytes() + meter.nbytes + batch_bytes
