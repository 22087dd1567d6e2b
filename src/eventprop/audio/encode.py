"""Batch conversion of audio files into one SHD-format HDF5 file (``eventprop audio encode``).

Inputs are audio files and folders. The class of a file is named by a folder:

- a folder with sub-folders: each immediate sub-folder is a class, holding every audio file
  below it (any depth);
- a folder without sub-folders: its files form one class, named after the folder;
- a file given directly: its class is the name of the folder that contains it.

Class names of all inputs are merged and sorted; a class's label is its index in that order
(so ``yes/`` and ``no/`` give ``no`` = 0, ``yes`` = 1), and the names are stored in
``extra/keys``. Samples are written in (label, path) order.

Files are encoded in a process pool (one single-threaded cochlea per core; for few files, in
this process with all cores per file), with a progress bar. File ``i`` (in that order) is
encoded with a seed derived from ``(seed, i)``, so the output depends only on the inputs and
the seed, not on the number of workers.

Policy (:mod:`eventprop.audio.policy`): every file is resampled to one model rate (24 kHz by
default; ``sample_rate=None`` keeps each file's own rate, as the reference does), so the same
sound gives the same spikes whatever rate it was recorded at. Word-length clips (under 2 s)
get SHD's whole-clip Hann taper and are stored as float16; when a longer clip is among the
inputs, times are stored as float32 (float64 beyond 4.5 h) so they keep 1 ms precision, and
``taper="whole"`` on such a clip draws a warning naming the file.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from tqdm import tqdm

from eventprop.audio.io import AUDIO_SUFFIXES, read_audio
from eventprop.audio.policy import DEFAULT_MODEL_RATE, TAPERS, WORD_MAX_S, time_dtype

__all__ = [
    "AudioItem",
    "LongClipWarning",
    "collect_inputs",
    "encode_files",
    "encode_to_hdf5",
    "file_seed",
]


class LongClipWarning(UserWarning):
    """A clip longer than a word was encoded with SHD's whole-clip taper."""


@dataclass(frozen=True)
class AudioItem:
    """One input file and its class."""

    path: Path
    class_name: str


def _audio_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES
    )


def collect_inputs(inputs: Sequence[str | os.PathLike[str]]) -> tuple[list[AudioItem], list[str]]:
    """Expand ``inputs`` into ``(items sorted by (label, path), sorted class names)``.

    Raises ``FileNotFoundError`` for a missing input and ``ValueError`` when nothing is found
    or a folder mixes audio files with class sub-folders (their class would be ambiguous).
    """
    items: list[AudioItem] = []
    for raw in inputs:
        path = Path(raw)
        if path.is_file():
            items.append(AudioItem(path, path.resolve().parent.name))
            continue
        if not path.is_dir():
            raise FileNotFoundError(f"input not found: {path}")
        subdirs = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not subdirs:
            files = _audio_files(path)
            if not files:
                raise ValueError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) in {path}")
            items.extend(AudioItem(f, path.resolve().name) for f in files)
            continue
        loose = [p for p in path.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES]
        if loose:
            raise ValueError(
                f"{path} holds class sub-folders and also audio files directly ({loose[0].name}, "
                "...): move those into a sub-folder named after their class"
            )
        for sub in subdirs:
            items.extend(AudioItem(f, sub.name) for f in _audio_files(sub))
    if not items:
        raise ValueError("no audio files found in the inputs")
    class_names = sorted({it.class_name for it in items})
    label_of = {name: i for i, name in enumerate(class_names)}
    # one file given twice (directly and through its folder) is encoded once
    unique = {(label_of[it.class_name], str(it.path.resolve())): it for it in items}
    ordered = [unique[k] for k in sorted(unique)]
    return ordered, class_names


def file_seed(seed: int | None, index: int) -> int | None:
    """Seed of file ``index``: independent streams from one base seed (None stays None)."""
    if seed is None:
        return None
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


#: file count from which ``workers=None`` starts a process pool
_POOL_MIN_FILES = 64
#: cochleas of this process, by (channels, model rate, taper)
_COCHLEAS: dict[tuple[int, int | None, str], object] = {}


def _encode_one(
    path: Path, channels: int, seed: int | None, sample_rate: int | None, taper: str
) -> tuple[np.ndarray, np.ndarray, float]:
    """``(times, units, duration_s)`` of one file."""
    from eventprop.audio.cochlea import Cochlea

    signal, rate = read_audio(path)
    key = (channels, sample_rate, taper)
    cochlea = _COCHLEAS.get(key)
    if not isinstance(cochlea, Cochlea):
        cochlea = _COCHLEAS[key] = Cochlea(channels, sample_rate, taper=taper)
    duration = signal.size / rate
    try:
        times, units = cochlea.encode(signal, rate, seed=seed)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
    return times, units, duration


def _init_worker() -> None:
    """One thread per worker process: the pool supplies the parallelism."""
    import numba

    numba.set_num_threads(1)


_Job = tuple[int, Path, int, int | None, int | None, str]
_Encoded = tuple[np.ndarray, np.ndarray, float]


def _job(args: _Job) -> tuple[int, np.ndarray, np.ndarray, float]:
    index, path, channels, seed, sample_rate, taper = args
    times, units, duration = _encode_one(path, channels, seed, sample_rate, taper)
    return index, times, units, duration


