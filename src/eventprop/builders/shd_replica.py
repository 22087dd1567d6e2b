"""SHD rebuilt from the Heidelberg Digits recordings (``eventprop data make-shd``).

The Spiking Heidelberg Digits (Cramer et al. 2020) are the Heidelberg Digits (HD) recordings,
10,420 FLAC files of the digits 0-9 spoken in English and German by 12 speakers, passed through
a cochlea model to 700 spike trains. Where the official spike files cannot be downloaded but
the audio can, this module rebuilds them with eventprop's copy of that cochlea
(:mod:`eventprop.audio`) in the official layout: labels = digit, +10 for German; ``extra/speaker``
= the recording's speaker id; ``extra/keys`` = SHD's class names; a root attribute ``note``
saying what the file is (a rebuild, not the official file).

Input: a folder of HD files, named as in HD's ``hd_audio.tar.gz``
(``lang-{english,german}_speaker-NN_trial-T_digit-D.flac``), either the folder itself or one
holding them in ``audio/``. Every audio file there must follow that naming, and each of the 20
classes must be present: anything else is an error naming the file.

Splits (``split=``):

- ``official``: ``train_filenames.txt`` / ``test_filenames.txt`` of the HD distribution, used
  whenever they lie in the input folder;
- ``speakers`` (default otherwise): the test set is every recording of ``test_speakers``
  (04 and 05, the two speakers SHD holds out; 1,840 files), the train set everything else;
- ``shd-like``: those speakers plus a seeded draw of the other speakers' recordings of the
  size SHD's test set implies (2,264 - 1,840 = 424 of their 8,580 files, 4.94 %): SHD's test
  set size and make-up, though not its files.

The name of the split is stored in every file (attribute ``split``) and in ``README.txt``, and
the lists of files used are written next to the data (``train_filenames.txt``,
``test_filenames.txt``), so a result on the replica can always say which split it used.

Every file is encoded once into a per-file cache (:mod:`.encode_cache`) before the HDF5 files
are assembled, so a killed build resumes where it stopped, and two splits built with one cache
folder cost one encoding.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from eventprop.audio.io import AUDIO_SUFFIXES
from eventprop.audio.policy import DEFAULT_MODEL_RATE
from eventprop.builders.encode_cache import (
    EncoderSettings,
    EncodingCache,
    EncodingError,
    default_workers,
)
from eventprop.builders.spoken_digits import CLASS_NAMES
from eventprop.data.cache import atomic_write
from eventprop.data.hdf5 import N_CHANNELS, write_hdf5

__all__ = [
    "DEFAULT_SAMPLE_RATE",
    "DEFAULT_TEST_SPEAKERS",
    "SHD_EXTRA_TEST_FRACTION",
    "SPLITS",
    "HDFile",
    "ReplicaBuild",
    "ReplicaInputError",
    "build_shd_replica",
    "parse_hd_name",
    "scan_hd_audio",
    "split_files",
]

#: the HD naming scheme, e.g. ``lang-german_speaker-04_trial-12_digit-7.flac``
HD_NAME = re.compile(
    r"^lang-(?P<lang>english|german)_speaker-(?P<speaker>\d+)_trial-(?P<trial>\d+)"
    r"_digit-(?P<digit>\d)(?P<suffix>\.[A-Za-z0-9]+)$"
)
HD_PATTERN = "lang-{english,german}_speaker-NN_trial-T_digit-D.flac"
LANGUAGES = ("english", "german")
SPLITS = ("official", "speakers", "shd-like")
#: speakers SHD holds out for its test set
DEFAULT_TEST_SPEAKERS = (4, 5)
#: extra test files of the other speakers in SHD's test set: 2,264 test files of which 1,840
#: are speakers 04 and 05, i.e. 424 of the remaining 8,580 recordings
SHD_EXTRA_TEST_FRACTION = 424 / 8580
#: model rate of the cochlea, the one of every eventprop audio tool
#: (:mod:`eventprop.audio.policy`). At the recordings' 48 kHz the cochlea gives ~6,000 spikes
#: per digit; the count rises as the rate falls (the hair cell's 0.11 ms cleft time constant
#: is not resolved by the Euler steps). 24 kHz (an exact halving of HD's rate) gives 8,000
#: per digit, SHD's published level: see docs/shd-replica.md
DEFAULT_SAMPLE_RATE = DEFAULT_MODEL_RATE
OFFICIAL_LISTS = {"train": "train_filenames.txt", "test": "test_filenames.txt"}
FILE_NOTE = (
    "Rebuilt from the Heidelberg Digits audio with eventprop's implementation of the SHD "
    "cochlea (eventprop data make-shd); NOT the official SHD file. Labels: digit, +10 for "
    "German; extra/speaker: the recording's speaker id; split: see the 'split' attribute."
)


class ReplicaInputError(ValueError):
    """The input folder does not hold a usable HD corpus; the message names the file."""


@dataclass(frozen=True)
class HDFile:
    """One recording of the Heidelberg Digits."""

    path: Path
    language: str  #: "english" or "german"
    speaker: int
    trial: int
    digit: int

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def label(self) -> int:
        """SHD's label: the digit, +10 for German."""
        return self.digit + (10 if self.language == "german" else 0)


