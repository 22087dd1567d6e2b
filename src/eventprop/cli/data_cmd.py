"""``eventprop data``: download the official datasets, build offline ones, inspect data files.

Thin wiring only: argument parsing and printing around :mod:`eventprop.data`.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from eventprop.cli.groups import command_group

__all__ = ["register"]


def _download(args: argparse.Namespace) -> int:
    from eventprop.data.download import download_dataset
    from eventprop.data.errors import ChecksumError, DownloadError

    try:
        paths = download_dataset(
            args.dataset,
            args.dir,
            url=args.base_url,
            checksums=args.checksums,
            force=args.force,
            timeout=args.timeout,
            progress=not args.no_progress,
        )
    except (DownloadError, ChecksumError, FileNotFoundError, ValueError) as exc:
        print(f"eventprop data download: {exc}", file=sys.stderr)
        return 1
    for p in paths:
        print(p)
    return 0


def _info(args: argparse.Namespace) -> int:
    from eventprop.data.errors import DataFileError, UnreadableFileError
    from eventprop.data.hdf5 import read_hdf5

    try:
        raw = read_hdf5(args.file, require_extra=not args.lenient)
    except (FileNotFoundError, DataFileError, UnreadableFileError) as exc:
        print(f"eventprop data info: {exc}", file=sys.stderr)
        return 1
    counts = raw.counts()
    labels = raw.labels
    print(f"file:      {raw.path}")
    print(f"samples:   {len(raw)}")
    if labels.size:
        n_cls = np.unique(labels).size
        print(f"classes:   {n_cls} distinct labels, {labels.min()}..{labels.max()}")
    if raw.speakers is not None:
        ids = np.unique(raw.speakers)
        print(f"speakers:  {ids.size} ({', '.join(map(str, ids))})")
    if counts.size:
        print(
            f"spikes:    {counts.sum()} total; per sample min {counts.min()}, "
            f"mean {counts.mean():.0f}, max {counts.max()}"
        )
    if raw.times.size:
        t_lo, t_hi = float(raw.times.min()), float(raw.times.max())
        print(f"times:     {t_lo:.4f} .. {t_hi:.4f} s ({raw.times.dtype})")
        print(f"units:     {int(raw.units.min())} .. {int(raw.units.max())} ({raw.units.dtype})")
    for k, v in raw.attrs.items():
        print(f"attr {k}: {v}")
    return 0


def _make_spoken_digits(args: argparse.Namespace) -> int:
    from eventprop.builders.espeak import EspeakError
    from eventprop.builders.spoken_digits import build_spoken_digits

    try:
        built = build_spoken_digits(
            args.out,
            speakers=args.speakers,
            repeats=args.repeats,
            test_fraction=args.test_fraction,
            seed=args.seed,
            channels=args.channels,
            workers=args.workers,
            force=args.force,
            progress=not args.no_progress,
        )
    except (EspeakError, FileExistsError, RuntimeError, ValueError) as exc:
        print(f"eventprop data make-spoken-digits: {exc}", file=sys.stderr)
        return 1
    n_test = sum(s.split == "test" for s in built.speakers)
    print(f"{built.train_path}  ({built.n_train} samples, {len(built.speakers) - n_test} speakers)")
    print(f"{built.test_path}  ({built.n_test} samples, {n_test} speakers)")
    print(f"{built.readme_path}")
    print(
        f"built in {built.seconds:.0f} s; train on it with: eventprop train shd_small "
        f"--set data.directory={built.train_path.parent}"
    )
    return 0


def _rate(text: str) -> int | None:
    """``--sample-rate``: the model-rate policy shared with ``eventprop audio encode``."""
    from eventprop.audio.policy import parse_model_rate

    try:
        return parse_model_rate(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _make_shd(args: argparse.Namespace) -> int:
    from eventprop.builders.encode_cache import EncodingError
    from eventprop.builders.shd_replica import ReplicaInputError, build_shd_replica

    try:
        built = build_shd_replica(
            args.audio,
            args.out,
            split=args.split,
            test_speakers=args.test_speakers,
            seed=args.seed,
            channels=args.channels,
            sample_rate=args.sample_rate,
            workers=args.workers,
            cache_dir=args.cache_dir,
            keep_cache=args.keep_cache,
            force=args.force,
            progress=not args.no_progress,
        )
    except (EncodingError, ReplicaInputError, FileExistsError, ValueError, OSError) as exc:
        print(f"eventprop data make-shd: {exc}", file=sys.stderr)
        return 1
    for name, path, n in (
        ("train", built.train_path, built.n_train),
        ("test", built.test_path, built.n_test),
    ):
        counts = built.spikes[name]
        print(f"{path}  ({n} samples, {counts.mean():.0f} spikes per sample)")
    rate = ""
    if built.encoded:
        rate = (
            f"; encoded {built.encoded} files in {built.encode_s:.0f} s "
            f"({built.encoded / built.encode_s:.1f} files/s, "
            f"{built.audio_s / built.encode_s:.1f}x real time)"
        )
    print(f"split '{built.split}', built in {built.seconds:.0f} s{rate}")
    return 0


def _path(args: argparse.Namespace) -> int:
    from eventprop.data.paths import data_dir

    print(data_dir(args.dir))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``data`` sub-command and its actions to the top-level parser."""
    actions = command_group(
        subparsers,
        "data",
        help="download, build and inspect datasets",
        description="Download, build and inspect datasets.",
    )

    dl = actions.add_parser(
        "download",
        help="fetch, verify and decompress the official SHD or SSC files",
        description="Fetch the official compressed files from the Zenke lab's server, verify "
        "their checksums, decompress them and write them atomically.",
    )
    dl.add_argument("dataset", choices=["shd", "ssc"], help="which dataset")
    dl.add_argument(
        "--dir", default=None, help="target folder (default: $EVENTPROP_DATA_DIR or the user cache)"
    )
    dl.add_argument(
        "--base-url",
        default=None,
        help="server address (default: $EVENTPROP_DATA_URL or https://zenkelab.org/datasets/)",
    )
    dl.add_argument(
        "--checksums",
        default=None,
        help="file of '<md5 or sha256>  <file name>' lines that overrides the built-in checksums",
    )
    dl.add_argument(
        "--force", action="store_true", help="download again even if the files are present"
    )
    dl.add_argument("--timeout", type=float, default=60.0, help="network timeout in seconds")
    dl.add_argument("--no-progress", action="store_true", help="no progress bars")
    dl.set_defaults(func=_download)

    info = actions.add_parser("info", help="validate an SHD/SSC-format file and summarise it")
    info.add_argument("file", help="HDF5 file in the SHD/SSC layout")
    info.add_argument(
        "--lenient", action="store_true", help="accept files without extra/speaker and extra/keys"
    )
    info.set_defaults(func=_info)

    sd = actions.add_parser(
        "make-spoken-digits",
        help="build an offline SHD-style keyword dataset from espeak-ng speech",
        description="Speak the digits 0-9 in English and German (SHD's 20 classes and label "
        "order) with many espeak-ng voices (variant x accent x speed x pitch), convert them to "
        "700-channel spike trains with the cochlea model, split by speaker and write "
        "OUT/shd_train.h5 and OUT/shd_test.h5 in the official SHD layout. Synthetic speech, not "
        "SHD. Needs espeak-ng (sudo apt-get install espeak-ng).",
    )
    sd.add_argument("--out", required=True, help="target folder (data.directory for training)")
    sd.add_argument(
        "--speakers", type=int, default=60, help="number of synthetic speakers (default 60)"
    )
    sd.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="times each speaker says each digit, each slightly differently (default 3); "
        "samples in all: speakers x repeats x 20",
    )
    sd.add_argument(
        "--test-fraction",
        type=float,
        default=0.2,
        help="fraction of the speakers held out for the test set (default 0.2)",
    )
    sd.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    sd.add_argument(
        "--channels", type=int, default=700, help="cochlea channels (default 700, as SHD)"
    )
    sd.add_argument(
        "--workers", type=int, default=None, help="parallel processes (default: every core)"
    )
    sd.add_argument("--force", action="store_true", help="replace existing files")
    sd.add_argument("--no-progress", action="store_true", help="no progress bar")
    sd.set_defaults(func=_make_spoken_digits)

    shd = actions.add_parser(
        "make-shd",
        help="rebuild SHD from the Heidelberg Digits audio",
        description="Encode the Heidelberg Digits recordings (hd_audio.tar.gz: "
        "lang-{english,german}_speaker-NN_trial-T_digit-D.flac, in AUDIO or AUDIO/audio) with "
        "eventprop's SHD cochlea and write OUT/shd_train.h5 and OUT/shd_test.h5 in the official "
        "layout (labels: digit, +10 for German; extra/speaker: the speaker id). Not the official "
        "files: every file says so. A killed build resumes without re-encoding finished files.",
    )
    shd.add_argument("--audio", required=True, help="folder of the HD recordings")
    shd.add_argument("--out", required=True, help="target folder (data.directory for training)")
    shd.add_argument(
        "--split",
        choices=["official", "speakers", "shd-like"],
        default=None,
        help="official: train/test_filenames.txt of AUDIO (the default when they are there); "
        "speakers: the test speakers' recordings form the test set (the default otherwise); "
        "shd-like: those plus a seeded 4.94 %% of the other speakers' recordings (SHD's "
        "test-set size: 2,264 files)",
    )
    shd.add_argument(
        "--test-speakers",
        type=int,
        nargs="+",
        default=[4, 5],
        metavar="ID",
        help="speakers held out for the test set (default: 4 5, as SHD)",
    )
    shd.add_argument("--seed", type=int, default=0, help="seed of the cochlea and the draws")
    shd.add_argument(
        "--channels", type=int, default=700, help="cochlea channels (default 700, as SHD)"
    )
    shd.add_argument(
        "--sample-rate",
        type=_rate,
        default="24000",  # audio.policy.DEFAULT_MODEL_RATE, parsed by _rate
        help="the cochlea's model rate in Hz, or 'native' for each file's own rate "
        "(default 24000: matches SHD's spike counts; see docs/shd-replica.md)",
    )
    shd.add_argument(
        "--workers", type=int, default=None, help="parallel processes (default: every core)"
    )
    shd.add_argument(
        "--cache-dir",
        default=None,
        help="folder of the per-file encodings (default OUT/.make-shd-cache, removed after "
        "a successful build); a folder given here is kept and reused by later builds",
    )
    shd.add_argument(
        "--keep-cache", action="store_true", help="keep the default cache after the build"
    )
    shd.add_argument("--force", action="store_true", help="replace existing files")
    shd.add_argument("--no-progress", action="store_true", help="no progress bar")
    shd.set_defaults(func=_make_shd)

    path = actions.add_parser("path", help="print the data directory in use")
    path.add_argument("--dir", default=None, help="explicit folder (printed as resolved)")
    path.set_defaults(func=_path)
