"""An offline keyword dataset built the way SHD is built, from synthetic speech.

The Spiking Heidelberg Digits (Cramer et al. 2020) are the digits 0-9 spoken in English and
German by 12 speakers, passed through a cochlea model to 700 spike trains, with speakers held
out for the test set. The official files cannot be downloaded everywhere (no network), so this
module rebuilds the same kind of data from what every machine can have:

- **speech**: espeak-ng (:mod:`eventprop.builders.espeak`). A *speaker* is one voice variant
  (timbre), one English accent, a base speed and pitch; each speaker says every digit
  ``repeats`` times, each repetition with its own small changes of speed and pitch and its
  own silence before and after the word, as a human speaker never says a word twice the
  same way (loudness is not varied: the cochlea normalises every clip to one RMS level);
- **cochlea**: :func:`eventprop.audio.encode_waveform` (700 channels, like SHD);
- **split**: by speaker, no speaker in both sets (SHD holds out speakers for its test set);
- **files**: ``shd_train.h5`` and ``shd_test.h5`` in the official layout, so that every SHD
  config trains on them unchanged with ``--set data.directory=DIR``.

Everything random comes from one seed: the same seed, espeak-ng version and cochlea give
identical files. The result is NOT SHD and its accuracies are not SHD accuracies; the files
say so in their ``note`` attribute.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from eventprop.builders.espeak import (
    SpeechSettings,
    espeak_version,
    find_espeak,
    list_language_voices,
    list_variants,
    synthesize,
)
from eventprop.data.cache import atomic_write
from eventprop.data.hdf5 import N_CHANNELS, write_hdf5

__all__ = [
    "CLASS_NAMES",
    "ENGLISH_WORDS",
    "GERMAN_WORDS",
    "SampleSpec",
    "Speaker",
    "SpokenDigitsBuild",
    "build_spoken_digits",
    "draw_speakers",
    "frame_word",
    "plan_samples",
    "render_sample",
]

#: what is said for labels 0-9 (English) and 10-19 (German): SHD's label order
ENGLISH_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
GERMAN_WORDS = ("null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun")
#: ``extra/keys`` of the files, SHD's class names (ASCII: "fuenf")
CLASS_NAMES = tuple(f"english-{w}" for w in ENGLISH_WORDS) + tuple(
    "german-" + w.replace("ü", "ue") for w in GERMAN_WORDS
)

#: speaker draws: base speed (words per minute; espeak-ng's default is 175) and pitch (0-99,
#: default 50)
SPEED_WPM = (125, 215)
PITCH = (20, 80)
#: per-repetition changes around the speaker's values: speed factor and pitch offset
SPEED_JITTER = 0.08
PITCH_JITTER = 6
#: silence (seconds) put before and after each word, drawn per repetition. espeak-ng's own
#: padding (10 ms before, ~0.3 s after) is cut first: the cochlea tapers the whole clip with a
#: Hann window, so a word must sit well inside its clip, as in SHD's recordings, or its onset
#: would be faded out
PAD_S = (0.1, 0.25)
#: audio quieter than this fraction of the word's peak counts as silence when cutting
TRIM_LEVEL = 0.01
GERMAN_VOICE = "de"

FILE_NOTE = (
    "Synthetic speech, NOT SHD: digits 0-9 in English and German spoken by espeak-ng voices "
    "(variant x accent x speed x pitch), converted to spike trains by eventprop's cochlea model "
    "(eventprop.audio), built by `eventprop data make-spoken-digits`. Never report accuracy on "
    "it as SHD accuracy."
)


@dataclass(frozen=True)
class Speaker:
    """One synthetic speaker: a voice variant, an English accent and base prosody."""

    index: int  #: the ``extra/speaker`` id
    split: str  #: "train" or "test"
    variant: str  #: espeak-ng variant (``-v LANG+variant``)
    english_voice: str  #: espeak-ng English voice (accent), e.g. "en-gb-scotland"
    german_voice: str
    speed: int  #: words per minute
    pitch: int


@dataclass(frozen=True)
class SampleSpec:
    """Everything needed to render one sample (a pure function of these fields)."""

    speaker: int
    label: int
    repeat: int
    text: str
    settings: SpeechSettings
    lead_s: float  #: silence before the word
    tail_s: float  #: silence after the word
    cochlea_seed: int


@dataclass
class SpokenDigitsBuild:
    """What :func:`build_spoken_digits` made."""

    train_path: Path
    test_path: Path
    readme_path: Path
    speakers: list[Speaker]
    n_train: int
    n_test: int
    seconds: float  #: wall time of the build
    #: per split, per sample in file order: audio length in seconds (spike times lie in
    #: [0, duration])
    durations: dict[str, np.ndarray] = field(default_factory=dict)


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), 0x5D161, int(stream)])


def draw_speakers(
    n_speakers: int,
    seed: int,
    variants: Sequence[str],
    english_voices: Sequence[str],
    *,
    test_fraction: float = 0.2,
) -> list[Speaker]:
    """Draw ``n_speakers`` distinct speakers and assign each to the train or the test set.

    Variants are dealt out in a seeded order, each once before any is reused; a reused variant
    gets another accent, speed and pitch, so every speaker still sounds different. At least
    one speaker goes to each set.
    """
    if n_speakers < 2:
        raise ValueError(
            f"speakers: need at least 2 (one for train, one for test), got {n_speakers}"
        )
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction: must lie in (0, 1), got {test_fraction}")
    if not variants or not english_voices:
        raise ValueError("espeak-ng offers no voice variants or no English voice here")
    rng = _rng(seed, 1)
    order = [str(v) for v in rng.permutation(sorted(variants))]
    voices = sorted(english_voices)
    n_test = min(n_speakers - 1, max(1, round(n_speakers * test_fraction)))
    is_test = np.zeros(n_speakers, dtype=bool)
    is_test[rng.choice(n_speakers, size=n_test, replace=False)] = True
    speakers = []
    for k in range(n_speakers):
        speakers.append(
            Speaker(
                index=k,
                split="test" if is_test[k] else "train",
                variant=order[k % len(order)],
                english_voice=voices[int(rng.integers(len(voices)))],
                german_voice=GERMAN_VOICE,
                speed=int(rng.integers(SPEED_WPM[0], SPEED_WPM[1] + 1)),
                pitch=int(rng.integers(PITCH[0], PITCH[1] + 1)),
            )
        )
    return speakers


def plan_samples(speakers: Sequence[Speaker], repeats: int, seed: int) -> list[SampleSpec]:
    """Every (speaker, repetition, class) sample with its speech settings, in file order."""
    if repeats < 1:
        raise ValueError(f"repeats: must be >= 1, got {repeats}")
    rng = _rng(seed, 2)
    specs = []
    for sp in speakers:
        for r in range(repeats):
            for label in range(len(CLASS_NAMES)):
                english = label < len(ENGLISH_WORDS)
                text = ENGLISH_WORDS[label] if english else GERMAN_WORDS[label - 10]
                voice = (sp.english_voice if english else sp.german_voice) + "+" + sp.variant
                speed = sp.speed * (1.0 + rng.uniform(-SPEED_JITTER, SPEED_JITTER))
                settings = SpeechSettings(
                    voice=voice,
                    speed=round(speed),
                    pitch=sp.pitch + int(rng.integers(-PITCH_JITTER, PITCH_JITTER + 1)),
                )
                specs.append(
                    SampleSpec(
                        speaker=sp.index,
                        label=label,
                        repeat=r,
                        text=text,
                        settings=settings,
                        lead_s=round(float(rng.uniform(*PAD_S)), 4),
                        tail_s=round(float(rng.uniform(*PAD_S)), 4),
                        cochlea_seed=int(rng.integers(2**31 - 1)),
                    )
                )
    return specs


def frame_word(signal: np.ndarray, rate: int, lead_s: float, tail_s: float) -> np.ndarray:
    """Cut espeak-ng's leading/trailing silence, then put ``lead_s`` / ``tail_s`` of silence
    before / after the word."""
    loud = np.flatnonzero(np.abs(signal) > TRIM_LEVEL * np.abs(signal).max())
    word = signal[int(loud[0]) : int(loud[-1]) + 1]
    return np.concatenate([np.zeros(round(lead_s * rate)), word, np.zeros(round(tail_s * rate))])


# --- worker side: one process renders whole samples (synthesis + cochlea) -------------------

_WORKER: dict[str, Any] = {}


def _cochlea() -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """The cochlea's encoder, with a clear error while :mod:`eventprop.audio` is unavailable."""
    try:
        from eventprop.audio import encode_waveform
    except ImportError as exc:
        raise RuntimeError(
            f"the cochlea model (eventprop.audio.encode_waveform) cannot be imported: {exc}"
        ) from exc
    return encode_waveform


