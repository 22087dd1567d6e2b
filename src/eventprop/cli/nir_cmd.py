"""``eventprop export-nir``: a trained run's network as a NIR file.

Exit codes: 0 written, 1 the file could not be written, 2 a usage error (no such run or
checkpoint, the ``nir`` package is missing).
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export-nir`` sub-command."""
    p = subparsers.add_parser(
        "export-nir",
        help="write a trained run's network as a NIR graph (for snnTorch, Norse, hardware)",
        description=(
            "Rebuild the network of a run's checkpoint and write it as a NIR graph "
            "(Neuromorphic Intermediate Representation, HDF5): hidden layers as CubaLIF with "
            "their recurrent Linear loops, the readout as CubaLI. 'continuous' writes NIR's "
            "ODEs in seconds (spikes as Dirac impulses); 'discrete' writes the per-step "
            "(Euler) reading that snnTorch imports, exact at the run's dt."
        ),
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--out", required=True, metavar="FILE", help="the NIR file to write")
    p.add_argument("--checkpoint", choices=["best", "last"], default="best")
    p.add_argument("--convention", choices=["continuous", "discrete"], default="continuous")
    p.add_argument(
        "--nir-dt",
        type=float,
        default=1e-4,
        metavar="S",
        help="simulator step in seconds for --convention discrete (snnTorch: 1e-4)",
    )
    p.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    from eventprop.train.runs import RunDirError

    try:
        from eventprop.nir import export_run
    except ModuleNotFoundError as exc:
        if exc.name != "nir":
            raise
        print("eventprop export-nir: needs the nir package: pip install nir", file=sys.stderr)
        return 2
    try:
        out = export_run(
            args.run_dir,
            args.out,
            checkpoint=args.checkpoint,
            convention=args.convention,
            nir_dt=args.nir_dt,
        )
    except (RunDirError, ValueError) as exc:
        print(f"eventprop export-nir: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"eventprop export-nir: {exc}", file=sys.stderr)
        return 1
    sizes = " -> ".join(str(n) for n in out["layers"])
    print(
        f"written {out['out']}: {sizes} ({out['convention']}), {out['checkpoint']} checkpoint "
        f"of epoch {out['epoch'] + 1}"
    )
    if out["input_note"]:
        print(f"note: the graph's inputs are the {out['input_note']}")
    return 0
