"""Every page of the dashboard through Streamlit's AppTest, with the tiny models of the suite."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from drivers import APP, MODELS_DIR_VAR, PAGES, REPO, texts
from drivers import PAGE_TIMEOUT_S as TIMEOUT
from drivers import open_page as open_app_page
from PIL import Image
from streamlit.testing.v1 import AppTest
from upload_corpus import dicom_bytes, twelve_bit

from pipeline.config import DISCLAIMER

TRAIN_HINT = "python -m pipeline train --backbone MobileNet"
COMPARE_SECTIONS = ["Per class", "Confidence intervals", "Confusion matrices", "ROC and precision-recall",
                    "Calibration", "Per source and subgroup", "Model attention", "Operating point",
                    "Paired comparison"]


def open_page(monkeypatch, models: Path, page: str = PAGES[0]) -> AppTest:
    monkeypatch.setenv(MODELS_DIR_VAR, str(models))
    app = open_app_page(page)
    assert_healthy(app)
    return app


def assert_healthy(app: AppTest) -> None:
    assert not app.exception, [e.value for e in app.exception]
    assert app.warning[0].value == DISCLAIMER


def png(gray: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(gray).save(buffer, format="PNG")
    return buffer.getvalue()


def test_compare_page(monkeypatch, models_dir):
    app = open_page(monkeypatch, models_dir)
    assert app.title[0].value == "Compare models"
    table = app.dataframe[0].value
    assert list(table["model"]) == ["MobileNet", "SmallCNN"]
    assert {"accuracy CI low", "recall COVID", "specificity Normal", "ECE", "parameters"} <= set(table.columns)
    assert app.download_button[0].label.startswith("Download the table")
    assert [tab.label for tab in app.tabs] == COMPARE_SECTIONS
    assert "recall CI low" in app.dataframe[1].value.columns  # the first tab: metrics per class
    assert not app.get("plotly_chart") and app.image[0].proto.imgs  # the headline is an image; the tab: no chart
    assert "backbone" not in table.columns and str(models_dir) not in texts(app.caption)
    assert not any(frame.value.isna().any().any() for frame in app.dataframe)  # "-" where a figure is missing
    assert "leads on test macro-F1" in texts(app.markdown)


@pytest.mark.parametrize("section", COMPARE_SECTIONS[1:])
def test_each_compare_section_runs_when_opened(monkeypatch, models_dir, section):
    app = open_page(monkeypatch, models_dir)
    app.session_state["compare-section"] = section
    app.run()
    assert_healthy(app)
    assert not app.error
    drawn = len(app.get("plotly_chart")) + len(app.dataframe) - 1 + len(app.info)
    assert drawn > 0, f"{section} drew nothing"
    if section == "Confidence intervals":
        app.segmented_control[0].set_value("Recall per class").run()
        assert_healthy(app)
        assert len(app.get("plotly_chart")) == 1
    if section == "Confusion matrices":
        app.toggle[0].set_value(True).run()
        assert_healthy(app)
        assert len(app.get("plotly_chart")) == 2  # one per model
    if section == "Per source and subgroup":
        assert "Per data source" in texts(app.subheader)


def test_compare_page_first_visit_loads_neither_tensorflow_nor_scikit_learn(models_dir):
    script = (
        "import json, sys\n"
        "HEAVY = ('tensorflow', 'keras', 'tf_keras_vis', 'sklearn')\n"
        "from streamlit.testing.v1 import AppTest\n"
        f"app = AppTest.from_file({str(APP)!r}, default_timeout=60).run()\n"
        "print(json.dumps({'exceptions': [e.value for e in app.exception], 'title': app.title[0].value,\n"
        "                  'heavy': sorted(m for m in HEAVY if m in sys.modules)}))\n"
    )
    env = {**os.environ, "XRAY_MODELS_DIR": str(models_dir)}
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"exceptions": [], "title": "Compare models", "heavy": []}


def test_explain_page_with_a_sample(monkeypatch, models_dir):
    import streamlit as st

    from dashboard.explain import Explainer

    st.cache_data.clear()
    calls = []
    original = Explainer.maps
    monkeypatch.setattr(Explainer, "maps", lambda self, *a: calls.append(a[1]) or original(self, *a))
    app = open_page(monkeypatch, models_dir, PAGES[1])
    assert "Grad-CAM" in [c for image in app.image for c in image.captions]
    assert [image.captions[0] for image in app.image][:3] == ["Original", "Grad-CAM", "Grad-CAM++"]
    assert app.download_button[0].label == "Download the overlays (PNG)"
    assert len(calls) == 1  # the predicted class of the first model
    bars = app.get("progress")  # the outputs, highest first, each as it is written beside its bar
    outputs = [float(re.fullmatch(r"[\w ]+: ([\d.]+)%", bar.proto.text).group(1)) / 100 for bar in bars]
    assert len(bars) == 3 and outputs == sorted(outputs, reverse=True) and sum(outputs) == pytest.approx(1, abs=0.02)
    assert all(abs(bar.proto.value - 100 * output) <= 1 for bar, output in zip(bars, outputs))  # whole percents
    app.slider(key="explain-opacity").set_value(0.8).run()
    app.selectbox(key="explain-colormap").set_value("Viridis").run()
    assert_healthy(app)
    assert len(calls) == 1  # drawing options never recompute a map
    app.selectbox(key="explain-model").set_value("SmallCNN").run(timeout=TIMEOUT)
    assert len(calls) == 2
    class_box = next(box for box in app.selectbox if box.label == "Explain the class")
    other = next(name for name in class_box.options if name != class_box.value)
    class_box.set_value(other).run(timeout=TIMEOUT)
    assert_healthy(app)
    assert not app.error and len(calls) == 3 and calls[-1] == class_box.options.index(other)


def test_explain_page_more_methods_only_when_asked(monkeypatch, models_dir):
    import streamlit as st

    import dashboard.explain
    from pipeline.attention import AttentionModel

    built, extra_calls = [], []  # the methods of each AttentionModel built (None: the default ones); extra_maps calls
    monkeypatch.setattr(dashboard.explain, "AttentionModel",
                        lambda *args, **kw: built.append(kw.get("methods")) or AttentionModel(*args, **kw))
    original = dashboard.explain.Explainer.extra_maps
    monkeypatch.setattr(dashboard.explain.Explainer, "extra_maps",
                        lambda self, *a: extra_calls.append(a[1]) or original(self, *a))
    st.cache_resource.clear()  # explainers built by earlier tests would hide what this one builds
    st.cache_data.clear()
    app = open_page(monkeypatch, models_dir, PAGES[1])
    toggle = app.toggle(key="explain-more")
    assert toggle.label == "More methods: Score-CAM and Layer-CAM" and toggle.value is False
    captions = [image.captions[0] for image in app.image]
    assert captions[:3] == ["Original", "Grad-CAM", "Grad-CAM++"] and "Score-CAM" not in captions
    app.slider(key="explain-opacity").set_value(0.7).run()
    assert built == [None] and extra_calls == []  # the default path never builds nor runs the extra methods
    toggle.set_value(True).run(timeout=TIMEOUT)
    assert_healthy(app)
    assert not app.error
    assert [image.captions[0] for image in app.image][:5] == ["Original", "Grad-CAM", "Grad-CAM++", "Score-CAM",
                                                              "Layer-CAM"]
    assert "16 extra forward passes" in texts(app.caption)
    assert built == [None, ("Score-CAM", "Layer-CAM")] and len(extra_calls) == 1
    app.selectbox(key="explain-colormap").set_value("Turbo").run()
    assert len(built) == 2 and len(extra_calls) == 1  # drawing options reuse the cached maps
    app.segmented_control(key="explain-mode").set_value("All models").run(timeout=TIMEOUT)
    assert_healthy(app)
    assert "shown in the one-model view only" in texts(app.caption)
    assert not any(image.captions[0].startswith("Score-CAM") for image in app.image)


def test_explain_page_lung_boxes(monkeypatch, models_dir):
    app = open_page(monkeypatch, models_dir, PAGES[1])
    assert app.selectbox(key="explain-sample").value.endswith("(ieee8023 2cd63b76)")
    box = app.checkbox(key="explain-lungs")
    assert box.label == "Draw the lung boxes" and box.value is True
    caption = texts(app.caption)
    assert "coarse lung boxes" in caption and "not a lung mask" in caption and "General Blockchain" in caption
    app.selectbox(key="explain-model").set_value("SmallCNN").run(timeout=TIMEOUT)  # 7 x 7 maps (MobileNet's: 1 x 1)
    assert re.search(r"inside the lung boxes for this image: Grad-CAM \d+%, Grad-CAM\+\+ \d+%; "
                     r"a uniform map would put \d+% there", texts(app.caption))
    app.segmented_control(key="explain-mode").set_value("All models").run(timeout=TIMEOUT)
    assert_healthy(app)
    assert texts(app.caption).count("Energy inside the lung boxes: Grad-CAM") == 2
    app.segmented_control(key="explain-mode").set_value("One model").run(timeout=TIMEOUT)
    app.checkbox(key="explain-lungs").uncheck().run()
    assert_healthy(app)
    assert "coarse lung boxes" not in texts(app.caption)
    kermany = next(title for title in app.selectbox(key="explain-sample").options if "Kermany" in title)
    app.selectbox(key="explain-sample").set_value(kermany).run(timeout=TIMEOUT)
    assert_healthy(app)
    assert not [box for box in app.checkbox if box.key == "explain-lungs"]
    app.file_uploader[0].set_value(("xray.png", png(np.tile(np.linspace(0, 255, 96), (96, 1)).astype(np.uint8)),
                                    "image/png")).run(timeout=TIMEOUT)
    assert_healthy(app)
    assert not [box for box in app.checkbox if box.key == "explain-lungs"] and len(app.image) >= 3


def test_explain_page_all_models(monkeypatch, models_dir):
    app = open_page(monkeypatch, models_dir, PAGES[1])
    app.segmented_control(key="explain-mode").set_value("All models").run(timeout=TIMEOUT)
    assert_healthy(app)
    captions = [image.captions[0] for image in app.image]
    assert sum(caption.startswith("Grad-CAM (") for caption in captions) == 2
    assert sum(caption.startswith("Grad-CAM++ (") for caption in captions) == 2
    assert "MobileNet" in texts(app.markdown) and "SmallCNN" in texts(app.markdown)


def test_explain_page_all_models_rows_are_drawn_smaller(monkeypatch, models_dir):
    from streamlit.delta_generator import DeltaGenerator

    from dashboard.overlay import DISPLAY_SIZE, ROW_DISPLAY_SIZE

    shown = []  # (caption, pixels wide, display width) of each panel the page sends, the colour scale left out
    original = DeltaGenerator.image

    def record(self, image, **kw):
        if not kw["caption"].startswith("Colour scale"):
            shown.append((kw["caption"], image.shape[1], kw["width"]))
        return original(self, image, **kw)

    monkeypatch.setattr(DeltaGenerator, "image", record)
    app = open_page(monkeypatch, models_dir, PAGES[1])
    assert [(width, display) for _, width, display in shown] == [(DISPLAY_SIZE, "stretch")] * 3  # one model: as before
    shown.clear()
    app.segmented_control(key="explain-mode").set_value("All models").run(timeout=TIMEOUT)
    assert_healthy(app)
    assert len(shown) == 6 and sum(caption.startswith("Grad-CAM++ (") for caption, _, _ in shown) == 2  # two rows
    assert {(width, display) for _, width, display in shown} == {(ROW_DISPLAY_SIZE, ROW_DISPLAY_SIZE)} == {(256, 256)}


def test_explain_page_bad_uploads_keep_the_session(monkeypatch, models_dir):
    app = open_page(monkeypatch, models_dir, PAGES[1])
    for name, data, words in [("notes.png", b"definitely not an image", "not a readable"),
                              ("tiny.png", png(np.zeros((16, 16), np.uint8)), "too small"),
                              ("strip.png", png(np.zeros((40, 400), np.uint8)), "too elongated"),
                              ("empty.dcm", b"", "empty"),
                              ("report.dcm", dicom_bytes(twelve_bit(), with_pixels=False), "no pixel data")]:
        app.file_uploader[0].set_value((name, data, "application/octet-stream")).run(timeout=TIMEOUT)
        assert not app.exception
        assert words in texts(app.error)
        assert not app.image
    good = np.tile(np.linspace(0, 255, 96), (96, 1)).astype(np.uint8)
    for name, data in [("xray.png", png(good)), ("xray.dcm", dicom_bytes(twelve_bit(), "MONOCHROME1"))]:
        app.file_uploader[0].set_value((name, data, "application/octet-stream")).run(timeout=TIMEOUT)
        assert_healthy(app)
        assert not app.error and len(app.image) >= 3
        assert "Explaining your upload." in texts(app.caption)


def test_data_page(monkeypatch, models_dir):
    app = open_page(monkeypatch, models_dir, PAGES[2])
    headings = texts(app.subheader)
    assert "used by MobileNet, SmallCNN" in headings and "Training augmentation, live" in headings
    draws = [image for image in app.image if image.captions[0].startswith("draw ")]
    assert len(draws) == 8
    before = [image.value for image in draws]
    next(button for button in app.button if button.label == "New draw").click().run(timeout=TIMEOUT)
    assert_healthy(app)
    after = [image.value for image in app.image if image.captions[0].startswith("draw ")]
    assert after != before and app.session_state["augment-draw"] == 1


def test_cards_page(monkeypatch, models_dir):
    app = open_page(monkeypatch, models_dir, PAGES[3])
    text = texts(app.markdown)
    assert "# MobileNet chest X-ray classifier" in text and "# SmallCNN chest X-ray classifier" in text
    for citation in ("Chowdhury", "Rahman", "Kermany", "Cohen", "arXiv:2006.11988", "Cell"):
        assert citation in text


@pytest.mark.parametrize("page", PAGES)
def test_every_page_explains_how_to_train_when_there_are_no_models(monkeypatch, tmp_path, page):
    app = open_page(monkeypatch, tmp_path / "nothing-here", page)
    assert TRAIN_HINT in texts(app.info)
    assert not app.error


@pytest.fixture
def with_broken_model(models_dir, tmp_path) -> Path:
    root = tmp_path / "models"
    for name in ("MobileNet", "SmallCNN"):
        shutil.copytree(models_dir / name, root / name)
    shutil.copytree(models_dir / "SmallCNN", root / "Broken")
    model_file = root / "Broken" / "model.keras"
    model_file.write_bytes(model_file.read_bytes()[: model_file.stat().st_size // 3])
    return root


@pytest.mark.parametrize("page", PAGES[:2])
def test_a_broken_model_folder_is_named_and_the_others_work(monkeypatch, with_broken_model, page):
    app = open_page(monkeypatch, with_broken_model, page)
    warnings = texts(app.warning[1:])
    assert "Broken" in warnings and "model.keras" in warnings
    assert not app.error
    if page == PAGES[1]:
        assert app.selectbox(key="explain-model").options == ["MobileNet", "SmallCNN"]
        assert len(app.image) >= 3
    else:
        assert len(app.dataframe[0].value) == 3  # its metrics are still there to compare
