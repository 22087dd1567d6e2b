"""eventprop: exact-gradient training of spiking neural networks with EventProp."""

import os
import sys

# PyTorch's OpenMP threads busy-wait after every parallel operation. The engine's numba kernels
# run right after such operations (the previous step's loss and optimiser), and on a machine
# with few cores the spinning threads take the cores the kernels need: a forward pass cost up
# to 6x more CPU time on 2 cores. Passive waiting costs PyTorch almost nothing at the small
# tensor sizes of a training step. OpenMP reads the setting when PyTorch loads, so this works
# when eventprop is imported first (always the case for the ``eventprop`` command); a user's
# own OMP_WAIT_POLICY is respected.
if "torch" not in sys.modules:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from eventprop.events import EventBatch

__version__ = "0.1.0"
__all__ = ["EventBatch", "__version__"]