def _init_worker(executable: str, channels: int, threads: int | None = None) -> None:
    encode = _cochlea()
    if threads is not None:
        # one process per core: the cochlea's numba kernels must not each spread over all
        # cores too (2 processes x 2 threads on 2 cores is slower than 2 x 1)
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    _WORKER.update(executable=executable, channels=channels, encode=encode)


def render_sample(
    spec: SampleSpec,
    *,
    channels: int = N_CHANNELS,
    executable: str | None = None,
    encode: Callable[..., tuple[np.ndarray, np.ndarray]] | None = None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Speak one sample and convert it to spikes: ``(times_s, units, duration_s)``."""
    signal, rate = synthesize(spec.text, spec.settings, executable=executable)
    audio = frame_word(signal, rate, spec.lead_s, spec.tail_s)
    encode = encode or _cochlea()
    times, units = encode(audio, rate, channels=channels, seed=spec.cochlea_seed)
    times = np.asarray(times, dtype=np.float64)
    units = np.asarray(units, dtype=np.int64)
    if times.size == 0:
        raise RuntimeError(
            f"sample '{spec.text}' ({spec.settings}): the cochlea produced no spikes"
        )
    return times, units, audio.size / rate


def _render_in_worker(spec: SampleSpec) -> tuple[np.ndarray, np.ndarray, float]:
    times, units, duration = render_sample(
        spec,
        channels=_WORKER["channels"],
        executable=_WORKER["executable"],
        encode=_WORKER["encode"],
    )
    # the files hold float16 times and uint16 units: narrower types here cut what the pool
    # pickles and what the parent holds for a few thousand samples (~9000 spikes each) by 2.7x
    unit_type = np.uint16 if _WORKER["channels"] <= 2**16 else np.int64
    return times.astype(np.float32), units.astype(unit_type), duration


def _render_all(
    specs: Sequence[SampleSpec], executable: str, channels: int, workers: int, progress: bool
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    bar = tqdm(total=len(specs), desc="spoken digits", unit="word", disable=not progress)
    results = []
    with bar:
        if workers <= 1:
            _init_worker(executable, channels)
            for spec in specs:
                results.append(_render_in_worker(spec))
                bar.update()
        else:
            # spawn, not fork: the parent may hold threads (numba, torch) that fork would copy
            # in an undefined state
            ctx = get_context("spawn")
            chunk = max(1, min(8, len(specs) // (workers * 8)))
            with ctx.Pool(workers, _init_worker, (executable, channels, 1)) as pool:
                for item in pool.imap(_render_in_worker, specs, chunksize=chunk):
                    results.append(item)
                    bar.update()
    return results


def _speaker_table(speakers: Sequence[Speaker]) -> str:
    head = f"{'speaker':>7}  {'split':<5}  {'variant':<20}  {'english voice':<16}  "
    head += f"{'german voice':<12}  {'speed':>5}  {'pitch':>5}"
    lines = [head]
    for s in speakers:
        lines.append(
            f"{s.index:>7}  {s.split:<5}  {s.variant:<20}  {s.english_voice:<16}  "
            f"{s.german_voice:<12}  {s.speed:>5}  {s.pitch:>5}"
        )
    return "\n".join(lines)


def _readme(params: dict[str, Any], speakers: Sequence[Speaker], counts: dict[str, int]) -> str:
    per = ", ".join(f"{k}: {v} samples" for k, v in counts.items())
    return (
        "Spoken digits: an offline keyword dataset in the SHD layout\n"
        "=============================================================\n\n"
        f"{FILE_NOTE}\n\n"
        "Files: shd_train.h5 and shd_test.h5 (official SHD layout: spikes/times float16 "
        "seconds, spikes/units uint16, labels uint16, extra/speaker = speaker index below, "
        f"extra/keys = class names). {per}. Train and test share no speaker.\n"
        "Labels 0-9: English zero..nine, 10-19: German null..neun.\n"
        "Train with any SHD config:\n"
        "    eventprop train shd_small --set data.directory=<this folder>\n\n"
        "Build parameters\n----------------\n"
        + "".join(f"{k}: {v}\n" for k, v in params.items())
        + "\nPer repetition, around the speaker's values: speed x (1 +- "
        f"{SPEED_JITTER}), pitch +- {PITCH_JITTER}; {PAD_S[0]}-{PAD_S[1]} s of silence before "
        f"and after the word (espeak-ng's own silence cut at {TRIM_LEVEL:g} of the peak). "
        "Loudness is not varied: the cochlea normalises every clip to one RMS level.\n\n"
        "Speakers\n--------\n" + _speaker_table(speakers) + "\n"
    )


def _readable(*paths: Path) -> None:
    """Give the files the permissions of a normally created file (the atomic writers' temporary
    files are private, 0600): a dataset is meant to be shared."""
    umask = os.umask(0)
    os.umask(umask)
    for p in paths:
        os.chmod(p, 0o666 & ~umask)


def build_spoken_digits(
    out: str | os.PathLike[str],
    *,
    speakers: int = 60,
    repeats: int = 3,
    test_fraction: float = 0.2,
    seed: int = 0,
    channels: int = N_CHANNELS,
    workers: int | None = None,
    force: bool = False,
    progress: bool = True,
    executable: str = "espeak-ng",
) -> SpokenDigitsBuild:
    """Synthesise, encode, split and write the dataset to ``out``; returns what was made.

    ``speakers x repeats x 20`` samples in all (default 60 x 3 x 20 = 3600), about
    ``test_fraction`` of the speakers in the test set. ``workers`` processes render in
    parallel (default: every core). The files are written only after every sample has been
    rendered, and both are complete before either is renamed into place: an interrupted
    build leaves no partial file (and no new file next to an old one). Existing files are
    only replaced with ``force``.
    """
    start = time.perf_counter()
    exe = find_espeak(executable)
    _cochlea()  # fail before any work when the cochlea is missing
    if channels < 1:
        raise ValueError(f"channels: must be >= 1, got {channels}")
    out_dir = Path(out).expanduser()
    paths = {s: out_dir / f"shd_{s}.h5" for s in ("train", "test")}
    readme_path = out_dir / "README.txt"
    existing = [p for p in paths.values() if p.exists()]
    if existing and not force:
        raise FileExistsError(
            f"{', '.join(map(str, existing))} already exist; pass force=True (--force) to rebuild"
        )
    if workers is None:
        workers = (
            len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        )
    workers = max(1, int(workers or 1))

    table = draw_speakers(
        speakers,
        seed,
        list_variants(exe),
        list_language_voices("en", exe),
        test_fraction=test_fraction,
    )
    specs = plan_samples(table, repeats, seed)
    results = _render_all(specs, exe, channels, workers, progress)

    params: dict[str, Any] = {
        "seed": seed,
        "speakers": speakers,
        "repeats": repeats,
        "test_fraction": test_fraction,
        "channels": channels,
        "espeak_ng": espeak_version(exe),
        "speaker_speed_wpm": list(SPEED_WPM),
        "speaker_pitch": list(PITCH),
        "repeat_speed_jitter": SPEED_JITTER,
        "repeat_pitch_jitter": PITCH_JITTER,
        "silence_s": list(PAD_S),
    }
    split_of = {s.index: s.split for s in table}
    counts: dict[str, int] = {}
    durations: dict[str, np.ndarray] = {}
    # both files are complete before either replaces its target, so that a crash never leaves
    # a new train file next to an old test file
    staged = {s: out_dir / f".{p.name}.{os.getpid()}.building" for s, p in paths.items()}
    try:
        for split in paths:
            idx = [i for i, spec in enumerate(specs) if split_of[spec.speaker] == split]
            members = [s for s in table if s.split == split]
            attrs = {
                "note": FILE_NOTE,
                "build": json.dumps(params),
                "speakers": json.dumps([asdict(s) for s in members]),
            }
            write_hdf5(
                staged[split],
                [results[i][0] for i in idx],
                [results[i][1] for i in idx],
                [specs[i].label for i in idx],
                speakers=[specs[i].speaker for i in idx],
                class_names=CLASS_NAMES,
                attrs=attrs,
            )
            counts[split] = len(idx)
            durations[split] = np.array([results[i][2] for i in idx])
        with atomic_write(readme_path) as fh:
            fh.write(_readme(params, table, counts).encode())
        for split, path in paths.items():
            os.replace(staged[split], path)
        _readable(readme_path, *paths.values())
    finally:
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)
    return SpokenDigitsBuild(
        train_path=paths["train"],
        test_path=paths["test"],
        readme_path=readme_path,
        speakers=table,
        n_train=counts["train"],
        n_test=counts["test"],
        seconds=time.perf_counter() - start,
        durations=durations,
    )
