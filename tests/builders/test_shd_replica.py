"""``eventprop data make-shd``: SHD rebuilt from recordings named as the Heidelberg Digits.

The fast tests use short synthetic words written as FLAC files in HD's naming (a few channels,
so each file encodes in milliseconds); the slow test builds a 700-channel replica that includes
the one real HD recording of ``../shared/data`` and trains the quick SHD config on it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import soundfile

from eventprop.audio.synth import spoken_word
from eventprop.builders import shd_replica as rep
from eventprop.builders.encode_cache import EncoderSettings, EncodingCache, EncodingError
from eventprop.builders.spoken_digits import CLASS_NAMES
from eventprop.cli.main import main
from eventprop.data.hdf5 import read_hdf5

RATE = 16000
CH = 16  # channels of the fast builds


def hd_name(lang: str, speaker: int, trial: int, digit: int, suffix: str = ".flac") -> str:
    return f"lang-{lang}_speaker-{speaker:02d}_trial-{trial}_digit-{digit}{suffix}"


def write_corpus(
    folder: Path, speakers=(0, 4), trials=(0,), duration_s: float = 0.12
) -> list[Path]:
    """One short synthetic word per (language, speaker, trial, digit), pitch set by the class."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for lang in rep.LANGUAGES:
        for sp in speakers:
            for tr in trials:
                for d in range(10):
                    label = d + (10 if lang == "german" else 0)
                    x = spoken_word(
                        RATE, duration_s, seed=100 * sp + tr, pitch_hz=90.0 + 12.0 * label
                    )
                    p = folder / hd_name(lang, sp, tr, d)
                    soundfile.write(p, x, RATE, format="FLAC")
                    paths.append(p)
    return paths


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("hd") / "audio", speakers=(0, 1, 4), trials=(0, 1))[
        0
    ].parent


def build(audio: Path, out: Path, **kw):
    kw.setdefault("channels", CH)
    kw.setdefault("sample_rate", RATE)
    kw.setdefault("workers", 1)
    kw.setdefault("progress", False)
    return rep.build_shd_replica(audio, out, **kw)


# --- names, scanning, bad input -------------------------------------------------------------


def test_parse_hd_name_gives_shd_label_and_speaker(tmp_path):
    f = rep.parse_hd_name(tmp_path / "lang-german_speaker-11_trial-37_digit-7.flac")
    assert (f.language, f.speaker, f.trial, f.digit, f.label) == ("german", 11, 37, 7, 17)
    assert rep.parse_hd_name(tmp_path / hd_name("english", 3, 0, 9)).label == 9
    for bad in ("lang-french_speaker-00_trial-0_digit-1.flac", "speaker-00_digit-1.flac",
                "lang-english_speaker-00_trial-0_digit-1.txt"):  # fmt: skip
        with pytest.raises(rep.ReplicaInputError, match="unexpected file name"):
            rep.parse_hd_name(tmp_path / bad)


def test_scan_rejects_unexpected_names_naming_the_file(tmp_path):
    audio = tmp_path / "a"
    write_corpus(audio, speakers=(0,))
    stray = audio / "recording 7.flac"
    shutil.copy(audio / hd_name("english", 0, 0, 1), stray)
    with pytest.raises(rep.ReplicaInputError, match=r"recording 7\.flac: unexpected file name"):
        rep.scan_hd_audio(audio)
    stray.unlink()
    (audio / "README.md").write_text("other files are ignored\n")
    files, official = rep.scan_hd_audio(audio)
    assert len(files) == 20 and official is None


def test_scan_rejects_empty_and_non_audio_files(tmp_path):
    audio = tmp_path / "a"
    write_corpus(audio, speakers=(0,))
    target = audio / hd_name("german", 0, 0, 3)
    target.write_bytes(b"")
    with pytest.raises(rep.ReplicaInputError, match=r"digit-3\.flac: empty file"):
        rep.scan_hd_audio(audio)
    target.write_bytes(b"this is not a FLAC stream" * 40)
    with pytest.raises(rep.ReplicaInputError, match=r"digit-3\.flac: not a readable audio file"):
        rep.scan_hd_audio(audio)


