"""Distillation: softened teacher outputs mixed into the targets; validation keeps the true labels."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from conftest import run_cli

from pipeline import distill
from pipeline.data import scan_dataset
from pipeline.errors import ConfigError

TEACHER = np.array([[0.90, 0.08, 0.02], [0.20, 0.70, 0.10], [0.05, 0.15, 0.80]])
LABELS = np.array([0, 2, 2])


def entropy(p: np.ndarray) -> np.ndarray:
    return -(p * np.log(p)).sum(axis=1)


def test_temperature_one_keeps_the_outputs_and_a_higher_one_spreads_them():
    np.testing.assert_allclose(distill.soften(TEACHER, 1.0), TEACHER, rtol=1e-9)
    warm = distill.soften(TEACHER, 2.0)
    np.testing.assert_allclose(warm.sum(axis=1), 1.0)
    assert (entropy(warm) > entropy(TEACHER)).all()
    assert (warm.argmax(axis=1) == TEACHER.argmax(axis=1)).all()
    # T = 2 is the square root of the probabilities, renormalised
    np.testing.assert_allclose(warm[0], np.sqrt(TEACHER[0]) / np.sqrt(TEACHER[0]).sum())


def test_targets_mix_the_true_class_with_the_teacher():
    np.testing.assert_array_equal(distill.soft_targets(LABELS, TEACHER, 2.0, 0.0), np.eye(3)[LABELS])
    np.testing.assert_allclose(distill.soft_targets(LABELS, TEACHER, 1.0, 1.0), TEACHER, rtol=1e-6)
    mixed = distill.soft_targets(LABELS, TEACHER, 1.0, 0.5)
    np.testing.assert_allclose(mixed[1], [0.10, 0.35, 0.55], rtol=1e-6)  # the teacher is wrong here: half of it
    assert mixed.dtype == np.float32 and mixed.shape == (3, 3)


@pytest.mark.parametrize("temperature, weight, message", [(0.0, 0.5, "temperature must be above 0"),
                                                          (2.0, 1.2, "weight must be from 0 to 1")])
def test_bad_distillation_settings_name_the_value(temperature, weight, message):
    with pytest.raises(ConfigError, match=message):
        distill.soft_targets(LABELS, TEACHER, temperature, weight)


def test_a_teacher_that_lacks_a_class_of_the_data_is_refused(models_dir, image_folder):
    samples = scan_dataset(image_folder).samples[:4]
    with pytest.raises(ConfigError, match=r"has no output for \['Lung_Opacity'\]"):
        distill.teacher_probabilities(models_dir / "SmallCNN", ["COVID", "Lung_Opacity"], samples, 4)


def test_teacher_columns_follow_the_data_classes(models_dir, image_folder):
    dataset = scan_dataset(image_folder)
    samples = dataset.samples[:6]
    probs = distill.teacher_probabilities(models_dir / "SmallCNN", dataset.classes, samples, 4)
    reordered = distill.teacher_probabilities(models_dir / "SmallCNN", dataset.classes[::-1], samples, 4)
    np.testing.assert_allclose(reordered, probs[:, ::-1], rtol=1e-5)


@pytest.mark.slow
def test_a_distilled_run_keeps_the_epoch_of_the_plain_validation_loss(caplog, tmp_path, models_dir, image_folder):
    teacher = models_dir / "SmallCNN"
    code, text = run_cli(["train", "--backbone", "SmallCNN", "--data-dir", str(image_folder), "--weights", "none",
                          "--image-size", "32", "--batch-size", "8", "--epochs", "2", "--fine-tune-epochs", "0",
                          "--teacher", str(teacher), "--distill-temperature", "3", "--distill-weight", "0.4",
                          "--out", str(tmp_path / "out"), "--checkpoint-dir", str(tmp_path / "ck")], caplog)
    assert code == 0, text
    folder = tmp_path / "out" / "SmallCNN"
    config = json.loads((folder / "config.json").read_text())
    assert config["distillation"] == {"teacher": str(teacher), "teacher_backbone": "SmallCNN",
                                      "temperature": 3.0, "weight": 0.4}
    assert "distilled from SmallCNN" in (folder / "README.md").read_text()
    # The kept epoch's validation loss is the cross-entropy of the saved model on the true labels.
    kept = config["kept_epoch"]["val_loss"]
    history = [float(row["val_loss"]) for row in csv.DictReader((folder / "history.csv").open())]
    assert kept == pytest.approx(min(history))
    rows = list(csv.DictReader((folder / "val_predictions.csv").open()))
    plain = np.mean([-np.log(max(float(r[f"p_{r['label']}"]), 1e-7)) for r in rows])
    assert kept == pytest.approx(plain, rel=2e-3, abs=2e-3)
