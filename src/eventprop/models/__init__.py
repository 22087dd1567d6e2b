"""Network building blocks as ``torch.nn.Module``s (layers, readout, the network)."""

from eventprop.models.layers import LIFLayer, LIReadout, TimeConstants
from eventprop.models.network import Network, NetworkOutput

__all__ = ["LIFLayer", "LIReadout", "Network", "NetworkOutput", "TimeConstants"]
