"""``eventprop gradcheck --timing exact``: the exact-timing variant of the gradient check.

Wiring (in :mod:`eventprop.cli.gradcheck_cmd`): call :func:`add_timing_option` on the
``gradcheck`` parser and use :func:`run_with_timing` as its ``func``; grid timing is passed on
unchanged to ``gradcheck_cmd.run``.

With ``--timing exact`` the engine follows the continuous model inside every step, and its
gradients are compared with central finite differences of the reference's step-integral loss
at the same ``dt`` (``eventprop.gradcheck.exact_check``): they must agree to the tolerance
(default 1e-4) at any ``dt``, time constants included (``--taus`` is implied), and the spike
times must agree with the reference's within 1e-9 ms.
"""

from __future__ import annotations

import argparse

__all__ = ["DEFAULT_TOL", "add_timing_option", "run_with_timing"]

#: tolerances when ``--tol`` is not given
DEFAULT_TOL = {"grid": 0.02, "exact": 1e-4}


def add_timing_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--timing {grid,exact}``; ``--tol`` then defaults to the mode's tolerance."""
    parser.add_argument(
        "--timing",
        choices=sorted(DEFAULT_TOL),
        default="grid",
        help=(
            "engine timing: 'grid' (events on step boundaries; exact only as dt -> 0) or "
            "'exact' (spikes at their real times; checked to 1e-4 at any dt, time constants "
            "included) (default grid)"
        ),
    )
    parser.set_defaults(tol=None)


def run_with_timing(args: argparse.Namespace) -> int:
    """Run the check for ``args.timing``; exit status 1 if any group exceeds the tolerance."""
    from eventprop.cli.gradcheck_cmd import run

    return run(args)
