"""Every workaround that reaches into Keras internals, in one place.

Each was written for ``KERAS_VERSION`` (pinned in requirements.txt) and cites the Keras source
it relies on. tests/test_pipeline_compat.py checks that each internal still behaves as assumed,
so a Keras upgrade that changes one fails there, not in a multi-worker run. Where a public API
does the job, it is used instead: ``pipeline.checkpoints.EpochBackup`` resumes through
``fit(initial_epoch=...)`` rather than BackupAndRestore and its private ``model._initial_epoch``.
"""

from __future__ import annotations

import logging

import keras
import tensorflow as tf

log = logging.getLogger(__name__)

KERAS_VERSION = "3.15.1"


def _check_version() -> None:
    if keras.__version__ != KERAS_VERSION:
        log.warning("pipeline/compat.py was written for Keras %s, not %s: run tests/test_pipeline_compat.py",
                    KERAS_VERSION, keras.__version__)


def build_for_multi_worker_fit(model: keras.Model, sample_batch: tuple) -> None:
    """Build the optimizer, loss and metric variables of a compiled model from a local batch, and
    let ``fit`` take the strategy from the enclosing scope instead of the model.

    For a model created under a strategy, ``fit`` builds these variables from a batch reduced
    eagerly across replicas, a collective that fails across workers
    (https://github.com/keras-team/keras/issues/20585). It skips that build when
    ``model._distribute_strategy`` is None, and ``distribute_strategy`` then falls back to the
    enclosing scope:
    https://github.com/keras-team/keras/blob/v3.15.1/keras/src/backend/tensorflow/trainer.py#L713-L736
    https://github.com/keras-team/keras/blob/v3.15.1/keras/src/backend/tensorflow/trainer.py#L41-L43
    """
    _check_version()
    model._symbolic_build(data_batch=sample_batch)
    model._distribute_strategy = None


def average_scalar_logs_across_workers() -> None:
    """Make ``fit`` average each step's scalar logs across workers along ``axis=None``, so every
    worker sees the same loss (and early stopping stops all of them at the same epoch).

    Under MultiWorkerMirroredStrategy, ``reduce_per_replica`` reduces "auto" logs with
    ``strategy.reduce("MEAN", v, axis=0)``, which scalars lack
    (https://github.com/keras-team/keras/issues/20585):
    https://github.com/keras-team/keras/blob/v3.15.1/keras/src/backend/tensorflow/trainer.py#L835-L840
    The step function looks ``reduce_per_replica`` up in its module when traced, so replacing it
    there is enough:
    https://github.com/keras-team/keras/blob/v3.15.1/keras/src/backend/tensorflow/trainer.py#L135
    Applying it twice changes nothing.
    """
    from keras.src.backend.tensorflow import trainer

    _check_version()
    if getattr(trainer.reduce_per_replica, "averages_scalars", False):
        return
    original = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy: tf.distribute.Strategy, reduction: str):
        if reduction == "auto" and trainer._collective_all_reduce_multi_worker(strategy):
            return keras.tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return original(values, strategy, reduction)

    reduce_per_replica.averages_scalars = True
    trainer.reduce_per_replica = reduce_per_replica