def test_scan_names_a_missing_language_or_class(tmp_path):
    audio = tmp_path / "a"
    write_corpus(audio, speakers=(0,))
    (audio / hd_name("german", 0, 0, 5)).unlink()
    with pytest.raises(rep.ReplicaInputError, match="no german recordings of digit 5"):
        rep.scan_hd_audio(audio)
    for p in audio.glob("lang-german_*"):
        p.unlink()
    with pytest.raises(rep.ReplicaInputError, match="no german recordings"):
        rep.scan_hd_audio(audio)


def test_scan_finds_audio_subfolder_and_official_lists(tmp_path):
    write_corpus(tmp_path / "audio", speakers=(0, 4))
    names = sorted(p.name for p in (tmp_path / "audio").iterdir())
    files, official = rep.scan_hd_audio(tmp_path)  # the files of tmp_path/audio
    assert len(files) == 40 and official is None
    (tmp_path / "test_filenames.txt").write_text("\n".join(names[30:]) + "\n")
    with pytest.raises(rep.ReplicaInputError, match="without its partner"):
        rep.scan_hd_audio(tmp_path)
    (tmp_path / "train_filenames.txt").write_text("\n".join(names[:30]) + "\n")
    files, official = rep.scan_hd_audio(tmp_path)
    train, test = rep.split_files(files, "official", official=official)
    assert [f.name for f in train] == names[:30]
    assert [f.name for f in test] == names[30:]


# --- splits ---------------------------------------------------------------------------------


