"""``python -m eventprop``: the ``eventprop`` command (used by ``torchrun -m eventprop``)."""

import sys

from eventprop.cli.main import main

sys.exit(main())
