"""Random-manifold spike-timing datasets ("randman", Zenke & Vogels 2021).

Each class is a smooth random manifold of dimension ``dim_manifold`` embedded in
``nb_units``-dimensional space; a sample is a random point of its class's manifold, and its
coordinate on unit ``u`` (standardised to [0, 1) per class) becomes the time of unit ``u``'s single
spike. Every unit fires exactly once per sample (``nb_spikes`` times with several manifolds), so
only relative spike timing carries the class: a clean, download-free test of temporal learning.

This follows the reference code (github.com/fzenke/randman: ``TorchRandman`` and the
"spiking dataset generation" example) step by step: the same parameters, the same random
streams (legacy numpy ``RandomState(seed)`` for the manifold seeds, the sample coordinates and the
shuffle; a torch generator seeded per manifold for its Fourier coefficients) and the same float32
arithmetic, so a seed gives the reference's data. Spike times are ``value * nb_steps * step_frac``
steps of ``dt`` ms each.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from eventprop.data.spikes import SpikeData, split_steps

__all__ = ["RandomManifold", "randman"]


class RandomManifold:
    """Smooth random map from ``[0,1)^dim_manifold`` to ``R^dim_embedding`` (ref.: TorchRandman).

    Each embedding coordinate is a product over manifold dimensions of random 1-D Fourier
    series ``sum_i a_i s_i sin(2 pi (i x b_i + c_i))``, spectrum ``s_i = 1/((i+1-beta)^alpha+1)``;
    ``alpha`` sets the smoothness. Coefficients are drawn from a torch generator seeded with
    ``seed``.
    """

    def __init__(
        self,
        dim_embedding: int,
        dim_manifold: int,
        *,
        alpha: float = 2.0,
        beta: float = 0.0,
        prec: float = 1e-3,
        max_f_cutoff: int = 1000,
        use_bias: bool = False,
        seed: int,
    ) -> None:
        self.dim_embedding = int(dim_embedding)
        self.dim_manifold = int(dim_manifold)
        self.alpha = float(alpha)
        self.f_cutoff = int(min(math.ceil(prec ** (-1.0 / alpha)), max_f_cutoff))
        gen = torch.Generator().manual_seed(int(seed))
        self.params = torch.rand(
            self.dim_embedding, self.dim_manifold, 3, self.f_cutoff, generator=gen
        )
        if not use_bias:
            self.params[:, :, 0, 0] = 0
        r = torch.arange(self.f_cutoff, dtype=torch.float32) + 1
        self.spect = 1.0 / (torch.abs(r - beta) ** alpha + 1.0)

    def __call__(self, x: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Embedding ``(n, dim_embedding)`` (float32) of points ``x`` of shape (n, dim_manifold)."""
        x = torch.as_tensor(x, dtype=torch.float32)
        out = torch.ones(x.shape[0], self.dim_embedding)
        for d in range(self.dim_manifold):
            theta = self.params[:, d]  # (embedding, 3, f_cutoff)
            xd = x[:, d : d + 1]  # (n, 1)
            acc = torch.zeros(x.shape[0], self.dim_embedding)
            # frequencies accumulated in the reference's order (same float32 rounding)
            for i in range(self.f_cutoff):
                phase = 2 * np.pi * (i * xd * theta[:, 1, i] + theta[:, 2, i])
                acc += theta[:, 0, i] * self.spect[i] * torch.sin(phase)
            out *= acc
        return out


def _standardize(y: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    lo = y.min(0).values
    hi = y.max(0).values
    return (y - lo) / (hi - lo + eps)


def randman(
    nb_classes: int = 10,
    nb_units: int = 100,
    nb_steps: int = 100,
    *,
    step_frac: float = 1.0,
    dim_manifold: int = 2,
    nb_spikes: int = 1,
    nb_samples: int = 1000,
    alpha: float = 2.0,
    shuffle: bool = True,
    seed: int = 0,
    dt: float = 1.0,
) -> SpikeData:
    """A randman classification set: ``nb_classes * nb_samples`` samples, ``nb_units`` channels.

    Parameters as in the reference ``make_spiking_dataset`` (``nb_samples`` is per class). Each
    unit spikes ``nb_spikes`` times per sample (once by default), at
    ``value * nb_steps * step_frac`` steps with ``value`` in [0, 1); exact times are kept as
    offsets. ``dt`` is the step length in ms.
    """
    for name, v in (
        ("nb_classes", nb_classes),
        ("nb_units", nb_units),
        ("nb_steps", nb_steps),
        ("dim_manifold", dim_manifold),
        ("nb_spikes", nb_spikes),
        ("nb_samples", nb_samples),
    ):
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name}: must be a positive integer, got {v!r}")
    if not 0 < step_frac <= 1:
        raise ValueError(f"step_frac: must lie in (0, 1], got {step_frac!r}")
    rs = np.random.RandomState(seed)
    manifold_seeds = rs.randint(np.iinfo(np.int64).max, size=(nb_classes, nb_spikes))
    times_all, labels_all = [], []
    for k in range(nb_classes):
        x = rs.rand(nb_samples, dim_manifold)
        per_manifold = []
        for i in range(nb_spikes):
            rm = RandomManifold(nb_units, dim_manifold, alpha=alpha, seed=int(manifold_seeds[k, i]))
            per_manifold.append(_standardize(rm(x)).numpy())
        times_all.append(np.concatenate(per_manifold, axis=1))  # (nb_samples, nb_units*nb_spikes)
        labels_all.append(np.full(nb_samples, k, dtype=np.int64))
    values = np.concatenate(times_all, axis=0)
    labels = np.concatenate(labels_all)
    if shuffle:
        idx = np.arange(len(values))
        rs.shuffle(idx)
        values, labels = values[idx], labels[idx]
    # as the reference: float32 values promoted to float64, then scaled to steps
    t_steps = values.astype(np.float64) * (nb_steps * step_frac)
    n_per = nb_units * nb_spikes
    step, offset = split_steps(t_steps.ravel())
    step = np.minimum(step, nb_steps - 1)
    channel = np.tile(np.tile(np.arange(nb_units, dtype=np.int64), nb_spikes), len(labels))
    pointers = np.arange(len(labels) + 1, dtype=np.int64) * n_per
    return SpikeData.from_arrays(
        step,
        channel,
        pointers,
        labels,
        n_steps=nb_steps,
        n_channels=nb_units,
        dt=dt,
        offset=offset,
        class_names=tuple(f"manifold {k}" for k in range(nb_classes)),
    )