def _fake_files(tmp_path: Path, per_speaker: int = 40, speakers=range(12)) -> list[rep.HDFile]:
    files = []
    for sp in speakers:
        for i in range(per_speaker):
            lang = rep.LANGUAGES[i % 2]
            name = hd_name(lang, sp, i // 20, (i // 2) % 10)
            files.append(rep.parse_hd_name(tmp_path / name))
    return sorted(files, key=lambda f: f.name)


def test_speaker_split_holds_out_exactly_the_test_speakers(tmp_path):
    files = _fake_files(tmp_path)
    train, test = rep.split_files(files, "speakers")
    assert {f.speaker for f in test} == {4, 5}
    assert {f.speaker for f in train} == set(range(12)) - {4, 5}
    assert len(train) + len(test) == len(files)
    train, test = rep.split_files(files, "speakers", test_speakers=[7])
    assert {f.speaker for f in test} == {7}
    with pytest.raises(rep.ReplicaInputError, match="test speakers 13"):
        rep.split_files(files, "speakers", test_speakers=[13])


def test_shd_like_split_adds_a_seeded_share_of_the_other_speakers(tmp_path):
    files = _fake_files(tmp_path, per_speaker=858, speakers=range(10))  # 8,580 others
    files += _fake_files(tmp_path, per_speaker=920, speakers=(4, 5))
    files = sorted({f.name: f for f in files}.values(), key=lambda f: f.name)
    held = [f for f in files if f.speaker in (4, 5)]
    others = len(files) - len(held)
    train, test = rep.split_files(files, "shd-like", seed=0)
    extra = [f for f in test if f.speaker not in (4, 5)]
    assert len(extra) == round(others * 424 / 8580)
    assert {f.name for f in held} <= {f.name for f in test}
    assert not {f.name for f in train} & {f.name for f in test}
    again = rep.split_files(files, "shd-like", seed=0)[1]
    other_seed = rep.split_files(files, "shd-like", seed=1)[1]
    assert [f.name for f in again] == [f.name for f in test]
    assert [f.name for f in other_seed] != [f.name for f in test]


def test_official_split_needs_the_lists_and_every_listed_file(tmp_path):
    files = _fake_files(tmp_path, per_speaker=20, speakers=(0, 4))
    with pytest.raises(rep.ReplicaInputError, match=r"train_filenames\.txt"):
        rep.split_files(files, "official")
    lists = {"train": [files[0].name, "lang-english_speaker-09_trial-0_digit-0.flac"],
             "test": [files[1].name]}  # fmt: skip
    with pytest.raises(rep.ReplicaInputError, match=r"speaker-09.*not in the input folder"):
        rep.split_files(files, "official", official=lists)


# --- the build ------------------------------------------------------------------------------


def test_build_writes_the_official_layout(corpus, tmp_path):
    out = tmp_path / "out"
    built = build(corpus, out)
    assert built.split == "speakers" and (built.n_train, built.n_test) == (80, 40)
    train = read_hdf5(out / "shd_train.h5", n_channels=CH)
    test = read_hdf5(out / "shd_test.h5", n_channels=CH)
    assert train.class_names == CLASS_NAMES
    assert sorted(set(train.speakers.tolist())) == [0, 1]
    assert set(test.speakers.tolist()) == {4}
    assert np.all(train.counts() > 0) and np.all(test.counts() > 0)
    assert "NOT the official SHD file" in train.attrs["note"]
    assert train.attrs["split"] == "speakers"
    names = (out / "train_filenames.txt").read_text().split()
    with h5py.File(out / "shd_train.h5") as f:
        assert h5py.check_vlen_dtype(f["spikes/times"].dtype) == np.float16
        assert h5py.check_vlen_dtype(f["spikes/units"].dtype) == np.uint16
        assert [n.decode() for n in f["extra/filenames"][()]] == names
    # labels follow the file names: digit, +10 for German
    expected = [rep.parse_hd_name(Path(n)).label for n in names]
    assert train.labels.tolist() == expected
    assert sorted(set(expected)) == list(range(20))
    assert not (out / ".make-shd-cache").exists()  # the default cache goes after success


def test_cli_builds_and_refuses_to_overwrite(corpus, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["data", "make-shd", "--audio", str(corpus), "--out", str(out), "--channels", str(CH),
            "--sample-rate", str(RATE), "--workers", "1", "--no-progress"]  # fmt: skip
    assert main([*argv, "--split", "shd-like"]) == 0
    printed = capsys.readouterr().out
    assert "split 'shd-like'" in printed and "files/s" in printed
    assert read_hdf5(out / "shd_test.h5", n_channels=CH).attrs["split"] == "shd-like"
    before = (out / "shd_train.h5").stat().st_mtime_ns
    assert main(argv) == 1
    assert "--force" in capsys.readouterr().err
    assert (out / "shd_train.h5").stat().st_mtime_ns == before
    # a bad input is one line naming the file, and leaves nothing behind
    bad = tmp_path / "bad"
    write_corpus(bad, speakers=(0, 4))
    (bad / "lang-english_speaker-04_trial-0_digit-2.flac").write_bytes(b"")
    assert main(["data", "make-shd", "--audio", str(bad), "--out", str(tmp_path / "o2"),
                 "--no-progress"]) == 1  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "digit-2.flac: empty file" in err
    assert not (tmp_path / "o2").exists()


def test_spikes_do_not_depend_on_workers_or_split(corpus, tmp_path):
    """A file's encoding depends on its name and the seed only: one process or a pool, and
    either split, give the same spikes for it."""
    one = build(corpus, tmp_path / "one", workers=1)
    pool = build(corpus, tmp_path / "pool", workers=2, split="shd-like")
    assert pool.n_test > one.n_test
    spikes = {}
    for folder in ("one", "pool"):
        for split in ("train", "test"):
            raw = read_hdf5(tmp_path / folder / f"shd_{split}.h5", n_channels=CH)
            names = (tmp_path / folder / f"{split}_filenames.txt").read_text().split()
            for i, name in enumerate(names):
                sl = slice(raw.pointers[i], raw.pointers[i + 1])
                spikes.setdefault(name, []).append((raw.times[sl], raw.units[sl]))
    assert len(spikes) == 120
    for pair in spikes.values():
        assert len(pair) == 2
        np.testing.assert_array_equal(pair[0][0], pair[1][0])
        np.testing.assert_array_equal(pair[0][1], pair[1][1])
    other = build(corpus, tmp_path / "seed1", seed=1)
    a = read_hdf5(tmp_path / "one" / "shd_test.h5", n_channels=CH)
    b = read_hdf5(other.test_path, n_channels=CH)
    assert not np.array_equal(a.units, b.units)


def _nan_wav(path: Path) -> None:
    """A valid WAV header with non-finite samples: passes the scan, fails in the cochlea."""
    x = spoken_word(RATE, 0.12, seed=0).astype(np.float32)
    x[100] = np.nan
    soundfile.write(path, x, RATE, subtype="FLOAT", format="WAV")


def test_a_failed_build_resumes_without_redoing_finished_files(tmp_path):
    audio = tmp_path / "audio"
    paths = write_corpus(audio, speakers=(0, 4))
    # a file in the middle of the order is broken: the build stops there
    broken = audio / hd_name("english", 4, 0, 3)
    broken.unlink()
    broken = broken.with_suffix(".wav")
    _nan_wav(broken)
    cache_dir = tmp_path / "cache"
    out = tmp_path / "out"
    with pytest.raises(EncodingError, match=r"digit-3\.wav: .*non-finite"):
        build(audio, out, cache_dir=cache_dir)
    assert not out.exists() or not list(out.glob("*.h5"))  # nothing half-written
    cache = EncodingCache(cache_dir, EncoderSettings(CH, RATE, 0))
    ordered = sorted(p for p in audio.iterdir())
    done = ordered[: ordered.index(broken)]
    assert done and all(cache.has(p) for p in done)
    assert not list(cache.folder.glob(".*.part"))
    # the user repairs the file; the second run encodes only what was missing
    broken.unlink()
    soundfile.write(broken, spoken_word(RATE, 0.12, seed=9), RATE, format="WAV")
    resumed = build(audio, out, cache_dir=cache_dir)
    assert resumed.encoded == len(paths) - len(done)
    fresh = build(audio, tmp_path / "fresh")
    assert fresh.encoded == len(paths)
    for split in ("train", "test"):
        a = read_hdf5(out / f"shd_{split}.h5", n_channels=CH)
        b = read_hdf5(tmp_path / "fresh" / f"shd_{split}.h5", n_channels=CH)
        for field in ("times", "units", "pointers", "labels", "speakers"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert cache.folder.is_dir()  # a cache folder given explicitly is kept
    # an audio file changed after encoding is encoded again
    changed = ordered[0]
    soundfile.write(changed, spoken_word(RATE, 0.15, seed=5), RATE, format="FLAC")
    assert not cache.has(changed)
    again = build(audio, out, cache_dir=cache_dir, force=True)
    assert again.encoded == 1


# --- slow: a small replica with the real recording, trained for an epoch --------------------


@pytest.mark.slow
def test_small_replica_with_the_real_recording_trains_an_epoch(shared_data_dir, tmp_path):
    from eventprop.train.config import load_config
    from eventprop.train.loop import train

    real = shared_data_dir / "spoken_digit" / "spoken_digit.flac"
    if not real.is_file():
        pytest.skip(f"{real} is not present")
    audio = tmp_path / "audio"
    write_corpus(audio, speakers=(0, 1, 4), duration_s=0.4)
    target = audio / hd_name("english", 0, 0, 0)
    shutil.copy(real, target)  # HD's own file of this name
    out = tmp_path / "replica"
    built = rep.build_shd_replica(audio, out, workers=2, progress=False)
    assert (built.n_train, built.n_test) == (40, 20)
    raw = read_hdf5(out / "shd_train.h5")
    names = (out / "train_filenames.txt").read_text().split()
    i = names.index(target.name)
    n_real = int(raw.counts()[i])
    # a real 0.8 s word at 24 kHz: thousands of spikes over the whole clip, on many channels
    sl = slice(raw.pointers[i], raw.pointers[i + 1])
    assert 3000 < n_real < 20000
    assert np.unique(raw.units[sl]).size > 300
    assert float(raw.times[sl].max()) > 0.6
    cfg = load_config(
        "shd_small",
        [
            f"data.directory={out}",
            "data.cache=false",
            "train.epochs=1",
            "train.batch_size=8",
            "run.plots=false",
            "run.tensorboard=false",
            "train.progress=false",
        ],
    )
    result = train(cfg, run_dir=tmp_path / "run", quiet=True)
    assert result.summary["status"] == "completed"
    assert result.summary["data"]["n_classes"] == 20
    assert 0.0 <= result.summary["test"]["accuracy"] <= 1.0


def test_cli_sample_rate_follows_the_shared_model_rate_policy():
    import argparse

    from eventprop.audio.policy import DEFAULT_MODEL_RATE
    from eventprop.cli.data_cmd import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    base = ["data", "make-shd", "--audio", "a", "--out", "b"]
    assert parser.parse_args(base).sample_rate == DEFAULT_MODEL_RATE
    assert parser.parse_args([*base, "--sample-rate", "native"]).sample_rate is None
    assert parser.parse_args([*base, "--sample-rate", "16000"]).sample_rate == 16000
    with pytest.raises(SystemExit):
        parser.parse_args([*base, "--sample-rate", "fast"])