def parse_hd_name(path: Path) -> HDFile:
    """The recording described by an HD file name; :class:`ReplicaInputError` if it is none."""
    m = HD_NAME.match(path.name)
    if m is None or m["suffix"].lower() not in AUDIO_SUFFIXES:
        raise ReplicaInputError(
            f"{path}: unexpected file name (Heidelberg Digits files are named {HD_PATTERN})"
        )
    return HDFile(path, m["lang"], int(m["speaker"]), int(m["trial"]), int(m["digit"]))


def _audio_folder(directory: Path) -> Path:
    if not directory.is_dir():
        raise ReplicaInputError(f"{directory}: no such folder")
    sub = directory / "audio"
    has_audio = any(p.suffix.lower() in AUDIO_SUFFIXES for p in directory.iterdir() if p.is_file())
    return sub if sub.is_dir() and not has_audio else directory


def _check_header(path: Path) -> None:
    """Fail early, before minutes of encoding, on files that are not audio or hold nothing."""
    if path.stat().st_size == 0:
        raise ReplicaInputError(f"{path}: empty file (0 bytes)")
    try:
        import soundfile
    except (ImportError, OSError):  # no libsndfile: the decoder's own error comes later
        return
    try:
        info = soundfile.info(str(path))
    except Exception as exc:  # libsndfile raises its own error type
        raise ReplicaInputError(f"{path}: not a readable audio file ({exc})") from None
    if info.frames <= 0:
        raise ReplicaInputError(f"{path}: the audio holds no samples")


def _read_list(path: Path) -> list[str]:
    names = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            names.append(Path(line).name)
    return names


def scan_hd_audio(
    directory: str | os.PathLike[str], *, check_headers: bool = True
) -> tuple[list[HDFile], dict[str, list[str]] | None]:
    """The recordings in ``directory`` (sorted by name) and the official file lists, if any.

    Raises :class:`ReplicaInputError` naming the file for a name outside HD's scheme, an
    empty or undecodable file (``check_headers``), and naming the class when a language or
    digit has no recording at all.
    """
    root = Path(directory).expanduser()
    folder = _audio_folder(root)
    files: list[HDFile] = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or not p.is_file():
            continue
        if p.suffix.lower() not in AUDIO_SUFFIXES:
            continue  # README, LICENSE, the file lists
        files.append(parse_hd_name(p))
    if not files:
        raise ReplicaInputError(f"{folder}: no audio files named {HD_PATTERN}")
    if check_headers:
        for f in files:
            _check_header(f.path)
    present = {(f.language, f.digit) for f in files}
    for lang in LANGUAGES:
        digits = [d for d in range(10) if (lang, d) not in present]
        if len(digits) == 10:
            raise ReplicaInputError(f"{folder}: no {lang} recordings (lang-{lang}_...)")
        if digits:
            raise ReplicaInputError(
                f"{folder}: no {lang} recordings of digit {', '.join(map(str, digits))} "
                f"(lang-{lang}_..._digit-{digits[0]}.flac); every one of SHD's 20 classes "
                "is needed"
            )
    official = None
    # the lists lie next to audio/ in HD's tarball; also accepted inside the audio folder
    lists = {s: root / n for s, n in OFFICIAL_LISTS.items()}
    if folder != root and not any(p.is_file() for p in lists.values()):
        lists = {s: folder / n for s, n in OFFICIAL_LISTS.items()}
    found = [p for p in lists.values() if p.is_file()]
    if len(found) == 1:
        raise ReplicaInputError(
            f"{found[0]}: found without its partner "
            f"({' and '.join(OFFICIAL_LISTS.values())} come together)"
        )
    if found:
        official = {s: _read_list(p) for s, p in lists.items()}
    return files, official


