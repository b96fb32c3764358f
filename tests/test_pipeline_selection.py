"""Honest selection and shortcut figures: the validation split is scored and kept beside the test
split, and figures per processing chain show a model that reads the chain instead of the lungs."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest

from pipeline import card, metrics, shortcuts
from pipeline.__main__ import main
from pipeline.config import PREDICTIONS_FILE, VAL_PREDICTIONS_FILE, VALIDATION_KEYS
from pipeline.rescore import read_predictions, rescored_metrics

CLASSES = ["COVID", "Normal", "Viral Pneumonia"]


def _rows(folder, name):
    with (folder / name).open(newline="") as handle:
        return list(csv.DictReader(handle))


def _chain_case():
    """Normal through two chains: recalled in chain A, called Viral Pneumonia in chain B (the shortcut)."""
    labels = np.array([1] * 20 + [1] * 20 + [2] * 20 + [0] * 20)
    predicted = np.array([1] * 20 + [2] * 20 + [2] * 20 + [0] * 20)
    probs = np.eye(3)[predicted] * 0.8 + 0.2 / 3
    chains = ["A"] * 20 + ["B"] * 40 + ["A"] * 20
    return labels, probs, chains


def test_per_chain_figures_show_normal_recall_inside_each_chain():
    labels, probs, chains = _chain_case()
    result = metrics.score_predictions(labels, probs, CLASSES, ["one source"] * len(labels), None, chains)
    assert result["chains_from"] == "chain"
    assert result["per_chain"]["A"]["recall"] == {"COVID": 1.0, "Normal": 1.0}
    assert result["per_chain"]["B"]["recall"] == {"Normal": 0.0, "Viral Pneumonia": 1.0}
    assert result["per_source"]["one source"]["recall"]["Normal"] == 0.5, "one source hides the chain"
    assert result["worst_subgroup_recall"] == {"group": "B", "class": "Normal", "recall": 0.0, "support": 20}
    assert shortcuts.chain_recalls(result, "Normal") == {"A": (1.0, 20), "B": (0.0, 20)}
    assert shortcuts.lowest_chain_recall(result, "Normal") == ("B", 0.0, 20)


def test_without_a_chain_column_each_source_is_its_chain():
    labels, probs, chains = _chain_case()
    result = metrics.score_predictions(labels, probs, CLASSES, chains)
    assert result["chains_from"] == "source" and result["per_chain"] == result["per_source"]
    older = {k: v for k, v in result.items() if k not in ("per_chain", "chains_from")}  # metrics before chains
    assert shortcuts.per_chain(older) == result["per_source"] and shortcuts.chains_from(older) == "source"
    assert shortcuts.single_chain_classes(result) == {"COVID": "A", "Viral Pneumonia": "B"}
    assert shortcuts.chains_from({}) is None and shortcuts.per_chain({}) == {}


def test_the_audit_recall_is_read_from_the_named_audit_only():
    figures = {"lung_attention": {"data_dir": "lung-boxes", "recall_by_label": {"COVID": {"n_images": 101,
                                                                                       "recall": 0.89}}}}
    assert shortcuts.audit_recall(figures, "COVID") == (0.89, 101)
    assert shortcuts.audit_recall(figures, "Normal") is None
    assert shortcuts.audit_recall({"lung_attention": {**figures["lung_attention"], "data_dir": "lung-masks"}},
                                  "COVID") is None
    assert shortcuts.audit_recall({}, "COVID", data=None) is None


def test_validation_summary_keeps_the_selection_figures_only():
    labels, probs, chains = _chain_case()
    summary = metrics.validation_summary(metrics.score_predictions(labels, probs, CLASSES, chains))
    assert set(summary) == set(VALIDATION_KEYS) - {"per_subgroup"}
    assert "confusion_matrix" not in summary and "reliability" not in summary


@pytest.mark.parametrize("backbone", ["MobileNet", "SmallCNN"])
def test_training_keeps_the_validation_predictions_and_figures(models_dir, backbone):
    folder = models_dir / backbone
    config = json.loads((folder / "config.json").read_text())
    stored = json.loads((folder / "metrics.json").read_text())
    val_rows, test_rows = _rows(folder, VAL_PREDICTIONS_FILE), _rows(folder, PREDICTIONS_FILE)
    assert list(val_rows[0]) == list(test_rows[0]), "same columns as predictions.csv"
    assert len(val_rows) == sum(config["data"]["counts"]["val"].values()) == stored["validation"]["n_images"]
    assert not {r["path"] for r in val_rows} & {r["path"] for r in test_rows}
    assert config["split_keys"] == ["group"], "the generated manifest names groups, no patients"
    labels, probs, sources, subgroups, chains = read_predictions(folder, config["classes"], VAL_PREDICTIONS_FILE)
    fresh = metrics.validation_summary(metrics.score_predictions(labels, probs, config["classes"], sources,
                                                                 subgroups, chains))
    assert stored["validation"]["macro_f1"] == pytest.approx(fresh["macro_f1"])
    assert stored["validation"]["per_chain"] == fresh["per_chain"]
    def recalls(figures: dict) -> dict:  # ROC AUC may move: the CSV rounds probabilities to 6 decimals
        return {c: v["recall"] for c, v in figures["validation"]["per_class"].items()}

    assert recalls(rescored_metrics(folder)) == recalls(stored)
    text = (folder / "README.md").read_text()
    assert f"macro-F1 {card._pct(stored['validation']['macro_f1'])}" in text.split("## Validation metrics")[1]
    assert "near-duplicate groups kept inside one split" in text and "each copy as one image" in text


def test_rescore_reads_a_chain_column_and_drops_validation_without_its_file(models_dir, tmp_path):
    folder = tmp_path / "SmallCNN"
    shutil.copytree(models_dir / "SmallCNN", folder)
    rows = _rows(folder, PREDICTIONS_FILE)
    with (folder / PREDICTIONS_FILE).open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["chain", *rows[0]])
        writer.writeheader()
        writer.writerows({**row, "chain": f"chain-{i % 3}"} for i, row in enumerate(rows))
    (folder / VAL_PREDICTIONS_FILE).unlink()
    result = rescored_metrics(folder)
    assert result["chains_from"] == "chain" and set(result["per_chain"]) == {"chain-0", "chain-1", "chain-2"}
    assert "chain" not in {k.split("=")[0] for k in result.get("per_subgroup", {})}, "chain is not a subgroup"
    assert "validation" not in result
    assert "Not recorded" in card.render_model_card(json.loads((folder / "config.json").read_text()), result)


def test_evaluate_reports_each_chain_from_a_chain_column(models_dir, image_folder, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(image_folder, data)
    rows = list(csv.DictReader((data / "manifest.csv").open(newline="")))
    with (data / "manifest.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*rows[0], "chain", "patient"])
        writer.writeheader()
        writer.writerows({**row, "chain": "jpeg" if row["label"] == "Viral Pneumonia" else "png", "patient": ""}
                         for row in rows)
    assert main(["evaluate", "--model", str(models_dir / "SmallCNN"), "--data-dir", str(data)]) == 0
    shown = capsys.readouterr().out
    assert "processing chain (from the manifest's chain column)" in shown and "  jpeg: Viral Pneumonia" in shown
    assert "recall per class in each source:" in shown and "  source-0: COVID" in shown
