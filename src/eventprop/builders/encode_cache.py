"""Per-file cochlea encodings on disk: what makes a long dataset build resumable.

A corpus of ten thousand recordings takes minutes to encode. Every file's spikes are stored as
soon as they exist, one small ``.npz`` per audio file, written atomically, in a folder named by
the encoder settings (channels, model rate, seed and the cochlea's parameters). A build that is
killed keeps every finished file; the next build with the same settings encodes only the rest.
Because a file's random stream is derived from its *name* (not from its position in a list),
an encoding does not depend on which other files are built with it: two splits of one corpus,
or a subset, reuse the same entries.

Entries hold exactly what the SHD files store (float16 seconds, uint16 channels), so a file
assembled from the cache is identical whether it was built in one go or resumed. An entry is
trusted only while its audio file keeps the size and modification time it was encoded from.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from tqdm import tqdm

__all__ = [
    "CACHE_FORMAT",
    "EncodedFile",
    "EncoderSettings",
    "EncodingCache",
    "EncodingError",
    "default_workers",
    "name_seed",
]

#: bump when the entry layout changes (old entries are then ignored)
CACHE_FORMAT = 1


class EncodingError(ValueError):
    """An input file could not be encoded; the message names the file."""


def default_workers() -> int:
    """Every core this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def name_seed(seed: int, name: str) -> int:
    """Seed of the file called ``name``: independent of every other file and of list order."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    words = [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]
    return int(np.random.SeedSequence([int(seed), *words]).generate_state(1, np.uint64)[0])


@dataclass(frozen=True)
class EncoderSettings:
    """What an encoding depends on besides the audio itself."""

    channels: int = 700
    #: fixed model rate in Hz, or None for each file's own rate (see ``Cochlea``)
    sample_rate: int | None = None
    seed: int = 0

    def record(self) -> dict[str, object]:
        """Everything the spikes depend on, including the cochlea's parameters."""
        from eventprop.audio.cochlea import Cochlea

        cochlea = Cochlea(self.channels, self.sample_rate)
        return {
            "format": CACHE_FORMAT,
            **asdict(self),
            "rms_level": cochlea.rms_level,
            "membrane": asdict(cochlea.membrane),
            "hair": asdict(cochlea.hair),
            "bushy": asdict(cochlea.bushy),
        }

    def folder_name(self) -> str:
        key = hashlib.sha256(json.dumps(self.record(), sort_keys=True).encode()).hexdigest()
        rate = "native" if self.sample_rate is None else f"{self.sample_rate}Hz"
        return f"{self.channels}ch-{rate}-seed{self.seed}-{key[:12]}"


@dataclass(frozen=True, eq=False)
class EncodedFile:
    """One cached encoding."""

    times: np.ndarray  #: float16 spike times in seconds, ascending
    units: np.ndarray  #: uint16 channels
    duration_s: float  #: length of the audio
    model_rate: int  #: rate (Hz) the cochlea ran at


def _source_stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return int(st.st_size), int(st.st_mtime_ns)