def split_files(
    files: Sequence[HDFile],
    split: str,
    *,
    test_speakers: Iterable[int] = DEFAULT_TEST_SPEAKERS,
    seed: int = 0,
    official: dict[str, list[str]] | None = None,
) -> tuple[list[HDFile], list[HDFile]]:
    """``(train, test)`` files of ``split`` (each sorted by name); see the module docstring."""
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {', '.join(SPLITS)}, got {split!r}")
    if split == "official":
        if official is None:
            raise ReplicaInputError(
                "split 'official' needs train_filenames.txt and test_filenames.txt in the "
                "input folder"
            )
        by_name = {f.name: f for f in files}
        out: dict[str, list[HDFile]] = {}
        for s, names in official.items():
            missing = [n for n in names if n not in by_name]
            if missing:
                raise ReplicaInputError(
                    f"{OFFICIAL_LISTS[s]} lists {missing[0]}, which is not in the input folder "
                    f"({len(missing)} listed files missing)"
                )
            out[s] = sorted((by_name[n] for n in set(names)), key=lambda f: f.name)
        both = {f.name for f in out["train"]} & {f.name for f in out["test"]}
        if both:
            raise ReplicaInputError(f"{sorted(both)[0]} is in both official file lists")
        return out["train"], out["test"]
    held = {int(s) for s in test_speakers}
    if not held:
        raise ValueError("test_speakers: need at least one speaker")
    test_mask = np.array([f.speaker in held for f in files])
    if not test_mask.any():
        raise ReplicaInputError(
            f"no recordings of the test speakers {', '.join(f'{s:02d}' for s in sorted(held))}"
        )
    if split == "shd-like":
        others = np.flatnonzero(~test_mask)
        n_extra = round(others.size * SHD_EXTRA_TEST_FRACTION)
        rng = np.random.default_rng([int(seed), 0x5D4])
        test_mask[rng.choice(others, size=n_extra, replace=False)] = True
    train = [f for f, t in zip(files, test_mask) if not t]
    test = [f for f, t in zip(files, test_mask) if t]
    if not train:
        raise ReplicaInputError("every recording belongs to a test speaker: no training set")
    return train, test


@dataclass
class ReplicaBuild:
    """What :func:`build_shd_replica` made."""

    train_path: Path
    test_path: Path
    split: str
    n_train: int
    n_test: int
    encoded: int  #: files encoded by this call (the rest came from the cache)
    audio_s: float  #: seconds of audio encoded by this call
    encode_s: float  #: wall time of the encoding
    seconds: float  #: wall time of the whole build
    spikes: dict[str, np.ndarray] = field(default_factory=dict)  #: per split, per sample


