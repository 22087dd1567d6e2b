"""Lifting silent hidden neurons (Nowotny et al.: "rewiring" with ``REWIRE_LIFT``).

EventProp's gradient flows only through spikes: a hidden neuron that never fires receives no
gradient and can never recover. The paper's remedy is to add a small constant (0.002) to the
incoming feed-forward weights of every hidden neuron that stayed silent, once per epoch, until
it fires again. (The reference code's lift branch adds the constant to the whole input
matrix whenever the rule runs; we lift only the silent neurons' columns, as the paper
describes the rule.) ``every: batch`` applies the same test to each mini-batch instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from eventprop.models import Network

__all__ = ["lift_silent"]


@torch.no_grad()
def lift_silent(net: Network, silent: Sequence[torch.Tensor], lift: float) -> int:
    """Add ``lift`` to the incoming weights of the silent neurons of each hidden layer.

    ``silent[l]`` is a boolean mask over layer ``l``'s neurons. Returns how many were lifted.
    """
    if len(silent) != len(net.hidden):
        raise ValueError(f"silent: expected {len(net.hidden)} masks, got {len(silent)}")
    total = 0
    for layer, mask in zip(net.hidden, silent):
        mask = mask.to(device=layer.weight.device, dtype=torch.bool)
        if mask.shape != (layer.n_out,):
            raise ValueError(f"silent: mask of shape {tuple(mask.shape)} for {layer.n_out} neurons")
        n = int(mask.sum())
        if n:
            layer.weight[:, mask] += lift
            total += n
    return total
