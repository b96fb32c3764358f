"""The Keras internals that pipeline/compat.py relies on still behave as it assumes.

A failure here after a Keras upgrade means a workaround must be checked against the new Keras
(and dropped if Keras fixed what it works around), then KERAS_VERSION raised.
"""

from __future__ import annotations

import inspect
import re
from unittest import mock

import keras
import numpy as np
import tensorflow as tf
from conftest import REPO
from keras.src.backend.tensorflow import trainer

from pipeline import compat


def test_written_for_the_pinned_keras():
    pinned = re.search(r"^keras==(\S+)$", (REPO / "requirements.txt").read_text(), flags=re.MULTILINE)
    assert keras.__version__ == compat.KERAS_VERSION == pinned.group(1)


def _batch() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(8, 3)).astype("float32"), rng.integers(0, 2, 8)


def test_fit_leaves_the_build_to_a_model_that_holds_no_strategy(monkeypatch):
    """A model remembers the strategy it was made under; without it ``fit`` builds nothing itself."""
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        assert model._distribute_strategy is strategy
        compat.build_for_multi_worker_fit(model, _batch())
        assert model.optimizer.built and model._distribute_strategy is None
        assert model.distribute_strategy is strategy, "fit must find the strategy of the enclosing scope"
        monkeypatch.setattr(model, "_symbolic_build", mock.Mock(side_effect=AssertionError("fit built again")))
        model.fit(*_batch(), epochs=1, verbose=0)


def _multi_worker_strategy() -> mock.Mock:
    """Passes Keras' multi-worker test; records the reductions asked of it."""
    strategy = mock.Mock(spec=tf.distribute.MultiWorkerMirroredStrategy)
    strategy.extended._in_multi_worker_mode.return_value = True
    return strategy


def test_keras_still_averages_multi_worker_logs_along_axis_0(monkeypatch):
    assert "reduce_per_replica(" in inspect.getsource(trainer.TensorFlowTrainer._make_function), (
        "the step function no longer reduces its logs through the module's reduce_per_replica")
    loss = tf.constant(0.5)
    strategy = _multi_worker_strategy()
    trainer.reduce_per_replica({"loss": loss}, strategy, "auto")
    strategy.reduce.assert_called_once_with("MEAN", loss, axis=0)  # the bug: a scalar has no axis 0

    monkeypatch.setattr(trainer, "reduce_per_replica", trainer.reduce_per_replica)  # undone after the test
    compat.average_scalar_logs_across_workers()
    compat.average_scalar_logs_across_workers()
    strategy = _multi_worker_strategy()
    trainer.reduce_per_replica({"loss": loss}, strategy, "auto")
    strategy.reduce.assert_called_once_with("MEAN", loss, axis=None)


def test_other_reductions_are_left_to_keras(monkeypatch):
    monkeypatch.setattr(trainer, "reduce_per_replica", trainer.reduce_per_replica)
    compat.average_scalar_logs_across_workers()
    total, strategy = tf.constant([1.0, 2.0]), _multi_worker_strategy()
    trainer.reduce_per_replica(total, strategy, "sum")
    strategy.reduce.assert_called_once_with("SUM", total)
