"""Lung outlines on the explain page: the segmenter's mask on every panel with each map's share
inside it, a toggle to turn them off, one segmentation per image, and a plain note where the
segmenter is absent or broken."""

from __future__ import annotations

import io
import re
import shutil

import numpy as np
import pytest
from conftest import needs
from drivers import MODELS_DIR_VAR, PAGES, REPO, texts
from drivers import PAGE_TIMEOUT_S as TIMEOUT
from drivers import open_page as open_app_page
from PIL import Image

from dashboard import loaders, lungs
from dashboard.catalog import folder_stamp
from pipeline.config import DISCLAIMER, SAMPLES_FILE

SHIPPED = REPO / "saved_models"
SEGMENTER = SHIPPED / "lungs"
CLASSIFIER = SHIPPED / "SmallCNN"  # the shipped model that explains fastest
SHARES = r"inside the predicted lungs: Grad-CAM \d+%, Grad-CAM\+\+ \d+%; a uniform map would put \d+% there"


def square_mask(size: int, low: int, high: int) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    mask[low:high, low:high] = True
    return mask


def test_the_outline_is_the_border_of_the_mask_at_the_panel_size():
    rgb = np.zeros((80, 80, 3), np.uint8)
    panels = lungs.outline_panels([("Original", rgb), ("Grad-CAM", rgb)], square_mask(40, 10, 30))  # 40 px -> 80 px
    for title, drawn in panels:
        magenta = (drawn == lungs.MASK_COLOUR).all(axis=-1)
        assert magenta[20:60, 20].all() and magenta[20, 20:60].all(), title  # the border, scaled to the panel
        assert not magenta[25:55, 25:55].any() and not magenta[:18].any(), title  # neither inside nor outside
    assert [title for title, _ in panels] == ["Original", "Grad-CAM"] and not rgb.any()  # the panel is left alone


def test_shares_inside_the_predicted_lungs_follow_the_audit():
    predicted = lungs.PredictedLungs(square_mask(40, 0, 20))  # a quarter of the image
    inside, spread = square_mask(10, 0, 5).astype(float), np.ones((10, 10))
    assert predicted.share_inside(inside) == pytest.approx(1.0)
    assert predicted.share_inside(spread) == pytest.approx(predicted.uniform_share(10)) == pytest.approx(0.25)
    assert predicted.share_inside(np.zeros((10, 10))) is None
    caption = predicted.caption(["Grad-CAM", "Grad-CAM++"], [inside, spread])
    assert re.search(SHARES, caption) and "Grad-CAM 100%, Grad-CAM++ 25%" in caption


def test_segmenter_problems_are_named(tmp_path):
    assert "No lung segmenter" in lungs.segmenter_problem(tmp_path / "none")
    (tmp_path / "classifier").mkdir()
    (tmp_path / "classifier" / "config.json").write_text('{"backbone": "SmallCNN"}')
    assert "holds no lung segmenter" in lungs.segmenter_problem(tmp_path / "classifier")
    (tmp_path / "lungs").mkdir()
    (tmp_path / "lungs" / "config.json").write_text('{"task": "lung-segmentation", "input_size": 224}')
    (tmp_path / "lungs" / "model.keras").write_bytes(b"not a zip")
    assert "cannot be used" in lungs.segmenter_problem(tmp_path / "lungs")


@needs(SEGMENTER)
def test_the_loaded_segmenter_is_traced_before_the_first_image(tmp_path):
    from pipeline.lungs import _forward

    folder = shutil.copytree(SEGMENTER, tmp_path / "lungs")  # a folder of its own: loaded by this test
    model, config = loaders.segmenter(str(folder), folder_stamp(folder))
    forward = _forward(model)  # the compiled inference that every mask goes through
    assert forward.experimental_get_tracing_count() == 1  # traced at load time, on a blank image
    gray = np.tile(np.linspace(0, 255, 150), (90, 1)).astype(np.uint8)  # not square, not the input size
    mask = lungs.predict_mask(model, gray, int(config["input_size"]))
    assert mask.shape == (int(config["input_size"]),) * 2
    assert forward.experimental_get_tracing_count() == 1  # the first image waits for no tracing


