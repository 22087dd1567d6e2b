"""eventprop: exact-gradient training of spiking neural networks with EventProp."""

from eventprop.events import EventBatch

__version__ = "0.1.0"
__all__ = ["EventBatch", "__version__"]
