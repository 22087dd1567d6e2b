"""Baselines on the same networks: surrogate-gradient BPTT (built in) and snnTorch (optional).

``build_model(network, method)`` is what a training loop calls with the config's ``method``:
``"eventprop"`` returns the network itself (exact EventProp gradients from the engine),
``"bptt"`` a :class:`BPTTNetwork` that shares the network's parameters and returns the same
:class:`~eventprop.models.NetworkOutput`, so losses, regulariser, optimiser and checkpoints
(``network.state_dict()``) are the same for both methods.
"""

from __future__ import annotations

from torch import nn

from eventprop.baselines.bptt import (
    DEFAULT_SURROGATE_SLOPE,
    BPTTNetwork,
    SavedTensorMeter,
    superspike,
)
from eventprop.baselines.snntorch_peer import SnnTorchPeer, snntorch_available
from eventprop.models.network import Network

__all__ = [
    "DEFAULT_SURROGATE_SLOPE",
    "METHODS",
    "BPTTNetwork",
    "SavedTensorMeter",
    "SnnTorchPeer",
    "build_model",
    "snntorch_available",
    "superspike",
]

#: training methods selectable in a training config (``method: ...``)
METHODS = ("eventprop", "bptt")


def build_model(
    network: Network,
    method: str = "eventprop",
    *,
    surrogate_slope: float = DEFAULT_SURROGATE_SLOPE,
    detach_reset: bool = True,
) -> nn.Module:
    """The module to train ``network`` with ``method`` (``"eventprop"`` or ``"bptt"``).

    Both return :class:`~eventprop.models.NetworkOutput` from ``model(events)`` and share the
    network's parameters; ``surrogate_slope``/``detach_reset`` only apply to ``"bptt"``.
    """
    if method == "eventprop":
        return network
    if method == "bptt":
        return BPTTNetwork(network, surrogate_slope=surrogate_slope, detach_reset=detach_reset)
    raise ValueError(f"method: unknown {method!r}; choose one of {list(METHODS)}")
