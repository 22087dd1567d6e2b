"""Readout losses and the spike-count regulariser, as ordinary PyTorch modules.

Every loss is computed from the engine's outputs with PyTorch operations; autograd hands its
gradient to the EventProp backward pass (readout adjoint source, spike-time and spike-count
terms). Any other loss written the same way works too.
"""

from eventprop.losses.readout import (
    LOSSES,
    AvgCrossEntropyLoss,
    FirstSpikeLoss,
    MaxLoss,
    ReadoutLoss,
    SumLoss,
    WeightedSumLoss,
    make_loss,
)
from eventprop.losses.regularizer import SpikeCountRegularizer

__all__ = [
    "LOSSES",
    "AvgCrossEntropyLoss",
    "FirstSpikeLoss",
    "MaxLoss",
    "ReadoutLoss",
    "SpikeCountRegularizer",
    "SumLoss",
    "WeightedSumLoss",
    "make_loss",
]
