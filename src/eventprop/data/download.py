"""Download of the official SHD/SSC files: fetch, verify, decompress, write atomically.

The Zenke lab serves gzip-compressed HDF5 files (``shd_train.h5.gz`` ...) under
https://zenkelab.org/datasets/ together with an ``md5sums.txt``. Each file is streamed to a
temporary file while its MD5 and SHA-256 are computed, compared with the expected checksum,
decompressed to a second temporary file, checked to be HDF5, and only then renamed to its final
name (``shd_train.h5``) with ``os.replace``. An interrupted or corrupt download therefore never
leaves a file under the final name, which is what later runs look for.

Expected checksums, in order of precedence: the ones the caller supplies (a mapping or a
``md5sums.txt``-style file), the built-in table :data:`KNOWN_MD5`, the server's ``md5sums.txt``.
A file with none of these is refused rather than trusted.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import os
import re
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

import h5py
from tqdm import tqdm

from eventprop.data.cache import atomic_path
from eventprop.data.errors import ChecksumError, DownloadError
from eventprop.data.paths import data_dir

__all__ = [
    "BASE_URL",
    "BASE_URL_ENV",
    "DATASET_FILES",
    "KNOWN_MD5",
    "base_url",
    "download_dataset",
    "download_file",
    "parse_checksums",
]

#: the Zenke lab's data server (mirrors: https://compneuro.net/datasets/)
BASE_URL = "https://zenkelab.org/datasets/"
#: environment variable that overrides :data:`BASE_URL` (tests point it at a local server)
BASE_URL_ENV = "EVENTPROP_DATA_URL"

#: compressed files of each dataset, in the order they are fetched
DATASET_FILES: dict[str, tuple[str, ...]] = {
    "shd": ("shd_train.h5.gz", "shd_test.h5.gz"),
    "ssc": ("ssc_train.h5.gz", "ssc_valid.h5.gz", "ssc_test.h5.gz"),
}

#: MD5 of the compressed official files, as published in public code that downloads them
#: (SHD: the same values in several independent loaders of the compneuro.net mirror; SSC valid:
#: a reproduction package citing zenkelab.org). Files missing here are checked against the
#: server's md5sums.txt or a user-supplied list.
KNOWN_MD5: dict[str, str] = {
    "shd_train.h5.gz": "d47c9825dee33347913e8ce0f2be08b0",
    "shd_test.h5.gz": "3062a80ec0c5719404d5b02e166543b1",
    "ssc_valid.h5.gz": "555645b13e15fe270fbfe39cb763f805",
}

#: temporaries untouched for this long are leftovers of a killed run
STALE_SECONDS = 600.0

_HEX = re.compile(r"^[0-9a-fA-F]{32}$|^[0-9a-fA-F]{64}$")


def base_url(override: str | None = None) -> str:
    """Server address: ``override``, else ``$EVENTPROP_DATA_URL``, else :data:`BASE_URL`."""
    url = override or os.environ.get(BASE_URL_ENV, "") or BASE_URL
    return url if url.endswith("/") else url + "/"


def parse_checksums(text: str, source: str = "checksum list") -> dict[str, str]:
    """Parse ``md5sum``/``sha256sum`` output (``<hex>  <file name>`` per line; ``#`` comments).

    Returns ``{file name: lower-case hex}``; the digest length tells MD5 (32) from SHA-256 (64).
    """
    out: dict[str, str] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2 or not _HEX.match(parts[0]):
            raise ValueError(f"{source}: line {lineno} is not '<md5 or sha256>  <file name>'")
        out[Path(parts[1].lstrip("*")).name] = parts[0].lower()
    return out


def _manual_help(files: Sequence[str], directory: Path, url: str) -> str:
    names = ", ".join(files)
    finals = ", ".join(f.removesuffix(".gz") for f in files)
    return (
        f"To install them by hand: download {names} from {url} on a machine with network "
        f"access, decompress them (gunzip), and put {finals} in {directory} (or point "
        f"EVENTPROP_DATA_DIR / --dir at the folder that holds them)."
    )


def _fetch_text(url: str, timeout: float) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError, http.client.HTTPException):
        return None


def _stream(url: str, out: BinaryIO, timeout: float, progress: bool, label: str) -> tuple[str, str]:
    """Copy ``url`` into the open file ``out``; returns (md5, sha256) of the bytes."""
    md5, sha = hashlib.md5(), hashlib.sha256()
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        length = resp.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        received = 0
        with tqdm(
            total=total,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=label,
            disable=not progress,
        ) as bar:
            while True:
                block = resp.read(1 << 20)
                if not block:
                    break
                out.write(block)
                md5.update(block)
                sha.update(block)
                received += len(block)
                bar.update(len(block))
        if total is not None and received != total:
            raise DownloadError(f"{url}: transfer interrupted after {received} of {total} bytes")
    return md5.hexdigest(), sha.hexdigest()


def download_file(
    name: str,
    directory: Path,
    *,
    url: str,
    expected: str,
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Fetch one ``.gz`` file, check it against ``expected`` (MD5 or SHA-256 hex), decompress.

    Returns the path of the decompressed file; nothing is left under that name on failure.
    """
    final = directory / name.removesuffix(".gz")
    directory.mkdir(parents=True, exist_ok=True)
    fd, gz_tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                md5, sha = _stream(url, out, timeout, progress, name)
            except DownloadError:
                raise
            except urllib.error.HTTPError as exc:
                raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
            except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
                reason = getattr(exc, "reason", None) or exc
                raise DownloadError(f"{url}: download failed ({reason})") from exc
        got = md5 if len(expected) == 32 else sha
        if got != expected.lower():
            kind = "MD5" if len(expected) == 32 else "SHA-256"
            raise ChecksumError(
                f"{name}: {kind} checksum mismatch (expected {expected.lower()}, got {got}); "
                f"the download from {url} is corrupt or the file changed on the server. "
                "Nothing was kept."
            )
        with atomic_path(final) as h5_tmp:
            try:
                with gzip.open(gz_tmp, "rb") as src, open(h5_tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst, length=1 << 20)
            except (OSError, EOFError) as exc:
                raise ChecksumError(f"{name}: not a valid gzip file ({exc})") from exc
            if not h5py.is_hdf5(h5_tmp):
                raise ChecksumError(f"{name}: decompressed content is not an HDF5 file")
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(gz_tmp)
    return final


def _clean_stale(directory: Path, names: Sequence[str]) -> None:
    """Remove temporaries left by a killed earlier run (never files under a final name)."""
    if not directory.is_dir():
        return
    for name in names:
        for stem in (name, name.removesuffix(".gz")):
            for stale in directory.glob(f".{stem}.*.part"):
                with contextlib.suppress(OSError):
                    # an active download keeps writing; only long-untouched leftovers go
                    if time.time() - stale.stat().st_mtime > STALE_SECONDS:
                        stale.unlink()


def download_dataset(
    dataset: str,
    directory: str | os.PathLike[str] | None = None,
    *,
    url: str | None = None,
    checksums: Mapping[str, str] | str | os.PathLike[str] | None = None,
    force: bool = False,
    timeout: float = 60.0,
    progress: bool = True,
) -> list[Path]:
    """Download, verify and decompress all files of ``dataset`` (``"shd"`` or ``"ssc"``).

    ``directory`` defaults to :func:`eventprop.data.paths.data_dir`; ``url`` to :func:`base_url`.
    ``checksums`` is a mapping or the path of an ``md5sums.txt``-style file; it overrides the
    built-in table. Files already present are kept unless ``force``. Returns the paths of the
    decompressed files. Raises :class:`~eventprop.data.errors.DownloadError` (no network: the
    message says where to put the files by hand) or :class:`~eventprop.data.errors.ChecksumError`.
    """
    key = dataset.lower()
    if key not in DATASET_FILES:
        raise ValueError(f"dataset: expected one of {sorted(DATASET_FILES)}, got {dataset!r}")
    files = DATASET_FILES[key]
    target = data_dir(directory)
    server = base_url(url)
    supplied: dict[str, str] = {}
    if isinstance(checksums, Mapping):
        supplied = {Path(k).name: v.lower() for k, v in checksums.items()}
    elif checksums is not None:
        path = Path(checksums)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: checksum list not found")
        supplied = parse_checksums(path.read_text(), source=str(path))

    _clean_stale(target, files)
    todo = [f for f in files if force or not (target / f.removesuffix(".gz")).is_file()]
    server_sums: dict[str, str] | None = None
    if any(f not in supplied and f not in KNOWN_MD5 for f in todo):
        text = _fetch_text(server + "md5sums.txt", timeout)
        if text is not None:
            with contextlib.suppress(ValueError):
                server_sums = parse_checksums(text, source=server + "md5sums.txt")
    results = []
    for name in files:
        final = target / name.removesuffix(".gz")
        if name not in todo:
            results.append(final)
            continue
        expected = supplied.get(name) or KNOWN_MD5.get(name) or (server_sums or {}).get(name)
        if expected is None:
            raise ChecksumError(
                f"{name}: no checksum to verify it against (none supplied, none built in, and "
                f"{server}md5sums.txt could not be read or does not list it). Pass a checksum "
                "list (--checksums FILE with '<md5>  <file name>' lines). "
                + _manual_help(files, target, server)
            )
        try:
            results.append(
                download_file(
                    name,
                    target,
                    url=server + name,
                    expected=expected,
                    timeout=timeout,
                    progress=progress,
                )
            )
        except DownloadError as exc:
            raise DownloadError(f"{exc}. {_manual_help(files, target, server)}") from exc
    return results
