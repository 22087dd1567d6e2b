"""Audio to spikes: eventprop's implementation of the SHD cochlea model.

``encode_waveform(signal, sample_rate)`` turns a mono waveform into 700-channel spike trains
like those of the Spiking Heidelberg Digits; ``read_audio`` decodes WAV/FLAC files;
:class:`Cochlea` exposes the model's parameters and intermediate stages. Batch conversion of
files to an SHD-format HDF5 file: :mod:`eventprop.audio.encode` (``eventprop audio encode``).
"""

from eventprop.audio.cochlea import Cochlea, CochleaStages, encode_waveform
from eventprop.audio.io import AudioReadError, read_audio

__all__ = ["AudioReadError", "Cochlea", "CochleaStages", "encode_waveform", "read_audio"]
