"""On-disk cache of preprocessed datasets: flat ``.npz`` files, keyed, written atomically.

An entry stores the arrays of a :class:`~eventprop.data.spikes.SpikeData` (flat spike arrays plus
sample pointers, never pickled lists), so loading SHD's training set takes well under a second.
The file name carries a hash of every parameter that affects the arrays, including the source
file's identity; the full parameter record is stored inside as JSON and compared on load, so a
hash collision or a hand-copied file cannot be taken for the right entry.

Writes go to a temporary file in the same directory, are flushed to disk and then renamed over
the target with ``os.replace`` (atomic on POSIX and Windows): a crash leaves at most a stray
temporary, never a half-written entry under the final name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np

from eventprop.data.spikes import SpikeData

__all__ = [
    "atomic_path",
    "atomic_write",
    "cache_file",
    "cache_key",
    "file_sha256",
    "load_spike_data",
    "save_spike_data",
    "source_identity",
]


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's content (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def source_identity(
    path: str | os.PathLike[str], mode: Literal["stat", "sha256"] = "stat"
) -> dict[str, Any]:
    """What identifies a source file's content for caching purposes.

    ``"stat"`` uses size and modification time in ns (instant); ``"sha256"`` hashes the content.
    """
    p = Path(path)
    st = p.stat()
    if mode == "stat":
        return {"name": p.name, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    if mode == "sha256":
        return {"name": p.name, "size": st.st_size, "sha256": file_sha256(p)}
    raise ValueError(f"identity: expected 'stat' or 'sha256', got {mode!r}")


def cache_key(params: Mapping[str, Any]) -> str:
    """Stable hash of a JSON-serialisable parameter record."""
    text = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def cache_file(directory: Path, stem: str, params: Mapping[str, Any]) -> Path:
    """Path of the cache entry for ``params`` (readable stem + 16 hex digits of the key)."""
    return Path(directory) / f"{stem}-{cache_key(params)[:16]}.npz"


@contextlib.contextmanager
def atomic_write(target: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """Open a temporary file next to ``target``; on success rename it over ``target``.

    On any exception (including KeyboardInterrupt) the temporary is removed and ``target`` is
    untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Like :func:`atomic_write` for writers that need a path (h5py): yields a temporary path
    next to ``target`` and renames it over ``target`` when the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def save_spike_data(
    path: str | os.PathLike[str], data: SpikeData, params: Mapping[str, Any]
) -> None:
    """Write ``data`` and its parameter record to ``path`` (uncompressed .npz, atomically)."""
    meta = {
        "params": params,
        "n_steps": data.n_steps,
        "n_channels": data.n_channels,
        "dt": data.dt,
        "class_names": list(data.class_names) if data.class_names is not None else None,
    }
    arrays: dict[str, np.ndarray] = {
        "step": data.step,
        "channel": data.channel,
        "pointers": data.pointers,
        "labels": data.labels,
        "meta": np.array(json.dumps(meta, default=str)),
    }
    if data.offset is not None:
        arrays["offset"] = data.offset
    if data.speakers is not None:
        arrays["speakers"] = data.speakers
    with atomic_write(path) as fh:
        np.savez(fh, **arrays)


def load_spike_data(path: str | os.PathLike[str], params: Mapping[str, Any]) -> SpikeData | None:
    """Load an entry written by :func:`save_spike_data`; ``None`` when damaged or not matching."""
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if json.loads(json.dumps(params, default=str)) != meta["params"]:
                return None
            names = meta.get("class_names")
            return SpikeData(
                step=z["step"],
                channel=z["channel"],
                pointers=z["pointers"],
                labels=z["labels"],
                n_steps=int(meta["n_steps"]),
                n_channels=int(meta["n_channels"]),
                dt=float(meta["dt"]),
                offset=z["offset"] if "offset" in z.files else None,
                speakers=z["speakers"] if "speakers" in z.files else None,
                class_names=tuple(names) if names is not None else None,
            )
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, EOFError):
        return None
