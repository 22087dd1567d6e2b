"""Download against a local HTTP server: checksums, atomic writes, offline help, CLI."""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import http.server
import os
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from eventprop.cli.main import main
from eventprop.data.download import KNOWN_MD5, base_url, parse_checksums
from eventprop.data.download import download_dataset as download
from eventprop.data.errors import ChecksumError, DownloadError
from eventprop.data.hdf5 import read_hdf5, write_hdf5
from eventprop.data.paths import data_dir


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder; ``/short/<name>`` announces more bytes than it sends (a cut transfer)."""

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/short/"):
            body = (Path(self.directory) / self.path.removeprefix("/short/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body) + 1000))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(_Handler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _publish(root: Path, name: str, seed: int) -> tuple[bytes, str]:
    """Write a small valid SHD-layout file, gzip it under ``name``; returns (h5 bytes, md5)."""
    rng = np.random.default_rng(seed)
    times = [np.sort(rng.uniform(0, 1, 30)) for _ in range(4)]
    units = [rng.integers(0, 700, 30) for _ in range(4)]
    h5 = write_hdf5(root / (name + ".tmp.h5"), times, units, [0, 1, 2, 3])
    raw = h5.read_bytes()
    h5.unlink()
    gz = gzip.compress(raw)
    (root / name).write_bytes(gz)
    return raw, hashlib.md5(gz).hexdigest()


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def _only_final_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_download_verifies_and_decompresses(server, tmp_path):
    root, url = server
    raw_train, md5_train = _publish(root, "shd_train.h5.gz", 1)
    raw_test, md5_test = _publish(root, "shd_test.h5.gz", 2)
    target = tmp_path / "data"
    paths = download(
        "shd",
        target,
        url=url,
        checksums={"shd_train.h5.gz": md5_train, "shd_test.h5.gz": md5_test},
        progress=False,
    )
    assert [p.name for p in paths] == ["shd_train.h5", "shd_test.h5"]
    assert paths[0].read_bytes() == raw_train and paths[1].read_bytes() == raw_test
    assert _only_final_files(target) == ["shd_test.h5", "shd_train.h5"]  # no .gz, no temporaries
    assert len(read_hdf5(paths[0])) == 4


def test_corrupt_file_is_rejected_and_nothing_kept(server, tmp_path):
    root, url = server
    _, md5 = _publish(root, "shd_train.h5.gz", 1)
    (root / "shd_train.h5.gz").write_bytes(b"\x1f\x8b" + os.urandom(500))  # corrupted on server
    target = tmp_path / "data"
    with pytest.raises(
        ChecksumError, match=rf"shd_train\.h5\.gz: MD5 checksum mismatch \(expected {md5}"
    ):
        download("shd", target, url=url, checksums={"shd_train.h5.gz": md5}, progress=False)
    assert not target.exists() or _only_final_files(target) == []


def test_sha256_checksum_file_and_cli(server, tmp_path, capsys):
    root, url = server
    lines = []
    for i, name in enumerate(("shd_train.h5.gz", "shd_test.h5.gz")):
        _publish(root, name, i)
        lines.append(f"{hashlib.sha256((root / name).read_bytes()).hexdigest()}  {name}")
    sums = tmp_path / "SHA256SUMS"
    sums.write_text("# supplied by hand\n" + "\n".join(lines) + "\n")
    target = tmp_path / "data"
    rc = main(["data", "download", "shd", "--dir", str(target), "--base-url", url,
               "--checksums", str(sums), "--no-progress"])  # fmt: skip
    assert rc == 0
    out = capsys.readouterr().out.split()
    assert out == [str(target / "shd_train.h5"), str(target / "shd_test.h5")]


def test_server_md5sums_used_when_no_checksum_known(server, tmp_path):
    root, url = server
    _, md5_train = _publish(root, "ssc_train.h5.gz", 1)
    _, md5_valid = _publish(root, "ssc_valid.h5.gz", 2)
    _, md5_test = _publish(root, "ssc_test.h5.gz", 3)
    (root / "md5sums.txt").write_text(f"{md5_train}  ssc_train.h5.gz\n{md5_test}  ssc_test.h5.gz\n")
    # ssc_valid has a built-in checksum (of the official file): a supplied one overrides it
    paths = download(
        "ssc", tmp_path / "d", url=url, checksums={"ssc_valid.h5.gz": md5_valid}, progress=False
    )
    assert [p.name for p in paths] == ["ssc_train.h5", "ssc_valid.h5", "ssc_test.h5"]


def test_builtin_checksum_applies_to_mirrors(server, tmp_path):
    root, url = server
    _, md5_train = _publish(root, "ssc_train.h5.gz", 1)
    _publish(root, "ssc_valid.h5.gz", 2)  # not the official file: its MD5 differs from KNOWN_MD5
    assert "ssc_valid.h5.gz" in KNOWN_MD5
    target = tmp_path / "d"
    with pytest.raises(
        ChecksumError, match=rf"ssc_valid\.h5\.gz: MD5 .*{KNOWN_MD5['ssc_valid.h5.gz']}"
    ):
        download("ssc", target, url=url, checksums={"ssc_train.h5.gz": md5_train}, progress=False)
    assert _only_final_files(target) == ["ssc_train.h5"]  # the verified file before it stays


def test_no_checksum_anywhere_is_refused(server, tmp_path):
    root, url = server
    _publish(root, "ssc_train.h5.gz", 1)  # and no md5sums.txt on the server
    with pytest.raises(ChecksumError, match=r"ssc_train\.h5\.gz: no checksum .*--checksums"):
        download("ssc", tmp_path / "d", url=url, progress=False)


def test_interrupted_transfer_leaves_no_file(server, tmp_path):
    root, url = server
    _, md5 = _publish(root, "shd_train.h5.gz", 1)
    target = tmp_path / "data"
    with pytest.raises(
        DownloadError, match=r"shd_train\.h5\.gz: (transfer interrupted|download failed)"
    ):
        download(
            "shd", target, url=url + "short/", checksums={"shd_train.h5.gz": md5}, progress=False
        )
    assert _only_final_files(target) == []


def test_http_error(server, tmp_path):
    _, url = server
    with pytest.raises(DownloadError, match=r"shd_train\.h5\.gz: HTTP 404"):
        download(
            "shd", tmp_path / "d", url=url, checksums={"shd_train.h5.gz": "0" * 32}, progress=False
        )


def test_offline_message_says_where_to_put_files(tmp_path, capsys):
    target = tmp_path / "data"
    url = _closed_port_url()
    with pytest.raises(DownloadError) as info:
        download("shd", target, url=url, timeout=5, progress=False)
    msg = str(info.value)
    assert "by hand" in msg and str(target) in msg and "shd_train.h5" in msg and "gunzip" in msg
    rc = main(["data", "download", "shd", "--dir", str(target), "--base-url", url, "--no-progress"])
    assert rc == 1
    assert "by hand" in capsys.readouterr().err


def test_present_files_are_kept_and_force_refetches(server, tmp_path):
    root, url = server
    _, md5 = _publish(root, "shd_train.h5.gz", 1)
    _, md5b = _publish(root, "shd_test.h5.gz", 2)
    sums = {"shd_train.h5.gz": md5, "shd_test.h5.gz": md5b}
    target = tmp_path / "data"
    download("shd", target, url=url, checksums=sums, progress=False)
    # present files: nothing is fetched, so an unreachable server does not matter
    paths = download("shd", target, url=_closed_port_url(), checksums=sums, progress=False)
    assert [p.name for p in paths] == ["shd_train.h5", "shd_test.h5"]
    before = (target / "shd_train.h5").stat().st_mtime_ns
    time.sleep(0.01)
    download("shd", target, url=url, checksums=sums, force=True, progress=False)
    assert (target / "shd_train.h5").stat().st_mtime_ns != before


def test_stale_temporaries_are_cleaned(server, tmp_path):
    root, url = server
    sums = {n: _publish(root, n, i)[1] for i, n in enumerate(("shd_train.h5.gz", "shd_test.h5.gz"))}
    target = tmp_path / "data"
    target.mkdir()
    old = target / ".shd_train.h5.gz.abc123.part"
    fresh = target / ".shd_test.h5.xyz789.part"
    old.write_bytes(b"half")
    fresh.write_bytes(b"in progress elsewhere")
    past = time.time() - 3600
    os.utime(old, (past, past))
    download("shd", target, url=url, checksums=sums, progress=False)
    assert not old.exists() and fresh.exists()


def test_environment_overrides(server, tmp_path, monkeypatch):
    root, url = server
    sums = {n: _publish(root, n, i)[1] for i, n in enumerate(("shd_train.h5.gz", "shd_test.h5.gz"))}
    monkeypatch.setenv("EVENTPROP_DATA_DIR", str(tmp_path / "env_dir"))
    monkeypatch.setenv("EVENTPROP_DATA_URL", url.rstrip("/"))
    assert base_url() == url and data_dir() == tmp_path / "env_dir"
    paths = download("shd", checksums=sums, progress=False)
    assert paths[0] == tmp_path / "env_dir" / "shd_train.h5"
    assert data_dir(tmp_path / "explicit") == tmp_path / "explicit"  # --dir beats the env var


def test_default_dir_is_user_cache(monkeypatch):
    monkeypatch.delenv("EVENTPROP_DATA_DIR", raising=False)
    import platformdirs

    assert data_dir() == Path(platformdirs.user_cache_dir("eventprop")) / "datasets"
    monkeypatch.delenv("EVENTPROP_DATA_URL", raising=False)
    assert base_url() == "https://zenkelab.org/datasets/"


def test_parse_checksums():
    md5, sha = "a" * 32, "B" * 64
    got = parse_checksums(f"{md5}  shd_train.h5.gz\n\n# c\n{sha} *dir/ssc_test.h5.gz\n")
    assert got == {"shd_train.h5.gz": md5, "ssc_test.h5.gz": "b" * 64}
    with pytest.raises(ValueError, match="line 1"):
        parse_checksums("nothex  file\n")


def test_unknown_dataset(tmp_path):
    with pytest.raises(ValueError, match="dataset"):
        download("mnist", tmp_path)


def test_cli_data_path_and_info(tmp_path, capsys):
    assert main(["data", "path", "--dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path)
    f = write_hdf5(tmp_path / "x.h5", [np.array([0.1, 0.2])], [np.array([1, 2])], [0])
    assert main(["data", "info", str(f)]) == 0
    out = capsys.readouterr().out
    assert "samples:   1" in out and "spikes:    2 total" in out
    bad = tmp_path / "bad.h5"
    bad.write_text("nope")
    assert main(["data", "info", str(bad)]) == 1
    assert "bad.h5: not an HDF5 file" in capsys.readouterr().err
    with contextlib.suppress(SystemExit):
        assert main(["data"]) == 2
