"""Train/validation splits: random, leave-one-speaker-out, and the official SSC split.

SHD has no validation set; the paper selects models by leave-one-speaker-out cross-validation
over the training speakers (a model must generalise to an unheard voice) and otherwise a random
hold-out fraction can serve. SSC ships an official train/valid/test split as three files.
All functions return index arrays into a dataset (use ``SpikeData.subset``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "OFFICIAL_SPLITS",
    "SpeakerFold",
    "leave_one_speaker_out",
    "random_split",
]

#: splits shipped as files: ``<dataset>_<split>.h5``
OFFICIAL_SPLITS: dict[str, tuple[str, ...]] = {
    "shd": ("train", "test"),
    "ssc": ("train", "valid", "test"),
}


def random_split(
    n_samples: int,
    fraction: float,
    seed: int,
    *,
    labels: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random hold-out: ``(train indices, validation indices)``, both sorted.

    ``round(fraction * n_samples)`` samples go to validation. With ``labels``, the hold-out is
    stratified: each class contributes ``round(fraction * class size)`` samples.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction: must lie in [0, 1], got {fraction!r}")
    if n_samples < 0:
        raise ValueError(f"n_samples: must be >= 0, got {n_samples}")
    rng = np.random.default_rng(seed)
    if labels is None:
        perm = rng.permutation(n_samples)
        n_val = round(fraction * n_samples)
        val = perm[:n_val]
    else:
        labels = np.asarray(labels)
        if labels.size != n_samples:
            raise ValueError(f"labels: expected {n_samples} entries, got {labels.size}")
        parts = []
        for c in np.unique(labels):
            members = np.flatnonzero(labels == c)
            parts.append(rng.permutation(members)[: round(fraction * members.size)])
        val = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    mask = np.zeros(n_samples, dtype=bool)
    mask[val] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


@dataclass(frozen=True)
class SpeakerFold:
    """One fold of leave-one-speaker-out cross-validation."""

    speaker: int  #: the held-out speaker
    train: np.ndarray  #: indices of all other speakers' samples
    validation: np.ndarray  #: indices of the held-out speaker's samples


def leave_one_speaker_out(speakers: np.ndarray) -> list[SpeakerFold]:
    """One fold per distinct speaker (ascending id); negative ids (unknown) stay in training."""
    speakers = np.asarray(speakers)
    if speakers.ndim != 1:
        raise ValueError("speakers: expected a 1-D array of speaker ids")
    folds = []
    for s in np.unique(speakers[speakers >= 0]):
        held = speakers == s
        folds.append(
            SpeakerFold(
                speaker=int(s), train=np.flatnonzero(~held), validation=np.flatnonzero(held)
            )
        )
    if not folds:
        raise ValueError("speakers: no speaker ids (>= 0) to build folds from")
    return folds
