"""Run directories: creating them, checking them, and finding their parts.

A run directory is self-contained: it holds the resolved config (every default filled in, so
that it alone reproduces the run), the metrics, the checkpoints, the plots and a summary::

    RUN/
      config.yaml          resolved configuration
      metrics.csv          one row per epoch        tensorboard/   (when available)
      train.log            the printed log
      checkpoints/last.pt  end of the latest epoch  checkpoints/best.pt  best validation
      plots/*.png          curves, raster, spike counts, confusion
      summary.json         final (or failure) summary

Writability is tested before any data is loaded, so a bad ``run.root`` or a read-only disk
fails in the first second, not after the first epoch.

One writer per directory: a training process holds ``RUN/.lock`` (an ``flock`` on a file that
names its pid) for as long as it writes, so a second ``--resume`` of the same run is refused
naming the process instead of writing every epoch twice. A lock whose process is gone (``kill
-9``) holds no ``flock`` any more and is taken over. While it holds the lock, a process removes
the temporary files that killed writers left (``.last.pt.<pid>.tmp``, ``.write-test-<pid>``...):
no other writer can own them.

A start that failed before its first checkpoint (bad data file, killed during the first
epoch) leaves a directory that the same command, ``--run-dir`` with it, or ``--resume`` starts
again from epoch 1; a directory with a checkpoint is only ever continued with ``--resume``.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import socket
import time
from pathlib import Path
from types import TracebackType
from typing import Any

try:  # POSIX: the lock is an flock, released by the kernel when its process dies
    import fcntl
except ImportError:  # pragma: no cover - Windows: the pid in the file decides
    fcntl = None  # type: ignore[assignment]

from eventprop.train.config import ExperimentConfig, dump_config, load_config
from eventprop.train.metrics import write_error

__all__ = [
    "RunDirError",
    "RunLock",
    "RunPaths",
    "check_writable",
    "clean_temporary_files",
    "clear_failed_start",
    "create_run_dir",
    "is_failed_start",
    "read_run_config",
    "read_summary",
    "write_config",
    "write_json",
]


class RunDirError(OSError):
    """A run directory cannot be created, written, or is not a run directory."""


class RunPaths:
    """Paths inside a run directory."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.csv"

    @property
    def log(self) -> Path:
        return self.root / "train.log"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def last(self) -> Path:
        return self.checkpoints / "last.pt"

    @property
    def best(self) -> Path:
        return self.checkpoints / "best.pt"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"


#: temporary files of atomic writes and probes, by the writers of this package (pid inside)
_TEMPORARY = re.compile(
    r"^(\.write-test-\d+|\..+\.\d+\.tmp|\.(config\.yaml|summary\.json|metrics\.csv)\.tmp)$"
)
#: what a run directory holds (anything else makes a non-empty directory someone else's)
_RUN_FILES = {
    "config.yaml",
    "metrics.csv",
    "train.log",
    "summary.json",
    "checkpoints",
    "plots",
    "tensorboard",
    ".lock",
}


def clean_temporary_files(root: Path) -> list[Path]:
    """Remove the temporary files killed writers left in ``root`` and its checkpoints.

    Only call while holding the directory's :class:`RunLock`: then no live writer owns them.
    Returns what was removed.
    """
    removed = []
    for folder in (root, root / "checkpoints", root / "plots"):
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            if p.is_file() and _TEMPORARY.match(p.name):
                try:
                    p.unlink()
                    removed.append(p)
                except FileNotFoundError:  # pragma: no cover - raced with its writer's cleanup
                    pass
    return removed


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's live process
        return True
    return True


