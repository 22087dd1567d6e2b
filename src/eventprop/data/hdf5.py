"""Reading and validating SHD/SSC files (the official HDF5 layout).

Layout (Cramer et al. 2020): ``spikes/times`` and ``spikes/units`` are ragged (variable-length)
arrays, one row per sample, of spike times in seconds and channel indices 0..699; ``labels`` is
one integer per sample; ``extra/speaker`` one speaker id per sample; ``extra/keys`` the class
names. Official files store times as float16 (other producers use float32/64) and units as
uint16; every float and integer width is accepted.

A bad file must fail here, loudly and with the file and field named, rather than as a shape
error deep inside training: every rule of the layout is checked, vectorised over all spikes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from eventprop.data.cache import atomic_path
from eventprop.data.errors import DataFileError, UnreadableFileError

__all__ = [
    "N_CHANNELS",
    "REQUIRED_KEYS",
    "RawSpikes",
    "read_hdf5",
    "write_hdf5",
]

#: input channels of SHD and SSC (the cochlea model's 700 fibres)
N_CHANNELS = 700
#: datasets every official file has
REQUIRED_KEYS = ("spikes/times", "spikes/units", "labels", "extra/speaker", "extra/keys")


@dataclass(frozen=True, eq=False)
class RawSpikes:
    """Unbinned content of one file: flat spike arrays and per-sample pointers."""

    path: Path
    times: np.ndarray  #: (E,) float, spike times in SECONDS, as stored (float16/32/64)
    units: np.ndarray  #: (E,) integer channel of each spike
    pointers: np.ndarray  #: (N+1,) int64, spikes of sample i are [pointers[i], pointers[i+1])
    labels: np.ndarray  #: (N,) int64
    speakers: np.ndarray | None  #: (N,) int64, or None when the file has no extra/speaker
    class_names: tuple[str, ...] | None  #: decoded extra/keys
    attrs: dict[str, str]  #: root attributes, as text

    def __len__(self) -> int:
        return int(self.labels.size)

    def counts(self) -> np.ndarray:
        return np.diff(self.pointers)


def _fail(path: Path, message: str) -> DataFileError:
    return DataFileError(f"{path}: {message}")


def _read(path: Path, ds: h5py.Dataset, name: str) -> np.ndarray:
    try:
        return ds[()]
    except (OSError, RuntimeError, ValueError) as exc:
        raise UnreadableFileError(
            f"{path}: cannot read '{name}' ({exc}); the file is probably truncated or damaged"
        ) from exc


def _ragged(path: Path, f: h5py.File, name: str, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Read a ragged dataset; returns (flat values, per-row lengths)."""
    ds = f[name]
    if not isinstance(ds, h5py.Dataset):
        raise _fail(path, f"'{name}' is a group, expected a dataset")
    base = h5py.check_vlen_dtype(ds.dtype)
    if ds.ndim != 1 or base is None:
        raise _fail(
            path,
            f"'{name}' must be a 1-D ragged (variable-length) array, got shape {ds.shape} "
            f"dtype {ds.dtype}",
        )
    ok = np.issubdtype(base, np.floating) if kind == "float" else np.issubdtype(base, np.integer)
    if not ok:
        raise _fail(path, f"'{name}' holds {base}, expected {kind} values")
    rows = _read(path, ds, name)
    lengths = np.fromiter((r.size for r in rows), dtype=np.int64, count=len(rows))
    flat = np.concatenate(rows) if len(rows) else np.zeros(0, dtype=base)
    return flat.astype(base, copy=False), lengths


def _integers(path: Path, f: h5py.File, name: str) -> np.ndarray:
    ds = f[name]
    if not isinstance(ds, h5py.Dataset) or ds.ndim != 1:
        raise _fail(path, f"'{name}' must be a 1-D dataset")
    values = np.asarray(_read(path, ds, name))
    if np.issubdtype(values.dtype, np.floating):
        if values.size and not np.all(np.isfinite(values) & (values == np.round(values))):
            raise _fail(path, f"'{name}' must hold whole numbers")
    elif not np.issubdtype(values.dtype, np.integer):
        raise _fail(path, f"'{name}' must hold integers, got dtype {values.dtype}")
    return values.astype(np.int64)


def _first_sample(pointers: np.ndarray, spike: int) -> int:
    return int(np.searchsorted(pointers, spike, side="right") - 1)


