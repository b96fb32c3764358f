"""Attention maps on compiled graphs: equal to plain tf-keras-vis on a 7 x 7 grid, model left unchanged."""

from __future__ import annotations

import re
import warnings

import keras
import numpy as np
import pytest
from conftest import REPO, SUBSET, needs
from plain_cam import MIN_GRID, VISUALIZERS, PlainCam, assert_maps_equal_plain, cam_grid

from pipeline.attention import CAM_METHODS, AttentionModel, split_at
from pipeline.backbones import get_backbone
from pipeline.errors import ConfigError
from pipeline.model import build_model

SIZE = 112  # SmallCNN's block4 sees a 7 x 7 grid at 112 px
SHIPPED_MOBILENET = REPO / "saved_models" / "MobileNet"


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(3)  # weights whose maps have structure for every class and method
    return build_model(get_backbone("SmallCNN"), 3, weights=None, image_size=SIZE)


@pytest.fixture(scope="module")
def image():
    """Noise with a bright left half, like the class images of tests/synthetic.py."""
    gray = np.random.default_rng(3).normal(90, 30, (SIZE, SIZE))
    gray[:, :SIZE // 2] += 80
    return np.repeat(gray.clip(0, 255)[..., None], 3, axis=-1).astype("float32")


def test_split_model_gives_the_logits_and_leaves_the_model_alone(model, image):
    split = split_at(model, "block4_relu")
    probabilities = np.asarray(model(image[None]))
    activations = split.below.run(image[None])
    expected = keras.Model(model.inputs, model.get_layer("block4_relu").output)(image[None])
    np.testing.assert_allclose(activations, expected, atol=1e-5)
    for logits in (np.asarray(split.from_image([image[None]])), np.asarray(split.from_activations([activations]))):
        np.testing.assert_allclose(np.exp(logits) / np.exp(logits).sum(), probabilities, atol=1e-5)
    assert model.layers[-1].activation.__name__ == "softmax"
    assert [layer.name for layer in split.from_image.layers] == ["image", "below", "block4_relu", "above"]
    assert [layer.name for layer in split.from_activations.layers] == ["activations", "block4_relu", "above"]


def test_the_methods_are_those_of_the_reference():
    assert set(CAM_METHODS) == set(VISUALIZERS)
    assert all(CAM_METHODS[m].visualizer is VISUALIZERS[m] for m in CAM_METHODS)


@pytest.mark.parametrize("class_index", range(3))
def test_maps_equal_plain_tf_keras_vis(model, image, class_index):
    assert cam_grid(model, "block4_relu") == (MIN_GRID, MIN_GRID)
    ours = AttentionModel(model, "block4_relu", methods=tuple(CAM_METHODS)).maps(image, class_index)
    plain = PlainCam(model, "block4_relu", tuple(CAM_METHODS)).maps(image, class_index)
    assert_maps_equal_plain(ours, plain, atol=1e-5)
    assert all(cam.shape == (SIZE, SIZE) for cam in ours.values())


@needs(SUBSET)
@needs(SHIPPED_MOBILENET / "model.keras")
@pytest.mark.slow
def test_shipped_mobilenet_maps_on_a_real_xray_equal_plain_tf_keras_vis():
    from pipeline.artifacts import gradcam_layer, read_config
    from pipeline.images import file_to_model_input
    from pipeline.model import load_trained_model

    model, _ = load_trained_model(SHIPPED_MOBILENET)
    layer = gradcam_layer(read_config(SHIPPED_MOBILENET), SHIPPED_MOBILENET)
    assert cam_grid(model, layer) == (MIN_GRID, MIN_GRID)
    image = file_to_model_input(SUBSET / "COVID" / "images" / "COVID-10.jpg", int(model.input_shape[1]))
    attention = AttentionModel(model, layer, methods=tuple(CAM_METHODS))
    predicted = int(np.argmax(attention.probabilities(image)))
    assert_maps_equal_plain(attention.maps(image, predicted),
                            PlainCam(model, layer, tuple(CAM_METHODS)).maps(image, predicted))


def test_maps_leave_the_log_clean(model, image, capfd):
    attention = AttentionModel(model, "block4_relu", methods=tuple(CAM_METHODS))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        attention.maps(image, 0)
    assert capfd.readouterr().out == ""


def test_probabilities_match_the_model(model, image):
    attention = AttentionModel(model, "block4_relu")
    attention.warm_up()
    np.testing.assert_allclose(attention.probabilities(image), np.asarray(model(image[None]))[0], atol=1e-6)


def test_maps_after_the_outputs_of_the_same_image_reuse_its_forward_pass(model, image):
    attention = AttentionModel(model, "block4_relu")
    below, runs = attention.split.below, []
    run = below.run
    below.run = lambda x: runs.append(True) or run(x)
    probabilities = attention.probabilities(image)
    reused = attention.maps(image, int(np.argmax(probabilities)))
    assert len(runs) == 1  # the maps of the predicted class ran no network below the CAM layer
    other = image[::-1].copy()
    attention.maps(other, 0)
    assert len(runs) == 2
    fresh = AttentionModel(model, "block4_relu").maps(image, int(np.argmax(probabilities)))
    assert all(np.allclose(reused[m], fresh[m], atol=1e-6) for m in fresh)


def test_bad_method_layer_and_class_are_refused(model, image):
    with pytest.raises(ConfigError, match=re.escape("valid methods: " + ", ".join(CAM_METHODS))):
        AttentionModel(model, "block4_relu", methods=("Saliency",))
    with pytest.raises(ConfigError, match="layer 'nope' is not in model"):
        split_at(model, "nope")
    with pytest.raises(ValueError, match="out of range 0-2"):
        AttentionModel(model, "block4_relu").maps(image, 3)
