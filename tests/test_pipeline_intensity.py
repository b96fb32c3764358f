"""Histogram equalisation inside the model: the classic mapping, per image, saved and reloaded safely."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from pipeline.errors import ConfigError
from pipeline.intensity import LAYER_NAME, HistogramEqualization, normalise_intensity


def reference_equalization(gray: np.ndarray) -> np.ndarray:
    """The textbook mapping, (cdf(v) - cdf_min) / (N - cdf_min) * 255, in NumPy."""
    levels = gray.astype(int)
    cdf = np.bincount(levels.ravel(), minlength=256).cumsum()
    darkest = cdf[levels.min()]
    return (cdf[levels] - darkest) / (levels.size - darkest) * 255


@pytest.fixture(scope="module")
def xrays() -> np.ndarray:
    """Two 64 x 64 images with different windows: one dark and narrow, one bright and skewed."""
    rng = np.random.default_rng(0)
    dark = np.round(rng.random((64, 64)) * 40 + 10)
    bright = np.round(rng.random((64, 64)) ** 3 * 100 + 150)
    return np.repeat(np.stack([dark, bright])[..., None], 3, axis=-1).astype("float32")


def test_each_image_is_equalised_by_its_own_histogram(xrays):
    out = np.asarray(HistogramEqualization()(xrays))
    assert out.shape == xrays.shape
    for image, equalised in zip(xrays, out):
        np.testing.assert_allclose(equalised[..., 0], reference_equalization(image[..., 0]), atol=1e-3)
        np.testing.assert_array_equal(equalised[..., 0], equalised[..., 2])
        assert equalised.min() == 0 and equalised.max() == pytest.approx(255)


def test_a_change_of_window_and_gamma_gives_the_same_input(xrays):
    # Two exports of one X-ray that differ by a monotone gray-level map give the model one input.
    gray = xrays[1, ..., 0]
    other_chain = np.round(255 * ((gray - gray.min()) / np.ptp(gray)) ** 0.7)
    pair = np.repeat(np.stack([gray, other_chain])[..., None], 3, axis=-1).astype("float32")
    assert np.abs(pair[0] - pair[1]).max() > 50
    out = np.asarray(HistogramEqualization()(pair))
    np.testing.assert_allclose(out[0], out[1], atol=1e-3)


def test_the_layer_survives_a_safe_reload(xrays, tmp_path):
    inputs = keras.Input((64, 64, 3))
    model = keras.Model(inputs, normalise_intensity(inputs, "equalize"))
    assert model.get_layer(LAYER_NAME).count_params() == 0
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_array_equal(reloaded.predict(xrays, verbose=0), model.predict(xrays, verbose=0))


def test_none_is_the_identity_and_unknown_kinds_list_the_valid_ones():
    inputs = keras.Input((8, 8, 3))
    assert normalise_intensity(inputs, "none") is inputs
    with pytest.raises(ConfigError, match="valid: none, equalize"):
        normalise_intensity(inputs, "clahe")


def test_an_equalising_classifier_sees_the_equalised_image_and_gives_maps():
    from pipeline.attention import AttentionModel
    from pipeline.backbones import get_backbone
    from pipeline.model import PREPROCESS_LAYER, build_model

    spec = get_backbone("SmallCNN")
    model = build_model(spec, 3, weights=None, image_size=64, intensity="equalize")
    names = [layer.name for layer in model.layers]
    assert names.index(LAYER_NAME) == 1 and names.index(PREPROCESS_LAYER) == 2
    rng = np.random.default_rng(1)
    image = np.repeat(np.round(rng.random((64, 64, 1)) * 60 + 90), 3, axis=-1).astype("float32")
    seen = keras.Model(model.inputs, model.get_layer(LAYER_NAME).output).predict(image[None], verbose=0)[0]
    np.testing.assert_allclose(seen[..., 0], reference_equalization(image[..., 0]), atol=1e-3)
    attention = AttentionModel(model, spec.gradcam_layer)
    maps = attention.maps(image, 0)
    for heatmap in maps.values():
        assert heatmap.shape == (64, 64) and np.isfinite(heatmap).all() and heatmap.std() > 0.01