def encode_files(
    paths: Sequence[Path],
    *,
    channels: int = 700,
    seed: int | None = 0,
    sample_rate: int | None = DEFAULT_MODEL_RATE,
    taper: str = "auto",
    workers: int | None = None,
    progress: bool = True,
    on_done: Callable[[int], None] | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Encode every file; returns ``(times_s, units)`` per file, in the order of ``paths``.

    ``workers``: processes (default: all cores from ``_POOL_MIN_FILES`` files on, else 1); 1
    encodes in this process, using all cores for each file instead. ``sample_rate`` is the
    model rate every file is resampled to (None: each file's own rate, see
    :class:`~eventprop.audio.cochlea.Cochlea`); ``taper`` one of
    :data:`~eventprop.audio.policy.TAPERS`.
    """
    return [
        (t, u)
        for t, u, _ in _encode_all(
            paths,
            channels=channels,
            seed=seed,
            sample_rate=sample_rate,
            taper=taper,
            workers=workers,
            progress=progress,
            on_done=on_done,
        )
    ]


def _encode_all(
    paths: Sequence[Path],
    *,
    channels: int,
    seed: int | None,
    sample_rate: int | None,
    taper: str,
    workers: int | None,
    progress: bool,
    on_done: Callable[[int], None] | None,
) -> list[_Encoded]:
    """:func:`encode_files` with each file's duration (s) as a third element."""
    from eventprop.audio.cochlea import Cochlea

    if taper not in TAPERS:
        raise ValueError(f"taper must be one of {', '.join(TAPERS)}, got {taper!r}")
    if workers is None:
        # a worker process costs seconds to start (imports); below a few dozen files the
        # threaded in-process encoder is faster
        workers = (os.cpu_count() or 1) if len(paths) >= _POOL_MIN_FILES else 1
    n_workers = min(max(1, int(workers)), max(1, len(paths)))
    # build (or load) the membrane table once, here, so that workers find it in the disk cache
    _ = Cochlea(channels, sample_rate, taper=taper).response
    jobs: list[_Job] = [
        (i, Path(p), channels, file_seed(seed, i), sample_rate, taper) for i, p in enumerate(paths)
    ]
    results: list[_Encoded | None] = [None] * len(jobs)
    bar = tqdm(total=len(jobs), desc="encoding", unit="file", disable=not progress)
    with bar:
        if n_workers == 1:
            for job in jobs:
                i, t, u, d = _job(job)
                results[i] = (t, u, d)
                bar.update()
                if on_done is not None:
                    on_done(i)
        else:
            # spawn, not fork: the parent may hold threads (numba, torch, BLAS) that fork
            # would copy in an undefined state
            ctx = get_context("spawn")
            with ProcessPoolExecutor(n_workers, mp_context=ctx, initializer=_init_worker) as ex:
                futures = [ex.submit(_job, job) for job in jobs]
                try:
                    for fut in as_completed(futures):
                        i, t, u, d = fut.result()
                        results[i] = (t, u, d)
                        bar.update()
                        if on_done is not None:
                            on_done(i)
                except BaseException:
                    for f in futures:
                        f.cancel()
                    raise
    return [r for r in results if r is not None]


def _warn(message: str) -> None:
    warnings.warn(message, LongClipWarning, stacklevel=3)


def encode_to_hdf5(
    inputs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    channels: int = 700,
    seed: int | None = 0,
    sample_rate: int | None = DEFAULT_MODEL_RATE,
    taper: str = "auto",
    workers: int | None = None,
    progress: bool = True,
    warn: Callable[[str], None] | None = None,
) -> tuple[Path, list[AudioItem], list[str]]:
    """Encode ``inputs`` (files/folders, see the module docstring) into the SHD file ``out``.

    Written atomically in the official layout (uint16 units, class names in ``extra/keys``,
    speaker 0 for every sample). Times are float16, SHD's dtype, when every clip is shorter
    than ``WORD_MAX_S``; otherwise the narrowest float type that keeps 1 ms precision at the
    longest clip (:func:`~eventprop.audio.policy.time_dtype`). ``warn`` receives one line per
    clip of ``WORD_MAX_S`` or longer encoded with ``taper="whole"`` (default: a
    :class:`LongClipWarning`). Returns ``(path, items, class_names)``.
    """
    from eventprop.data.hdf5 import write_hdf5

    if channels > np.iinfo(np.uint16).max + 1:
        raise ValueError(f"channels must be <= 65536 for uint16 units, got {channels}")
    items, class_names = collect_inputs(inputs)
    label_of = {name: i for i, name in enumerate(class_names)}
    spikes = _encode_all(
        [it.path for it in items],
        channels=channels,
        seed=seed,
        sample_rate=sample_rate,
        taper=taper,
        workers=workers,
        progress=progress,
        on_done=None,
    )
    durations = [d for _, _, d in spikes]
    if taper == "whole":
        for it, d in zip(items, durations):
            if d >= WORD_MAX_S:
                (warn or _warn)(
                    f"{it.path}: a {d:.1f} s clip encoded with taper 'whole' (SHD's Hann "
                    "window over the whole clip): its level falls to zero towards both ends; "
                    "use taper 'edges' for clips longer than a word"
                )
    dtype = time_dtype(max(durations))
    labels = np.array([label_of[it.class_name] for it in items], dtype=np.int64)
    rate_note = "each file's own rate" if sample_rate is None else f"{sample_rate} Hz"
    path = write_hdf5(
        out,
        [t for t, _, _ in spikes],
        [u for _, u, _ in spikes],
        labels,
        class_names=class_names,
        time_dtype=dtype,
        attrs={
            "note": (
                f"{len(items)} audio files converted by eventprop.audio (SHD cochlea model, "
                f"{channels} channels, model rate: {rate_note}, taper: {taper}, seed {seed}, "
                f"times {dtype.name}); labels index extra/keys (sorted class folder names)."
            ),
        },
    )
    return path, items, class_names
