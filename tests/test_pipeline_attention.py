"""Attention maps on compiled graphs: equal to plain tf-keras-vis, model left unchanged."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from tf_keras_vis.gradcam import Gradcam
from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
from tf_keras_vis.layercam import Layercam
from tf_keras_vis.scorecam import Scorecam
from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
from tf_keras_vis.utils.scores import CategoricalScore

from pipeline.attention import CAM_METHODS, AttentionModel, compiled_cam_model
from pipeline.backbones import get_backbone
from pipeline.errors import ConfigError
from pipeline.model import build_model


@pytest.fixture(scope="module")
def model():
    return build_model(get_backbone("SmallCNN"), 3, weights=None, image_size=32)


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(3).uniform(0, 255, (32, 32, 3)).astype("float32")


def test_cam_model_gives_the_logits_and_leaves_the_model_alone(model, image):
    cam_model = compiled_cam_model(model, "block4_relu")
    probabilities = np.asarray(model(image[None]))
    logits = np.asarray(cam_model([image[None]]))
    np.testing.assert_allclose(np.exp(logits) / np.exp(logits).sum(), probabilities, atol=1e-5)
    assert model.layers[-1].activation.__name__ == "softmax"
    assert [layer.name for layer in cam_model.layers] == ["image", "below", "block4_relu", "above"]


@pytest.mark.parametrize("method, visualizer", [("Grad-CAM", Gradcam), ("Grad-CAM++", GradcamPlusPlus),
                                               ("Score-CAM", Scorecam), ("Layer-CAM", Layercam)])
def test_maps_equal_plain_tf_keras_vis(model, image, method, visualizer):
    attention = AttentionModel(model, "block4_relu", methods=(method,))
    plain = visualizer(model, model_modifier=ReplaceToLinear(), clone=True)
    for class_index in range(3):
        expected = plain(CategoricalScore([class_index]), image[None], penultimate_layer="block4_relu",
                         seek_penultimate_conv_layer=False, **CAM_METHODS[method].arguments)[0]
        ours = attention.maps(image, class_index)[method]
        np.testing.assert_allclose(ours, np.nan_to_num(expected), atol=1e-5)


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


def test_bad_method_layer_and_class_are_refused(model, image):
    with pytest.raises(ConfigError, match=re.escape("valid methods: " + ", ".join(CAM_METHODS))):
        AttentionModel(model, "block4_relu", methods=("Saliency",))
    with pytest.raises(ConfigError, match="layer 'nope' is not in model"):
        compiled_cam_model(model, "nope")
    with pytest.raises(ValueError, match="out of range 0-2"):
        AttentionModel(model, "block4_relu").maps(image, 3)