def models_root(folder, *, segmenter: bool):
    """Two copies of the shipped SmallCNN (the all-models view shows both), and the segmenter if asked;
    without their samples explained ahead of time, so that the page computes everything live."""
    for name in ("SmallCNN", "SmallCNN-copy"):
        shutil.copytree(CLASSIFIER, folder / name, ignore=shutil.ignore_patterns(SAMPLES_FILE))
    if segmenter:
        shutil.copytree(SEGMENTER, folder / "lungs", ignore=shutil.ignore_patterns(SAMPLES_FILE))
    return folder


def open_page(monkeypatch, root):
    monkeypatch.setenv(MODELS_DIR_VAR, str(root))
    app = open_app_page(PAGES[1])
    assert not app.exception, [e.value for e in app.exception]
    assert app.warning[0].value == DISCLAIMER
    return app


def png(gray: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(gray).save(buffer, format="PNG")
    return buffer.getvalue()


@needs(SEGMENTER)
@needs(CLASSIFIER)
def test_the_page_outlines_the_predicted_lungs_once_per_image(monkeypatch, tmp_path):
    import streamlit as st

    st.cache_data.clear()
    calls = []
    original = lungs.predict_mask
    monkeypatch.setattr(lungs, "predict_mask", lambda *a: calls.append(1) or original(*a))
    app = open_page(monkeypatch, models_root(tmp_path, segmenter=True))
    toggle = app.toggle(key="explain-predicted-lungs")
    assert toggle.label == "Outline the predicted lungs" and toggle.value is True and not toggle.disabled
    assert re.search(SHARES, texts(app.caption)) and "Magenta outlines" in texts(app.caption)
    assert calls == [1]
    app.selectbox(key="explain-model").set_value("SmallCNN-copy").run(timeout=TIMEOUT)
    app.slider(key="explain-opacity").set_value(0.8).run()
    app.segmented_control(key="explain-mode").set_value("All models").run(timeout=TIMEOUT)
    assert not app.exception
    assert texts(app.caption).count("Energy inside the predicted lungs: Grad-CAM") == 2
    assert calls == [1]  # one segmentation for the image, whatever the model, view or drawing
    app.segmented_control(key="explain-mode").set_value("One model").run(timeout=TIMEOUT)
    app.toggle(key="explain-predicted-lungs").set_value(False).run(timeout=TIMEOUT)
    assert not app.exception
    assert "predicted lungs" not in texts(app.caption) and len(app.image) >= 3
    app.toggle(key="explain-predicted-lungs").set_value(True).run(timeout=TIMEOUT)
    app.file_uploader[0].set_value(("xray.png", png(np.tile(np.linspace(0, 255, 96), (96, 1)).astype(np.uint8)),
                                    "image/png")).run(timeout=TIMEOUT)
    assert not app.exception
    assert re.search(SHARES, texts(app.caption)) and calls == [1, 1]  # an upload gets its own mask


@needs(CLASSIFIER)
def test_without_a_segmenter_the_page_says_so_and_draws_the_maps(monkeypatch, tmp_path):
    app = open_page(monkeypatch, models_root(tmp_path / "absent", segmenter=False))
    assert app.toggle(key="explain-predicted-lungs").disabled
    assert "No lung segmenter" in texts(app.caption) and len(app.image) >= 3
    root = models_root(tmp_path / "broken", segmenter=False)
    (root / "lungs").mkdir()
    (root / "lungs" / "config.json").write_text('{"task": "lung-segmentation", "input_size": 224}')
    (root / "lungs" / "model.keras").write_bytes(b"PK truncated")
    app = open_page(monkeypatch, root)
    assert "The lung segmenter cannot be used" in texts(app.caption) and "model.keras" in texts(app.caption)
    assert not app.error and len(app.image) >= 3
