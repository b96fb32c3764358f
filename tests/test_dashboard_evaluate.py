"""Evaluate your X-rays: a zip of labelled images scored in memory gives the figures of `python -m pipeline evaluate`;
bad archives get their message and nothing else; unknown classes and unreadable files are reported."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
from archives import bad_archives, folder_zip, zip_bytes
from drivers import MODELS_DIR_VAR, PAGES, texts
from drivers import open_page as open_app_page
from PIL import Image
from synthetic import TINY_SIZES

from dashboard import scoring
from pipeline.__main__ import main as run_pipeline
from pipeline.archive import read_labelled_zip

TIMEOUT = 300
PAGE = PAGES[4]
COMPARED = ("n_images", "accuracy", "macro_f1", "confusion_matrix", "ci95", "roc_auc_macro", "ece")


def png(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((48, 48), value, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def cli_figures(models_dir, image_folder) -> dict[str, dict]:
    """What `python -m pipeline evaluate --json` prints for each tiny model on the image folder."""
    figures = {}
    for name in ("MobileNet", "SmallCNN"):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = run_pipeline(["evaluate", "--model", str(models_dir / name), "--data-dir", str(image_folder),
                                 "--json"])
        assert code == 0
        figures[name] = json.loads(out.getvalue())
    return figures


def upload(app, data: bytes, name: str = "xrays.zip"):
    app.file_uploader(key="evaluate-upload").set_value((name, data, "application/zip")).run(timeout=TIMEOUT)
    assert not app.exception, [e.value for e in app.exception]
    return app


@pytest.fixture
def page(monkeypatch, models_dir):
    monkeypatch.setenv(MODELS_DIR_VAR, str(models_dir))
    return open_app_page(PAGE)


def test_scoring_gives_the_figures_of_the_cli(models_dir, image_folder, cli_figures):
    from dashboard.explain import Explainer

    decoded = scoring.decode_all(read_labelled_zip(folder_zip(image_folder, "mine/")).images,
                                 sorted(set(TINY_SIZES.values())))
    for name, cli in cli_figures.items():
        model = Explainer(models_dir / name)
        found = scoring.score_model(scoring.Scorer(name, lambda b, m=model: m.model.predict_on_batch([b]),
                                                   model.classes, model.input_size), decoded)
        assert {key: found.metrics[key] for key in COMPARED} == {key: cli[key] for key in COMPARED}
        assert found.metrics["per_class"] == cli["per_class"]


def test_page_shows_the_figures_of_the_cli(page, image_folder, cli_figures):
    app = upload(page, folder_zip(image_folder, "mine/"))
    assert not app.error
    table = app.dataframe[0].value.set_index("model")
    for name, cli in cli_figures.items():
        assert table.loc[name, "n_images"] == cli["n_images"] == 72
        assert (table.loc[name, "accuracy"], table.loc[name, "macro_f1"]) == (cli["accuracy"], cli["macro_f1"])
        assert [table.loc[name, "macro_f1 CI low"], table.loc[name, "macro_f1 CI high"]] == cli["ci95"]["macro_f1"]
        assert table.loc[name, "recall COVID"] == cli["per_class"]["COVID"]["recall"]
    assert [b.label for b in app.get("download_button")] == ["Download the figures per model (CSV)",
                                                              "Download the outputs per image and model (CSV)"]
    assert len(app.get("plotly_chart")) == 3  # recall per class, then one confusion matrix per model
    wrong = app.dataframe[1].value
    assert set(wrong["model"]) <= {"MobileNet", "SmallCNN"} and (wrong["label"] != wrong["predicted"]).all()
    if len(wrong):
        box = app.selectbox(key="evaluate-open")
        box.set_value(box.options[0]).run(timeout=TIMEOUT)
        assert not app.exception and not app.error
        captions = [c for image in app.image for c in image.captions]
        assert captions[0] == "Original" and len(captions) == 5 and captions[1].startswith("Grad-CAM (")


def test_the_page_states_the_benchmarked_scoring_time_before_an_upload(page):
    from pipeline.config import EVALUATE_SECONDS_PER_100_IMAGES

    captions = texts(page.caption)
    assert f"took about {EVALUATE_SECONDS_PER_100_IMAGES / 60:.0f} minutes" in captions
    assert "bench/evaluate_upload.py" in captions


def test_unknown_classes_and_unreadable_files_are_reported(page):
    data = zip_bytes({"set/COVID/a.png": png(40), "set/Normal/b.png": png(200), "set/Lung_Opacity/c.png": png(90),
                      "set/Lung_Opacity/d.png": png(100), "set/COVID/broken.png": b"\x89PNG not really",
                      "set/e.png": png(10)})
    app = upload(page, data)
    assert not app.error
    assert "Lung_Opacity (2 images) is not a class of MobileNet, SmallCNN: left out of their figures." in \
        texts(app.warning)
    assert app.expander[0].label == "2 files left out"
    assert list(app.dataframe[0].value["n_images"]) == [2, 2]


@pytest.mark.parametrize("kind", list(bad_archives(png(90))))
def test_each_bad_archive_gets_its_message_and_nothing_else(page, kind):
    data, words = bad_archives(png(90))[kind]
    app = upload(page, data)
    assert len(app.error) == 1 and words in app.error[0].value and "Accepted: one zip" in app.error[0].value
    assert not app.dataframe and not app.get("plotly_chart") and not app.get("progress")
