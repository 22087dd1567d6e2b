"""Fuzzing the SHD-format reader and the loaders behind it with a seeded generator.

Every case must end in a correct result or a clean error: ``FileNotFoundError``,
:class:`~eventprop.data.errors.DataFileError` (``ValueError``) or
:class:`~eventprop.data.errors.UnreadableFileError` (``OSError``), on one line that names the
file -- never another exception (a traceback), a hang, or a partial file left behind.

Cases (all seeded, so a failure reproduces): 400 byte-level corruptions of a valid file
(random byte flips, zeroed ranges, truncations, appended garbage) read by ``read_hdf5`` and
binned through ``load_preprocessed`` (cache on: no partial cache file may remain), and 45
structural mutations written with h5py (missing datasets, groups in place of datasets, wrong
dtypes and shapes, length mismatches, NaN / infinite / negative / huge values, empty files,
headers that declare 10**12 values).
"""

from __future__ import annotations

import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from eventprop.data.errors import DataFileError, UnreadableFileError
from eventprop.data.hdf5 import MAX_LABEL, read_hdf5, write_hdf5
from eventprop.data.preprocess import BinningConfig, load_preprocessed

N_BYTE_CASES = 400
CLEAN = (FileNotFoundError, DataFileError, UnreadableFileError)


def _valid(path: Path, n: int = 6, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    times = [np.sort(rng.uniform(0, 0.9, rng.integers(0, 40))) for _ in range(n)]
    units = [rng.integers(0, 700, len(t)) for t in times]
    return write_hdf5(
        path,
        times,
        units,
        rng.integers(0, 4, n),
        speakers=rng.integers(0, 3, n),
        class_names=["a", "b", "c", "d"],
    )


def _check_result(raw, path: Path) -> None:
    """What a successful read guarantees, whatever the file was."""
    n = len(raw)
    assert n > 0 and raw.pointers.shape == (n + 1,) and raw.pointers[0] == 0
    assert np.all(np.diff(raw.pointers) >= 0) and raw.pointers[-1] == raw.times.size
    assert raw.units.size == raw.times.size
    if raw.times.size:
        assert np.all(np.isfinite(raw.times)) and raw.times.min() >= 0
        assert raw.units.min() >= 0 and raw.units.max() < 700
    assert raw.labels.min() >= 0 and raw.labels.max() <= MAX_LABEL
    assert raw.speakers is None or raw.speakers.shape == (n,)


def _attempt(path: Path, cache_dir: Path) -> str:
    """Read and bin ``path``; returns 'ok' or 'error', failing the test on anything else."""
    start = time.perf_counter()
    outcome = "ok"
    try:
        _check_result(read_hdf5(path, require_extra=False), path)
        data = load_preprocessed(
            path,
            BinningConfig(dt=5.0, duration_ms=1000.0),
            cache=True,
            cache_dir=cache_dir,
            require_extra=False,
        )
        assert len(data) > 0
    except CLEAN as exc:
        msg = str(exc)
        assert "\n" not in msg, msg
        assert str(path) in msg, msg
        outcome = "error"
    took = time.perf_counter() - start
    assert took < 10.0, f"{path.name}: {took:.1f} s"
    leftovers = [p for p in cache_dir.rglob("*") if p.suffix in (".part", ".tmp")]
    assert not leftovers, leftovers
    return outcome


def test_byte_level_corruptions(tmp_path):
    base = _valid(tmp_path / "base.h5").read_bytes()
    rng = np.random.default_rng(2024)
    outcomes = {"ok": 0, "error": 0}
    for case in range(N_BYTE_CASES):
        data = bytearray(base)
        kind = case % 4
        if kind == 0:  # flip random bytes
            for pos in rng.integers(0, len(data), rng.integers(1, 32)):
                data[pos] ^= int(rng.integers(1, 256))
        elif kind == 1:  # zero a range
            lo = int(rng.integers(0, len(data)))
            hi = min(len(data), lo + int(rng.integers(1, 512)))
            data[lo:hi] = bytes(hi - lo)
        elif kind == 2:  # truncate
            data = data[: int(rng.integers(0, len(data)))]
        else:  # garbage appended or overwritten at the end
            data[-int(rng.integers(1, 256)) :] = rng.bytes(int(rng.integers(1, 256)))
        path = tmp_path / f"c{case}.h5"
        path.write_bytes(bytes(data))
        outcomes[_attempt(path, tmp_path / "cache")] += 1
    assert sum(outcomes.values()) == N_BYTE_CASES
    assert outcomes["error"] > 0  # the corruptions do reach the checks


def _write(path: Path, items: dict) -> Path:
    """A file with exactly ``items`` (name -> array / ('vlen', rows, dtype) / 'group')."""
    with h5py.File(path, "w") as f:
        for name, value in items.items():
            if isinstance(value, str) and value == "group":
                f.create_group(name)
            elif isinstance(value, tuple) and value[0] == "vlen":
                _, rows, dtype = value
                ds = f.create_dataset(name, (len(rows),), dtype=h5py.vlen_dtype(dtype))
                for i, r in enumerate(rows):
                    ds[i] = np.asarray(r, dtype=dtype)
            elif isinstance(value, tuple) and value[0] == "huge":
                f.create_dataset(name, shape=(10**12,), dtype=value[1], chunks=(1024,))
            else:
                f.create_dataset(name, data=value)
    return path


def _good_items(n: int = 4) -> dict:
    return {
        "spikes/times": ("vlen", [[0.1, 0.2]] * n, np.float32),
        "spikes/units": ("vlen", [[3, 4]] * n, np.uint16),
        "labels": np.arange(n, dtype=np.uint16) % 2,
        "extra/speaker": np.zeros(n, np.uint16),
        "extra/keys": np.array([b"a", b"b"]),
    }


def _mutations() -> list[tuple[str, dict, str]]:
    """(name, items, expected: 'ok' or 'error')."""
    out: list[tuple[str, dict, str]] = [("valid", {}, "ok")]
    for key in _good_items():
        lenient = key.startswith("extra/")  # the loaders accept files without extra/
        out.append((f"missing {key}", {key: None}, "ok" if lenient else "error"))
        out.append((f"group {key}", {key: "group"}, "error"))
    out += [
        ("int times", {"spikes/times": ("vlen", [[1, 2]] * 4, np.int32)}, "error"),
        ("float units", {"spikes/units": ("vlen", [[3.0, 4.0]] * 4, np.float64)}, "error"),
        ("plain times", {"spikes/times": np.zeros((4, 2))}, "error"),
        ("2-D labels", {"labels": np.zeros((2, 2), np.uint16)}, "error"),
        ("scalar labels", {"labels": np.uint16(1)}, "error"),
        ("string labels", {"labels": np.array([b"x"] * 4)}, "error"),
        ("bool labels", {"labels": np.array([True, False] * 2)}, "error"),
        ("complex labels", {"labels": np.ones(4, np.complex64)}, "error"),
        ("fractional labels", {"labels": np.array([0.5, 1, 0, 1])}, "error"),
        ("nan labels", {"labels": np.array([np.nan, 1, 0, 1])}, "error"),
        ("float labels", {"labels": np.array([0.0, 1, 0, 1])}, "ok"),
        ("negative label", {"labels": np.array([-1, 1, 0, 1])}, "error"),
        ("label beyond keys", {"labels": np.array([0, 1, 0, 7])}, "error"),
        ("huge label", {"labels": np.array([0, 1, 0, 2**40])}, "error"),
        ("huge uint64 label", {"labels": np.array([0, 1, 0, 2**64 - 1], np.uint64)}, "error"),
        ("huge float label", {"labels": np.array([0, 1, 0, 1e300])}, "error"),
        ("fewer labels", {"labels": np.zeros(3, np.uint16)}, "error"),
        ("more speakers", {"extra/speaker": np.zeros(9, np.uint16)}, "error"),
        ("ragged mismatch", {"spikes/units": ("vlen", [[3]] * 4, np.uint16)}, "error"),
        ("nan time", {"spikes/times": ("vlen", [[np.nan, 0.2]] * 4, np.float32)}, "error"),
        ("inf time", {"spikes/times": ("vlen", [[np.inf, 0.2]] * 4, np.float16)}, "error"),
        ("negative time", {"spikes/times": ("vlen", [[-0.1, 0.2]] * 4, np.float64)}, "error"),
        ("huge time", {"spikes/times": ("vlen", [[1e30, 0.2]] * 4, np.float64)}, "ok"),
        ("unit 700", {"spikes/units": ("vlen", [[3, 700]] * 4, np.uint16)}, "error"),
        ("negative unit", {"spikes/units": ("vlen", [[3, -4]] * 4, np.int32)}, "error"),
        ("huge unit", {"spikes/units": ("vlen", [[3, 2**62]] * 4, np.int64)}, "error"),
        (
            "empty file",
            {
                "spikes/times": ("vlen", [], np.float32),
                "spikes/units": ("vlen", [], np.uint16),
                "labels": np.zeros(0, np.uint16),
                "extra/speaker": np.zeros(0, np.uint16),
            },
            "error",
        ),
        ("no spikes at all", {"spikes/times": ("vlen", [[]] * 4, np.float32)}, "error"),
        (
            "empty samples",
            {
                "spikes/times": ("vlen", [[]] * 4, np.float32),
                "spikes/units": ("vlen", [[]] * 4, np.uint16),
            },
            "ok",
        ),
        ("declared 10**12 labels", {"labels": ("huge", np.uint16)}, "error"),
        ("declared 10**12 speakers", {"extra/speaker": ("huge", np.int64)}, "error"),
        ("declared 10**12 keys", {"extra/keys": ("huge", "S8")}, "error"),
        ("keys as numbers", {"extra/keys": np.arange(2)}, "ok"),
        ("2-D keys", {"extra/keys": np.array([[b"a", b"b"]])}, "ok"),
    ]
    return out


@pytest.mark.parametrize("name,change,expected", _mutations(), ids=lambda x: str(x)[:30])
def test_structural_mutations(tmp_path, name, change, expected):
    items = _good_items()
    for key, value in change.items():
        if value is None:
            del items[key]
        else:
            items[key] = value
    path = _write(tmp_path / "m.h5", items)
    assert _attempt(path, tmp_path / "cache") == expected, name


def test_number_of_cases_is_what_the_docs_say():
    assert N_BYTE_CASES == 400 and len(_mutations()) == 45
