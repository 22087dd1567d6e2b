"""How good is the grid-timed EventProp gradient? Grid vs exact timing on SHD-like input.

    python benchmarks/bench_grid_gradient.py               # 256 hidden, dt 1, 0.5, 0.25, 0.1 ms
    python benchmarks/bench_grid_gradient.py --feedforward --dt 1
    python benchmarks/bench_grid_gradient.py --input synthetic --samples 10

For each step size, one network (the paper's initialisation, float64, numba backend) is run in
both timing modes on the same samples with the ``sum_weigh_exp`` loss. Exact timing gives the
exact gradient of the continuous model at any ``dt`` (checked against finite differences in
the test suite), so it is the yardstick: the table shows, for the hidden layer's input weights,
the norm of each gradient, their cosine, and the change of the (exact-timing) loss after a step
of length ``eps`` against each normalised gradient -- negative means the direction descends.
The readout weights' gradients are compared too (they agree in both modes).
"""

from __future__ import annotations

import argparse
import platform

import torch

from eventprop.benchmarks.compare import bench_input
from eventprop.losses import make_loss
from eventprop.models import Network

EPS = (1e-3, 1e-2, 3e-2)


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(a.flatten() @ b.flatten() / (a.norm() * b.norm()).clamp_min(1e-300))


def compare(dt: float, args: argparse.Namespace) -> dict:
    """Grid and exact gradients at one step size, and the loss change along each."""
    n_steps = round(args.duration / dt)
    events, _ = bench_input(args.samples, n_steps=n_steps, source=args.input, dt=dt)
    labels = torch.arange(args.samples) % 20
    loss_fn = make_loss("sum_weigh_exp")

    def build(timing: str) -> Network:
        return Network.build(
            events.n_channels, [args.hidden], 20, recurrent=not args.feedforward, dt=dt,
            seed=args.seed, timing=timing, backend="numba",
        ).double()  # fmt: skip

    grads, clamped = {}, 0
    for timing in ("grid", "exact"):
        net = build(timing)
        out = net(events)
        loss_fn(out, labels).backward()
        grads[timing] = (net.hidden[0].weight.grad.clone(), net.readout.weight.grad.clone())
        if timing == "grid":
            clamped = out.tape.n_clamped

    net = build("exact")
    with torch.no_grad():
        base = float(loss_fn(net(events), labels))
    w0 = net.hidden[0].weight.detach().clone()
    steps = {}
    for timing, (g, _) in grads.items():
        changes = []
        for eps in EPS:
            with torch.no_grad():
                net.hidden[0].weight.copy_(w0 - eps * g / g.norm())
                changes.append(float(loss_fn(net(events), labels)) - base)
        steps[timing] = changes
    return {
        "dt": dt,
        "grid_norm": float(grads["grid"][0].norm()),
        "exact_norm": float(grads["exact"][0].norm()),
        "cos_hidden": _cos(grads["grid"][0], grads["exact"][0]),
        "cos_readout": _cos(grads["grid"][1], grads["exact"][1]),
        "clamped": clamped,
        "steps": steps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dt", type=float, nargs="+", default=[1.0, 0.5, 0.25, 0.1])
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--duration", type=float, default=1000.0, help="trial length (ms)")
    parser.add_argument("--feedforward", action="store_true", help="no recurrent weights")
    parser.add_argument("--input", default="auto", help="auto | synthetic | PATH (SHD format)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    _, what = bench_input(1, n_steps=10, source=args.input)
    kind = "feed-forward" if args.feedforward else "recurrent"
    print(f"input: {what}; {args.samples} samples; {args.hidden} {kind} hidden; seed {args.seed}")
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}\n")
    eps = " ".join(f"{e:g}" for e in EPS)
    print(
        f"{'dt ms':>6} {'|g| grid':>9} {'|g| exact':>9} {'cos hid':>8} {'cos out':>8} "
        f"{'clamped':>7}  loss change along -g/|g| (eps {eps}): grid | exact"
    )
    for dt in args.dt:
        r = compare(dt, args)
        grid = " ".join(f"{x:+.1e}" for x in r["steps"]["grid"])
        exact = " ".join(f"{x:+.1e}" for x in r["steps"]["exact"])
        print(
            f"{dt:6g} {r['grid_norm']:9.2e} {r['exact_norm']:9.2e} {r['cos_hidden']:+8.3f} "
            f"{r['cos_readout']:+8.3f} {r['clamped']:7d}  {grid} | {exact}",
            flush=True,
        )


if __name__ == "__main__":
    main()