class RunLock:
    """Exclusive writer lock of a run directory (``RUN/.lock``, holding the writer's pid).

    ``with RunLock(root): ...`` raises :class:`RunDirError` naming the holder when another live
    process has it. A lock file left by a dead process is stale and taken over (POSIX: it no
    longer holds an ``flock``; elsewhere: its pid no longer runs). Acquiring also removes the
    temporary files of dead writers, and so does releasing.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.paths = RunPaths(root)
        self._fd: int | None = None
        self.took_over: int | None = None  #: pid of the stale lock that was replaced, if any

    def _holder(self) -> str:
        try:
            text = self.paths.lock.read_text(encoding="utf-8").split()
        except OSError:
            return "another process"
        return f"process {text[0]}" + (f" on {text[1]}" if len(text) > 1 else "")

    def _busy(self) -> RunDirError:
        lock = self.paths.lock
        return RunDirError(
            f"run directory {self.paths.root}: in use by {self._holder()} (lock file {lock}); "
            "wait for that run to end or stop it; one run directory has one writer"
        )

    def acquire(self) -> RunLock:
        lock = self.paths.lock
        for _ in range(20):  # retries only when a releasing holder unlinks the file meanwhile
            try:
                self.paths.root.mkdir(parents=True, exist_ok=True)
                fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                why = exc.strerror or str(exc)
                raise RunDirError(f"run directory {self.paths.root}: not writable ({why})") from exc
            try:
                old = os.read(fd, 256).decode("utf-8", "replace").split()
                if fcntl is not None:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        raise self._busy() from None
                    try:  # the file we locked must still be the lock (not unlinked meanwhile)
                        same = os.fstat(fd).st_ino == os.stat(lock).st_ino
                    except FileNotFoundError:
                        same = False
                    if not same:
                        os.close(fd)
                        continue
                elif old and old[0].isdigit() and int(old[0]) != os.getpid():
                    if _pid_alive(int(old[0])):  # pragma: no cover - platforms without flock
                        raise self._busy()
                if old and old[0].isdigit() and int(old[0]) != os.getpid():
                    self.took_over = int(old[0])
                os.ftruncate(fd, 0)
                os.lseek(fd, 0, os.SEEK_SET)
                os.write(fd, f"{os.getpid()} {socket.gethostname()} {time.time():.0f}\n".encode())
                os.fsync(fd)
            except BaseException:
                os.close(fd)
                raise
            self._fd = fd
            clean_temporary_files(self.paths.root)
            return self
        raise self._busy()  # pragma: no cover - the file kept changing under us

    def release(self) -> None:
        if self._fd is None:
            return
        clean_temporary_files(self.paths.root)
        try:
            self.paths.lock.unlink()
        except FileNotFoundError:  # pragma: no cover - removed by hand
            pass
        os.close(self._fd)  # closing drops the flock
        self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def is_failed_start(root: str | os.PathLike[str]) -> bool:
    """A run directory whose start failed before its first checkpoint (nothing to continue).

    It holds only run-directory files (no file of anyone else) and no checkpoint: it can be
    started again from epoch 1 without losing anything.
    """
    paths = RunPaths(root)
    if not paths.root.is_dir():
        return False
    names = {p.name for p in paths.root.iterdir() if not _TEMPORARY.match(p.name)}
    if not names or not names <= _RUN_FILES:
        return False
    if paths.checkpoints.is_dir():
        kept = [p for p in paths.checkpoints.iterdir() if not _TEMPORARY.match(p.name)]
        if kept:
            return False
    return True


def clear_failed_start(root: str | os.PathLike[str]) -> None:
    """Remove what a failed start wrote (not ``train.log``: it keeps the history)."""
    paths = RunPaths(root)
    for p in (paths.config, paths.metrics, paths.summary):
        p.unlink(missing_ok=True)
    for d in (paths.plots, paths.root / "tensorboard"):
        if d.is_dir():
            shutil.rmtree(d)


def check_writable(path: Path) -> None:
    """Create ``path`` if needed and prove that files can be written in it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        with open(probe, "w", encoding="utf-8") as fh:
            fh.write("ok")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise RunDirError(f"run directory {path}: not writable ({reason})") from exc


def _timestamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def create_run_dir(
    cfg: ExperimentConfig, run_dir: str | os.PathLike[str] | None = None, root: str | None = None
) -> RunPaths:
    """A new, empty, writable run directory (``<root>/<name>-<time>`` unless given)."""
    if run_dir is not None:
        path = Path(run_dir).expanduser()
        if path.exists() and not path.is_dir():
            raise RunDirError(f"run directory {path}: exists and is not a directory")
        if path.is_dir() and any(path.iterdir()):
            if (path / "checkpoints" / "last.pt").exists():
                raise RunDirError(
                    f"run directory {path}: holds a run already; continue it with "
                    f"`eventprop train --resume {path}` or choose another directory"
                )
            if not is_failed_start(path):
                raise RunDirError(
                    f"run directory {path}: exists and is not empty (and is not a run that "
                    "failed before its first checkpoint); choose another directory"
                )
            # a start that failed before its first checkpoint: started again from epoch 1
    else:
        parent = Path(root if root is not None else cfg.run.root).expanduser()
        base = f"{cfg.name}-{_timestamp()}"
        path = parent / base
        k = 1
        while path.exists():
            k += 1
            path = parent / f"{base}-{k}"
    check_writable(path)
    paths = RunPaths(path)
    check_writable(paths.checkpoints)
    return paths


def read_run_config(run_dir: str | os.PathLike[str]) -> ExperimentConfig:
    """The resolved config of an existing run."""
    paths = RunPaths(run_dir)
    if not paths.root.is_dir():
        raise RunDirError(f"{paths.root}: no such run directory")
    if not paths.config.is_file():
        if is_failed_start(paths.root):
            raise RunDirError(
                f"{paths.root}: its start failed before config.yaml was written; start it "
                f"again with `eventprop train CONFIG --run-dir {paths.root}`"
            )
        raise RunDirError(f"{paths.root}: not a run directory (no config.yaml)")
    return load_config(paths.config)


def write_config(paths: RunPaths, cfg: ExperimentConfig) -> None:
    tmp = paths.config.with_name(".config.yaml.tmp")
    header = (
        "# resolved configuration of this run (every default filled in);\n"
        f"# reproduce with: eventprop train {paths.config}\n"
    )
    try:
        tmp.write_text(header + dump_config(cfg), encoding="utf-8")
        os.replace(tmp, paths.config)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise write_error(paths.config, "the resolved config", exc) from exc


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomic JSON write (NaN and infinities written as null)."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(json.dumps(_clean(data), indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise write_error(path, "the summary", exc) from exc


def read_summary(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    p = RunPaths(run_dir).summary
    if not p.is_file():
        return None
    return json.loads(p.read_text(encoding="utf-8"))


def _clean(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):  # NaN/inf are not JSON
        return None
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x
