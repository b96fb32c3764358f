"""Which devices and machines train: one GPU or CPU, every local GPU, or several machines.

Several machines: set ``TF_CONFIG`` on each (see README); the first worker (or the chief)
writes the model. Keras 3 ``fit`` does not yet run under ``MultiWorkerMirroredStrategy``
(keras-team/keras#20585): ``prepare_multi_worker`` applies the two narrow fixes it needs.
"""

from __future__ import annotations

import json
import os

import keras
import tensorflow as tf


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
    """Let a compiled model ``fit`` under MultiWorkerMirroredStrategy (call inside its scope).

    1. Keras builds optimizer and metric variables from an eagerly reduced distributed batch,
       which fails across workers: build them here from a local batch, and let ``fit`` find
       the strategy from the enclosing scope instead of the model.
    2. Keras averages each step's scalar logs across workers along axis 0, which scalars lack:
       average them with ``axis=None``, so every worker sees the same loss (and early
       stopping stops all workers at the same epoch).
    """
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer

    model._symbolic_build(data_batch=sample_batch)
    model._distribute_strategy = None
    if getattr(trainer.reduce_per_replica, "multi_worker_fix", False):
        return
    original = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction == "auto" and trainer._collective_all_reduce_multi_worker(strategy):
            return tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return original(values, strategy, reduction)

    reduce_per_replica.multi_worker_fix = True
    trainer.reduce_per_replica = reduce_per_replica
