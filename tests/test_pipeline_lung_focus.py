"""Lung focus: frozen segmenter layers at the start of a classifier dim what lies outside the lungs."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import REPO
from scipy import ndimage

from pipeline.backbones import get_backbone
from pipeline.config import LUNG_FOCUS_OUTSIDE, LUNGS_DIR_NAME
from pipeline.images import file_to_model_input
from pipeline.lung_focus import PREFIX, focus_on_lungs, is_focus_layer, load_unet, margin_pixels
from pipeline.lungs import build_segmenter, predict_masks
from pipeline.model import build_model, set_trainable

SEGMENTER = REPO / "saved_models" / LUNGS_DIR_NAME
SAMPLE = REPO / "dashboard" / "samples" / "covid19-ieee8023-bb0e626a.jpg"
SIZE = 112

pytestmark = pytest.mark.skipif(not SEGMENTER.is_dir(), reason=f"{SEGMENTER} is not here")


@pytest.fixture(scope="module")
def unet() -> keras.Model:
    return load_unet(str(SEGMENTER))


@pytest.fixture(scope="module")
def classifier(unet) -> keras.Model:
    return build_model(get_backbone("SmallCNN"), 3, weights=None, image_size=SIZE, lung_unet=unet)


def focused(model: keras.Model, image: np.ndarray) -> np.ndarray:
    return np.asarray(keras.Model(model.inputs, model.get_layer(PREFIX).output)(image[None], training=False))[0]


def test_the_lungs_keep_their_values_and_what_lies_far_outside_is_dimmed(classifier, unet):
    image = file_to_model_input(SAMPLE, SIZE)
    lungs = predict_masks(build_segmenter(unet, SIZE), image[None])[0]
    assert 0.1 < lungs.mean() < 0.6  # a real pair of lungs, not an empty or full mask
    away = ndimage.distance_transform_cdt(~lungs, metric="chessboard")  # square windows: chessboard distance
    inside = ndimage.distance_transform_cdt(lungs, metric="chessboard")
    ratio = focused(classifier, image)[..., 0] / np.maximum(image[..., 0], 1)
    bright = image[..., 0] > 10
    margin = margin_pixels(SIZE)
    np.testing.assert_allclose(ratio[(inside > 3) & bright], 1.0, atol=0.02)
    far = (away > 2 * margin + 3) & bright  # beyond the margin and the soft edge (drawn at 96 px, resized)
    assert far.sum() > 500
    np.testing.assert_allclose(ratio[far], LUNG_FOCUS_OUTSIDE, atol=0.02)
    rim = (away >= 1) & (away <= 2) & bright  # just outside the lungs, in every direction: inside the margin
    assert np.median(ratio[rim]) > 0.9 and np.percentile(ratio[rim], 10) > 0.6


def test_the_focus_layers_never_train_and_the_model_survives_a_safe_reload(classifier, tmp_path):
    spec = get_backbone("SmallCNN")
    set_trainable(classifier, spec, "fine_tune", from_scratch=True)
    focus = [layer for layer in classifier.layers if is_focus_layer(layer)]
    assert {f"{PREFIX}_gray", f"{PREFIX}_logits", PREFIX} <= {layer.name for layer in focus}
    assert not any(isinstance(layer, keras.Model) for layer in classifier.layers), "graph must be flat"
    assert not any(w.trainable for layer in focus for w in layer.weights)
    assert classifier.get_layer(spec.gradcam_layer).trainable
    path = tmp_path / "model.keras"
    classifier.save(path)
    reloaded = keras.saving.load_model(path, compile=False, safe_mode=True)
    image = file_to_model_input(SAMPLE, SIZE)[None]
    outputs = classifier.predict(image, verbose=0)
    assert outputs.std() > 1e-3, "an untrained model whose outputs still depend on the image"
    np.testing.assert_allclose(classifier(image, training=False), outputs, atol=1e-5)
    np.testing.assert_allclose(reloaded.predict(image, verbose=0), outputs, atol=1e-5)
    np.testing.assert_allclose(focused(reloaded, image[0]), focused(classifier, image[0]), atol=1e-3)


def test_the_share_left_outside_is_checked(unet):
    with pytest.raises(Exception, match=r"outside must be in \[0, 1\), got 1.5"):
        focus_on_lungs(keras.Input((SIZE, SIZE, 3)), unet, SIZE, outside=1.5)


def test_the_maps_of_a_lung_focused_model_are_computed_as_for_any_model(classifier):
    from pipeline.attention import AttentionModel

    spec = get_backbone("SmallCNN")
    attention = AttentionModel(classifier, spec.gradcam_layer)
    image = file_to_model_input(SAMPLE, SIZE)
    probabilities = attention.probabilities(image)
    np.testing.assert_allclose(probabilities, classifier.predict(image[None], verbose=0)[0], atol=1e-5)
    maps = attention.maps(image, int(np.argmax(probabilities)))
    assert set(maps) == {"Grad-CAM", "Grad-CAM++"}
    for heatmap in maps.values():
        assert heatmap.shape == (SIZE, SIZE) and np.isfinite(heatmap).all() and heatmap.std() > 0.01
