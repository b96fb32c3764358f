"""The training loss: label smoothing on integer labels, equal to Keras' one-hot loss."""

from __future__ import annotations

import keras
import numpy as np

from pipeline.train import loss_function

LABELS = np.array([0, 2, 1, 2])
PROBS = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.4, 0.3], [0.5, 0.25, 0.25]], dtype="float32")


def test_no_smoothing_is_the_plain_sparse_loss():
    assert loss_function(0.0) == "sparse_categorical_crossentropy"


def test_smoothing_matches_the_one_hot_loss_per_sample():
    got = np.asarray(loss_function(0.1)(LABELS, PROBS))
    want = np.asarray(keras.losses.categorical_crossentropy(np.eye(3)[LABELS], PROBS, label_smoothing=0.1))
    assert got.shape == (4,)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    plain = np.asarray(keras.losses.sparse_categorical_crossentropy(LABELS, PROBS))
    assert not np.allclose(got, plain)
