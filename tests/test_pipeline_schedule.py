"""Learning rate within a phase: a plain rate cut on plateaus, or a linear warm-up then a cosine decay."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from pipeline.errors import ConfigError
from pipeline.schedule import callbacks, learning_rate


def rates(schedule, steps: int) -> np.ndarray:
    return np.array([float(schedule(step)) for step in range(steps + 1)])


def test_cosine_warms_up_linearly_peaks_then_decays_to_zero_by_the_last_epoch():
    schedule = learning_rate("cosine", 1e-3, epochs=5, steps_per_epoch=10, warmup_epochs=1)
    lr = rates(schedule, 50)
    np.testing.assert_allclose(lr[:11], np.linspace(0, 1e-3, 11), rtol=1e-5, atol=1e-12)
    assert np.all(np.diff(lr[10:]) <= 0) and lr[10] == pytest.approx(1e-3)
    assert lr[30] == pytest.approx(0.5e-3, rel=1e-4), "half way through the decay: half the peak"
    assert lr[50] == pytest.approx(0.0, abs=1e-12)
    assert callbacks("cosine", 4) == [], "ReduceLROnPlateau cannot set the rate of a schedule"


def test_a_one_epoch_phase_has_no_warm_up_and_plateau_is_a_constant_rate():
    lr = rates(learning_rate("cosine", 1e-3, epochs=1, steps_per_epoch=10, warmup_epochs=3), 10)
    assert lr[0] == pytest.approx(1e-3) and lr[10] == pytest.approx(0.0, abs=1e-12)
    assert learning_rate("plateau", 1e-3, 5, 10, 1) == 1e-3
    (plateau,) = callbacks("plateau", 4)
    assert isinstance(plateau, keras.callbacks.ReduceLROnPlateau) and plateau.patience == 2


def test_unknown_schedules_list_the_valid_ones():
    with pytest.raises(ConfigError, match="valid: plateau, cosine"):
        learning_rate("step", 1e-3, 5, 10, 1)
