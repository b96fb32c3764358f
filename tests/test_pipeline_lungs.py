"""The lung segmenter: mask geometry, the lung-masks split, a tiny U-Net trained end to end on
generated X-rays, the masks the CLI writes, its errors, and classifier readers skipping it."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from conftest import REPO, run_cli
from PIL import Image

from pipeline import artifacts, lung_data, report
from pipeline.config import CARD_FILE, CONFIG_FILE, LUNGS_DIR_NAME, METRICS_FILE, MODEL_FILE, SAMPLES_FILE
from pipeline.errors import ArtifactError, DataError

SIZE = 48  # generated X-rays and masks: small enough to train in seconds


def two_lungs(size: int, shift: int = 0) -> np.ndarray:
    """A mask with two upright ellipses: the patient's right lung on the image's left."""
    ys, xs = np.mgrid[0:size, 0:size]
    left = ((xs - size * 0.3 - shift) / (size * 0.14)) ** 2 + ((ys - size * 0.5) / (size * 0.3)) ** 2 <= 1
    right = ((xs - size * 0.7 - shift) / (size * 0.14)) ** 2 + ((ys - size * 0.5) / (size * 0.3)) ** 2 <= 1
    return left | right


def xray(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Dark lungs in a brighter chest, with noise: what a U-Net can learn in a few epochs."""
    image = np.where(mask, 60, 170) + rng.normal(0, 12, mask.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def make_lung_masks(folder, per_source: int = 12):
    """A lung-masks folder: images/, masks/ and manifest.csv with both sources, two X-rays per patient
    for crd_vp_ (through a covid19-radiography-subset manifest beside it) and one in lung-boxes."""
    rng = np.random.default_rng(0)
    (folder / "lung-masks" / "images").mkdir(parents=True)
    (folder / "lung-masks" / "masks").mkdir()
    (folder / "covid19-radiography-subset").mkdir()
    rows, patients = [], []
    for source in ("crd_vp", "v7covid"):
        for i in range(per_source):
            name = f"{source}_{i}"
            mask = two_lungs(SIZE, shift=int(rng.integers(-4, 5)))
            Image.fromarray(xray(mask, rng)).save(folder / "lung-masks" / "images" / f"{name}.png")
            Image.fromarray(mask.astype(np.uint8) * 255).save(folder / "lung-masks" / "masks" / f"{name}.png")
            original = f"Viral Pneumonia/images/Viral Pneumonia-{i}.png" if source == "crd_vp" else f"images/{i}.jpg"
            rows.append({"name": name, "original_image_path": original, "in_lung_boxes": int(name == "v7covid_0")})
            patients.append({"original_path": original, "patient": f"person{i // 2}"})
    for name, table in (("lung-masks/manifest.csv", rows), ("covid19-radiography-subset/manifest.csv", patients)):
        with (folder / name).open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(table[0]))
            writer.writeheader()
            writer.writerows(table)
    return folder / "lung-masks"


