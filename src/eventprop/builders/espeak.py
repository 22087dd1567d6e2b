"""The espeak-ng speech synthesiser, as a source of spoken words for offline datasets.

espeak-ng is a formant synthesiser: it needs no voice recordings, is packaged by every Linux
distribution and runs in milliseconds per word, so a keyword set with hundreds of distinct
"speakers" (voice variant x speed x pitch) can be rendered on any machine without a network.
Only its command-line interface is used (``espeak-ng --stdout``), so that there is no Python
binding to install and nothing is written to disk.
"""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
from dataclasses import dataclass

import numpy as np
from scipy.io import wavfile

__all__ = [
    "INSTALL_HINT",
    "EspeakError",
    "EspeakNotFoundError",
    "SpeechSettings",
    "espeak_version",
    "find_espeak",
    "list_language_voices",
    "list_variants",
    "synthesize",
]

#: how to get the synthesiser on Debian/Ubuntu, quoted in every "not found" message
INSTALL_HINT = "sudo apt-get install espeak-ng"

#: the limits espeak-ng accepts for -s (words per minute), -p (pitch) and -a (amplitude)
SPEED_RANGE = (80, 450)
PITCH_RANGE = (0, 99)
AMPLITUDE_RANGE = (0, 200)


class EspeakError(RuntimeError):
    """espeak-ng ran but failed, or produced no usable audio."""


class EspeakNotFoundError(EspeakError, FileNotFoundError):
    """The espeak-ng program is not installed (or not on ``PATH``)."""


def find_espeak(executable: str = "espeak-ng") -> str:
    """Absolute path of the espeak-ng program; a clear, actionable error when it is missing."""
    path = shutil.which(executable)
    if path is None:
        raise EspeakNotFoundError(
            f"'{executable}' was not found on PATH; the spoken-digits dataset is synthesised "
            f"with espeak-ng. Install it with `{INSTALL_HINT}` (Debian/Ubuntu; other systems: "
            "the 'espeak-ng' package of their package manager) and run the command again."
        )
    return path


def _run(args: list[str], *, text: bool) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(args, capture_output=True, text=text, check=False)
    except OSError as exc:
        raise EspeakError(f"cannot run {args[0]}: {exc}") from exc
    if result.returncode != 0:
        err = result.stderr if text else result.stderr.decode("utf-8", "replace")
        raise EspeakError(
            f"{' '.join(args)} failed with exit status {result.returncode}: {err.strip()}"
        )
    return result


def espeak_version(executable: str | None = None) -> str:
    """The version line of espeak-ng (recorded with a dataset: voices differ between versions)."""
    exe = executable or find_espeak()
    return _run([exe, "--version"], text=True).stdout.strip()


def _voice_table(exe: str, selector: str) -> list[tuple[str, str]]:
    """``(language, file)`` of each row of ``espeak-ng --voices=<selector>``.

    The file column is the name that ``-v`` accepts; rows whose file name holds a space
    (which the table cannot delimit, and ``-v`` cannot take) are skipped.
    """
    out = _run([exe, f"--voices={selector}"], text=True).stdout
    rows: list[tuple[str, str]] = []
    for line in out.splitlines()[1:]:
        tokens = line.split()
        if len(tokens) < 5:
            continue
        # Pty, Language, Age/Gender, VoiceName, File, (Other Languages...)
        language, file = tokens[1], tokens[4]
        if len(tokens) > 5 and not tokens[5].startswith("("):
            continue
        rows.append((language, file))
    return rows


def list_variants(executable: str | None = None) -> list[str]:
    """Names of the voice variants (``-v LANG+NAME``), sorted, as installed here.

    Variants change the timbre (formants, pitch range, breathiness) of any language's voice;
    they are what makes one synthetic "speaker" sound unlike another. ``fast_test`` is left
    out: it is a speed experiment of the espeak-ng developers, not a voice.
    """
    exe = executable or find_espeak()
    names = {
        file.split("/", 1)[1]
        for _, file in _voice_table(exe, "variant")
        if file.startswith("!v/") and file != "!v/fast"
    }
    return sorted(names)


def list_language_voices(language: str, executable: str | None = None) -> list[str]:
    """Language codes of espeak-ng's own voices for ``language`` (e.g. ``en``: en-gb, en-us...).

    MBROLA voices (file ``mb/...``) are left out: they need the separate mbrola program and
    diphone databases, which are rarely installed; variants are excluded too.
    """
    exe = executable or find_espeak()
    codes: list[str] = []
    for code, file in _voice_table(exe, language):
        if file.startswith(("mb/", "!v/")) or code == "variant":
            continue
        if (code == language or code.startswith(language + "-")) and code not in codes:
            codes.append(code)
    return sorted(codes)


@dataclass(frozen=True)
class SpeechSettings:
    """How one word is spoken: voice (``LANG+VARIANT``), speed (wpm), pitch and amplitude."""

    voice: str
    speed: int = 175
    pitch: int = 50
    amplitude: int = 100

    def args(self) -> list[str]:
        return [
            "-v",
            self.voice,
            "-s",
            str(int(np.clip(self.speed, *SPEED_RANGE))),
            "-p",
            str(int(np.clip(self.pitch, *PITCH_RANGE))),
            "-a",
            str(int(np.clip(self.amplitude, *AMPLITUDE_RANGE))),
        ]


def _fix_stream_header(wav: bytes) -> bytes:
    """Write the true sizes into a WAV header that espeak-ng streamed with placeholders.

    ``--stdout`` cannot seek back, so espeak-ng leaves 0x7FFFF... in the RIFF and data sizes;
    scipy would warn about (and guess past) them. Patch them from the actual length instead.
    """
    if len(wav) < 12 or wav[:4] != b"RIFF" or wav[8:12] != b"WAVE":
        raise EspeakError("espeak-ng did not write a WAV stream")
    buf = bytearray(wav)
    struct.pack_into("<I", buf, 4, len(buf) - 8)
    pos = 12
    while pos + 8 <= len(buf):
        chunk, size = bytes(buf[pos : pos + 4]), struct.unpack_from("<I", buf, pos + 4)[0]
        if chunk == b"data":
            struct.pack_into("<I", buf, pos + 4, len(buf) - pos - 8)
            return bytes(buf)
        pos += 8 + size + (size & 1)
    raise EspeakError("espeak-ng wrote a WAV stream without a data chunk")


def synthesize(
    text: str, settings: SpeechSettings, *, executable: str | None = None
) -> tuple[np.ndarray, int]:
    """Speak ``text``; returns ``(signal, sample_rate)``, a mono float64 signal in [-1, 1].

    The audio goes through a pipe (``--stdout``): no temporary files. espeak-ng is
    deterministic, so equal arguments give bit-identical audio.
    """
    exe = executable or find_espeak()
    wav = _run([exe, "--stdout", *settings.args(), text], text=False).stdout
    rate, data = wavfile.read(io.BytesIO(_fix_stream_header(wav)))
    data = np.asarray(data)
    if data.ndim > 1:
        data = data.mean(axis=1)
    if np.issubdtype(data.dtype, np.integer):
        signal = data.astype(np.float64) / float(np.iinfo(data.dtype).max + 1)
    else:
        signal = data.astype(np.float64)
    if signal.size == 0 or not np.any(signal):
        raise EspeakError(f"espeak-ng produced no sound for {text!r} with {settings}")
    return signal, int(rate)
