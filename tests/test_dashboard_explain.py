"""Prediction, Grad-CAM maps and the augmentation preview against plain Keras and tf-keras-vis."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from plain_cam import MIN_GRID, PlainCam, assert_maps_equal_plain, cam_grid
from synthetic import TINY_SIZES

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


def xray_like(size: int) -> np.ndarray:
    """Noise with a bright left half (the COVID images of tests/synthetic.py) as a (size, size) model input."""
    gray = np.random.default_rng(3).normal(90, 30, (64, 64)).clip(0, 255).astype(np.uint8)
    gray[:, :32] += 80
    return model_input(gray, size)


@pytest.fixture(scope="module")
def image(folder) -> np.ndarray:
    return xray_like(TINY_SIZES[folder.name])


@pytest.fixture(scope="module")
def wide(models_dir) -> tuple[Explainer, np.ndarray, int]:
    """The tiny SmallCNN (a 7 x 7 Grad-CAM grid; the tiny MobileNet's is 1 x 1), an image, its predicted class."""
    explainer = Explainer(models_dir / "SmallCNN")
    image = xray_like(explainer.input_size)
    return explainer, image, int(np.argmax(explainer.probabilities(image)))


def test_probabilities_match_the_saved_model(folder, image):
    explainer = Explainer(folder)
    model, classes = load_trained_model(folder)
    expected = model.predict(image[None], verbose=0)[0]
    probabilities = explainer.probabilities(image)
    assert explainer.classes == classes
    assert probabilities.shape == (len(classes),) and probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    assert np.allclose(probabilities, expected, atol=1e-5)


def test_maps_equal_plain_tf_keras_vis(models_dir, wide):
    explainer, image, predicted = wide
    model, _ = load_trained_model(models_dir / "SmallCNN")  # the saved model itself, not the explainer's
    assert cam_grid(model, explainer.layer) == (MIN_GRID, MIN_GRID)
    methods = DEFAULT_METHODS + Explainer.EXTRA_METHODS
    ours = dict(zip(methods, explainer.maps(image, predicted) + explainer.extra_maps(image, predicted)))
    assert_maps_equal_plain(ours, PlainCam(model, explainer.layer, methods).maps(image, predicted))
    assert all(cam.shape == (explainer.input_size,) * 2 for cam in ours.values())


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


def test_extra_maps_are_built_on_first_use_only(models_dir, wide, built):
    _, image, predicted = wide
    explainer = Explainer(models_dir / "SmallCNN")
    explainer.probabilities(image)
    explainer.maps(image, predicted)
    assert built == [("Grad-CAM", "Grad-CAM++")]  # the default path never builds the extra methods
    extra = explainer.extra_maps(image, predicted)
    assert built == [("Grad-CAM", "Grad-CAM++"), ("Score-CAM", "Layer-CAM")]
    assert Explainer.EXTRA_METHODS == ("Score-CAM", "Layer-CAM") and len(extra) == 2
    for cam in extra:
        assert cam.shape == (explainer.input_size,) * 2 and cam.dtype == np.float32
        assert 0.0 <= cam.min() and cam.max() <= 1.0 and np.ptp(cam) > 0.5  # in 0-1, with structure
    again = explainer.extra_maps(image, predicted)
    assert len(built) == 2 and all(np.array_equal(a, b) for a, b in zip(extra, again))
    direct = AttentionModel(explainer.model, explainer.layer, methods=Explainer.EXTRA_METHODS).maps(image, predicted)
    assert all(np.allclose(cam, direct[name], atol=1e-6) for name, cam in zip(Explainer.EXTRA_METHODS, extra))


def test_extra_visualizers_are_built_once_across_threads(models_dir, wide, built):
    _, image, _ = wide
    explainer = Explainer(models_dir / "SmallCNN")
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda c: explainer.extra_maps(image, c % 3), range(4)))
    assert built.count(("Score-CAM", "Layer-CAM")) == 1
    assert all(np.array_equal(a, b) for a, b in zip(results[0], results[3]))


def test_bad_inputs_are_refused(wide):
    explainer, image, _ = wide
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
