"""The models shipped in saved_models/: complete, loadable safely, small, and the same models
whose figures their metrics.json and model card report."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from conftest import REPO, SUBSET, needs

from dashboard import precomputed
from dashboard.samples import shipped_samples
from pipeline import artifacts, card, report
from pipeline.config import ARTIFACT_FILES, MODEL_FILE, SAMPLES_FILE, VAL_PREDICTIONS_FILE
from pipeline.images import decode_image, file_to_model_input, image_digest
from pipeline.rescore import rescored_metrics
from pipeline.targets import read_history

SHIPPED = REPO / "saved_models"
FOLDERS = artifacts.list_model_dirs(SHIPPED)
MAX_BYTES = 100 * 1000 * 1000  # the hosting limit per file


def test_models_are_shipped():
    assert {f.name for f in FOLDERS} >= {"DenseNet121", "MobileNet", "ResNet50", "SmallCNN", "VGG16"}


@pytest.mark.parametrize("folder", FOLDERS, ids=[f.name for f in FOLDERS])
def test_every_artifact_is_there_small_and_consistent(folder):
    names = {p.name for p in folder.iterdir()}
    # a model trained before training scored its validation split has no val_predictions.csv
    assert set(ARTIFACT_FILES) - {VAL_PREDICTIONS_FILE} <= names <= set(ARTIFACT_FILES) | {SAMPLES_FILE}
    assert (folder / MODEL_FILE).stat().st_size < MAX_BYTES
    config, metrics = artifacts.check_model_dir(folder)
    with (folder / "predictions.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == metrics["n_images"] == sum(config["data"]["counts"]["test"].values())
    assert metrics["accuracy"] == pytest.approx(np.mean([r["label"] == r["predicted"] for r in rows]))
    expected_card = card.render_model_card(config, metrics, read_history(folder))
    assert (folder / "README.md").read_text(encoding="utf-8") == expected_card
    assert report.pct(metrics["macro_f1"]) in (folder / "README.md").read_text()


@pytest.mark.parametrize("folder", FOLDERS, ids=[f.name for f in FOLDERS])
def test_the_stored_metrics_follow_the_current_definitions(folder):
    stored, fresh = artifacts.read_metrics(folder), rescored_metrics(folder)
    for key in ("accuracy", "macro_f1", "confusion_matrix", "per_source", "per_subgroup", "worst_subgroup_recall",
                "ci95"):
        assert fresh[key] == stored[key], f"{key} is stale: run python -m pipeline rescore --model {folder}"


@pytest.mark.parametrize("folder", [*FOLDERS, SHIPPED / "lungs"], ids=[*(f.name for f in FOLDERS), "lungs"])
def test_the_shipped_samples_are_explained_by_the_shipped_model_file(folder):
    samples = shipped_samples()
    stored = precomputed.read(folder)  # empty when made from another model file
    assert set(stored) == {image_digest(decode_image(s.path.read_bytes(), s.path.name)) for s in samples}, (
        f"run: python -m dashboard.precomputed (after shipping a model into {folder})")


def test_the_readme_table_is_the_generated_one():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert report.replace_between_markers(readme, report.comparison_table(SHIPPED)) == readme, (
        "run: python -m pipeline report --models saved_models --readme README.md")


def tensorflow_input(path, size: int) -> np.ndarray:
    """The model input as the shipped predictions.csv files were made: decoded by TensorFlow (its fast
    integer JPEG IDCT), before every path went through pipeline.images (Pillow's accurate IDCT moves
    pixels by up to 5 levels and outputs by up to 0.17). For the models trained before pipeline.images
    was the one decoder, this reproduces their stored outputs."""
    import tensorflow as tf

    image = tf.io.decode_image(tf.io.read_file(str(path)), channels=1, dtype=tf.uint8, expand_animations=False)
    image = tf.cast(tf.clip_by_value(tf.round(tf.image.resize(image, (size, size), antialias=True)), 0, 255), tf.uint8)
    return tf.image.grayscale_to_rgb(tf.cast(image, tf.float32)).numpy()


@needs(SUBSET)
@pytest.mark.slow
@pytest.mark.parametrize("folder", FOLDERS, ids=[f.name for f in FOLDERS])
def test_the_saved_model_gives_the_stored_test_predictions(folder):
    from pipeline.model import load_trained_model

    model, classes = load_trained_model(folder)
    config = artifacts.read_config(folder)
    with (folder / "predictions.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))[::97][:8]
    size = int(config["input_size"])
    # Models trained since every path reads files through pipeline.images record their split keys.
    read = file_to_model_input if "split_keys" in config else tensorflow_input
    images = np.stack([read(SUBSET / r["path"], size) for r in rows])
    stored = np.array([[float(r[f"p_{c}"]) for c in classes] for r in rows])
    np.testing.assert_allclose(model.predict(images, verbose=0), stored, atol=1e-4)
    assert json.loads((folder / "config.json").read_text())["classes"] == classes
