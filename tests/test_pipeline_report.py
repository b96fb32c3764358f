"""Markdown tables built from saved runs: each figure is the one in metrics.json."""

from __future__ import annotations

import json
import logging
import shutil

import pytest

from pipeline import report
from pipeline.__main__ import main
from pipeline.errors import ArtifactError

EARLIER_FORMAT_NOTE = "> **Earlier format: these tables compare recipes on the test split.**"


def copy_runs(models_dir, target, seeds=(1, 2)):
    """Copies of the tiny models' config and metrics as experiment runs, one per seed."""
    for folder in sorted(p for p in models_dir.iterdir() if p.is_dir()):
        for seed in seeds:
            run = target / f"{folder.name}-{seed}"
            run.mkdir(parents=True)
            for name in ("config.json", "metrics.json"):
                shutil.copy(folder / name, run / name)
            config = json.loads((run / "config.json").read_text())
            config["seed"] = seed
            (run / "config.json").write_text(json.dumps(config))
    return target


def test_comparison_table_has_one_row_per_model_with_its_figures(models_dir):
    text = report.comparison_table(models_dir)
    rows = [line for line in text.splitlines()[2:] if line.startswith("| [")]
    assert len(rows) == 2
    for folder in ("MobileNet", "SmallCNN"):
        metrics = json.loads((models_dir / folder / "metrics.json").read_text())
        row = next(r for r in rows if r.startswith(f"| [{folder}]"))
        assert report.pct(metrics["macro_f1"]) in row and report.pct(metrics["accuracy"]) in row


def test_experiment_means_average_the_seeds_on_the_validation_split(models_dir, tmp_path):
    runs = copy_runs(models_dir, tmp_path / "runs")
    (runs / "README.md").write_text("# Our experiments\n\nWhat each recipe is.")
    text = report.experiments_document(runs)
    assert text.index("# Our experiments") < text.index("## Mean over seeds (validation split)")
    means = text.split("## Every run (validation split)")[0]
    for name in ("MobileNet", "SmallCNN"):
        f1 = json.loads((models_dir / name / "metrics.json").read_text())["validation"]["macro_f1"]
        row = next(line for line in means.splitlines() if line.startswith(f"| {name}, augmentation"))
        assert f"| 2 | {report.pct(f1)} |" in row, "two identical seeds average to the same validation macro-F1"
    every_run, attention = text.split("## Lung attention")
    assert sum(line.startswith(("| MobileNet-", "| SmallCNN-")) for line in every_run.splitlines()) == 4
    assert sum(line.startswith(("| MobileNet-", "| SmallCNN-")) for line in attention.splitlines()) == 4
    assert "val macro-F1 (95% CI)" in text and "val Normal recall, chain source-0" in text
    assert "no validation figures" not in text


def _edit_metrics(run, edit) -> None:
    metrics = json.loads((run / "metrics.json").read_text())
    edit(metrics)
    (run / "metrics.json").write_text(json.dumps(metrics))


def test_experiments_never_show_test_figures_and_name_runs_without_validation(models_dir, tmp_path):
    runs = copy_runs(models_dir, tmp_path / "runs")
    for run in runs.iterdir():  # test figures that no validation figure equals
        _edit_metrics(run, lambda m: m.update(macro_f1=0.1234) or m["per_class"]["COVID"].update(recall=0.0123))
    _edit_metrics(runs / "SmallCNN-2", lambda m: m.pop("validation"))
    text = report.experiments_tables(runs)
    assert "12.3%" not in text and "1.2%" not in text, "a test figure leaked into the recipe comparison"
    assert "1 of 4 runs have no validation figures" in text and ": SmallCNN-2." in text
    assert sum(line.startswith(("| MobileNet-", "| SmallCNN-")) for line in text.split("## Lung")[0].splitlines()) == 3
    for run in runs.iterdir():
        _edit_metrics(run, lambda m: m.pop("validation", None))
    text = report.experiments_tables(runs)
    assert text.startswith("4 of 4 runs have no validation figures") and "## Mean over seeds" not in text


def test_experiments_report_each_runs_lung_attention_without_choosing_by_it(models_dir, tmp_path):
    runs = copy_runs(models_dir, tmp_path / "runs")
    audit = {"overall": {"baseline_share": 0.6, "predicted_lungs_baseline_share": 0.37,
                         "Grad-CAM": {"energy_inside": 0.7125, "energy_inside_predicted_lungs": 0.4375}},
             "recall_by_label": {"COVID": {"recall": 0.875, "n_images": 8}}}
    _edit_metrics(runs / "MobileNet-2", lambda m: m.update(lung_attention=audit))
    attention = report.experiments_tables(runs).split("## Lung attention")[1]
    rows = {line.split(" | ")[0]: line for line in attention.splitlines() if line.startswith("| ")}
    assert "| 71.2% (uniform 60.0%) | 43.8% (uniform 37.0%) | COVID 87.5% (n=8) |" in rows["| MobileNet-2"]
    assert "| not audited | n/a | n/a |" in rows["| SmallCNN-2"]


def test_subgroup_columns_appear_for_classes_in_several_subgroups():
    metrics = {"per_subgroup": {
        "flag=0": {"support": {"Normal": 5, "COVID": 4}, "recall": {"Normal": 0.8, "COVID": 1.0}},
        "flag=1": {"support": {"Normal": 3, "Viral Pneumonia": 6}, "recall": {"Normal": 1.0, "Viral Pneumonia": 0.5}}}}
    assert report.shared_class_subgroups([metrics]) == [("flag=0", "Normal"), ("flag=1", "Normal")]
    assert report.subgroup_recall(metrics, "flag=0", "Normal") == 0.8


def test_markers_replace_only_the_table():
    text = f"intro\n{report.README_START}\nold\n{report.README_END}\nrest\n"
    replaced = report.replace_between_markers(text, "new")
    assert replaced == f"intro\n{report.README_START}\nnew\n{report.README_END}\nrest\n"
    with pytest.raises(ArtifactError, match="markers"):
        report.replace_between_markers("no markers here", "new")


def test_cli_updates_a_readme_and_reports_a_folder_without_runs(models_dir, tmp_path, caplog):
    readme = tmp_path / "README.md"
    readme.write_text(f"# Project\n{report.README_START}\n{report.README_END}\nend\n")
    assert main(["report", "--models", str(models_dir), "--readme", str(readme)]) == 0
    assert "| [MobileNet]" in readme.read_text() and readme.read_text().endswith("end\n")
    with caplog.at_level(logging.ERROR, logger="pipeline"):
        assert main(["report", "--experiments", str(tmp_path / "empty")]) == 2
    assert "not a folder" in caplog.text


def test_the_experiments_document_is_the_generated_one():
    """Runs from before validation scoring keep their earlier test-split tables under a note saying so;
    once every run has validation figures the document must be the generated one."""
    from conftest import REPO

    runs = REPO / "docs" / "experiments"
    expected = report.experiments_document(runs)
    document = (REPO / "docs" / "EXPERIMENTS.md").read_text(encoding="utf-8")
    if "runs have no validation figures" in expected:
        assert EARLIER_FORMAT_NOTE in document, "say that these tables compare recipes on the test split"
        return
    assert document == expected, (
        "run: python -m pipeline report --experiments docs/experiments --out docs/EXPERIMENTS.md")
