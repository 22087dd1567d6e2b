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


def _model_rate(text: str) -> int | None:
    from eventprop.audio.policy import parse_model_rate

    try:
        return parse_model_rate(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _warn(message: str) -> None:
    print(f"eventprop audio encode: warning: {message}", file=sys.stderr)


def _encode(args: argparse.Namespace) -> int:
    from eventprop.audio.encode import encode_to_hdf5
    from eventprop.audio.io import AudioReadError

    start = time.perf_counter()
    sample_rate = None if args.native_rate else args.sample_rate
    try:
        path, items, class_names = encode_to_hdf5(
            args.inputs,
            args.out,
            channels=args.channels,
            seed=args.seed,
            sample_rate=sample_rate,
            taper=args.taper,
            workers=args.workers,
            progress=not args.no_progress,
            warn=_warn,
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
    from eventprop.audio.policy import DEFAULT_MODEL_RATE, TAPERS, WORD_MAX_S

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
        "(uint16 units, labels, extra/speaker, extra/keys; times float16 when every clip is "
        "shorter than 2 s, else float32/float64 so they keep 1 ms precision). A folder with "
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
    rate = enc.add_mutually_exclusive_group()
    rate.add_argument(
        "--sample-rate",
        type=_model_rate,
        default=DEFAULT_MODEL_RATE,
        metavar="HZ|native",
        help=f"the cochlea's model rate: every file is resampled to it, so the same sound "
        f"gives the same spikes whatever its recording rate (default {DEFAULT_MODEL_RATE}, "
        "as make-shd); 'native' keeps each file's own rate (clipped to 16-48 kHz), as the "
        "reference implementation does",
    )
    rate.add_argument(
        "--native-rate",
        action="store_true",
        help="same as --sample-rate native",
    )
    enc.add_argument(
        "--taper",
        choices=TAPERS,
        default="auto",
        help=f"on/off ramp of each clip: 'whole' = SHD's Hann window over the whole clip, "
        f"'edges' = 10 ms ramps at both ends, 'none'; 'auto' (default) = 'whole' for clips "
        f"under {WORD_MAX_S:g} s, 'edges' for longer ones",
    )
    enc.add_argument("--no-progress", action="store_true", help="no progress bar")
    enc.set_defaults(func=_encode)
