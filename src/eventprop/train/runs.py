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
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from eventprop.train.config import ExperimentConfig, dump_config, load_config

__all__ = [
    "RunDirError",
    "RunPaths",
    "check_writable",
    "create_run_dir",
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
            raise RunDirError(f"run directory {path}: exists and is not empty")
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
        raise RunDirError(f"{paths.root}: not a run directory (no config.yaml)")
    return load_config(paths.config)


def write_config(paths: RunPaths, cfg: ExperimentConfig) -> None:
    tmp = paths.config.with_name(".config.yaml.tmp")
    header = (
        "# resolved configuration of this run (every default filled in);\n"
        f"# reproduce with: eventprop train {paths.config}\n"
    )
    tmp.write_text(header + dump_config(cfg), encoding="utf-8")
    os.replace(tmp, paths.config)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomic JSON write (NaN and infinities written as null)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(_clean(data), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


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
