"""TF-free helpers of the dashboard: model catalog, comparison tables, curves, overlays, samples."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from dashboard import catalog, compare, overlay
from dashboard.samples import SAMPLES_DIR, class_images, lung_boxes, shipped_samples
from pipeline.audit import energy_inside, region_from_boxes


@pytest.fixture(scope="module")
def entries(models_dir):
    return catalog.scan(models_dir).entries


def test_scan_finds_the_models(models_dir, entries):
    assert [entry.name for entry in entries] == ["MobileNet", "SmallCNN"]
    assert all(entry.can_explain and entry.metrics for entry in entries)
    assert catalog.scan(models_dir).problems == []


def test_the_explain_default_comes_first_and_the_other_models_by_name(tmp_path):
    from pipeline.config import DEFAULT_EXPLAIN_MODEL

    def entry(name: str, can_explain: bool = True) -> catalog.ModelEntry:
        return catalog.ModelEntry(name, tmp_path / name, {}, None, can_explain, "")

    names = ["DenseNet121", DEFAULT_EXPLAIN_MODEL, "ResNet50", "SmallCNN", "VGG16"]
    found = catalog.Catalog(tmp_path, [entry(name) for name in sorted(names)])
    assert [e.name for e in found.explainable] == [DEFAULT_EXPLAIN_MODEL, "DenseNet121", "ResNet50", "SmallCNN",
                                                   "VGG16"]
    without = catalog.Catalog(tmp_path, [entry("VGG16"), entry(DEFAULT_EXPLAIN_MODEL, False), entry("ResNet50")])
    assert [e.name for e in without.explainable] == ["VGG16", "ResNet50"]  # as scanned: by folder name


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
    assert csv.splitlines()[0].startswith("model,test images,accuracy")  # backbone repeats model: left out


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


def test_attention_panels_take_any_number_of_titled_maps():
    gray = np.full((48, 48), 80, np.uint8)
    maps = tuple(np.random.default_rng(i).random((8, 8)) for i in range(4))
    titles = ("Grad-CAM", "Grad-CAM++", "Score-CAM", "Layer-CAM")
    panels = overlay.attention_panels(gray, maps, 0.5, "Jet", titles)
    assert [title for title, _ in panels] == ["Original", *titles]
    assert np.array_equal(panels[3][1], overlay.overlay(gray, maps[2], 0.5, "Jet"))
    png = Image.open(io.BytesIO(overlay.panel_png(panels, "Jet", "five panels")))
    assert png.width == 5 * 48 + 4 * overlay.GAP
    with pytest.raises(ValueError):
        overlay.attention_panels(gray, maps, 0.5, "Jet")  # four maps, two default titles


def test_draw_boxes_outlines_the_edges_only():
    rgb = np.full((224, 224, 3), 60, np.uint8)
    drawn = overlay.draw_boxes(rgb, [(20.0, 30.0, 100.0, 200.0)], (224, 224), line=1)
    assert np.array_equal(rgb, np.full((224, 224, 3), 60, np.uint8))  # the input is left alone
    white = np.all(drawn == 255, axis=-1)
    assert white[30, 20:100].all() and white[199, 20:100].all()  # top and bottom edges
    assert white[30:200, 20].all() and white[30:200, 99].all()  # left and right edges
    assert white.sum() == 2 * 80 + 2 * 170 - 4
    assert np.array_equal(drawn[31:199, 21:99], rgb[31:199, 21:99])  # inside unchanged


def test_draw_boxes_scales_from_the_reference_size():
    rgb = np.zeros((384, 384, 3), np.uint8)
    right, left = (16.80, 9.41, 118.61, 195.44), (121.07, 11.31, 207.98, 201.60)
    drawn = overlay.draw_boxes(rgb, [right, left], (224, 224))
    changed = np.any(drawn != 0, axis=-1)
    scale = 384 / 224
    for x_min, y_min, x_max, y_max in (right, left):
        x0, y0 = round(x_min * scale), round(y_min * scale)
        x1, y1 = round(x_max * scale) - 1, round(y_max * scale) - 1
        assert changed[y0, x0:x1 + 1].all() and changed[y1, x0:x1 + 1].all()
        assert changed[y0:y1 + 1, x0].all() and changed[y0:y1 + 1, x1].all()
        assert changed[y0 + overlay.BOX_LINE - 1, x0 + 5] and not changed[y0 + overlay.BOX_LINE, (x0 + x1) // 2]
        assert not changed[(y0 + y1) // 2, (x0 + x1) // 2]  # the middle of the lung stays as it was
    assert not changed[:14].any() and not changed[:, :27].any()  # outside both boxes
    wide = overlay.draw_boxes(np.zeros((100, 200, 3), np.uint8), [(0, 0, 112, 224)], (224, 224), line=1)
    assert np.any(wide[:, 99] != 0, axis=-1).all() and not np.any(wide[:, 101:] != 0)  # x and y scale apart


def test_outline_panels_draws_on_every_panel():
    gray = np.full((64, 64), 80, np.uint8)
    panels = overlay.attention_panels(gray, (np.zeros((8, 8)), np.ones((8, 8))), 0.5, "Jet")
    outlined = overlay.outline_panels(panels, [(8, 8, 24, 24)], (32, 32))
    assert [title for title, _ in outlined] == ["Original", "Grad-CAM", "Grad-CAM++"]
    for (_, before), (_, after) in zip(panels, outlined):
        assert np.array_equal(after[16, 16:48], np.full((32, 3), overlay.BOX_COLOUR))
        assert np.array_equal(after[20:40, 20:40], before[20:40, 20:40])


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
    with_boxes = [sample.path.name for sample in samples if sample.lungs is not None]
    assert with_boxes == [f"covid19-ieee8023-{i}.jpg" for i in ("2cd63b76", "bb0e626a", "f64132c8")]
    first = samples[0].lungs
    assert first.size == (224, 224) and first.right == (16.80, 9.41, 118.61, 195.44)
    assert first.left == (121.07, 11.31, 207.98, 201.60) and "General Blockchain" in first.source
    assert "lung_boxes" in readme


BOXES = {"size": [224, 224], "right": [16.8, 9.41, 118.61, 195.44], "left": [121.07, 11.31, 207.98, 201.6]}


def test_lung_boxes_of_a_sample_entry():
    lungs = lung_boxes({"file": "x.jpg", "lung_boxes": BOXES, "lung_boxes_source": "radiologists"})
    assert (lungs.size, lungs.right, lungs.left, lungs.source) == (
        (224, 224), (16.8, 9.41, 118.61, 195.44), (121.07, 11.31, 207.98, 201.6), "radiologists")
    assert lungs.boxes == (lungs.right, lungs.left)
    assert lung_boxes({"file": "x.jpg"}) is None


@pytest.mark.parametrize("boxes, source", [
    ({**BOXES, "size": [224]}, "s"),
    ({**BOXES, "size": [224, 0]}, "s"),
    ({**BOXES, "size": [224.5, 224]}, "s"),
    ({**BOXES, "size": [float("inf"), 224]}, "s"),
    ({**BOXES, "right": [16.8, float("nan"), 118.61, 195.44]}, "s"),
    ({**BOXES, "right": [16.8, 9.41, 118.61]}, "s"),
    ({**BOXES, "right": [118.61, 9.41, 16.8, 195.44]}, "s"),  # inverted
    ({**BOXES, "left": [121.07, 11.31, 230.0, 201.6]}, "s"),  # outside the image
    ({**BOXES, "left": ["121", 11.31, 207.98, 201.6]}, "s"),
    ({**BOXES, "left": [True, 11.31, 207.98, 201.6]}, "s"),
    ({key: value for key, value in BOXES.items() if key != "left"}, "s"),
    ([1, 2, 3], "s"),
    (BOXES, None),
    (BOXES, " "),
])
def test_malformed_lung_boxes_are_ignored_with_a_warning(caplog, boxes, source):
    item = {"file": "x.jpg", "lung_boxes": boxes, **({"lung_boxes_source": source} if source is not None else {})}
    assert lung_boxes(item) is None
    assert "lung boxes of x.jpg ignored" in caplog.text


def test_samples_load_with_valid_missing_and_malformed_boxes(tmp_path, caplog):
    entry = {"title": "t", "finding": "f", "source": "s", "url": "https://x", "licence": "CC0", "licence_url": "u"}
    listed = [{**entry, "file": "a.png", "lung_boxes": BOXES, "lung_boxes_source": "boxes by radiologists"},
              {**entry, "file": "b.png"},
              {**entry, "file": "c.png", "lung_boxes": {**BOXES, "right": "nonsense"}, "lung_boxes_source": "s"}]
    for name in ("a.png", "b.png", "c.png"):
        Image.new("L", (224, 224)).save(tmp_path / name)
    (tmp_path / "samples.json").write_text(json.dumps({"samples": listed}))
    samples = shipped_samples(tmp_path / "samples.json")
    assert [sample.path.name for sample in samples] == ["a.png", "b.png", "c.png"]
    assert samples[0].lungs.source == "boxes by radiologists"
    assert samples[1].lungs is None and samples[2].lungs is None
    assert "lung boxes of c.png ignored" in caplog.text


def test_lung_share_is_the_audit_score():
    lungs = lung_boxes({"file": "x.jpg", "lung_boxes": BOXES, "lung_boxes_source": "s"})
    cam = np.random.default_rng(1).random((224, 224)).astype(np.float32)
    expected = energy_inside(cam, region_from_boxes([lungs.right, lungs.left], 224, 224))
    assert lungs.share_inside(cam) == pytest.approx(expected)
    small = np.zeros((7, 7), np.float32)
    assert lungs.share_inside(small) is None  # an empty map
    small[3, 1] = 1.0  # the middle of the image's left half: the patient's right lung
    assert lungs.share_inside(small) == 1.0 and lungs.region(7).shape == (7, 7)
    small[0, 0] = 1.0  # the corner is outside both boxes
    assert lungs.share_inside(small) == 0.5
    assert lungs.shares_text(["A", "B"], [small, np.zeros((7, 7), np.float32)]) == "A 50%, B empty"
    assert lungs.uniform_share(224) == pytest.approx(lungs.region(224).mean())


def test_class_images_from_a_data_folder(image_folder, tmp_path):
    chosen = class_images(str(image_folder), 3, seed=1)
    assert sorted(chosen) == ["COVID", "Normal", "Viral Pneumonia"]
    assert all(len(files) == 3 for files in chosen.values())
    assert chosen == class_images(str(image_folder), 3, seed=1)
    assert class_images(str(tmp_path / "absent"), 3) == {} and class_images(None, 3) == {}
