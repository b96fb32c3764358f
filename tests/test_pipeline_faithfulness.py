"""Deletion and insertion curves on a model whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import faithfulness

SIZE = 24
REGION = np.zeros((SIZE, SIZE), dtype=bool)
REGION[4:12, 4:12] = True


def predict(batch: np.ndarray) -> np.ndarray:
    """Class 0 probability = mean brightness of REGION / 255: the model 'looks at' REGION only."""
    p = batch[:, REGION, 0].mean(axis=1) / 255.0
    return np.stack([p, 1 - p], axis=1)


IMAGE = np.zeros((SIZE, SIZE, 3), dtype=np.float32)
IMAGE[REGION] = 255.0


def test_the_curve_starts_at_the_image_and_ends_at_the_start():
    base = np.zeros_like(IMAGE)
    values = faithfulness.curve(predict, IMAGE, base, faithfulness.map_order(REGION.astype(float)), 0, steps=8)
    assert len(values) == 9 and values[0] == pytest.approx(1.0) and values[-1] == pytest.approx(0.0)
    assert np.all(np.diff(values) <= 1e-9)


def test_a_map_of_what_the_model_uses_beats_random_and_its_reverse():
    right = faithfulness.scores(predict, IMAGE, REGION.astype(float), 0)
    reverse = faithfulness.scores(predict, IMAGE, 1.0 - REGION, 0)
    rng = np.random.default_rng(0)
    random = faithfulness.scores(predict, IMAGE, rng.random((SIZE, SIZE)), 0)
    assert right["deletion"] < random["deletion"] < reverse["deletion"]
    assert right["insertion"] > random["insertion"] > reverse["insertion"]


def test_area_of_a_straight_line():
    assert faithfulness.area(np.linspace(1, 0, 11)) == pytest.approx(0.5)
