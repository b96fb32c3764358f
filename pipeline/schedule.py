"""How the learning rate moves within a training phase.

"plateau" (the default): constant, cut by ReduceLROnPlateau when validation loss stalls. "cosine":
a linear warm-up from zero over the first epochs, then a cosine decay to zero by the phase's last
epoch, whatever validation loss does. Networks trained from random weights (and VGG16 above all,
which has no BatchNormalization) diverge or stall at a full learning rate on their first steps;
the warm-up lets them start, and the decay ends the phase on small steps within a fixed budget.
The schedule follows the optimizer's step count, which the epoch backups keep, so a resumed phase
continues where it stopped.
"""

from __future__ import annotations

import keras

from .config import SCHEDULES
from .errors import ConfigError


def learning_rate(kind: str, peak: float, epochs: int, steps_per_epoch: int, warmup_epochs: int):
    """The optimizer's learning rate for one phase of ``epochs`` epochs: a float, or a schedule."""
    if kind not in SCHEDULES:
        raise ConfigError(f"unknown learning-rate schedule {kind!r}; valid: {', '.join(SCHEDULES)}")
    if kind == "plateau":
        return peak
    warmup = min(warmup_epochs, max(epochs - 1, 0)) * steps_per_epoch
    return keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=max(epochs * steps_per_epoch - warmup, 1), warmup_target=peak, warmup_steps=warmup)


def callbacks(kind: str, patience: int) -> list[keras.callbacks.Callback]:
    """The callbacks a schedule needs: ReduceLROnPlateau for "plateau" (a schedule sets its own rate)."""
    if kind == "plateau":
        return [keras.callbacks.ReduceLROnPlateau(factor=0.3, patience=max(1, patience // 2), min_lr=1e-7)]
    return []
