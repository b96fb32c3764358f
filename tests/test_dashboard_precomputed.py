"""Samples explained ahead of time: the outputs, maps and lung masks of the live path, used only for the
model file and the pixels they came from, and shown by the explain page without loading any model."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
from conftest import REPO
from drivers import MODELS_DIR_VAR, PAGES
from drivers import open_page as open_app_page

from dashboard import loaders, precomputed
from dashboard.catalog import folder_stamp
from dashboard.explain import Explainer
from dashboard.lungs import predict_mask
from dashboard.samples import shipped_samples
from pipeline import images
from pipeline.config import MODEL_FILE, SAMPLES_FILE
from pipeline.lungs import load_segmenter

SEGMENTER = REPO / "saved_models" / "lungs"


@pytest.fixture(scope="module")
def grays() -> list[np.ndarray]:
    return [images.decode_image(sample.path.read_bytes(), sample.path.name) for sample in shipped_samples()]


@pytest.fixture(scope="module")
def root(models_dir, tmp_path_factory):
    """A copy of the tiny models and of the shipped lung segmenter, each with its samples explained."""
    copy = tmp_path_factory.mktemp("explained") / "models"
    shutil.copytree(models_dir, copy)
    shutil.copytree(SEGMENTER, copy / "lungs")
    (copy / "lungs" / SAMPLES_FILE).unlink(missing_ok=True)
    assert precomputed.main(["--models", str(copy)]) == 0
    return copy


@pytest.mark.parametrize("name", ["MobileNet", "SmallCNN"])
def test_stored_outputs_and_maps_equal_the_live_ones(root, grays, name):
    folder = root / name
    stored, live = precomputed.read(folder), Explainer(folder)
    assert set(stored) == {images.image_digest(gray) for gray in grays}
    for gray in grays:
        digest, image = images.image_digest(gray), images.model_input(gray, live.input_size)
        assert np.allclose(stored[digest][precomputed.PROBABILITIES], live.probabilities(image), atol=1e-6)
        for index in range(len(live.classes)):
            served = loaders.attention_maps(str(folder), folder_stamp(folder), digest, index, gray)
            for map_served, map_live in zip(served, live.maps(image, index), strict=True):
                assert map_served.shape == (live.input_size, live.input_size)
                assert np.allclose(map_served, map_live, atol=1e-6)
    if name == "SmallCNN":  # a real grid, not one cell
        assert stored[images.image_digest(grays[0])][precomputed.GRIDS].shape[-2:] == (7, 7)


def test_stored_lung_masks_equal_the_live_ones(root, grays):
    model, config = load_segmenter(SEGMENTER)
    folder = root / "lungs"
    for gray in grays:
        mask = loaders.lung_mask(str(folder), folder_stamp(folder), images.image_digest(gray), gray)
        assert mask.any() and np.array_equal(mask, predict_mask(model, gray, int(config["input_size"])))


def test_a_stored_result_serves_only_the_model_file_it_came_from(root, tmp_path, caplog):
    folder = tmp_path / "SmallCNN"
    shutil.copytree(root / "SmallCNN", folder)
    assert precomputed.read(folder)
    shutil.copy(root / "MobileNet" / MODEL_FILE, folder / MODEL_FILE)  # retrained in place, samples not redone
    assert precomputed.read(folder) == {}
    (folder / SAMPLES_FILE).write_bytes(b"not an archive")
    with caplog.at_level(logging.WARNING):
        assert precomputed.read(folder) == {}
    assert "cannot read" in caplog.text and SAMPLES_FILE in caplog.text


def test_the_command_names_a_folder_without_models(tmp_path, caplog):
    with caplog.at_level(logging.ERROR):
        assert precomputed.main(["--models", str(tmp_path / "missing")]) == 1
    assert "no model that can explain images" in caplog.text and "missing" in caplog.text


def test_the_page_shows_a_stored_sample_without_loading_a_model(monkeypatch, root):
    loads = []
    monkeypatch.setattr(loaders, "explainer", lambda *key: loads.append(key) or pytest.fail("a model was loaded"))
    monkeypatch.setattr(loaders, "segmenter", lambda *key: loads.append(key) or pytest.fail("the segmenter was loaded"))
    monkeypatch.setenv(MODELS_DIR_VAR, str(root))
    app = open_app_page(PAGES[1])
    assert not app.exception and not app.error
    assert [image.captions[0] for image in app.image][:3] == ["Original", "Grad-CAM", "Grad-CAM++"]
    assert len(app.get("progress")) == 3 and "inside the predicted lungs" in " ".join(c.value for c in app.caption)
    app.segmented_control(key="explain-mode").set_value("All models").run()
    assert not app.exception and sum(image.captions[0].startswith("Grad-CAM (") for image in app.image) == 2
    assert loads == []
