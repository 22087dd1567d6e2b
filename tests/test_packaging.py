"""Installation-facing behaviour: where numba caches the compiled kernels, the version."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys

import eventprop

_PROBE = "import eventprop, numba; print(numba.config.CACHE_DIR)"


def _cache_dir(env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, env=env, check=True
    )
    return out.stdout.strip()


def test_numba_cache_goes_to_the_user_cache_directory(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    assert _cache_dir(env) == str(tmp_path / "cache" / "eventprop" / "numba")


def test_users_numba_cache_dir_is_respected(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "mine"))
    assert _cache_dir(env) == str(tmp_path / "mine")


def test_numba_imported_first_is_told_too(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    probe = "import numba, eventprop; print(numba.config.CACHE_DIR)"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == str(tmp_path / "cache" / "eventprop" / "numba")


def test_version_is_the_distributions():
    assert importlib.metadata.version("eventprop") == eventprop.__version__