@pytest.fixture(scope="module")
def lung_masks(tmp_path_factory):
    return make_lung_masks(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def segmenter(tmp_path_factory, lung_masks):
    """A tiny U-Net trained by ``train_segmenter`` on the generated folder, evaluated and saved."""
    from pipeline.lungs import LungTrainOptions, train_segmenter

    out = tmp_path_factory.mktemp("models")
    options = LungTrainOptions(data_dir=str(lung_masks), out=str(out), epochs=8, batch_size=4, learning_rate=1e-2,
                               input_size=SIZE, work_size=32, filters=(4, 8, 16), bn_momentum=0.8,
                               checkpoint_dir=str(tmp_path_factory.mktemp("checkpoints")))
    return train_segmenter(options)


def test_dice_iou_and_box_iou():
    a, b = np.zeros((10, 10), bool), np.zeros((10, 10), bool)
    a[:, :4], b[:, :2] = True, True
    assert lung_data.dice(a, b) == pytest.approx(2 * 20 / 60) and lung_data.iou(a, b) == pytest.approx(0.5)
    assert lung_data.dice(np.zeros_like(a), np.zeros_like(b)) == 1.0
    assert lung_data.box_iou((0, 0, 4, 10), (0, 0, 2, 10)) == pytest.approx(0.5)
    assert lung_data.box_iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0.0


def test_lung_boxes_names_the_patients_sides():
    mask = two_lungs(SIZE)
    mask[0, 0] = True  # a speck: not a lung
    boxes = lung_data.lung_boxes(mask)
    assert set(boxes) == {"right", "left"}
    assert boxes["right"][2] < SIZE / 2 < boxes["left"][0]  # the patient's right is on the image's left
    x_min, y_min, x_max, y_max = boxes["right"]
    assert mask[int(y_min):int(y_max), int(x_min):int(x_max)].any() and y_max - y_min > SIZE / 2
    one = mask.copy()
    one[:, SIZE // 2:] = False
    assert set(lung_data.lung_boxes(one)) == {"right"}
    assert lung_data.lung_boxes(np.zeros_like(mask)) == {}


def test_convention_weights_leave_the_mediastinum_of_crd_vp_masks_out():
    mask = two_lungs(SIZE)
    crd, v7 = lung_data.convention_weights(mask, "crd_vp"), lung_data.convention_weights(mask, "v7covid")
    assert (v7 == 1).all()
    assert crd[SIZE // 2, SIZE // 2] == 0 and crd[SIZE // 2, 0] == 1 and (crd[mask] == 1).all()


def test_read_and_split_keep_patients_together_and_leave_lung_boxes_out(lung_masks):
    pairs = lung_data.read_lung_masks(lung_masks)
    assert "v7covid_0" not in {p.name for p in pairs} and len(pairs) == 23
    assert {p.patient for p in pairs if p.source == "crd_vp"} == {f"person{i}" for i in range(6)}
    splits = lung_data.split_pairs(pairs, seed=1)
    where = {p.patient: split for split, members in splits.items() for p in members if p.source == "crd_vp"}
    for split, members in splits.items():
        assert all(where[p.patient] == split for p in members if p.source == "crd_vp")
    assert sum(len(m) for m in splits.values()) == len(pairs)


def test_a_folder_without_manifest_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="not a lung-masks folder: manifest.csv is missing"):
        lung_data.read_lung_masks(tmp_path)


def test_reference_boxes_scale_from_the_full_image_not_its_working_copy(tmp_path):
    from pipeline.config import WORKING_SIDE
    from pipeline.lungs_eval import _model_boxes

    Image.fromarray(np.zeros((WORKING_SIDE, 2 * WORKING_SIDE), np.uint8)).save(tmp_path / "wide.png")
    box = (0.0, 0.0, float(WORKING_SIDE), WORKING_SIDE / 2)  # the left half of the top half
    assert _model_boxes({"wide.png": {"left": box}}, tmp_path, 64) == {"wide.png": {"left": (0.0, 0.0, 32.0, 32.0)}}


def test_the_loss_ignores_pixels_of_zero_weight():
    import tensorflow as tf

    from pipeline.lungs import dice_bce_loss

    mask = two_lungs(SIZE).astype(np.float32)[None, ..., None]
    wrong = np.where(np.arange(SIZE)[None, None, :, None] < SIZE // 2, mask, 1.0 - mask).astype(np.float32)
    weight = np.zeros_like(mask)
    weight[..., : SIZE // 2, :] = 1.0  # only the half where the prediction is right counts
    loss = dice_bce_loss(tf.concat([mask, weight], -1), tf.constant(wrong))
    full = dice_bce_loss(tf.concat([mask, np.ones_like(mask)], -1), tf.constant(wrong))
    assert float(loss[0]) < 0.05 < float(full[0])


def test_training_saves_an_evaluated_segmenter_that_finds_the_lungs(segmenter, lung_masks):
    config = json.loads((segmenter / CONFIG_FILE).read_text())
    assert config["task"] == "lung-segmentation" and config["input_size"] == SIZE
    metrics = json.loads((segmenter / METRICS_FILE).read_text())
    assert metrics["test"]["all"]["n_images"] == config["n_test"] > 0
    assert metrics["test"]["all"]["dice"]["mean"] > 0.8
    card = (segmenter / CARD_FILE).read_text()
    assert report.pct(metrics["test"]["all"]["dice"]["mean"]) in card and "patient" in card
    assert {"model.keras", "split.csv", "history.csv"} <= {p.name for p in segmenter.iterdir()}


def test_the_cli_writes_one_mask_per_xray_under_the_same_relative_path(segmenter, lung_masks, tmp_path, caplog):
    data = tmp_path / "xrays"
    (data / "a" / "b").mkdir(parents=True)
    Image.open(lung_masks / "images" / "crd_vp_1.png").convert("RGB").save(data / "a" / "b" / "one.jpg")
    Image.open(lung_masks / "images" / "v7covid_2.png").resize((80, 64)).save(data / "two.png")
    (data / "broken.png").write_bytes(b"not an image")
    code, _ = run_cli(["lungs", "--model", str(segmenter), "--data-dir", str(data), "--out", str(tmp_path / "out")],
                      caplog)
    assert code == 0
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.png"))
    assert written == ["a/b/one.png", "two.png"]
    mask = np.asarray(Image.open(tmp_path / "out" / "two.png"))
    assert mask.shape == (SIZE, SIZE) and set(np.unique(mask)) <= {0, 255}
    truth = np.asarray(Image.open(lung_masks / "masks" / "v7covid_2.png").resize((SIZE, SIZE))) > 127
    assert lung_data.dice(mask > 127, truth) > 0.8


@pytest.mark.parametrize("case, message", [
    ("missing data", "is not a folder"),
    ("no images", "no X-rays in"),
    ("out inside data", "is inside --data-dir"),
    ("not a segmenter", "config.json is missing"),
])
def test_cli_errors_name_the_bad_folder(case, message, segmenter, tmp_path, caplog):
    data = tmp_path / "xrays"
    data.mkdir()
    if case != "no images":
        Image.fromarray(np.full((SIZE, SIZE), 90, np.uint8)).save(data / "x.png")
    args = {"missing data": [str(tmp_path / "none"), str(tmp_path / "out"), segmenter],
            "no images": [str(data), str(tmp_path / "out"), segmenter],
            "out inside data": [str(data), str(data / "masks"), segmenter],
            "not a segmenter": [str(data), str(tmp_path / "out"), tmp_path]}[case]
    code, text = run_cli(["lungs", "--data-dir", args[0], "--out", args[1], "--model", str(args[2])], caplog)
    assert code == 2 and message in text


def test_classifier_readers_skip_the_segmenter(segmenter, tmp_path):
    import shutil

    root = tmp_path / "saved_models"
    (root / "A").mkdir(parents=True)
    for name in (CONFIG_FILE, METRICS_FILE):
        (root / "A" / name).write_text("{}")
    shutil.copytree(segmenter, root / LUNGS_DIR_NAME)
    assert [p.name for p in artifacts.list_model_dirs(root)] == ["A"]
    assert [p.name for p in report.find_runs(root)] == ["A"]
    with pytest.raises(ArtifactError, match="holds the lung segmenter"):
        artifacts.read_config(root / LUNGS_DIR_NAME)
    assert (root / LUNGS_DIR_NAME / MODEL_FILE).is_file()


def centre_masker(path, size):
    """A stand-in for the segmenter: the lungs are the middle of the image."""
    lungs = np.zeros((size, size), bool)
    lungs[size // 4: 3 * size // 4, size // 4: 3 * size // 4] = True
    return lungs


def test_the_audit_uses_predicted_masks_where_a_folder_has_neither_masks_nor_boxes(tmp_path, caplog):
    from test_pipeline_audit import SIZE as AUDIT_SIZE
    from test_pipeline_audit import bright_image, model_that_sees

    from pipeline import audit
    from pipeline.attention import AttentionModel

    (tmp_path / "xrays" / "a").mkdir(parents=True)
    for name in ("a/one.png", "two.jpg"):
        Image.fromarray(np.full((40, 40), 120, np.uint8)).save(tmp_path / "xrays" / name)
    with pytest.raises(DataError, match="no class folders"):
        audit.find_references(tmp_path / "xrays")
    with caplog.at_level("INFO", logger="pipeline.audit"):
        references = audit.find_references(tmp_path / "xrays", centre_masker)
    assert [r.kind for r in references] == ["predicted", "predicted"] and "predicted masks" in caplog.text
    model = AttentionModel(model_that_sees((0, AUDIT_SIZE), (0, AUDIT_SIZE)), "features")
    result = audit.audit(model, ["A", "B"], references, bright_image, centre_masker)
    assert result["reference"] == "masks predicted by the lung segmenter"
    assert result["overall"]["baseline_share"] == pytest.approx(0.25)
    assert "predicted_lungs_baseline_share" not in result["overall"]  # the reference already is the prediction


def test_the_audit_of_a_box_folder_adds_the_share_inside_the_predicted_lungs(tmp_path):
    from test_pipeline_audit import SIZE as AUDIT_SIZE
    from test_pipeline_audit import bright_image, model_that_sees, write_box_folder

    from pipeline import audit
    from pipeline.attention import AttentionModel

    references = audit.find_references(write_box_folder(tmp_path), centre_masker)
    assert {r.kind for r in references} == {"box"}
    quarter = (AUDIT_SIZE // 4, 3 * AUDIT_SIZE // 4)
    for rows, inside in ((quarter, True), ((0, 4), False)):
        model = AttentionModel(model_that_sees(rows, quarter if inside else (0, 4)), "features")
        overall = audit.audit(model, ["A", "B"], references, bright_image, centre_masker)["overall"]
        assert overall["predicted_lungs_baseline_share"] == pytest.approx(0.25)
        for method in ("Grad-CAM", "Grad-CAM++"):
            share = overall[method]["energy_inside_predicted_lungs"]
            assert (share > 0.5) == inside and overall[method]["energy_inside"] is not None, (method, share)


@pytest.mark.skipif(not (REPO / "saved_models" / LUNGS_DIR_NAME).is_dir(), reason="no shipped segmenter")
def test_the_shipped_card_is_rendered_from_its_metrics():
    from pipeline.lungs_eval import read_lung_metrics, render_lung_card

    folder = REPO / "saved_models" / LUNGS_DIR_NAME
    config, metrics = read_lung_metrics(folder)
    assert (folder / CARD_FILE).read_text(encoding="utf-8") == render_lung_card(config, metrics), (
        "run: python -m pipeline lungs-eval --data-dir LUNG_MASKS --boxes-dir LUNG_BOXES")
    assert report.pct(metrics["test"]["v7covid"]["dice"]["mean"]) in (folder / CARD_FILE).read_text()
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [CARD_FILE, CONFIG_FILE, METRICS_FILE, MODEL_FILE, SAMPLES_FILE, "history.csv", "split.csv"])


def test_the_model_card_names_a_predicted_reference_and_the_share_inside_the_predicted_lungs():
    from pipeline.card import _lung_attention_section

    overall = {"n_images": 3, "baseline_share": 0.3, "Grad-CAM": {"energy_inside": 0.5, "pointing_hit_rate": 0.6}}
    predicted = "\n".join(_lung_attention_section({"reference": "masks predicted by the lung segmenter",
                                                   "methods": ["Grad-CAM"], "data_dir": "x", "overall": overall}))
    assert "with lung masks predicted by the lung segmenter (a model's reference" in predicted
    assert "Inside the lungs the lung segmenter predicts" not in predicted
    overall = {**overall, "predicted_lungs_baseline_share": 0.25,
               "Grad-CAM": {**overall["Grad-CAM"], "energy_inside_predicted_lungs": 0.4}}
    boxes = "\n".join(_lung_attention_section({"reference": "boxes", "methods": ["Grad-CAM"], "data_dir": "x",
                                               "overall": overall}))
    assert "(coarse reference" in boxes
    assert "lung segmenter predicts on the same X-rays (a uniform map: 25.0%): Grad-CAM 40.0%." in boxes
