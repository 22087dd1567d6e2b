"""Audio to spikes: eventprop's implementation of the SHD cochlea model.

``encode_waveform(signal, sample_rate)`` turns a mono waveform into 700-channel spike trains
like those of the Spiking Heidelberg Digits; ``read_audio`` decodes WAV/FLAC files;
:class:`Cochlea` exposes the model's parameters and intermediate stages. Batch conversion of
files to an SHD-format HDF5 file: :mod:`eventprop.audio.encode` (``eventprop audio encode``).

The names below load on first use, so that :mod:`eventprop.audio.policy` (the tools' choices
of rate, taper and time precision) can be read, e.g. by the command line's help, without
importing the model's numba kernels.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eventprop.audio.cochlea import Cochlea, CochleaStages, encode_waveform
    from eventprop.audio.io import AudioReadError, read_audio

__all__ = ["AudioReadError", "Cochlea", "CochleaStages", "encode_waveform", "read_audio"]

_HOME = {
    "Cochlea": "eventprop.audio.cochlea",
    "CochleaStages": "eventprop.audio.cochlea",
    "encode_waveform": "eventprop.audio.cochlea",
    "AudioReadError": "eventprop.audio.io",
    "read_audio": "eventprop.audio.io",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        value = getattr(importlib.import_module(_HOME[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'eventprop.audio' has no attribute {name!r}")