def _readable(*paths: Path) -> None:
    """Permissions of a normally created file (the atomic writers' temporaries are 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    for p in paths:
        os.chmod(p, 0o666 & ~umask)


def _readme(params: dict[str, object], per_split: dict[str, list[HDFile]]) -> str:
    lines = [
        "SHD rebuilt from the Heidelberg Digits audio",
        "=============================================",
        "",
        FILE_NOTE,
        "",
        "Files: shd_train.h5 and shd_test.h5 (official SHD layout: spikes/times float16 "
        "seconds, spikes/units uint16, labels uint16, extra/speaker uint16, extra/keys). "
        "train_filenames.txt / test_filenames.txt list the recordings of each file, in order.",
        "",
        "Build parameters",
        "----------------",
        *(f"{k}: {v}" for k, v in params.items()),
        "",
        "Recordings per speaker (train / test)",
        "-------------------------------------",
    ]
    speakers = sorted({f.speaker for files in per_split.values() for f in files})
    for sp in speakers:
        n = {s: sum(f.speaker == sp for f in files) for s, files in per_split.items()}
        lines.append(f"speaker {sp:02d}: {n['train']:5d} / {n['test']:5d}")
    return "\n".join(lines) + "\n"


def build_shd_replica(
    audio: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    split: str | None = None,
    test_speakers: Iterable[int] = DEFAULT_TEST_SPEAKERS,
    seed: int = 0,
    channels: int = N_CHANNELS,
    sample_rate: int | None = DEFAULT_SAMPLE_RATE,
    workers: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    keep_cache: bool = False,
    force: bool = False,
    progress: bool = True,
) -> ReplicaBuild:
    """Encode the HD recordings in ``audio`` and write ``out/shd_{train,test}.h5``.

    ``split``: ``None`` picks ``official`` when the file lists are in ``audio``, else
    ``speakers``. ``sample_rate``: the cochlea's model rate (None: each file's own rate).
    ``workers``: processes (default: every core). ``cache_dir``: where per-file encodings are
    kept (default ``out/.make-shd-cache``); it is removed after a successful build unless
    ``keep_cache`` or it was given explicitly. Existing output files are replaced only with
    ``force``. Both files are complete before either is renamed into place.
    """
    start = time.perf_counter()
    if int(channels) != channels or channels < 1:
        raise ValueError(f"channels: must be a positive integer, got {channels!r}")
    out_dir = Path(out).expanduser()
    paths = {s: out_dir / f"shd_{s}.h5" for s in ("train", "test")}
    existing = [p for p in paths.values() if p.exists()]
    if existing and not force:
        raise FileExistsError(f"{existing[0]} already exists; pass --force (force=True) to rebuild")
    files, official = scan_hd_audio(audio)
    if split is None:
        split = "official" if official is not None else "speakers"
    held = tuple(sorted({int(s) for s in test_speakers}))
    train, test = split_files(files, split, test_speakers=held, seed=seed, official=official)
    per_split = {"train": train, "test": test}

    cache_root = Path(cache_dir).expanduser() if cache_dir else out_dir / ".make-shd-cache"
    settings = EncoderSettings(int(channels), sample_rate, int(seed))
    cache = EncodingCache(cache_root, settings)
    used = sorted({f.path for f in train + test})
    stats = cache.encode(used, workers=workers or default_workers(), progress=progress)

    params: dict[str, object] = {
        "split": split,
        "test_speakers": list(held) if split != "official" else "official lists",
        "seed": seed,
        "channels": channels,
        "sample_rate": "each file's own rate" if sample_rate is None else sample_rate,
        "audio": str(Path(audio).expanduser().resolve()),
        "train_files": len(train),
        "test_files": len(test),
    }
    if split == "shd-like":
        params["extra_test_fraction"] = round(SHD_EXTRA_TEST_FRACTION, 6)
    spikes: dict[str, np.ndarray] = {}
    staged = {s: out_dir / f".{p.name}.{os.getpid()}.building" for s, p in paths.items()}
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        for s, members in per_split.items():
            times, units, durations = [], [], []
            for f in members:
                entry = cache.load(f.path)
                if entry is None:  # removed or changed since it was encoded, moments ago
                    raise EncodingError(f"{f.path}: its cached encoding vanished; run again")
                times.append(entry.times)
                units.append(entry.units)
                durations.append(entry.duration_s)
            spikes[s] = np.array([t.size for t in times], dtype=np.int64)
            write_hdf5(
                staged[s],
                times,
                units,
                [f.label for f in members],
                speakers=[f.speaker for f in members],
                class_names=CLASS_NAMES,
                attrs={
                    "note": FILE_NOTE,
                    "split": split,
                    "build": json.dumps(params),
                },
            )
            # which recording each sample is (the official files have no such field; readers
            # ignore it)
            with h5py.File(staged[s], "a") as fh5:
                fh5.create_dataset(
                    "extra/filenames", data=np.array([f.name.encode() for f in members])
                )
        for s, members in per_split.items():
            with atomic_write(out_dir / OFFICIAL_LISTS[s]) as fh:
                fh.write("".join(f"{f.name}\n" for f in members).encode())
        with atomic_write(out_dir / "README.txt") as fh:
            fh.write(_readme(params, per_split).encode())
        for s, p in paths.items():
            os.replace(staged[s], p)
        _readable(
            *paths.values(), out_dir / "README.txt", *(out_dir / n for n in OFFICIAL_LISTS.values())
        )
    finally:
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)
    if not keep_cache and cache_dir is None:
        shutil.rmtree(cache_root, ignore_errors=True)
    return ReplicaBuild(
        train_path=paths["train"],
        test_path=paths["test"],
        split=split,
        n_train=len(train),
        n_test=len(test),
        encoded=stats.encoded,
        audio_s=stats.audio_s,
        encode_s=stats.seconds,
        seconds=time.perf_counter() - start,
        spikes=spikes,
    )
