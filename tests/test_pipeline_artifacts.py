"""Atomic model folders, artifact reading without TensorFlow, the model card."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from pipeline import artifacts, card
from pipeline.config import CARD_FILE, CONFIG_FILE, METRICS_FILE, MODEL_FILE
from pipeline.errors import ArtifactError
from pipeline.targets import read_history


def test_atomic_write_replaces_a_folder_only_when_complete(tmp_path):
    with artifacts.atomic_model_dir(tmp_path, "M") as folder:
        (folder / "a.txt").write_text("one")
        assert not (tmp_path / "M").exists(), "nothing visible before the write completes"
    assert (tmp_path / "M" / "a.txt").read_text() == "one"
    with artifacts.atomic_model_dir(tmp_path, "M") as folder:
        (folder / "a.txt").write_text("two")
        assert (tmp_path / "M" / "a.txt").read_text() == "one", "the old model stays until the new one is whole"
    assert (tmp_path / "M" / "a.txt").read_text() == "two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["M"]


def test_failed_write_keeps_the_old_folder_and_leaves_no_trace(tmp_path):
    with artifacts.atomic_model_dir(tmp_path, "M") as folder:
        (folder / "a.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with artifacts.atomic_model_dir(tmp_path, "M") as folder:
            (folder / "a.txt").write_text("half")
            raise RuntimeError("killed")
    assert (tmp_path / "M" / "a.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["M"]


def test_list_model_dirs_skips_hidden_and_unrelated(tmp_path):
    for name in ("B", "A", ".staging-C-1", "notes"):
        (tmp_path / name).mkdir()
    (tmp_path / "A" / CONFIG_FILE).write_text("{}")
    (tmp_path / "B" / "model.keras").write_bytes(b"")
    (tmp_path / ".staging-C-1" / CONFIG_FILE).write_text("{}")
    assert [p.name for p in artifacts.list_model_dirs(tmp_path)] == ["A", "B"]
    assert artifacts.list_model_dirs(tmp_path / "missing") == []


@pytest.mark.parametrize("content, message", [
    (None, "metrics.json is missing"),
    ("", "metrics.json is not valid JSON"),
    ("[1]", "must hold a JSON object"),
    ('{"accuracy": 1}', "lacks the keys class_names, n_images, macro_f1"),
])
def test_broken_metrics_name_folder_and_file(tmp_path, content, message):
    if content is not None:
        (tmp_path / METRICS_FILE).write_text(content)
    with pytest.raises(ArtifactError, match=message) as info:
        artifacts.read_metrics(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_config_needs_class_names(tmp_path):
    (tmp_path / CONFIG_FILE).write_text(json.dumps({"backbone": "X", "classes": [], "input_size": 8}))
    with pytest.raises(ArtifactError, match="'classes' must be a non-empty list"):
        artifacts.read_config(tmp_path)


def test_reading_artifacts_does_not_import_tensorflow(models_dir):
    code = (
        "import sys; from pipeline import artifacts, card, metrics, data, backbones, config\n"
        f"for d in artifacts.list_model_dirs({str(models_dir)!r}):\n"
        "    card.render_model_card(artifacts.read_config(d), artifacts.read_metrics(d))\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=120)


def test_model_card_states_data_weights_metrics_and_command(models_dir):
    folder = models_dir / "MobileNet"
    config, metrics = artifacts.read_config(folder), artifacts.read_metrics(folder)
    text = card.render_model_card(config, metrics, read_history(folder))
    assert "Not a medical device" in text and "Missing from this data: Lung_Opacity" in text
    assert "none (random initialisation)" in text and "95% CI" in text and "every layer training in both" in text
    assert f"{100 * metrics['accuracy']:.1f}%" in text
    assert "### Per data source" in text and "source-0" in text
    assert (folder / "README.md").read_text() == text


def test_check_model_dir_names_the_broken_file(tmp_path, models_dir):
    import shutil

    folder = tmp_path / "MobileNet"
    shutil.copytree(models_dir / "MobileNet", folder)
    config, metrics = artifacts.check_model_dir(folder)
    assert config["classes"] == metrics["class_names"]
    metrics["class_names"] = ["A", "B", "C"]
    (folder / METRICS_FILE).write_text(json.dumps(metrics))
    with pytest.raises(ArtifactError, match=f"{folder}: metrics.json classes .* differ from config.json"):
        artifacts.check_model_dir(folder)
    (folder / METRICS_FILE).unlink()
    with pytest.raises(ArtifactError, match=f"{folder}: metrics.json is missing"):
        artifacts.check_model_dir(folder)


def test_metrics_report_subgroups_and_the_worst_one(models_dir):
    metrics = artifacts.read_metrics(models_dir / "MobileNet")
    assert set(metrics["per_subgroup"]) == {"kermany_pediatric=0", "kermany_pediatric=1"}
    worst = metrics["worst_subgroup_recall"]
    groups = {**metrics["per_source"], **metrics["per_subgroup"]}
    eligible = [r for g in groups.values() for c, r in g["recall"].items() if g["support"][c] >= 10]
    assert (worst is None) if not eligible else worst["recall"] == min(eligible)
    card = (models_dir / "MobileNet" / "README.md").read_text()
    assert "### Per subgroup" in card and ("Worst subgroup" in card) == (worst is not None)
    header = (models_dir / "MobileNet" / "predictions.csv").read_text().splitlines()[0]
    assert "kermany_pediatric" in header.split(",")


def test_model_card_names_sources_recipe_and_a_subgroup_shortcut(models_dir):
    config, metrics = artifacts.read_config(models_dir / "MobileNet"), artifacts.read_metrics(models_dir / "MobileNet")
    config["data"]["subgroups"] = {"flag=0": {c: 10 for c in config["classes"]},
                                   "flag=1": {**{c: 0 for c in config["classes"]}, config["classes"][-1]: 10}}
    text = card.render_model_card(config, metrics)
    assert "Source `source-0`:" in text and "Recipe: Adam" in text and "augmentation `affine`" in text
    shortcut = next(line for line in text.splitlines() if "Shortcut risk" in line)
    assert f"50.0% of {config['classes'][-1]}" in shortcut and f"0.0% of {config['classes'][0]}" in shortcut
    config["data"]["subgroups"]["flag=1"] = {c: 10 for c in config["classes"]}
    assert "Shortcut risk" not in card.render_model_card(config, metrics), "an equal share is no shortcut"


def test_model_card_recipe_names_the_balance_intensity_and_schedule(models_dir):
    config, metrics = artifacts.read_config(models_dir / "MobileNet"), artifacts.read_metrics(models_dir / "MobileNet")
    recipe = next(line for line in card.render_model_card(config, metrics).splitlines() if "Recipe:" in line)
    assert "class weights" in recipe and "histogram" not in recipe
    assert "reduced on plateau" in recipe
    config.update(balance="chain", intensity="equalize", schedule={"kind": "cosine", "warmup_epochs": 2})
    recipe = next(line for line in card.render_model_card(config, metrics).splitlines() if "Recipe:" in line)
    assert "every processing chain, counts the same" in recipe and "equalises each image's histogram" in recipe
    assert "warmed up over 2 epoch(s) then decayed to zero" in recipe and "plateau" not in recipe


def test_model_card_of_a_one_phase_run_names_one_learning_rate(models_dir):
    config, metrics = artifacts.read_config(models_dir / "MobileNet"), artifacts.read_metrics(models_dir / "MobileNet")
    config.update(weights="none (random initialisation)", epochs_run={"head": 9, "fine_tune": 0},
                  learning_rates={"head": 1e-4, "fine_tune": 3e-5}, options={"patience": 6})
    config.pop("kept_epoch")  # as in folders written before training recorded it
    text = card.render_model_card(config, metrics)
    assert "Epochs run: 9 in one phase, every layer training (from scratch)" in text
    assert "learning rate 0.0001, reduced on plateau" in text and "fine-tune" not in text
    assert "restores the best validation-loss weights" in text, "a folder that records no kept epoch"
    config["epochs_run"]["fine_tune"] = 2
    config["kept_epoch"] = {"epoch": 7, "val_loss": 0.4}
    text = card.render_model_card(config, metrics)
    assert "learning rate 0.0001 (head) then 3e-05 (fine-tune)" in text
    assert "(patience 6); the weights of the lowest validation loss of the run (epoch 7) are kept" in text


def test_a_card_write_that_fails_midway_keeps_the_old_card(tmp_path, monkeypatch):
    folder = tmp_path / "SmallCNN"
    shutil.copytree(REPO / "saved_models" / "SmallCNN", folder, ignore=shutil.ignore_patterns(MODEL_FILE))
    old = (folder / CARD_FILE).read_text(encoding="utf-8")
    config, metrics = artifacts.read_config(folder), artifacts.read_metrics(folder)
    metrics["accuracy"] = 0.125
    write_text = Path.write_text

    def half_then_disk_full(path, text, *args, **kwargs):
        write_text(path, text[: len(text) // 2], *args, **kwargs)
        raise OSError("No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(Path, "write_text", half_then_disk_full)
        with pytest.raises(OSError, match="No space"):
            card.write_card(folder, config, metrics)
    assert (folder / CARD_FILE).read_text(encoding="utf-8") == old
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")], "no staging file is left behind"
    card.write_card(folder, config, metrics)
    assert "12.5%" in (folder / CARD_FILE).read_text(encoding="utf-8")
