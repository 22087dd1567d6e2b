"""Seeds of the random streams of a run, all derived from the config.

A run has four independent random streams: initialisation, mini-batch order, augmentation and
the validation hold-out. Each one gets its own seed, either given explicitly in ``seeds:`` or
derived from the top-level ``seed`` and the stream's name (``numpy.random.SeedSequence``), so
that changing one stream (say, a different data order) leaves the others untouched. Per-epoch
randomness is a pure function of (stream seed, epoch): a resumed run draws exactly what the
uninterrupted run would have drawn, without storing generator states.
"""

from __future__ import annotations

import zlib

import numpy as np

from eventprop.train.config import ExperimentConfig

__all__ = ["STREAMS", "derive_seed", "stream_seeds"]

#: the random streams of a run
STREAMS = ("init", "data_order", "augment", "split")


def derive_seed(master: int, stream: str) -> int:
    """A 31-bit seed for ``stream``, a fixed function of ``master`` and the stream's name."""
    tag = zlib.crc32(stream.encode("utf-8"))
    state = np.random.SeedSequence([int(master) & 0xFFFFFFFF, tag]).generate_state(1)
    return int(state[0] & 0x7FFFFFFF)


def stream_seeds(cfg: ExperimentConfig) -> dict[str, int]:
    """The seed of every stream: the explicit one from ``seeds:`` or the derived one."""
    out = {}
    for name in STREAMS:
        explicit = getattr(cfg.seeds, name)
        out[name] = int(explicit) if explicit is not None else derive_seed(cfg.seed, name)
    return out
