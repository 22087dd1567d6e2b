"""Reading and validating SHD/SSC-layout HDF5 files."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from eventprop.data.errors import DataFileError, UnreadableFileError
from eventprop.data.hdf5 import REQUIRED_KEYS, read_hdf5, write_hdf5

TIMES = [np.array([0.001, 0.5, 0.25]), np.array([0.0]), np.array([0.9, 0.1])]
UNITS = [np.array([0, 699, 350]), np.array([12]), np.array([5, 6])]
LABELS = [3, 0, 19]


def _official(path: Path, **kw) -> Path:
    return write_hdf5(path, TIMES, UNITS, LABELS, speakers=[4, 4, 7], **kw)


def _raw_file(path: Path, times, units, labels, speakers=None, keys=None, t_dtype=np.float32):
    """Write a file field by field, so that tests can break any rule."""
    with h5py.File(path, "w") as f:
        if times is not None:
            ds = f.create_dataset("spikes/times", (len(times),), dtype=h5py.vlen_dtype(t_dtype))
            for i, t in enumerate(times):
                ds[i] = np.asarray(t, dtype=t_dtype)
        if units is not None:
            ds = f.create_dataset("spikes/units", (len(units),), dtype=h5py.vlen_dtype(np.uint16))
            for i, u in enumerate(units):
                ds[i] = np.asarray(u, dtype=np.uint16)
        if labels is not None:
            f.create_dataset("labels", data=np.asarray(labels, dtype=np.uint16))
        f.create_dataset(
            "extra/speaker",
            data=np.zeros(len(labels or []), np.uint16) if speakers is None else speakers,
        )
        f.create_dataset("extra/keys", data=keys if keys is not None else np.array([b"k"] * 20))
    return path


@pytest.mark.parametrize(
    ("t_dtype", "u_dtype"),
    [(np.float16, np.uint16), (np.float32, np.uint16), (np.float64, np.int32)],
)
def test_round_trip_official_dtypes(tmp_path, t_dtype, u_dtype):
    p = _official(tmp_path / "a.h5", time_dtype=t_dtype, unit_dtype=u_dtype)
    raw = read_hdf5(p)
    assert len(raw) == 3
    assert raw.times.dtype == np.dtype(t_dtype)
    assert raw.pointers.tolist() == [0, 3, 4, 6]
    assert raw.units.tolist() == [0, 699, 350, 12, 5, 6]
    np.testing.assert_allclose(
        raw.times.astype(float), np.concatenate(TIMES), rtol=1e-3 if t_dtype == np.float16 else 1e-7
    )
    assert raw.labels.tolist() == LABELS
    assert raw.speakers.tolist() == [4, 4, 7]
    assert raw.class_names is not None and len(raw.class_names) == 20


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.h5: no such file"):
        read_hdf5(tmp_path / "nope.h5")


def test_not_hdf5(tmp_path):
    p = tmp_path / "text.h5"
    p.write_text("this is not an HDF5 file\n" * 100)
    with pytest.raises(UnreadableFileError, match=r"text\.h5.*not an HDF5 file"):
        read_hdf5(p)


def test_truncated_file(tmp_path):
    p = _official(tmp_path / "full.h5")
    data = p.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(UnreadableFileError, match=r"cut\.h5"):
        read_hdf5(cut)
    assert isinstance(UnreadableFileError("x"), OSError)


@pytest.mark.parametrize("key", REQUIRED_KEYS)
def test_missing_key(tmp_path, key):
    p = _official(tmp_path / "a.h5")
    with h5py.File(p, "a") as f:
        del f[key]
    with pytest.raises(DataFileError, match=rf"a\.h5: missing dataset '{key}'"):
        read_hdf5(p)


def test_extra_optional_when_lenient(tmp_path):
    p = _official(tmp_path / "a.h5")
    with h5py.File(p, "a") as f:
        del f["extra"]
    raw = read_hdf5(p, require_extra=False)
    assert raw.speakers is None and raw.class_names is None and len(raw) == 3


def test_mismatched_sample_counts(tmp_path):
    p = _raw_file(tmp_path / "m.h5", TIMES, UNITS, [1, 2])
    with pytest.raises(
        DataFileError, match=r"m\.h5: 'spikes/times' has 3 samples but 'labels' has 2"
    ):
        read_hdf5(p)


def test_mismatched_spike_counts(tmp_path):
    units = [UNITS[0], np.array([1, 2]), UNITS[2]]
    p = _raw_file(tmp_path / "m.h5", TIMES, units, LABELS)
    with pytest.raises(
        DataFileError, match=r"sample 1: 'spikes/times' has 1 spikes but 'spikes/units' has 2"
    ):
        read_hdf5(p)


def test_speaker_count_mismatch(tmp_path):
    p = _raw_file(tmp_path / "m.h5", TIMES, UNITS, LABELS, speakers=np.zeros(5, np.uint16))
    with pytest.raises(DataFileError, match="'extra/speaker' has 5 samples"):
        read_hdf5(p)


def test_unit_out_of_range(tmp_path):
    units = [UNITS[0], UNITS[1], np.array([5, 700])]
    p = _raw_file(tmp_path / "u.h5", TIMES, units, LABELS)
    with pytest.raises(
        DataFileError, match=r"u\.h5: 'spikes/units' sample 2: unit 700 is outside 0..699"
    ):
        read_hdf5(p)


@pytest.mark.parametrize("bad", [-0.5, np.nan, np.inf])
def test_bad_time(tmp_path, bad):
    times = [TIMES[0], np.array([bad]), TIMES[2]]
    p = _raw_file(tmp_path / "t.h5", times, UNITS, LABELS)
    with pytest.raises(
        DataFileError, match=r"t\.h5: 'spikes/times' sample 1: spike time .* negative or not finite"
    ):
        read_hdf5(p)


def test_label_without_class_name(tmp_path):
    p = _raw_file(tmp_path / "l.h5", TIMES, UNITS, [0, 1, 2], keys=np.array([b"a", b"b"]))
    with pytest.raises(DataFileError, match="label 2 has no name in 'extra/keys'"):
        read_hdf5(p)


def test_times_must_be_ragged(tmp_path):
    p = tmp_path / "dense.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("spikes/times", data=np.zeros((3, 4)))
        f.create_dataset("spikes/units", data=np.zeros((3, 4), np.uint16))
        f.create_dataset("labels", data=np.zeros(3, np.uint16))
        f.create_dataset("extra/speaker", data=np.zeros(3, np.uint16))
        f.create_dataset("extra/keys", data=np.array([b"a"]))
    with pytest.raises(DataFileError, match="'spikes/times' must be a 1-D ragged"):
        read_hdf5(p)


def test_integer_times_rejected(tmp_path):
    p = _raw_file(tmp_path / "i.h5", [np.array([1])], [np.array([1])], [0], t_dtype=np.int32)
    with pytest.raises(DataFileError, match="'spikes/times' holds int32, expected float"):
        read_hdf5(p)


def test_empty_samples_are_valid(tmp_path):
    p = write_hdf5(
        tmp_path / "e.h5", [np.zeros(0), np.array([0.2])], [np.zeros(0), np.array([3])], [0, 1]
    )
    raw = read_hdf5(p)
    assert raw.counts().tolist() == [0, 1]
