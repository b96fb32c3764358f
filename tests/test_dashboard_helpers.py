"""TF-free helpers of the dashboard: model catalog, comparison tables, curves, overlays, samples."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from dashboard import catalog, compare, overlay
from dashboard.samples import SAMPLES_DIR, class_images, shipped_samples


@pytest.fixture(scope="module")
def entries(models_dir):
    return catalog.scan(models_dir).entries


def test_scan_finds_the_models(models_dir, entries):
    assert [entry.name for entry in entries] == ["MobileNet", "SmallCNN"]
    assert all(entry.can_explain and entry.metrics for entry in entries)
    assert catalog.scan(models_dir).problems == []


def test_broken_folders_become_problems(models_dir, tmp_path):
    shutil.copytree(models_dir / "SmallCNN", tmp_path / "Truncated")
    model_file = tmp_path / "Truncated" / "model.keras"
    model_file.write_bytes(model_file.read_bytes()[:1000])
    shutil.copytree(models_dir / "SmallCNN", tmp_path / "BadJson")
    (tmp_path / "BadJson" / "config.json").write_text("{not json")
    shutil.copytree(models_dir / "MobileNet", tmp_path / "NoMetrics")
    (tmp_path / "NoMetrics" / "metrics.json").unlink()
    found = catalog.scan(tmp_path)
    assert [entry.name for entry in found.entries] == ["NoMetrics", "Truncated"]
    assert [entry.name for entry in found.explainable] == ["NoMetrics"]
    assert [entry.name for entry in found.evaluated] == ["Truncated"]
    text = "\n".join(found.problems)
    assert "BadJson: config.json is not valid JSON" in text
    assert "Truncated: model.keras cannot be loaded (damaged or truncated" in text
    assert "NoMetrics: metrics.json is missing" in text


def test_models_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(catalog.MODELS_DIR_VAR, str(tmp_path))
    assert catalog.models_root() == tmp_path
    monkeypatch.delenv(catalog.MODELS_DIR_VAR)
    assert catalog.models_root() == catalog.REPO_ROOT / "saved_models"


def test_comparison_table(entries):
    table = compare.comparison_table(entries)
    assert list(table["model"]) == ["MobileNet", "SmallCNN"]
    for entry, (_, row) in zip(entries, table.iterrows()):
        metrics = entry.metrics
        assert row["accuracy"] == metrics["accuracy"]
        assert (row["accuracy CI low"], row["accuracy CI high"]) == tuple(metrics["ci95"]["accuracy"])
        assert row["recall Normal"] == metrics["per_class"]["Normal"]["recall"]
        assert row["specificity COVID"] == metrics["per_class"]["COVID"]["specificity"]
        assert row["parameters"] == entry.config["parameters"]
        assert row["file size (MB)"] == pytest.approx(entry.config["model_bytes"] / 2**20)
    csv = table.to_csv(index=False)
    assert csv.splitlines()[0].startswith("model,backbone,test images,accuracy")


def test_per_class_and_interval_tables(entries):
    per_class = compare.per_class_table(entries)
    assert len(per_class) == sum(len(e.metrics["class_names"]) for e in entries)
    recall = compare.metric_intervals(entries, "recall")
    assert set(recall["group"]) == {"COVID", "Normal", "Viral Pneumonia"}
    assert (recall["low"] <= recall["value"] + 1e-9).all() and (recall["value"] <= recall["high"] + 1e-9).all()
    assert list(compare.metric_intervals(entries, "macro_f1")["group"]) == ["macro-F1", "macro-F1"]


def test_confusion_normalisation(entries):
    metrics = entries[0].metrics
    counts = compare.confusion(metrics, normalise=False)
    rows = compare.confusion(metrics, normalise=True)
    assert counts.sum() == metrics["n_images"]
    assert np.allclose(rows.sum(axis=1), 1.0)
    zero_row = compare.confusion({"confusion_matrix": [[0, 0], [1, 3]]}, normalise=True)
    assert zero_row.tolist() == [[0.0, 0.0], [0.25, 0.75]]


def test_class_curves_match_sklearn(entries):
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    frames = {e.name: pd.read_csv(e.folder / "predictions.csv") for e in entries}
    roc, pr = compare.class_curves(frames, "Normal")
    assert [curve.model for curve in roc] == ["MobileNet", "SmallCNN"] and len(pr) == 2
    frame = frames["MobileNet"]
    assert roc[0].area == pytest.approx(roc_auc_score(frame["label"] == "Normal", frame["p_Normal"]))
    assert compare.class_curves(frames, "Lung_Opacity") == ([], [])


def test_reliability_keeps_non_empty_bins(entries):
    bins = compare.reliability(entries[0].metrics)
    assert (bins["count"] > 0).all() and bins["count"].sum() == entries[0].metrics["n_images"]


def test_per_source_and_training_data(entries):
    sources = compare.per_group_table(entries)
    assert set(sources["source"]) == {"source-0", "source-1"}
    datasets = compare.training_datasets(entries)
    assert len(datasets) == 1 and datasets[0][1] == ["MobileNet", "SmallCNN"]
    counts = compare.counts_table(datasets[0][0]["counts"])
    assert counts.loc["total", "total"] == 72


def test_colormap_lookup_tables():
    for name in overlay.COLORMAPS:
        lut = overlay.colormap_lut(name)
        assert lut.shape == (256, 3) and lut.dtype == np.uint8
    jet = overlay.colormap_lut("Jet")
    assert jet[0, 2] > jet[0, 0] and jet[-1, 0] > jet[-1, 2]  # blue at 0, red at 1
    with pytest.raises(ValueError):
        overlay.colormap_lut("Rainbow")


def test_overlay_blends_by_opacity():
    gray = np.full((64, 64), 100, np.uint8)
    cam = np.zeros((8, 8), np.float32)
    cam[:4] = 1.0
    assert np.array_equal(overlay.overlay(gray, cam, 0.0, "Jet"), overlay.gray_rgb(gray))
    full = overlay.overlay(gray, cam, 1.0, "Jet")
    assert full.shape == (64, 64, 3)
    assert np.array_equal(full[0, 0], overlay.colormap_lut("Jet")[255])
    assert np.array_equal(full[-1, -1], overlay.colormap_lut("Jet")[0])
    half = overlay.overlay(gray, cam, 0.5, "Jet").astype(int)
    assert np.abs(half - (full.astype(int) + 100) / 2).max() <= 1
    with pytest.raises(ValueError):
        overlay.overlay(gray, cam, 1.5, "Jet")


def test_attention_panels_and_png():
    gray = np.full((48, 48), 80, np.uint8)
    maps = (np.random.default_rng(0).random((8, 8)), np.zeros((8, 8)))
    panels = overlay.attention_panels(gray, maps, 0.5, "Viridis")
    assert [title for title, _ in panels] == ["Original", "Grad-CAM", "Grad-CAM++"]
    assert overlay.is_flat(maps[1]) and not overlay.is_flat(maps[0])
    png = Image.open(io.BytesIO(overlay.panel_png(panels, "Viridis", "test caption")))
    assert png.format == "PNG" and png.width == 3 * 48 + 2 * overlay.GAP


def test_shipped_samples_have_licences():
    samples = shipped_samples()
    assert 3 <= len(samples) <= 4
    listed = json.loads((SAMPLES_DIR / "samples.json").read_text())["samples"]
    assert len(samples) == len(listed)
    readme = (SAMPLES_DIR / "README.md").read_text()
    for sample in samples:
        assert sample.licence in ("CC BY 3.0", "CC BY 4.0", "CC BY-SA", "CC0", "Apache-2.0")
        assert sample.path.name in readme and sample.url.startswith("https://")
        assert Image.open(sample.path).size == (224, 224)


def test_class_images_from_a_data_folder(image_folder, tmp_path):
    chosen = class_images(str(image_folder), 3, seed=1)
    assert sorted(chosen) == ["COVID", "Normal", "Viral Pneumonia"]
    assert all(len(files) == 3 for files in chosen.values())
    assert chosen == class_images(str(image_folder), 3, seed=1)
    assert class_images(str(tmp_path / "absent"), 3) == {} and class_images(None, 3) == {}
