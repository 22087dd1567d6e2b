"""``eventprop audio``: convert audio files to spike trains with eventprop's cochlea model.

Thin wiring only: argument parsing and printing around :mod:`eventprop.audio.encode`.
"""

from __future__ import annotations

import argparse
import sys
import time

from eventprop.cli.groups import command_group

__all__ = ["register"]


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _seed(text: str) -> int | None:
    if text.lower() == "none":
        return None
    return int(text)


def _encode(args: argparse.Namespace) -> int:
    from eventprop.audio.encode import encode_to_hdf5
    from eventprop.audio.io import AudioReadError

    start = time.perf_counter()
    try:
        path, items, class_names = encode_to_hdf5(
            args.inputs,
            args.out,
            channels=args.channels,
            seed=args.seed,
            sample_rate=args.sample_rate,
            workers=args.workers,
            progress=not args.no_progress,
        )
    except (AudioReadError, FileNotFoundError, ValueError) as exc:
        print(f"eventprop audio encode: {exc}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - start
    print(
        f"wrote {path}: {len(items)} samples, {len(class_names)} classes "
        f"({', '.join(class_names)}), {args.channels} channels, {elapsed:.1f} s"
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``audio`` sub-command and its actions to the top-level parser."""
    actions = command_group(
        subparsers,
        "audio",
        help="convert audio to spike trains (SHD cochlea model)",
        description="Convert audio to spike trains with eventprop's implementation of the "
        "SHD cochlea model (basilar membrane, hair cells, bushy cells).",
    )

    enc = actions.add_parser(
        "encode",
        help="encode WAV/FLAC files or class folders into one SHD-format HDF5 file",
        description="Encode audio files into one HDF5 file in the official SHD layout "
        "(float16 times, uint16 units, labels, extra/speaker, extra/keys). A folder with "
        "sub-folders gives one class per sub-folder; a folder of files is one class named "
        "after it; a file's class is its folder's name. Labels index the sorted class names.",
    )
    enc.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files or folders")
    enc.add_argument("--out", required=True, help="output HDF5 file (written atomically)")
    enc.add_argument(
        "--channels", type=_positive_int, default=700, help="cochlea channels (default 700)"
    )
    enc.add_argument(
        "--workers",
        type=_positive_int,
        default=None,
        help="worker processes (default: all cores for 64 files or more, else 1 process "
        "using all cores per file)",
    )
    enc.add_argument(
        "--seed",
        type=_seed,
        default=0,
        help="base seed of the stochastic fibres ('none' for fresh randomness; default 0)",
    )
    enc.add_argument(
        "--sample-rate",
        type=_positive_int,
        default=None,
        help="resample every file to this model rate in Hz (default: each file's own rate, "
        "clipped to 16-48 kHz)",
    )
    enc.add_argument("--no-progress", action="store_true", help="no progress bar")
    enc.set_defaults(func=_encode)
