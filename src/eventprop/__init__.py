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


def _numba_cache_dir() -> None:
    """Compiled kernels go to the user's cache directory, never into site-packages.

    The kernels are compiled with ``cache=True``; numba would otherwise write its cache next
    to the installed source files (a shared, possibly read-only, site-packages). A user's own
    NUMBA_CACHE_DIR is respected. numba reads the variable when it is imported, so an already
    imported numba is told directly.
    """
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    import platformdirs

    path = os.path.join(platformdirs.user_cache_dir("eventprop"), "numba")
    os.environ["NUMBA_CACHE_DIR"] = path
    config = sys.modules.get("numba.core.config")
    if config is not None:
        config.CACHE_DIR = path


_numba_cache_dir()

from eventprop.events import EventBatch  # noqa: E402 - after the environment is set up

__version__ = "0.1.0"
__all__ = ["EventBatch", "__version__"]
