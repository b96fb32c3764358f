"""Registry, preprocessing equivalence, flat graphs, Grad-CAM after a save/load round trip."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import MOBILENET_WEIGHTS, needs
from tf_keras_vis.gradcam import Gradcam
from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
from tf_keras_vis.utils.scores import CategoricalScore

from pipeline.backbones import BACKBONES, get_backbone, preprocessing_affine
from pipeline.errors import ConfigError
from pipeline.model import PREPROCESS_LAYER, build_model, set_trainable

FAMILIES = {
    "DenseNet121": keras.applications.densenet,
    "ResNet50": keras.applications.resnet50,
    "MobileNet": keras.applications.mobilenet,
    "VGG16": keras.applications.vgg16,
}
SIZE = 32


def test_unknown_backbone_lists_valid_names():
    with pytest.raises(ConfigError, match="unknown backbone 'Inception'.*DenseNet121, ResNet50, MobileNet, VGG16"):
        get_backbone("Inception")


def test_lookup_is_case_insensitive():
    assert get_backbone("mobilenet").name == "MobileNet"


def test_unknown_preprocessing_mode():
    with pytest.raises(ConfigError, match="valid modes: tf, torch, caffe"):
        preprocessing_affine("bgr")


@pytest.mark.parametrize("name", list(FAMILIES))
def test_preprocessing_layer_equals_keras_preprocess_input(name):
    images = np.random.default_rng(0).uniform(0, 255, (2, SIZE, SIZE, 3)).astype("float32")
    model = build_model(get_backbone(name), 3, weights=None, image_size=SIZE)
    ours = keras.Model(model.input, model.get_layer(PREPROCESS_LAYER).output)(images)
    expected = FAMILIES[name].preprocess_input(images.copy())
    np.testing.assert_allclose(np.asarray(ours), np.asarray(expected), atol=1e-4)


@pytest.mark.parametrize("name", list(BACKBONES))
def test_every_backbone_builds_flat_and_gradcam_runs_after_reload(name, tmp_path):
    spec = get_backbone(name)
    model = build_model(spec, 3, weights=None, image_size=SIZE)
    assert not any(isinstance(layer, keras.Model) for layer in model.layers), "graph must be flat"
    assert model.get_layer(spec.gradcam_layer) is not None
    assert not any(type(layer).__name__ == "Lambda" for layer in model.layers)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    image = np.random.default_rng(1).uniform(0, 255, (1, SIZE, SIZE, 3)).astype("float32")
    np.testing.assert_allclose(loaded.predict(image, verbose=0), model.predict(image, verbose=0), atol=1e-5)
    cam = Gradcam(loaded, model_modifier=ReplaceToLinear(), clone=True)
    heatmap = cam(CategoricalScore([0]), image, penultimate_layer=spec.gradcam_layer, seek_penultimate_conv_layer=False)
    assert heatmap.shape == (1, SIZE, SIZE) and np.isfinite(heatmap).all()


def test_weights_file_is_copied_into_the_flat_model(tmp_path):
    reference = keras.applications.MobileNet(include_top=False, weights=None, input_shape=(SIZE, SIZE, 3))
    path = tmp_path / "mobilenet.weights.h5"
    reference.save_weights(path)
    model = build_model(get_backbone("MobileNet"), 3, weights=str(path), image_size=SIZE)
    for layer in (layer for layer in reference.layers if layer.weights):
        for ours, theirs in zip(model.get_layer(layer.name).get_weights(), layer.get_weights()):
            np.testing.assert_array_equal(ours, theirs)


def test_weights_file_of_another_backbone_is_refused(tmp_path):
    path = tmp_path / "mobilenet.weights.h5"
    keras.applications.MobileNet(include_top=False, weights=None, input_shape=(SIZE, SIZE, 3)).save_weights(path)
    with pytest.raises(ConfigError, match="do not match backbone VGG16"):
        build_model(get_backbone("VGG16"), 3, weights=str(path), image_size=SIZE)


def test_missing_weights_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="not found; use 'imagenet', 'none' or a file path"):
        build_model(get_backbone("MobileNet"), 3, weights=str(tmp_path / "nope.h5"), image_size=SIZE)


@needs(MOBILENET_WEIGHTS)
def test_shipped_mobilenet_weights_load():
    model = build_model(get_backbone("MobileNet"), 3, weights=str(MOBILENET_WEIGHTS), image_size=224)
    assert np.abs(model.get_layer("conv1").get_weights()[0]).sum() > 0


def test_training_phases_freeze_the_right_layers():
    spec = get_backbone("MobileNet")
    model = build_model(spec, 3, weights=None, image_size=SIZE)
    names = [layer.name for layer in model.layers]
    start = names.index(spec.fine_tune_from)

    set_trainable(model, spec, "head")
    trainable = {layer.name for layer in model.layers if layer.trainable and layer.weights}
    assert trainable == {n for n in names if n.startswith("head_") and model.get_layer(n).weights}
    assert not model.get_layer(PREPROCESS_LAYER).trainable

    set_trainable(model, spec, "fine_tune")
    for index, layer in enumerate(model.layers):
        if layer.name.startswith("head_"):
            assert layer.trainable
        elif isinstance(layer, keras.layers.BatchNormalization) or layer.name == PREPROCESS_LAYER:
            assert not layer.trainable, layer.name
        elif layer.weights:
            assert layer.trainable == (index >= start), layer.name

    set_trainable(model, spec, "head", from_scratch=True)
    assert all(layer.trainable for layer in model.layers if layer.weights and layer.name != PREPROCESS_LAYER)

    with pytest.raises(ConfigError, match="valid phases: head, fine_tune"):
        set_trainable(model, spec, "all")
