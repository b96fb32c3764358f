"""Lung-attention audit: figures on cases with a known answer."""

from __future__ import annotations

import csv
import json
import shutil

import keras
import numpy as np
import pytest
from PIL import Image

from pipeline import audit
from pipeline.__main__ import main
from pipeline.attention import CAM_METHODS, AttentionModel
from pipeline.errors import DataError

SIZE = 32
LUNGS = [(4.0, 6.0, 14.0, 26.0), (18.0, 6.0, 28.0, 26.0)]  # (x_min, y_min, x_max, y_max), like two lungs


def test_a_map_equal_to_the_mask_scores_one():
    region = audit.region_from_boxes(LUNGS, SIZE, SIZE)
    assert audit.energy_inside(region.astype(float), region) == 1.0
    assert audit.pointing_hit(region.astype(float), region) is True


def test_a_uniform_map_scores_the_area_share():
    region = audit.region_from_boxes(LUNGS, SIZE, SIZE)
    assert audit.energy_inside(np.ones((SIZE, SIZE)), region) == pytest.approx(region.mean())


def test_an_empty_map_has_no_score():
    region = audit.region_from_boxes(LUNGS, SIZE, SIZE)
    assert audit.energy_inside(np.zeros((SIZE, SIZE)), region) is None
    assert audit.pointing_hit(np.zeros((SIZE, SIZE)), region) is None


def test_boxes_cover_the_pixels_whose_centres_they_hold():
    region = audit.region_from_boxes([(0, 0, 4, 2), (2, 0, 6, 1)], 10, 10)
    assert region.sum() == 8 + 2 and region[0, 5] and not region[1, 5]
    assert audit.resize_region(region, 20).sum() == 40


def write_box_folder(folder, n=4):
    (folder / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    with (folder / audit.BOXES_FILE).open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "lung", "x_min", "y_min", "x_max", "y_max"])
        for i in range(n):
            name = f"images/x{i}.jpg"
            Image.fromarray(rng.integers(0, 255, (SIZE, SIZE), dtype=np.uint8)).save(folder / name)
            for lung, box in zip(("right", "left"), LUNGS):
                writer.writerow([name, "COVID-19", lung, *box])
    return folder


def test_box_and_mask_references_are_found(tmp_path):
    boxes = audit.find_references(write_box_folder(tmp_path / "boxes"))
    assert len(boxes) == 4 and {r.kind for r in boxes} == {"box"}
    assert boxes[0].region.sum() == audit.region_from_boxes(LUNGS, SIZE, SIZE).sum()
    for name in ("images", "masks"):
        (tmp_path / "kaggle" / "COVID" / name).mkdir(parents=True)
        Image.fromarray(np.full((8, 8), 255, np.uint8)).save(tmp_path / "kaggle" / "COVID" / name / "a.png")
    masks = audit.find_references(tmp_path / "kaggle")
    assert len(masks) == 1 and masks[0].kind == "mask" and masks[0].region.all()
    assert boxes[0].label == "COVID-19" and masks[0].label == "COVID"
    with pytest.raises(DataError, match="no lung references"):
        audit.find_references(tmp_path / "nothing")


class SeeOnly(keras.layers.Layer):
    """Test layer: keeps the input inside one window and zeroes the rest."""

    def __init__(self, rows, cols, size=SIZE, **kwargs):
        super().__init__(**kwargs)
        window = np.zeros((1, size, size, 1), "float32")
        window[:, rows[0]:rows[1], cols[0]:cols[1]] = 1.0
        self.window = window

    def call(self, x):
        return x * self.window