def _write_entry(target: Path, arrays: dict[str, np.ndarray]) -> None:
    """Atomic ``np.savez``: the entry appears complete or not at all."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


# --- worker side ----------------------------------------------------------------------------

#: glibc allocator settings of the worker processes. Every file allocates and frees arrays of
#: tens of MB (membrane velocity, firing probability); by default glibc maps each one afresh
#: and returns it to the system, so every file pays the page faults of zeroing that memory
#: again (measured: 31 ms of system time per file at 24 kHz, a fifth of the encoding). Keeping
#: freed memory in the heap makes it 4 ms. Other C libraries ignore these variables.
_WORKER_MALLOC = {
    "MALLOC_MMAP_THRESHOLD_": str(2**31 - 1),
    "MALLOC_TRIM_THRESHOLD_": str(2**31 - 1),
    "MALLOC_TOP_PAD_": str(256 * 2**20),
}


def _restore_env(saved: dict[str, str | None]) -> None:
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


_COCHLEA: dict[tuple[int, int | None], object] = {}


def _init_worker(threads: int) -> None:
    import numba

    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))


def _encode_entry(job: tuple[int, str, str, int, int | None, int]) -> tuple[int, int, float]:
    """Encode one file into its cache entry; returns ``(index, spikes, audio seconds)``."""
    from eventprop.audio.cochlea import Cochlea
    from eventprop.audio.io import read_audio

    index, audio, entry, channels, sample_rate, seed = job
    path = Path(audio)
    try:
        stamp = _source_stamp(path)
        signal, rate = read_audio(path)
        cochlea = _COCHLEA.get((channels, sample_rate))
        if not isinstance(cochlea, Cochlea):
            cochlea = _COCHLEA[(channels, sample_rate)] = Cochlea(channels, sample_rate)
        times, units = cochlea.encode(signal, rate, seed=seed)
        model_rate = cochlea.model_rate(rate)
    except (OSError, ValueError) as exc:
        message = str(exc)
        if str(path) not in message:
            message = f"{path}: {message}"
        raise EncodingError(message) from None
    if times.size == 0:
        raise EncodingError(f"{path}: the cochlea produced no spikes")
    duration = signal.size / rate
    _write_entry(
        Path(entry),
        {
            "times": times.astype(np.float16),
            "units": units.astype(np.uint16),
            "duration_s": np.float64(duration),
            "model_rate": np.int64(model_rate),
            "source": np.array(stamp, dtype=np.int64),
        },
    )
    return index, int(times.size), duration


# --- parent side ----------------------------------------------------------------------------


@dataclass
class EncodeStats:
    """What one :meth:`EncodingCache.encode` call did."""

    encoded: int  #: files encoded now
    reused: int  #: files found in the cache
    audio_s: float  #: seconds of audio encoded now
    seconds: float  #: wall time of the call


class EncodingCache:
    """The cache folder of one encoder setting under ``root``."""

    def __init__(self, root: str | os.PathLike[str], settings: EncoderSettings) -> None:
        if settings.channels > 2**16:
            raise ValueError(f"channels must be <= 65536 (uint16 units), got {settings.channels}")
        self.settings = settings
        self.root = Path(root).expanduser()
        self.folder = self.root / settings.folder_name()

    def entry_path(self, audio: Path) -> Path:
        return self.folder / f"{audio.name}.npz"

    def load(self, audio: Path) -> EncodedFile | None:
        """The entry of ``audio``, or None when missing, unreadable or stale."""
        entry = self.entry_path(audio)
        try:
            with np.load(entry, allow_pickle=False) as z:
                source = tuple(int(v) for v in z["source"])
                if source != _source_stamp(audio):
                    return None
                return EncodedFile(
                    times=z["times"],
                    units=z["units"],
                    duration_s=float(z["duration_s"]),
                    model_rate=int(z["model_rate"]),
                )
        except (OSError, ValueError, KeyError, EOFError):
            return None

    def has(self, audio: Path) -> bool:
        """Whether ``audio`` has an entry encoded from its present content (size, mtime)."""
        try:
            with np.load(self.entry_path(audio), allow_pickle=False) as z:
                return tuple(int(v) for v in z["source"]) == _source_stamp(audio)
        except (OSError, ValueError, KeyError, EOFError):
            return False

    def missing(self, paths: Sequence[Path]) -> list[int]:
        """Indices of ``paths`` without a valid entry."""
        return [i for i, p in enumerate(paths) if not self.has(p)]

    def _clean_partial(self) -> None:
        """Remove temporary files of a build that was killed while writing an entry."""
        for tmp in self.folder.glob(".*.part"):
            with contextlib.suppress(OSError):
                tmp.unlink()

    def encode(
        self,
        paths: Sequence[Path],
        *,
        workers: int | None = None,
        progress: bool = True,
        desc: str = "encoding",
        on_done: Callable[[int], None] | None = None,
    ) -> EncodeStats:
        """Make sure every file of ``paths`` has an entry, encoding the missing ones.

        ``workers`` processes (default: every core) each run a single-threaded cochlea; with 1
        the files are encoded here, each with all cores. The first failure stops the build
        with an :class:`EncodingError` naming the file; the entries made so far are kept.
        """
        from eventprop.audio.cochlea import Cochlea

        start = time.perf_counter()
        self.folder.mkdir(parents=True, exist_ok=True)
        self._clean_partial()
        todo = self.missing(paths)
        n_workers = min(max(1, workers or default_workers()), max(1, len(todo)))
        s = self.settings
        jobs = [
            (
                i,
                str(paths[i]),
                str(self.entry_path(paths[i])),
                s.channels,
                s.sample_rate,
                name_seed(s.seed, paths[i].name),
            )
            for i in todo
        ]
        audio_s = 0.0
        bar = tqdm(
            total=len(paths),
            initial=len(paths) - len(todo),
            desc=desc,
            unit="file",
            disable=not progress,
            smoothing=0.05,
        )
        with bar:
            if not jobs:
                pass
            elif n_workers == 1:
                import numba

                _init_worker(numba.config.NUMBA_NUM_THREADS)
                for job in jobs:
                    i, _, dur = _encode_entry(job)
                    audio_s += dur
                    bar.update()
                    if on_done is not None:
                        on_done(i)
            else:
                # the membrane table is built once here, so that workers load it from disk
                _ = Cochlea(s.channels, s.sample_rate).response
                audio_s = self._run_pool(jobs, n_workers, bar, on_done)
        return EncodeStats(
            encoded=len(jobs),
            reused=len(paths) - len(jobs),
            audio_s=audio_s,
            seconds=time.perf_counter() - start,
        )

    @staticmethod
    def _run_pool(
        jobs: list[tuple[int, str, str, int, int | None, int]],
        n_workers: int,
        bar: tqdm,
        on_done: Callable[[int], None] | None,
    ) -> float:
        # spawn, not fork: the parent may hold threads (numba, torch, BLAS) that fork would
        # copy in an undefined state. A bounded number of jobs in flight keeps the queue short
        # so that a failure stops the build quickly.
        ctx = get_context("spawn")
        audio_s = 0.0
        pending = iter(jobs)
        in_flight: set[Future] = set()
        saved = {k: os.environ.get(k) for k in _WORKER_MALLOC}
        os.environ.update(_WORKER_MALLOC)  # read by the workers' C library when they start
        ex = ProcessPoolExecutor(n_workers, mp_context=ctx, initializer=_init_worker, initargs=(1,))
        try:
            for job in pending:
                in_flight.add(ex.submit(_encode_entry, job))
                if len(in_flight) >= 4 * n_workers:
                    break
            _restore_env(saved)  # every worker has started
            while in_flight:
                done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                for fut in done:
                    i, _, dur = fut.result()
                    audio_s += dur
                    bar.update()
                    if on_done is not None:
                        on_done(i)
                    nxt = next(pending, None)
                    if nxt is not None:
                        in_flight.add(ex.submit(_encode_entry, nxt))
        except BaseException:
            ex.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            _restore_env(saved)
        ex.shutdown(wait=True)
        return audio_s
