"""Checkpoints that survive a crash at any instant, and load without executing code.

Writes go to a temporary file in the same directory, are flushed to disk, then renamed over
the target (``os.replace`` is atomic on POSIX and Windows): a reader, or a run resumed after
``kill -9``, sees either the previous complete checkpoint or the new complete one, never a
torn file.

A checkpoint holds only tensors and plain Python values (the numpy RNG key is stored as a
tensor), so it loads with ``torch.load(weights_only=True)``: opening someone else's run
directory cannot run arbitrary code.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "CHECKPOINT_FORMAT",
    "capture_rng_state",
    "load_checkpoint",
    "restore_rng_state",
    "save_checkpoint",
]

#: bump when the layout of a checkpoint changes
CHECKPOINT_FORMAT = 1


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Atomically write ``state`` (tensors and plain values) to ``path``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            torch.save({"format": CHECKPOINT_FORMAT, **state}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(target.parent)
    return target


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (never executes code)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no checkpoint here")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for damaged files
        raise ValueError(f"{p}: not a readable checkpoint ({exc})") from exc
    found = state.get("format") if isinstance(state, dict) else None
    if found != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{p}: unknown checkpoint format {found!r} (this version reads format "
            f"{CHECKPOINT_FORMAT})"
        )
    return state


def capture_rng_state() -> dict[str, Any]:
    """The global torch / numpy / Python generator states, as tensors and plain values."""
    # the legacy global generator, saved because user code may draw from it
    np_state = np.random.get_state(legacy=False)  # noqa: NPY002
    return {
        "torch": torch.get_rng_state(),
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np.asarray(np_state["state"]["key"], dtype=np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "python": _plain(random.getstate()),
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        {
            "bit_generator": n["bit_generator"],
            "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]},
            "has_gauss": n["has_gauss"],
            "gauss": n["gauss"],
        }
    )
    random.setstate(_tuple(state["python"]))


def _plain(x: Any) -> Any:
    return [_plain(v) for v in x] if isinstance(x, tuple) else x


def _tuple(x: Any) -> Any:
    return tuple(_tuple(v) for v in x) if isinstance(x, list) else x
