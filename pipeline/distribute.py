"""Which devices and machines train: one GPU or CPU, every local GPU, or several machines.

Several machines: set ``TF_CONFIG`` on each (see README); the first worker (or the chief)
writes the model. Keras 3 ``fit`` does not yet run under ``MultiWorkerMirroredStrategy``
(https://github.com/keras-team/keras/issues/20585): ``prepare_multi_worker`` applies the two
workarounds of ``pipeline.compat`` it needs.
"""

from __future__ import annotations

import json
import os

import keras
import tensorflow as tf

from . import compat


def distribution_strategy() -> tf.distribute.Strategy:
    """Several machines when TF_CONFIG is set, every local GPU otherwise, else the default."""
    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def worker_id() -> tuple[bool, str]:
    """(is this the chief, a name for its private files) from TF_CONFIG."""
    task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})
    kind, index = task.get("type", "chief"), int(task.get("index", 0))
    return kind == "chief" or (kind == "worker" and index == 0), f"{kind}-{index}"


def prepare_multi_worker(model: keras.Model, sample_batch: tuple) -> None:
    """Let a compiled model ``fit`` under MultiWorkerMirroredStrategy (call inside its scope)."""
    compat.build_for_multi_worker_fit(model, sample_batch)
    compat.average_scalar_logs_across_workers()
