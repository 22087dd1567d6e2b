"""Grid timing vs exact timing: training-step time per sample on SHD-like input.

    python benchmarks/bench_timing.py                      # numba, 256 recurrent hidden, batch 32
    python benchmarks/bench_timing.py --backend torch --batch 4 --steps 200
    python benchmarks/bench_timing.py --taus               # trainable time constants

Both modes run the same network (input weights scaled once, in grid mode, so that hidden
neurons fire ``--rate`` spikes per trial) on the same input. Prints forward and backward time
per sample for each mode, the exact/grid ratio, the hidden spikes per sample, and the exact
mode's counters (candidates examined, spikes inside a step that the grid would have missed).
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import time
from pathlib import Path

import numba
import numpy as np
import torch

from eventprop.benchmarks.engine import calibrate_activity
from eventprop.benchmarks.inputs import load_shd_like, synthetic_shd_like
from eventprop.losses import SpikeCountRegularizer, make_loss
from eventprop.models import Network, TimeConstants

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "spoken_digits_espeak.h5"


def _measure(net: Network, events, labels, repeats: int) -> dict[str, dict]:
    """Best-of-``repeats`` forward and backward time per sample (ms) of both timing modes.

    Wall-clock and CPU time (``process_time``: all threads of the process) are both kept: on a
    machine shared with other jobs the wall-clock times of either mode inflate with the load,
    while CPU time is the work done. The modes alternate within every repeat.
    """
    loss_fn = make_loss("sum_weigh_exp")
    reg = SpikeCountRegularizer(14.0, 1e-9, 1e-9)
    keys = ("fwd", "bwd", "fwd_cpu", "bwd_cpu")
    times = {m: {k: [] for k in keys} for m in ("grid", "exact")}
    outs = {}
    for rep in range(repeats + 1):  # the first run compiles / warms caches
        for timing in ("grid", "exact"):
            net.timing = timing
            gc.collect()
            net.zero_grad()
            t0, c0 = time.perf_counter(), time.process_time()
            out = net(events)
            t1, c1 = time.perf_counter(), time.process_time()
            loss = loss_fn(out, labels) + reg(out.hidden_counts)
            loss.backward()
            t2, c2 = time.perf_counter(), time.process_time()
            if rep:
                for k, v in zip(keys, (t1 - t0, t2 - t1, c1 - c0, c2 - c1)):
                    times[timing][k].append(v)
            outs[timing] = out
    B = events.batch_size
    result = {}
    for m in times:
        result[m] = {k: 1e3 * min(v) / B for k, v in times[m].items()}
        result[m]["out"] = outs[m]
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--backend", default="numba", choices=["numba", "torch"])
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--dt", type=float, default=1.0)
    p.add_argument("--rate", type=float, default=14.0, help="hidden spikes per neuron and trial")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--taus", action="store_true", help="trainable time constants")
    p.add_argument("--input", choices=["synthetic", "shd"], default="synthetic")
    args = p.parse_args()

    if args.input == "shd":
        if not SHARED.exists():
            raise SystemExit(f"--input shd: {SHARED} not found")
        events = load_shd_like(SHARED, args.batch, n_steps=args.steps, dt=args.dt)
    else:
        events = synthetic_shd_like(args.batch, n_steps=args.steps, dt=args.dt)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"numba threads {numba.get_num_threads()}, torch threads {torch.get_num_threads()}"
    )
    print(
        f"input: {args.input}, {len(events) / events.batch_size:.0f} spikes/sample, "
        f"T = {args.steps} steps of {args.dt} ms, batch {args.batch}, {args.hidden} recurrent "
        f"hidden, backend {args.backend}, trainable taus: {args.taus}\n"
    )
    torch.manual_seed(0)
    taus = TimeConstants(trainable=args.taus)
    net = Network.build(
        events.n_channels, [args.hidden], 20, seed=0, backend=args.backend, dt=args.dt,
        taus=taus, readout_taus=taus,
    )  # fmt: skip
    calibrate_activity(net, events, args.rate)
    labels = torch.from_numpy(np.arange(events.batch_size) % 20)
    res = _measure(net, events, labels, args.repeats)
    header = (
        f"{'timing':8} {'fwd ms':>8} {'bwd ms':>8} {'total ms':>9} {'fwd cpu':>8} {'bwd cpu':>8} "
        f"{'tot cpu':>8} {'hid spk':>8}"
    )
    print(header + "\n" + "-" * len(header))
    for timing, r in res.items():
        spikes = float(sum(c.detach().sum() for c in r["out"].hidden_counts)) / events.batch_size
        print(
            f"{timing:8} {r['fwd']:8.3f} {r['bwd']:8.3f} {r['fwd'] + r['bwd']:9.3f} "
            f"{r['fwd_cpu']:8.3f} {r['bwd_cpu']:8.3f} {r['fwd_cpu'] + r['bwd_cpu']:8.3f} "
            f"{spikes:8.0f}"
        )
    g, e = res["grid"], res["exact"]
    for label, f, b in (("wall", "fwd", "bwd"), ("cpu", "fwd_cpu", "bwd_cpu")):
        print(
            f"\nexact / grid ({label}): forward {e[f] / g[f]:.2f}x, backward {e[b] / g[b]:.2f}x, "
            f"total {(e[f] + e[b]) / (g[f] + g[b]):.2f}x   (times per sample)",
            end="",
        )
    B = events.batch_size
    counters = e["out"].tape.counters
    print("\nexact-mode counters per sample: " + ", ".join(
        f"{k} {v / B:.1f}" for k, v in counters.items()
    ))  # fmt: skip


if __name__ == "__main__":
    main()
