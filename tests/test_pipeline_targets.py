"""Targets (test split and lung-boxes audit) and how training ended, as the model card states them."""

from __future__ import annotations

import pytest

from pipeline import card
from pipeline.targets import (
    check_targets,
    how_training_ended,
    read_epochs,
    read_history,
    validation_accuracy,
)

CLASSES = ["COVID", "Normal", "Viral Pneumonia"]


def metrics(macro_f1: float, covid_recall: float, classes: list[str] = CLASSES, normal_by_chain=None,
            audit_covid=None, audit_data="lung-boxes") -> dict:
    """Metrics with Normal recall per chain ({chain: (recall, images)}) and the audit's COVID recall."""
    per_class = {c: {"recall": covid_recall if c == "COVID" else 0.97} for c in classes}
    per_chain = {chain: {"recall": {"Normal": recall, "Viral Pneumonia": 0.9},
                         "support": {"Normal": n, "Viral Pneumonia": 30}}
                 for chain, (recall, n) in (normal_by_chain or {}).items()}
    result = {"macro_f1": macro_f1, "per_class": per_class, "per_chain": per_chain, "chains_from": "source",
              "ci95": {"macro_f1": [macro_f1 - 0.02, macro_f1 + 0.02], "recall": [[0.80, 0.99]] * len(classes)}}
    if audit_covid is not None:
        result["lung_attention"] = {"data_dir": audit_data, "recall_by_label": {"COVID": {"n_images": 101,
                                                                                        "recall": audit_covid}}}
    return result


def history(*val_losses: float) -> list[dict]:
    return [{"epoch": str(i), "phase": "head", "val_loss": str(v)} for i, v in enumerate(val_losses)]


def test_every_model_is_judged_on_macro_f1_normal_recall_per_chain_and_lung_boxes_covid_recall():
    figures = metrics(0.93, 0.5, normal_by_chain={"kermany": (0.6, 200), "kaggle": (0.95, 255), "tiny": (0.0, 9)},
                      audit_covid=0.91)
    results = check_targets({"backbone": "DenseNet121"}, figures)
    assert [(r.name, r.minimum, r.reached, r.support, r.met) for r in results] == [
        ("macro-F1", 0.90, 0.93, None, True),
        ("Normal recall in chain `kermany`", 0.90, 0.6, 200, False),
        ("Normal recall in chain `kaggle`", 0.90, 0.95, 255, True),
        ("Normal recall in chain `tiny`", 0.90, None, None, False),
        ("COVID recall on the `lung-boxes` X-rays", 0.90, 0.91, 101, True)]
    assert results[0].interval == pytest.approx([0.91, 0.95])
    assert results[3].missing == "9 test images of Normal there, fewer than 10"  # too small a chain to measure


def test_a_chain_without_normal_test_images_is_not_measured_and_not_met():
    figures = metrics(0.96, 0.9, normal_by_chain={"kaggle": (0.95, 255)}, audit_covid=0.95)
    figures["per_chain"]["kermany"] = {"recall": {"Viral Pneumonia": 0.99}, "support": {"Viral Pneumonia": 201}}
    results = check_targets({"backbone": "MobileNet"}, figures)
    assert [(r.name, r.met) for r in results[1:3]] == [("Normal recall in chain `kaggle`", True),
                                                       ("Normal recall in chain `kermany`", False)]
    assert results[2].missing == "0 test images of Normal there, fewer than 10"


def test_mobilenet_needs_the_higher_macro_f1():
    figures = metrics(0.93, 0.9, normal_by_chain={"kaggle": (0.95, 255)}, audit_covid=0.95)
    assert [r.met for r in check_targets({"backbone": "MobileNet"}, figures)] == [False, True, True]
    assert check_targets({"backbone": "MobileNet"}, figures)[0].minimum == 0.94


def test_unmeasured_targets_are_not_met_and_say_why():
    results = check_targets({"backbone": "VGG16"}, metrics(0.95, 0.9, audit_covid=0.99, audit_data="lung-masks"))
    assert [(r.reached, r.met) for r in results[1:]] == [(None, False), (None, False)]
    assert "records no source or chain" in results[1].missing
    assert "not audited on `lung-boxes`" in results[2].missing


