"""Warnings about a run that completed without learning.

A run can end with status ``completed`` and still be useless: a learning rate of 1e6 silences
every hidden neuron in the first epoch, after which no gradient reaches the input weights and
the accuracy sits at chance for the remaining epochs. Nothing failed, so nothing stopped the
run; these checks put a warning into the log and ``summary.json`` so that the result is not
mistaken for a trained network.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["CHANCE_EPOCHS", "training_warnings"]

#: epochs at chance accuracy (the last ones of the run) that make the run "stuck at chance"
CHANCE_EPOCHS = 5


def training_warnings(
    history: Sequence[dict[str, Any]], hidden_sizes: Sequence[int], n_classes: int
) -> list[str]:
    """One line per problem of a finished run (empty when it looks healthy).

    * every hidden neuron silent during the last epoch (no hidden spike: nothing to learn from);
    * training accuracy within two standard errors of chance (``1/n_classes``) in each of the
      last :data:`CHANCE_EPOCHS` epochs (shorter runs are not judged: early epochs of a healthy
      run may still be near chance).
    """
    out: list[str] = []
    if not history:
        return out
    last = history[-1]
    n_hidden = int(sum(hidden_sizes))
    silent = last.get("silent_neurons")
    if n_hidden and silent is not None and int(silent) >= n_hidden:
        out.append(
            f"every hidden neuron ({n_hidden}) was silent in the last epoch "
            f"({last.get('epoch')}): the network cannot learn from its inputs; lower optim.lr "
            "or raise the input weights (model.init.w_in_mean), or enable train.rewire"
        )
    window = history[-CHANCE_EPOCHS:]
    if n_classes >= 2 and len(window) == CHANCE_EPOCHS:
        chance = 1.0 / n_classes
        stuck = True
        for row in window:
            acc, n = row.get("train_accuracy"), row.get("train_samples")
            if acc is None or not n or (isinstance(acc, float) and math.isnan(acc)):
                stuck = False
                break
            if acc > chance + 2.0 * math.sqrt(chance * (1.0 - chance) / int(n)):
                stuck = False
                break
        if stuck:
            first, end = window[0].get("epoch"), window[-1].get("epoch")
            out.append(
                f"training accuracy stayed at chance ({100 * chance:.1f} %, {n_classes} classes) "
                f"in epochs {first}..{end}: the run did not learn; check optim.lr, the "
                "initialisation (model.init) and the data"
            )
    return out
