"""Recomputing a saved model's metrics and card from its predictions.csv."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from conftest import REPO, run_cli

from pipeline.config import CARD_FILE, METRICS_FILE, PREDICTIONS_FILE


@pytest.fixture
def model_copy(tmp_path, models_dir):
    folder = tmp_path / "MobileNet"
    shutil.copytree(models_dir / "MobileNet", folder)
    return folder


def test_rescore_reproduces_the_training_metrics_without_tensorflow(model_copy):
    before = json.loads((model_copy / METRICS_FILE).read_text())
    (model_copy / CARD_FILE).write_text("stale")
    code = ("import sys; from pipeline.rescore import rescore_model_dir\n"
            f"rescore_model_dir({str(model_copy)!r})\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow was imported'\n")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=120)
    after = json.loads((model_copy / METRICS_FILE).read_text())
    assert set(after) == set(before)
    for key in ("n_images", "accuracy", "confusion_matrix", "per_source", "per_subgroup", "worst_subgroup_recall",
                "ci95", "inference_ms_per_image"):
        assert after[key] == before[key], key
    assert after["macro_f1"] == pytest.approx(before["macro_f1"])
    assert after["ece"] == pytest.approx(before["ece"], abs=1e-5), "probabilities are stored to 6 decimals"
    card = (model_copy / CARD_FILE).read_text()
    source_table = card.split("### Per data source")[1].split("##")[0]
    assert "recall per class" in source_table and "macro-F1 (classes present)" in source_table


def _drop_column(folder, column):
    lines = (folder / PREDICTIONS_FILE).read_text().splitlines()
    index = lines[0].split(",").index(column)
    (folder / PREDICTIONS_FILE).write_text("\n".join(",".join(c for i, c in enumerate(line.split(",")) if i != index)
                                                     for line in lines) + "\n")


def _set_first_row_cell(folder, column, value):
    lines = (folder / PREDICTIONS_FILE).read_text().splitlines()
    cells = lines[1].split(",")
    cells[lines[0].split(",").index(column)] = value
    lines[1] = ",".join(cells)
    (folder / PREDICTIONS_FILE).write_text("\n".join(lines) + "\n")


def _relabel_first_row(folder, label):
    _set_first_row_cell(folder, "label", label)


def _set_first_probability(folder, value):
    first_class = json.loads((folder / "config.json").read_text())["classes"][0]
    _set_first_row_cell(folder, f"p_{first_class}", value)


@pytest.mark.parametrize("damage, message", [
    (lambda f: (f / PREDICTIONS_FILE).unlink(), "predictions.csv is missing"),
    (lambda f: (f / PREDICTIONS_FILE).write_text("path,label\n"), "predictions.csv has no rows"),
    (lambda f: _drop_column(f, "label"), "predictions.csv lacks the columns label"),
    (lambda f: _relabel_first_row(f, "Cat"), "predictions.csv has labels ['Cat']; the model's classes are"),
    (lambda f: _set_first_probability(f, "high"), "predictions.csv has a probability that is not a number"),
    (lambda f: (f / "model.keras").unlink(), "model.keras is missing"),
])
def test_rescore_refuses_broken_predictions_and_changes_nothing(model_copy, caplog, damage, message):
    metrics, card = (model_copy / METRICS_FILE).read_bytes(), (model_copy / CARD_FILE).read_bytes()
    damage(model_copy)
    code, text = run_cli(["rescore", "--model", str(model_copy)], caplog)
    assert code == 2 and f"{model_copy}: {message}" in text
    assert (model_copy / METRICS_FILE).read_bytes() == metrics and (model_copy / CARD_FILE).read_bytes() == card