def model_that_sees(rows, cols) -> keras.Model:
    image = keras.Input((SIZE, SIZE, 3))
    x = SeeOnly(rows, cols)(image)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", use_bias=False, name="features",
                            kernel_initializer=keras.initializers.RandomUniform(0.0, 0.001, seed=1))(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(image, keras.layers.Dense(2, activation="softmax", name="predictions",
                                                 kernel_initializer=keras.initializers.Constant([[1, -1]] * 8))(x))


def bright_image(path, size):
    return np.full((size, size, 3), 200.0, dtype=np.float32)


@pytest.mark.parametrize("rows, cols, passes", [((0, 4), (0, 4), False), ((8, 24), (6, 26), True)])
def test_a_model_that_only_sees_one_corner_fails_the_audit(tmp_path, rows, cols, passes):
    references = audit.find_references(write_box_folder(tmp_path))
    result = audit.audit(AttentionModel(model_that_sees(rows, cols), "features"), ["A", "B"], references,
                         bright_image)
    overall = result["overall"]
    for method in result["methods"]:
        above_baseline = overall[method]["energy_inside"] > overall["baseline_share"]
        assert above_baseline == passes and (overall[method]["pointing_hit_rate"] == 1.0) == passes, method
    assert result["reference"] == "boxes" and overall["n_images"] == 4


def model_with_one_hot_cell(size: int, cell: tuple[int, int], grid: int = 7) -> keras.Model:
    """A model that sees one cell of a ``grid`` x ``grid`` CAM layer only: every method's map is that cell."""
    step = size // grid
    rows, cols = (cell[0] * step, (cell[0] + 1) * step), (cell[1] * step, (cell[1] + 1) * step)
    image = keras.Input((size, size, 3))
    x = SeeOnly(rows, cols, size)(image)
    x = keras.layers.AveragePooling2D(step)(x)
    x = keras.layers.Conv2D(16, 1, use_bias=False, name="features",  # 16 channels: what Score-CAM keeps
                            kernel_initializer=keras.initializers.Constant(0.001))(x)  # small: exp(score) is finite
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(image, keras.layers.Dense(2, activation="softmax", name="predictions",
                                                 kernel_initializer=keras.initializers.Constant([[1, -1]] * 16))(x))


def test_the_audit_scores_maps_at_the_geometry_of_the_cam_grid(tmp_path):
    """A hot cell of a 7 x 7 grid, upsampled with pixel centres aligned, keeps its energy centred on its own
    pixels: (3/4)^2 of it inside the cell, the bilinear tent's share. Corner-aligned zoom (tf-keras-vis's own
    expansion) moves it outward, to about 41% for this cell."""
    size, cell = 56, (2, 5)
    box = (cell[1] * 8, cell[0] * 8, (cell[1] + 1) * 8, (cell[0] + 1) * 8)
    reference = audit.LungReference(tmp_path / "x.png", audit.region_from_boxes([box], size, size), "box")
    attention = AttentionModel(model_with_one_hot_cell(size, cell), "features", methods=tuple(CAM_METHODS))
    result = audit.audit(attention, ["A", "B"], [reference], bright_image)["overall"]
    for method in CAM_METHODS:
        assert result[method]["energy_inside"] == pytest.approx(9 / 16, abs=1e-4), method
        assert result[method]["pointing_hit_rate"] == 1.0, method


@pytest.mark.parametrize("label, expected", [("COVID-19", "COVID"), ("covid_19, ARDS", "COVID"), ("Normal", "Normal"),
                                             ("No Finding", None), ("Pneumonia", None), ("", None), (None, None)])
def test_reference_labels_name_a_model_class_only_when_they_match(label, expected):
    assert audit.reference_class(label, ["COVID", "Normal", "Viral Pneumonia"]) == expected


def test_recall_on_the_reference_images_uses_their_own_labels(tmp_path):
    references = audit.find_references(write_box_folder(tmp_path))
    model = model_that_sees((0, SIZE), (0, SIZE))  # always the first class
    result = audit.audit(AttentionModel(model, "features"), ["COVID", "Normal"], references, bright_image)
    assert result["recall_by_label"] == {"COVID": {"n_images": 4, "recall": 1.0}}
    result = audit.audit(AttentionModel(model, "features"), ["Normal", "COVID"], references, bright_image)
    assert result["recall_by_label"] == {"COVID": {"n_images": 4, "recall": 0.0}}


def test_audit_command_stores_the_figures_with_the_model(tmp_path, models_dir, capsys):
    folder = tmp_path / "SmallCNN"  # a 7 x 7 Grad-CAM grid: maps with structure (the tiny MobileNet's are 1 x 1)
    shutil.copytree(models_dir / "SmallCNN", folder)
    assert main(["audit", "--model", str(folder), "--data-dir", str(write_box_folder(tmp_path / "boxes")),
                 "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    metrics = json.loads((folder / "metrics.json").read_text())
    faith = printed.pop("faithfulness")
    assert metrics["lung_attention"] == printed and printed["overall"]["n_images"] == 4
    for method in ("Grad-CAM", "Grad-CAM++"):
        figures = printed["overall"][method]
        assert figures["empty_maps"] == 0 and 0.0 < figures["energy_inside"] < 1.0, (method, figures)
    assert metrics["faithfulness"] == faith and faith["n_images"] == 4
    assert set(faith["methods"]) == {"Grad-CAM", "Grad-CAM++", "random order"}
    card = (folder / "README.md").read_text()
    assert "## Model attention on the lungs" in card and "Faithfulness on 4 X-rays" in card
    assert main(["audit", "--model", str(folder), "--data-dir", str(tmp_path / "none")]) == 2


def test_boxes_are_drawn_on_the_image_as_the_model_sees_it_dicom_and_exif_rotated_jpeg_too(tmp_path):
    from upload_corpus import dicom_bytes

    (tmp_path / "images").mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 60 wide and 40 high, shown 40 wide and 60 high
    Image.fromarray(np.zeros((40, 60), np.uint8)).save(tmp_path / "images" / "turned.jpg", exif=exif)
    (tmp_path / "images" / "x-ray.dcm").write_bytes(dicom_bytes(np.zeros((50, 70), np.uint16)))
    box = (0.0, 30.0, 40.0, 60.0)  # the lower half of the turned JPEG; beyond its stored height of 40
    with (tmp_path / audit.BOXES_FILE).open("w", newline="") as handle:
        csv.writer(handle).writerows([["path", "lung", "x_min", "y_min", "x_max", "y_max"],
                                      ["images/turned.jpg", "left", *box], ["images/x-ray.dcm", "left", *box]])
    turned, dicom = audit.find_references(tmp_path)
    assert dicom.path.name == "x-ray.dcm" and dicom.region.shape == (50, 70)
    assert turned.region.shape == (60, 40) and turned.region.sum() == 30 * 40


def test_a_malformed_boxes_file_is_named(tmp_path):
    folder = write_box_folder(tmp_path)
    (folder / audit.BOXES_FILE).write_text("path,x_min\nimages/x0.jpg,abc\n")
    with pytest.raises(DataError, match=r"boxes.csv, line 2: expected columns path, x_min, y_min, x_max, y_max"):
        audit.find_references(folder)


def test_unreadable_reference_images_are_skipped(tmp_path):
    folder = write_box_folder(tmp_path)
    (folder / "images" / "x0.jpg").write_bytes(b"not an image")
    assert len(audit.find_references(folder)) == 3


def test_the_gradcam_layer_falls_back_to_the_registry(tmp_path):
    from pipeline.artifacts import gradcam_layer
    from pipeline.errors import ArtifactError

    assert gradcam_layer({"backbone": "MobileNet"}, tmp_path) == "conv_pw_13_relu"
    with pytest.raises(ArtifactError, match="names no Grad-CAM layer"):
        gradcam_layer({"backbone": "Nope"}, tmp_path)
