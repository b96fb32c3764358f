"""Prediction, Grad-CAM maps and the augmentation preview against plain Keras and tf-keras-vis."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from tf_keras_vis.gradcam import Gradcam
from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
from tf_keras_vis.utils.scores import CategoricalScore

import dashboard.explain
from dashboard.augment_preview import augmented_versions
from dashboard.explain import Explainer
from pipeline.attention import DEFAULT_METHODS, AttentionModel
from pipeline.errors import ArtifactError
from pipeline.images import model_input
from pipeline.model import load_trained_model


@pytest.fixture(scope="module", params=["MobileNet", "SmallCNN"])
def folder(request, models_dir):
    return models_dir / request.param


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    gray = np.random.default_rng(3).normal(90, 30, (64, 64)).clip(0, 255).astype(np.uint8)
    gray[:, :32] += 80
    return model_input(gray, 32)


def test_probabilities_match_the_saved_model(folder, image):
    explainer = Explainer(folder)
    model, classes = load_trained_model(folder)
    expected = model.predict(image[None], verbose=0)[0]
    probabilities = explainer.probabilities(image)
    assert explainer.classes == classes
    assert probabilities.shape == (len(classes),) and probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    assert np.allclose(probabilities, expected, atol=1e-5)


def test_maps_equal_plain_tf_keras_vis(folder, image):
    explainer = Explainer(folder)
    model, classes = load_trained_model(folder)
    informative = 0
    for class_index in range(len(classes)):
        cam, cam_plus_plus = explainer.maps(image, class_index)
        score = CategoricalScore([class_index])
        expected = Gradcam(model, model_modifier=ReplaceToLinear(), clone=True)(
            score, image[None], penultimate_layer=explainer.layer, seek_penultimate_conv_layer=False)[0]
        expected_plus_plus = GradcamPlusPlus(model, model_modifier=ReplaceToLinear(), clone=True)(
            score, image[None], penultimate_layer=explainer.layer, seek_penultimate_conv_layer=False)[0]
        assert cam.shape == cam_plus_plus.shape == (32, 32) and cam.dtype == np.float32
        assert np.allclose(cam, expected, atol=1e-5)
        assert np.allclose(cam_plus_plus, expected_plus_plus, atol=1e-5)
        informative += int(np.ptp(cam) > 0.1)
    if folder.name == "SmallCNN":  # the tiny MobileNet's maps may be all zero after one epoch
        assert informative > 0


def test_visualizers_leave_the_prediction_model_softmax(folder, image):
    explainer = Explainer(folder)
    before = explainer.probabilities(image)
    explainer.maps(image, 0)
    assert explainer.model.layers[-1].activation.__name__ == "softmax"
    assert np.allclose(explainer.probabilities(image), before, atol=1e-6)


@pytest.fixture
def built(monkeypatch) -> list[tuple[str, ...]]:
    """The methods of every ``AttentionModel`` the explainer builds, in order."""
    built: list[tuple[str, ...]] = []

    def counting(model, layer, methods=DEFAULT_METHODS):
        built.append(tuple(methods))
        return AttentionModel(model, layer, methods=methods)

    monkeypatch.setattr(dashboard.explain, "AttentionModel", counting)
    return built


def test_extra_maps_are_built_on_first_use_only(folder, image, built):
    explainer = Explainer(folder)
    explainer.probabilities(image)
    explainer.maps(image, 0)
    assert built == [("Grad-CAM", "Grad-CAM++")]  # the default path never builds the extra methods
    extra = explainer.extra_maps(image, 1)
    assert built == [("Grad-CAM", "Grad-CAM++"), ("Score-CAM", "Layer-CAM")]
    assert Explainer.EXTRA_METHODS == ("Score-CAM", "Layer-CAM") and len(extra) == 2
    for cam in extra:
        assert cam.shape == (32, 32) and cam.dtype == np.float32
        assert np.isfinite(cam).all() and 0.0 <= cam.min() and cam.max() <= 1.0
    again = explainer.extra_maps(image, 1)
    assert len(built) == 2 and all(np.array_equal(a, b) for a, b in zip(extra, again))
    direct = AttentionModel(explainer.model, explainer.layer, methods=Explainer.EXTRA_METHODS).maps(image, 1)
    assert all(np.allclose(cam, direct[name], atol=1e-6) for name, cam in zip(Explainer.EXTRA_METHODS, extra))


def test_extra_visualizers_are_built_once_across_threads(models_dir, image, built):
    explainer = Explainer(models_dir / "SmallCNN")
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda c: explainer.extra_maps(image, c % 3), range(4)))
    assert built.count(("Score-CAM", "Layer-CAM")) == 1
    assert all(np.array_equal(a, b) for a, b in zip(results[0], results[3]))


def test_bad_inputs_are_refused(models_dir, image):
    explainer = Explainer(models_dir / "SmallCNN")
    with pytest.raises(ValueError, match="shape"):
        explainer.probabilities(image[:16])
    with pytest.raises(ValueError, match="class index"):
        explainer.maps(image, 7)
    with pytest.raises(ValueError, match="class index"):
        explainer.extra_maps(image, -1)


def test_truncated_model_file_is_an_artifact_error(models_dir, tmp_path):
    broken = tmp_path / "SmallCNN"
    shutil.copytree(models_dir / "SmallCNN", broken)
    (broken / "model.keras").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ArtifactError, match=r"model\.keras"):
        Explainer(broken)


def test_augmentation_preview_is_reproducible_and_varied():
    gray = np.tile(np.linspace(0, 255, 64), (64, 1)).astype(np.uint8)
    first = augmented_versions(gray, 32, 4, seed=5)
    assert first.shape == (4, 32, 32) and first.dtype == np.uint8
    assert np.array_equal(first, augmented_versions(gray, 32, 4, seed=5))
    assert not np.array_equal(first, augmented_versions(gray, 32, 4, seed=6))
    robust = augmented_versions(gray, 32, 4, seed=5, kind="robust")
    assert robust.shape == first.shape and not np.array_equal(first, robust)
    assert len({draw.tobytes() for draw in first}) == 4
