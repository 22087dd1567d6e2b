"""Sub-commands that group actions (``eventprop data download``, ``eventprop audio encode``)."""

from __future__ import annotations

import argparse


def command_group(
    subparsers: argparse._SubParsersAction, name: str, *, help: str, description: str
) -> argparse._SubParsersAction:
    """Add the group ``name`` and return the sub-parsers its actions are added to.

    Called without an action, the group prints its help and exits with status 2.
    """
    group = subparsers.add_parser(name, help=help, description=description)
    actions = group.add_subparsers(dest=f"{name}_command", metavar="ACTION")

    def _usage(_args: argparse.Namespace) -> int:
        group.print_help()
        return 2

    group.set_defaults(func=_usage)
    return actions
