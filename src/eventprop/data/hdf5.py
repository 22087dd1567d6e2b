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

import errno
import mmap
import os
import struct
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
#: largest label accepted: the layout stores labels as uint16, and the number of readout
#: neurons follows the largest label (a damaged 2**40 would otherwise exhaust the memory)
MAX_LABEL = 65535
#: a dataset may declare at most this many bytes per byte of file (plus a fixed allowance):
#: a damaged header that declares 10**12 values would otherwise be read into memory
_EXPANSION = 1000
_ALLOWANCE = 256 * 2**20
#: bytes a row of a ragged (variable-length) dataset occupies at least in the file
_VLEN_ROW_BYTES = 16


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


def _one_line(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _dataset(path: Path, f: h5py.File, name: str) -> h5py.Dataset:
    """``f[name]``, which must be a dataset whose declared size the file can hold."""
    try:
        ds = f[name]
    except (KeyError, OSError, RuntimeError, ValueError, TypeError) as exc:
        raise UnreadableFileError(
            f"{path}: cannot open '{name}' ({_one_line(exc)}); the file is probably damaged"
        ) from exc
    if not isinstance(ds, h5py.Dataset):
        raise _fail(path, f"'{name}' is a {type(ds).__name__.lower()}, expected a dataset")
    try:
        per_value = (
            _VLEN_ROW_BYTES if h5py.check_vlen_dtype(ds.dtype) is not None else ds.dtype.itemsize
        )
        declared = int(ds.size) * max(int(per_value), 1)
    except (OSError, RuntimeError, ValueError, TypeError) as exc:
        raise UnreadableFileError(
            f"{path}: cannot read the header of '{name}' ({_one_line(exc)}); the file is "
            "probably damaged"
        ) from exc
    if declared > _EXPANSION * path.stat().st_size + _ALLOWANCE:
        raise _fail(
            path,
            f"'{name}' declares {ds.shape} values ({declared} bytes) in a file of "
            f"{path.stat().st_size} bytes: a damaged header",
        )
    return ds


def _read(path: Path, ds: h5py.Dataset, name: str) -> np.ndarray:
    try:
        return ds[()]
    except (OSError, RuntimeError, ValueError, TypeError, KeyError) as exc:
        raise UnreadableFileError(
            f"{path}: cannot read '{name}' ({_one_line(exc)}); the file is probably truncated "
            "or damaged"
        ) from exc


def _ragged(path: Path, f: h5py.File, name: str, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Read a ragged dataset; returns (flat values, per-row lengths)."""
    ds = _dataset(path, f, name)
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
    if any(not isinstance(r, np.ndarray) or r.ndim != 1 for r in rows):
        raise _fail(path, f"'{name}' has rows that are not 1-D arrays")
    lengths = np.fromiter((r.size for r in rows), dtype=np.int64, count=len(rows))
    if int(lengths.sum()) > _EXPANSION * path.stat().st_size + _ALLOWANCE:
        raise _fail(path, f"'{name}' declares {int(lengths.sum())} values: a damaged file")
    flat = np.concatenate(rows) if len(rows) else np.zeros(0, dtype=base)
    return flat.astype(base, copy=False), lengths


def _check_global_heaps(path: Path, size_of_lengths: int) -> None:
    """Refuse global heap collections that make libhdf5 loop for ever.

    Ragged rows live in global heap collections (``GCOL``). libhdf5 walks a collection object
    by object, advancing by each object's size; a free-space object (index 0) of size 0 does
    not advance, and the read never returns (a zeroed range in a damaged file does this). The
    walk is repeated here, in Python, on every collection the file holds, before any read.
    """
    header = 4 + 1 + 3 + size_of_lengths
    obj_header = 2 + 2 + 4 + size_of_lengths
    fmt = "<Q" if size_of_lengths == 8 else "<I"
    size = path.stat().st_size
    if size == 0:
        return
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        start = mm.find(b"GCOL")
        while start >= 0:
            if start + header <= size and mm[start + 4] == 1:
                (length,) = struct.unpack_from(fmt, mm, start + 8)
                end = start + length
                if header <= length and end <= size:  # a plausible collection: walk it
                    pos = start + header
                    while pos + obj_header <= end:
                        index = int.from_bytes(mm[pos : pos + 2], "little")
                        (obj,) = struct.unpack_from(fmt, mm, pos + 8)
                        step = obj_header + (obj + 7) // 8 * 8 if index > 0 else obj
                        if step <= 0:
                            raise _fail(
                                path,
                                f"damaged global heap (ragged-array storage) at byte {pos}: "
                                "the file is corrupt (reading it would never end)",
                            )
                        pos += step
            start = mm.find(b"GCOL", start + 4)


def _integers(path: Path, f: h5py.File, name: str) -> np.ndarray:
    ds = _dataset(path, f, name)
    if ds.ndim != 1:
        raise _fail(path, f"'{name}' must be a 1-D dataset, got shape {ds.shape}")
    values = np.asarray(_read(path, ds, name))
    if np.issubdtype(values.dtype, np.floating):
        if values.size and not np.all(np.isfinite(values) & (values == np.round(values))):
            raise _fail(path, f"'{name}' must hold whole numbers")
        if values.size and np.abs(values).max() >= 2.0**62:
            raise _fail(path, f"'{name}': value {np.abs(values).max()} is out of range")
    elif not np.issubdtype(values.dtype, np.integer) or values.dtype == np.bool_:
        raise _fail(path, f"'{name}' must hold integers, got dtype {values.dtype}")
    elif values.size and values.dtype == np.uint64 and values.max() > np.iinfo(np.int64).max:
        raise _fail(path, f"'{name}': value {values.max()} is out of range")
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
        try:
            size_of_lengths = int(f.id.get_create_plist().get_sizes()[1])
        except (OSError, RuntimeError, ValueError, TypeError) as exc:  # pragma: no cover
            raise UnreadableFileError(f"{p}: damaged HDF5 superblock ({_one_line(exc)})") from exc
        _check_global_heaps(p, size_of_lengths)
        times, t_len = _ragged(p, f, "spikes/times", "float")
        units, u_len = _ragged(p, f, "spikes/units", "integer")
        labels = _integers(p, f, "labels")
        speakers = _integers(p, f, "extra/speaker") if present["extra/speaker"] else None
        class_names = None
        if present["extra/keys"]:
            raw_keys = np.asarray(_read(p, _dataset(p, f, "extra/keys"), "extra/keys")).ravel()
            class_names = tuple(
                k.decode("utf-8", "replace") if isinstance(k, bytes) else str(k) for k in raw_keys
            )
        try:
            attrs = {str(k): str(v) for k, v in f.attrs.items()}
        except (OSError, RuntimeError, ValueError, TypeError, KeyError) as exc:
            raise UnreadableFileError(
                f"{p}: cannot read the file's attributes ({_one_line(exc)}); damaged file"
            ) from exc

    n = labels.size
    if n == 0:
        raise _fail(
            p,
            "holds no samples ('labels' is empty): nothing to train or evaluate on; check that "
            "the file was written completely",
        )
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
    if labels.size and labels.max() > MAX_LABEL:
        raise _fail(
            p,
            f"'labels': label {int(labels.max())} is above {MAX_LABEL} (labels are class indices)",
        )
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
    # built in memory, then written with plain writes: libhdf5 failing to write (disk full)
    # raises a cascade of RuntimeErrors and can even crash, a plain write raises one OSError
    with h5py.File(f"{target.name}.image", "w", driver="core", backing_store=False) as f:
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
        f.flush()
        image = f.id.get_file_image()
    try:
        with atomic_path(target) as tmp:  # the file appears complete or not at all
            with open(tmp, "wb") as fh:
                fh.write(image)
            # the temporary file is private (0600); the data file gets the usual mode
            os.chmod(tmp, 0o666 & ~_umask())
    except OSError as exc:  # disk full and the like, named with the file
        code = exc.errno if exc.errno is not None else errno.EIO
        raise OSError(
            code,
            f"{target}: cannot write the data file ({exc.strerror or _one_line(exc, 160)}; "
            f"{len(image)} bytes); nothing was written there: free space (or fix the disk) "
            "and write it again",
        ) from exc
    return target


def _umask() -> int:
    """The process's umask (reading it means setting it; restored at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
