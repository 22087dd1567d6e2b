"""NIR (Neuromorphic Intermediate Representation) export and import.

``to_nir(network)`` writes a :class:`~eventprop.models.Network` as a ``nir.NIRGraph``;
``from_nir(graph)`` builds a ``Network`` from one. The ``nir`` package is needed only here
(``pip install nir``); the conventions are documented in :mod:`eventprop.nir.convert`.
"""

from eventprop.nir.convert import (
    CONVENTIONS,
    NIRGraphError,
    export_run,
    from_nir,
    read_nir,
    to_nir,
    write_nir,
)

__all__ = [
    "CONVENTIONS",
    "NIRGraphError",
    "export_run",
    "from_nir",
    "read_nir",
    "to_nir",
    "write_nir",
]
