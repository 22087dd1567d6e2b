"""The SHD-format file in ../shared/data (when present): what its README promises.

The path is resolved from this file (tests/data/ -> repository root -> ../shared/data); every
test skips cleanly when the file is absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from eventprop.cli.main import main
from eventprop.data.cache import file_sha256
from eventprop.data.collate import event_batch_from_data
from eventprop.data.hdf5 import read_hdf5
from eventprop.data.preprocess import BinningConfig, load_preprocessed

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED = REPO_ROOT.parent / "shared" / "data"
FILE = SHARED / "spoken_digits_espeak.h5"


@pytest.fixture(scope="module")
def shared_file() -> Path:
    if not FILE.is_file():
        pytest.skip(f"{FILE} is not present")
    return FILE


def test_checksum_matches_sha256sums(shared_file):
    sums = SHARED / "SHA256SUMS"
    if not sums.is_file():
        pytest.skip("SHA256SUMS is not present")
    listed = dict(reversed(line.split()) for line in sums.read_text().splitlines() if line.strip())
    assert listed[shared_file.name] == file_sha256(shared_file)


def test_readme_promises(shared_file):
    raw = read_hdf5(shared_file)
    assert len(raw) == 20
    assert sorted(raw.labels.tolist()) == list(range(20))
    assert raw.units.min() >= 0 and raw.units.max() <= 699
    t = raw.times.astype(np.float64)
    assert np.all(np.isfinite(t)) and t.min() >= 0 and t.max() < 1.0
    counts = raw.counts()
    assert np.all(counts > 0)
    assert 1475 <= counts.min() and counts.max() <= 8630  # README: 1475 to 8630 spikes
    assert raw.class_names is not None and len(raw.class_names) == 20


def test_binned_through_cache(shared_file, tmp_path):
    data = load_preprocessed(
        shared_file, BinningConfig(dt=1.0, duration_ms=1000.0), cache_dir=tmp_path
    )
    again = load_preprocessed(
        shared_file, BinningConfig(dt=1.0, duration_ms=1000.0), cache_dir=tmp_path
    )
    np.testing.assert_array_equal(data.channel, again.channel)
    raw = read_hdf5(shared_file)
    assert len(data) == 20 and data.n_channels == 700 and data.n_steps == 1000
    # binning only removes duplicates within a (step, channel): never more spikes than the file
    assert np.all(data.counts() <= raw.counts()) and np.all(data.counts() > 0)
    batch = event_batch_from_data(data, np.arange(20))
    assert batch.counts_per_sample().tolist() == data.counts().tolist()


def test_cli_info(shared_file, capsys):
    assert main(["data", "info", str(shared_file)]) == 0
    out = capsys.readouterr().out
    assert "samples:   20" in out and "Not SHD" in out
