"""Training state kept on disk, so that a killed run resumes where it stopped.

Weights files are never overwritten: each save gets a new file, and a small JSON record naming
it is replaced in one rename, so a run killed mid-save still has a record that names complete
weights.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import keras
import numpy as np

from . import artifacts

log = logging.getLogger(__name__)


class TrainingClock(keras.callbacks.Callback):
    """Training seconds, kept in a file at every epoch end so a resumed run reports the total."""

    FILE = "seconds.txt"

    def __init__(self, work: Path):
        super().__init__()
        self.work, self.start = work, time.time()
        self.before = float((work / self.FILE).read_text()) if (work / self.FILE).exists() else 0.0

    def total(self) -> float:
        return self.before + time.time() - self.start

    def on_epoch_end(self, epoch, logs=None):
        artifacts.replace_text(self.work, self.FILE, f"{self.total():.1f}")


class WeightsRecord(keras.callbacks.Callback):
    """Weights saved in ``work`` under the record ``<name>.json``; subclasses decide when to save."""

    def __init__(self, work: Path, name: str):
        super().__init__()
        self.work, self.name, self.record = work, name, f"{name}.json"

    def saved(self) -> dict | None:
        """{"epoch": 1-based epoch over the whole run, "weights": file, ...}, or None before any save."""
        if not (self.work / self.record).exists():
            return None
        return artifacts.read_json(self.work, self.record, required=("epoch", "weights"))

    def save(self, epoch: int, **fields: float) -> None:
        """Save the model's weights after ``epoch`` (0-based, as Keras counts), then drop the previous file."""
        previous = self.saved()
        name = f"{self.name}-{epoch + 1}.weights.h5"
        self.model.save_weights(self.work / name)
        artifacts.replace_json(self.work, self.record, {"epoch": epoch + 1, **fields, "weights": name})
        if previous and previous["weights"] != name:
            (self.work / previous["weights"]).unlink(missing_ok=True)


class BestWeights(WeightsRecord):
    """The weights of the lowest validation loss seen in any phase of the run, on disk so that an
    interrupted run still weighs its earlier epochs. EarlyStopping only knows one ``fit``."""

    def __init__(self, work: Path):
        super().__init__(work, "best")

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("val_loss")
        best = self.saved()
        if loss is None or not np.isfinite(loss) or (best and loss >= best["val_loss"]):
            return
        self.save(epoch, val_loss=float(loss))


class EpochBackup(WeightsRecord):
    """The weights, optimizer state included, after every epoch of one phase; ``restore`` gives the
    epoch a killed phase resumes at, for ``fit(initial_epoch=...)``.

    Used instead of ``keras.callbacks.BackupAndRestore``: its restored epoch stays on the model
    (``model._initial_epoch``) and overrides the ``initial_epoch`` of every later ``fit``, so the
    next phase would start at that epoch (Keras 3.15.1):
    https://github.com/keras-team/keras/blob/v3.15.1/keras/src/callbacks/backup_and_restore.py#L152
    https://github.com/keras-team/keras/blob/v3.15.1/keras/src/backend/tensorflow/trainer.py#L392
    """

    def __init__(self, work: Path, phase: str):
        super().__init__(work, f"backup-{phase}")

    def restore(self, model: keras.Model, start: int) -> int:
        """Load the last saved epoch of this phase into the compiled ``model``; the epoch to resume
        at, or ``start`` when the phase has not saved one yet."""
        saved = self.saved()
        if saved is None:
            return start
        if not model.optimizer.built:  # so that its saved state loads too
            model.optimizer.build(model.trainable_variables)
        model.load_weights(self.work / saved["weights"])
        log.info("resuming %s after epoch %d", self.name, saved["epoch"])
        return saved["epoch"]

    def on_epoch_end(self, epoch, logs=None):
        self.save(epoch)
