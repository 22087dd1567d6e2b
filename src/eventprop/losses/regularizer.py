"""Spike-count regulariser (method doc section 5).

A loss on the hidden spike counts ``N_bj``: ``R = sum_j lambda_j/2 * (N_j - nu_j)^2 / B`` with
``lambda_j = lambda_upper`` above the target ``nu`` and ``lambda_lower`` below. Counts are
piecewise constant in the weights, so ``R`` has no true gradient; the engine turns the
``dR/dN_bj = lambda * (N_bj - nu) / B`` that autograd delivers into the reference code's rule,
adding ``tau_m**2 * dR/dN`` to ``p_V`` (``tau_m * lambda * (N - nu)/B`` to the doc's
``lambda_V``) at every spike of neuron j. Strengths are therefore in the units of the paper's
code: its ``LBD_UPPER``/``LBD_LOWER`` carry over unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["SpikeCountRegularizer"]


class SpikeCountRegularizer(nn.Module):
    """Pushes each hidden neuron's spike count per trial towards ``nu``.

    ``nu`` is a number or a per-neuron tensor; ``per_trial=False`` uses the count averaged over
    the mini-batch instead of each trial's own count (the reference code's ``AVG_SNSUM``).
    """

    def __init__(
        self,
        nu: float | torch.Tensor = 14.0,
        lambda_upper: float = 2e-9,
        lambda_lower: float = 2e-9,
        per_trial: bool = True,
    ) -> None:
        super().__init__()
        if lambda_upper < 0 or lambda_lower < 0:
            raise ValueError("lambda_upper/lambda_lower: strengths must be >= 0")
        self.register_buffer("nu", torch.as_tensor(nu, dtype=torch.float32))
        self.lambda_upper, self.lambda_lower, self.per_trial = lambda_upper, lambda_lower, per_trial

    def forward(self, hidden_counts: Sequence[torch.Tensor]) -> torch.Tensor:
        if not hidden_counts:  # a network without hidden layers has nothing to regularise
            return self.nu.new_zeros(())
        total = hidden_counts[0].new_zeros(())
        for counts in hidden_counts:
            B = counts.shape[0]
            nu = self.nu.to(counts)
            n = counts if self.per_trial else counts.mean(0, keepdim=True).expand_as(counts)
            diff = n - nu
            upper = torch.full_like(diff, self.lambda_upper)
            lam = torch.where(diff > 0, upper, torch.full_like(diff, self.lambda_lower))
            # dR/dN_bj = lam * (N_bj - nu) / B per trial; with batch-averaged counts the mean's
            # 1/B and the B copies cancel, giving lam * (mean_b N_bj - nu) / B as the reference.
            total = total + (lam * diff**2).sum() / (2 * B)
        return total
