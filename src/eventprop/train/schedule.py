"""Learning-rate schedules, stepped once per epoch, with state for exact resumption.

The paper's rule (``ema``, from the reference implementation of Nowotny et al.): after every
epoch, update a fast and a slow exponential moving average of the validation accuracy (both
start at 0)::

    fast <- a_fast * fast + (1 - a_fast) * acc        (a_fast = 0.8)
    slow <- a_slow * slow + (1 - a_slow) * acc        (a_slow = 0.85)

and multiply the learning rate by ``factor`` (0.5) when ``fast <= slow`` -- the recent trend
has stopped improving -- but only if more than ``min_epochs`` (50) epochs have passed since
the last reduction (or the start). ``cosine`` and ``step`` are the usual alternatives.
All state is plain numbers, saved in every checkpoint.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from eventprop.train.config import ScheduleConfig

__all__ = ["LRSchedule"]


class LRSchedule:
    """Sets the optimiser's learning rate after each epoch (``step``)."""

    def __init__(
        self, optimizer: torch.optim.Optimizer, cfg: ScheduleConfig, base_lr: float, epochs: int
    ) -> None:
        self.optimizer = optimizer
        self.cfg = cfg
        self.base_lr = float(base_lr)
        self.epochs = int(epochs)
        self.lr = float(base_lr)
        self.ema_fast = 0.0
        self.ema_slow = 0.0
        self.last_reduction = 0
        self._apply()

    def _apply(self) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr

    def step(self, epoch: int, accuracy: float | None) -> str | None:
        """Update after ``epoch`` (0-based) with its validation accuracy; returns a note."""
        c, old = self.cfg, self.lr
        if c.kind == "cosine":
            progress = min(1.0, (epoch + 1) / max(1, self.epochs))
            self.lr = c.min_lr + (self.base_lr - c.min_lr) * 0.5 * (
                1.0 + math.cos(math.pi * progress)
            )
        elif c.kind == "step":
            self.lr = max(c.min_lr, self.base_lr * c.factor ** ((epoch + 1) // c.every))
        elif c.kind == "ema" and accuracy is not None:
            self.ema_fast = c.fast * self.ema_fast + (1.0 - c.fast) * accuracy
            self.ema_slow = c.slow * self.ema_slow + (1.0 - c.slow) * accuracy
            if epoch - self.last_reduction > c.min_epochs and self.ema_fast <= self.ema_slow:
                self.lr = max(c.min_lr, self.lr * c.factor)
                self.last_reduction = epoch
        self._apply()
        if c.kind == "ema" and self.lr != old:
            return (
                f"learning rate {old:.3g} -> {self.lr:.3g} (EMA fast {self.ema_fast:.4f} "
                f"<= slow {self.ema_slow:.4f})"
            )
        return None

    def state_dict(self) -> dict[str, Any]:
        return {
            "lr": self.lr,
            "ema_fast": self.ema_fast,
            "ema_slow": self.ema_slow,
            "last_reduction": self.last_reduction,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.lr = float(state["lr"])
        self.ema_fast = float(state["ema_fast"])
        self.ema_slow = float(state["ema_slow"])
        self.last_reduction = int(state["last_reduction"])
        self._apply()