def test_a_target_on_a_class_the_model_lacks_is_skipped():
    results = check_targets({"backbone": "X"}, metrics(0.96, 0.0, ["Normal", "Viral Pneumonia"], audit_covid=0.9))
    assert [r.name for r in results] == ["macro-F1", "Normal recall in each processing chain"]


@pytest.mark.parametrize(("losses", "run", "expected"), [
    ((0.9, 0.7, 0.5), {"head": 3}, "still falling at the last of 3 epochs when the epoch budget ended"),
    ((0.9, 0.5, 0.6), {"head": 3}, "lowest at epoch 2 of 3 (1 later epoch did not improve on it), and the epoch "
                                   "budget ended"),
    ((0.9, 0.5, 0.6, 0.7), {"head": 2, "fine_tune": 2}, "epoch 2 of 4 (2 later epochs did not improve on it), "
                                                        "and early stopping ended"),
])
def test_how_training_ended_reads_the_validation_loss(losses, run, expected):
    config = {"epochs_run": run, "epochs_requested": {"head": 3, "fine_tune": 2}}
    assert expected in how_training_ended(config, history(*losses))


def test_the_kept_epoch_is_named_where_it_is_not_the_lowest_loss():
    rows = history(0.9, 0.5, 0.8) + [{"epoch": "3", "phase": "fine_tune", "val_loss": "1.1"}]
    legacy = how_training_ended({"epochs_run": {"head": 3, "fine_tune": 1}}, rows)  # no kept_epoch recorded
    assert "lowest at epoch 2 of 4" in legacy and "saved weights are those of epoch 4" in legacy
    recorded = {"epochs_run": {"head": 3, "fine_tune": 1}, "kept_epoch": {"epoch": 2, "val_loss": 0.5}}
    assert "saved weights" not in how_training_ended(recorded, rows)
    assert "saved weights" not in how_training_ended({}, history(0.9, 0.5, 0.8))
    damaged = rows + [{"epoch": "4", "phase": "extra", "val_loss": ""}]
    assert how_training_ended({}, damaged) == how_training_ended({}, rows)


def test_without_history_nothing_is_said(tmp_path):
    assert read_history(tmp_path) == []
    (tmp_path / "history.csv").write_bytes(b"\xff\xfe\x00garbage")
    assert read_history(tmp_path) == []
    assert how_training_ended({}, []) is None
    assert how_training_ended({}, [{"epoch": "0", "val_loss": "not a number"}]) is None
    assert validation_accuracy([{"epoch": "0", "val_accuracy": "n/a"}]) == []


def test_the_card_shows_each_target_and_how_training_ended(models_dir):
    folder = models_dir / "SmallCNN"
    text = (folder / "README.md").read_text()
    assert "## Targets" in text and "targets for SmallCNN" in text and "macro-F1 >= 90.0%" in text
    unaudited = ("| COVID recall on the `lung-boxes` X-rays >= 90.0% | not measured (not audited on `lung-boxes`) "
                 "| **no** |")
    assert unaudited in text
    assert "- How training ended: Validation loss" in text
    accuracy = validation_accuracy(read_history(folder))
    assert accuracy and f"- Validation accuracy by epoch: {card._pct(accuracy[0])}" in text
    config = {"classes": CLASSES, "backbone": "MobileNet", "input_size": 8}
    missed = "\n".join(card._targets_section(config, metrics(0.80, 0.9, normal_by_chain={"kermany": (0.85, 40)},
                                                             audit_covid=0.891), read_history(folder)))
    assert "| macro-F1 >= 94.0% | 80.0% (95% CI 78.0%-82.0%) | **no** |" in missed
    assert "| Normal recall in chain `kermany` >= 90.0% | 85.0% (n=40) | **no** |" in missed
    assert "| COVID recall on the `lung-boxes` X-rays >= 90.0% | 89.1% (n=101) | **no** |" in missed


def test_an_epoch_logged_twice_across_a_restart_is_kept_once(tmp_path):
    log = tmp_path / "history-head.csv"
    log.write_text("epoch,val_loss\n0,0.9\n1,0.8\n1,0.7\n2,0.6\n")
    assert [(r["epoch"], r["val_loss"]) for r in read_epochs(log)] == [("0", "0.9"), ("1", "0.7"), ("2", "0.6")]
