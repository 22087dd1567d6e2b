"""Where data and preprocessed caches live.

One root directory holds the downloaded HDF5 files and, below ``preprocessed/``, the binned
caches. It defaults to the user's cache directory (platformdirs), because everything in it can
be regenerated; ``EVENTPROP_DATA_DIR`` or an explicit argument overrides it (CI, shared disks).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

__all__ = [
    "DATA_DIR_ENV",
    "data_dir",
    "preprocessed_dir",
]

#: environment variable that overrides the default data directory
DATA_DIR_ENV = "EVENTPROP_DATA_DIR"


def data_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The data directory: ``override``, else ``$EVENTPROP_DATA_DIR``, else the user cache dir.

    The directory is not created here; writers create it when they need it.
    """
    if override is not None and str(override) != "":
        return Path(override).expanduser()
    env = os.environ.get(DATA_DIR_ENV, "")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_cache_dir("eventprop")) / "datasets"


def preprocessed_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """Directory of preprocessed caches: ``<data dir>/preprocessed`` unless given explicitly."""
    if override is not None and str(override) != "":
        return Path(override).expanduser()
    return data_dir() / "preprocessed"
