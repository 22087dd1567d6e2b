"""Exceptions of the data pipeline.

Every error names the file (or config entry) and the field at fault, so that a user who fed a
wrong file can fix it without reading the code. The classes derive from the built-in exception a
caller would naturally catch (``ValueError`` for bad content, ``OSError`` for I/O trouble).
"""

from __future__ import annotations

__all__ = [
    "ChecksumError",
    "DataFileError",
    "DownloadError",
    "UnreadableFileError",
]


class DataFileError(ValueError):
    """A data file was read but its content violates the expected layout."""


class UnreadableFileError(OSError):
    """A data file exists but cannot be opened (truncated, not HDF5, permission...)."""


class ChecksumError(ValueError):
    """A downloaded file does not match its expected checksum."""


class DownloadError(OSError):
    """A file could not be downloaded (no network, HTTP error, interrupted transfer)."""