def read_hdf5(
    path: str | os.PathLike[str],
    *,
    n_channels: int = N_CHANNELS,
    require_extra: bool = True,
) -> RawSpikes:
    """Read and validate an SHD/SSC-format file.

    ``require_extra=False`` accepts files without ``extra/speaker`` / ``extra/keys`` (home-made
    files); the official ones have both. Raises :class:`FileNotFoundError`,
    :class:`~eventprop.data.errors.UnreadableFileError` (an ``OSError``: truncated / not HDF5) or
    :class:`~eventprop.data.errors.DataFileError` (a ``ValueError``: layout violated), each naming
    the file and the field.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such file")
    try:
        is_hdf5 = h5py.is_hdf5(p)
    except OSError as exc:  # pragma: no cover - permission errors and the like
        raise UnreadableFileError(f"{p}: cannot be read ({exc})") from exc
    if not is_hdf5:
        raise UnreadableFileError(f"{p}: not an HDF5 file (no HDF5 signature)")
    try:
        f = h5py.File(p, "r")
    except (OSError, RuntimeError) as exc:
        raise UnreadableFileError(
            f"{p}: cannot be opened as HDF5 ({exc}); the file is probably truncated"
        ) from exc
    with f:
        try:
            present = {k: (k in f) for k in REQUIRED_KEYS}
        except (OSError, RuntimeError, KeyError) as exc:
            raise UnreadableFileError(f"{p}: damaged HDF5 structure ({exc})") from exc
        needed = REQUIRED_KEYS if require_extra else REQUIRED_KEYS[:3]
        missing = [k for k in needed if not present[k]]
        if missing:
            raise _fail(
                p,
                f"missing dataset {', '.join(repr(m) for m in missing)} (the SHD/SSC layout has "
                + ", ".join(REQUIRED_KEYS)
                + ")",
            )
        times, t_len = _ragged(p, f, "spikes/times", "float")
        units, u_len = _ragged(p, f, "spikes/units", "integer")
        labels = _integers(p, f, "labels")
        speakers = _integers(p, f, "extra/speaker") if present["extra/speaker"] else None
        class_names = None
        if present["extra/keys"]:
            raw_keys = np.asarray(_read(p, f["extra/keys"], "extra/keys")).ravel()
            class_names = tuple(
                k.decode("utf-8", "replace") if isinstance(k, bytes) else str(k) for k in raw_keys
            )
        attrs = {str(k): str(v) for k, v in f.attrs.items()}

    n = labels.size
    for name, count in (
        ("spikes/times", t_len.size),
        ("spikes/units", u_len.size),
        ("extra/speaker", None if speakers is None else speakers.size),
    ):
        if count is not None and count != n:
            raise _fail(p, f"'{name}' has {count} samples but 'labels' has {n}")
    if np.any(t_len != u_len):
        i = int(np.flatnonzero(t_len != u_len)[0])
        raise _fail(
            p,
            f"sample {i}: 'spikes/times' has {t_len[i]} spikes but 'spikes/units' has {u_len[i]}",
        )
    pointers = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(t_len, out=pointers[1:])

    if times.size:
        bad_t = ~np.isfinite(times) | (times < 0)
        if np.any(bad_t):
            j = int(np.flatnonzero(bad_t)[0])
            raise _fail(
                p,
                f"'spikes/times' sample {_first_sample(pointers, j)}: spike time {times[j]} s is "
                "negative or not finite",
            )
        umin, umax = int(units.min()), int(units.max())
        if umin < 0 or umax >= n_channels:
            j = int(np.flatnonzero((units < 0) | (units >= n_channels))[0])
            raise _fail(
                p,
                f"'spikes/units' sample {_first_sample(pointers, j)}: unit {int(units[j])} is "
                f"outside 0..{n_channels - 1}",
            )
    if labels.size and labels.min() < 0:
        raise _fail(p, f"'labels': negative label {int(labels.min())}")
    if class_names is not None and labels.size and labels.max() >= len(class_names):
        raise _fail(
            p,
            f"'labels': label {int(labels.max())} has no name in 'extra/keys' "
            f"({len(class_names)} classes)",
        )
    return RawSpikes(
        path=p,
        times=times,
        units=units,
        pointers=pointers,
        labels=labels,
        speakers=speakers,
        class_names=class_names,
        attrs=attrs,
    )


def write_hdf5(
    path: str | os.PathLike[str],
    times_s: Sequence[np.ndarray],
    units: Sequence[np.ndarray],
    labels: Sequence[int] | np.ndarray,
    *,
    speakers: Sequence[int] | np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    time_dtype: type | np.dtype = np.float16,
    unit_dtype: type | np.dtype = np.uint16,
    attrs: dict[str, str] | None = None,
) -> Path:
    """Write spike trains in the official SHD/SSC layout (atomically).

    ``times_s[i]`` / ``units[i]`` are sample ``i``'s spike times in SECONDS and channels. The
    defaults reproduce the official dtypes (float16 times, uint16 units), so a file written here
    loads exactly like a downloaded one; use it to package your own recordings.
    """
    if not (len(times_s) == len(units) == len(labels)):
        raise ValueError(
            f"times_s/units/labels: got {len(times_s)}/{len(units)}/{len(labels)} samples"
        )
    n = len(labels)
    speakers = np.zeros(n, dtype=np.uint16) if speakers is None else np.asarray(speakers)
    if class_names is None:
        n_classes = int(np.max(labels)) + 1 if n else 0
        class_names = [str(c) for c in range(n_classes)]
    t_type = h5py.vlen_dtype(np.dtype(time_dtype))
    u_type = h5py.vlen_dtype(np.dtype(unit_dtype))
    target = Path(path)
    with atomic_path(target) as tmp, h5py.File(tmp, "w") as f:
        t_ds = f.create_dataset("spikes/times", (n,), dtype=t_type)
        u_ds = f.create_dataset("spikes/units", (n,), dtype=u_type)
        for i in range(n):
            t_ds[i] = np.asarray(times_s[i], dtype=time_dtype)
            u_ds[i] = np.asarray(units[i], dtype=unit_dtype)
        f.create_dataset("labels", data=np.asarray(labels, dtype=np.uint16))
        f.create_dataset("extra/speaker", data=np.asarray(speakers, dtype=np.uint16))
        f.create_dataset("extra/keys", data=np.array([k.encode() for k in class_names]))
        for k, v in (attrs or {}).items():
            f.attrs[k] = v
    return target
