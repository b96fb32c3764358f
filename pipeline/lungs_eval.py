"""The lung segmenter's figures and card: Dice and IoU on its own test split per source, and the
box of each predicted lung against the radiologists' box on lung-boxes (never trained on).

``python -m pipeline lungs-eval`` (and the end of ``train-lungs``) writes them into the segmenter's
``metrics.json`` and renders its ``README.md``.
"""

from __future__ import annotations

import csv
import logging
from collections import defaultdict
from pathlib import Path

import numpy as np

from . import artifacts
from .audit import BOX_COLUMNS, BOXES_FILE
from .config import CARD_FILE, CONFIG_FILE, DISCLAIMER, LUNG_SOURCES, MANIFEST_NAME, METRICS_FILE
from .errors import DataError
from .images import file_to_model_input, image_size
from .lung_data import box_iou, convention_weights, dice, iou, lung_boxes, read_lung_masks, read_split
from .report import pct, table

log = logging.getLogger(__name__)

LUNGS = ("right", "left")  # the patient's right lung is on the image's left
DICE_TARGET = 0.90
BOX_IOU_TARGET = 0.70


def _summary(values: list[float]) -> dict:
    return {"mean": float(np.mean(values)), "median": float(np.median(values)), "min": float(np.min(values))}


def split_scores(model, folder: str | Path, data_dir: str | Path, split: str = "test") -> dict:
    """Dice and IoU per source on one split of the lung-masks folder the segmenter was trained on.

    ``dice_where_agreed`` leaves out the pixels that the two conventions label differently
    (between the lungs of a ``crd_vp`` mask), so it scores the crd_vp masks on what was learnt.
    """
    from .lungs import predict_masks

    names = {name for name, s in read_split(folder).items() if s == split}
    pairs = [p for p in read_lung_masks(data_dir) if p.name in names]
    if not pairs:
        raise DataError(f"none of the {len(names)} {split} images of {folder} is in {str(data_dir)!r}")
    size = int(model.input_shape[1])
    predicted = predict_masks(model, np.stack([file_to_model_input(p.image, size) for p in pairs]))
    scores: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for pair, mask in zip(pairs, predicted):
        truth = file_to_model_input(pair.mask, size)[..., 0] > 127
        agreed = convention_weights(truth, pair.source) > 0
        for key in (pair.source, "all"):
            scores[key]["dice"].append(dice(mask, truth))
            scores[key]["iou"].append(iou(mask, truth))
            scores[key]["dice_where_agreed"].append(dice(mask & agreed, truth & agreed))
    return {key: {"n_images": len(values["dice"]), **{k: _summary(v) for k, v in values.items()}}
            for key, values in scores.items()}


def read_lung_boxes(folder: Path) -> dict[str, dict[str, tuple[float, ...]]]:
    """boxes.csv -> {image path: {"right" | "left": (x_min, y_min, x_max, y_max)}} in its pixels."""
    boxes: dict[str, dict[str, tuple[float, ...]]] = defaultdict(dict)
    path = folder / BOXES_FILE
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                boxes[row["path"]][row["lung"]] = tuple(float(row[k]) for k in BOX_COLUMNS)
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{path}: expected columns path, lung, {', '.join(BOX_COLUMNS)} ({exc})") from exc
    return boxes


def compare_boxes(references: dict[str, dict[str, tuple[float, ...]]], found: dict[str, dict]) -> dict:
    """Box IoU per lung of ``found[path]`` (from a mask) against ``references[path]``; a lung
    not found scores 0."""
    scores: dict[str, list[float]] = {lung: [] for lung in LUNGS}
    for name, lungs in found.items():
        for lung in (lung for lung in LUNGS if lung in references[name]):
            scores[lung].append(box_iou(lungs[lung], references[name][lung]) if lung in lungs else 0.0)
    return {"n_images": len(found), "n_two_lungs_found": sum(len(lungs) == 2 for lungs in found.values()),
            **{lung: {"n_boxes": len(v), **_summary(v), "share_at_least_0.5": float(np.mean(np.array(v) >= 0.5))}
               for lung, v in scores.items()}}


def _model_boxes(references: dict, boxes_dir: Path, size: int) -> dict:
    """(x_min, y_min, x_max, y_max) of each reference box, in pixels of the model input."""
    scaled = {}
    for name, lungs in references.items():
        width, height = image_size(boxes_dir / name)  # the full size: boxes are in its pixels
        scale = np.array([size / width, size / height] * 2)
        scaled[name] = {lung: tuple(np.array(box) * scale) for lung, box in lungs.items()}
    return scaled


def box_scores(model, boxes_dir: str | Path) -> dict:
    """Each predicted lung's bounding box against the reference box of that lung."""
    from .lungs import predict_masks

    boxes_dir, size = Path(boxes_dir), int(model.input_shape[1])
    references = _model_boxes(read_lung_boxes(boxes_dir), boxes_dir, size)
    found = {name: lung_boxes(predict_masks(model, file_to_model_input(boxes_dir / name, size)[None])[0])
             for name in sorted(references)}
    return {"data_dir": boxes_dir.name, **compare_boxes(references, found)}


def reference_mask_box_scores(data_dir: str | Path, boxes_dir: str | Path, size: int) -> dict:
    """The same comparison for the lung-masks masks of the X-rays that are also in lung-boxes (never
    trained on): what exact masks of the learnt convention reach against the coarse boxes."""
    boxes_dir = Path(boxes_dir)
    with (boxes_dir / BOXES_FILE).open(newline="", encoding="utf-8") as handle:
        by_original = {row["original_path"]: row["path"] for row in csv.DictReader(handle) if row.get("original_path")}
    with (Path(data_dir) / MANIFEST_NAME).open(newline="", encoding="utf-8") as handle:
        shared = {by_original[row["original_image_path"]]: row["name"] for row in csv.DictReader(handle)
                  if row.get("in_lung_boxes") == "1" and row.get("original_image_path") in by_original}
    references = _model_boxes({n: b for n, b in read_lung_boxes(boxes_dir).items() if n in shared}, boxes_dir, size)
    found = {name: lung_boxes(file_to_model_input(Path(data_dir) / "masks" / f"{shared[name]}.png", size)[..., 0] > 127)
             for name in sorted(references)}
    return compare_boxes(references, found)


def evaluate_segmenter(folder: str | Path, data_dir: str | Path, boxes_dir: str | Path | None = None) -> dict:
    """Write the segmenter's metrics.json and card; returns the metrics."""
    from .lungs import load_segmenter

    folder = Path(folder)
    model, config = load_segmenter(folder)
    metrics = {"test": split_scores(model, folder, data_dir), "data_dir": Path(data_dir).name}
    if boxes_dir:
        metrics["boxes"] = box_scores(model, boxes_dir)
        metrics["boxes"]["reference_masks"] = reference_mask_box_scores(data_dir, boxes_dir, config["input_size"])
    artifacts.replace_json(folder, METRICS_FILE, metrics)
    (folder / CARD_FILE).write_text(render_lung_card(config, metrics), encoding="utf-8")
    log.info("wrote %s and %s in %s", METRICS_FILE, CARD_FILE, folder)
    return metrics


def _scores_table(test: dict) -> str:
    rows = [[key, str(s["n_images"]), pct(s["dice"]["mean"]), pct(s["dice"]["median"]),
             pct(s["dice_where_agreed"]["mean"]), pct(s["iou"]["mean"]), pct(s["iou"]["median"])]
            for key, s in ((k, test[k]) for k in (*LUNG_SOURCES, "all") if k in test)]
    return table(["source", "test X-rays", "Dice mean", "Dice median", "Dice where the conventions agree",
                  "IoU mean", "IoU median"], rows)


def _boxes_section(boxes: dict) -> list[str]:
    ref = boxes["reference_masks"]
    rows = [[f"patient's {lung}", str(boxes[lung]["n_boxes"]), pct(boxes[lung]["median"]),
             pct(boxes[lung]["mean"]), pct(boxes[lung]["share_at_least_0.5"])] for lung in LUNGS]
    return [
        f"## Lung boxes on `{boxes['data_dir']}` (never trained on)",
        f"On {boxes['n_images']} adult X-rays, the bounding box of each predicted lung (the two largest connected "
        "parts of the mask; the one on the image's left is the patient's right lung) against the radiologists' "
        f"box. Two lungs were found on {boxes['n_two_lungs_found']} of them; a lung not found scores 0.",
        table(["lung", "boxes", "box IoU median", "box IoU mean", "boxes with IoU >= 50%"], rows),
        f"The lung-masks masks of the {ref['n_images']} of these X-rays that have one (v7covid_, the learnt "
        f"convention, left out of training) reach a median box IoU of {pct(ref['right']['median'])} (right) and "
        f"{pct(ref['left']['median'])} (left) against the same boxes: the most an exact mask can be expected to get.",
        "How to read it: the reference boxes are coarse (drawn by hand around each lung, often with a margin "
        "or cut at the diaphragm differently), so a box IoU of 70-80% already means the predicted lung spans "
        "nearly the same rows and columns; it says nothing about the outline inside the box.",
    ]


def _targets_section(metrics: dict) -> list[str]:
    """Which targets the figures meet: mean Dice >= 90% on the test split, median box IoU >= 70% per lung."""
    def verdict(value: float, target: float) -> str:
        return f"{pct(value)}: {'met' if value >= target else 'missed'}"

    test = metrics["test"]
    lines = [f"- Dice of at least {pct(DICE_TARGET)} on the test split: v7covid_ (the learnt convention) "
             f"{verdict(test['v7covid']['dice']['mean'], DICE_TARGET)}" if "v7covid" in test else "",
             f"- The same on crd_vp_ where the conventions agree "
             f"{verdict(test['crd_vp']['dice_where_agreed']['mean'], DICE_TARGET)}; against its masks as given "
             f"{verdict(test['crd_vp']['dice']['mean'], DICE_TARGET)} (by design)" if "crd_vp" in test else ""]
    if "boxes" in metrics:
        lines += [f"- Median box IoU of at least {pct(BOX_IOU_TARGET)} for the patient's {lung} lung: "
                  f"{verdict(metrics['boxes'][lung]['median'], BOX_IOU_TARGET)}" for lung in LUNGS]
    return ["## Targets", "\n".join(line for line in lines if line)]


def render_lung_card(config: dict, metrics: dict) -> str:
    test = metrics["test"]
    lines = [
        "# Lung segmenter (U-Net)",
        f"> {DISCLAIMER} The mask outlines the lung fields to check where a model's attention falls; it is not "
        "a diagnostic segmentation.",
        "## What it is",
        f"A {len(config['filters'])}-level U-Net ({'-'.join(map(str, config['filters']))} filters, "
        f"{config['parameters']:,} parameters) that runs at {config['work_size']} px inside the saved model and "
        f"returns a lung probability per pixel of its {config['input_size']} x {config['input_size']} input (the "
        "classifiers' input: RGB float 0-255 from `pipeline.images.file_to_model_input`); lung where it "
        f"exceeds {config['threshold']}. `python -m pipeline lungs --data-dir DIR --out OUT` writes the masks.",
        "## Data and mask convention",
        f"`{metrics['data_dir']}`: {config['n_train']} training, {config['n_val']} validation and "
        f"{config['n_test']} test X-rays, split by patient (crd_vp_ patients from the Viral Pneumonia class of "
        "covid19-radiography-subset; v7covid_ panels of one published figure kept together), each source in "
        "the same proportions. The 95 X-rays that are also in lung-boxes were left out.",
        "- `crd_vp_` (pediatric, Kermany via the COVID-19 Radiography Database) masks leave the heart out; "
        "`v7covid_` (adult, ieee8023) masks take in the lung behind the heart.",
        "- The segmenter learns the `v7covid_` convention, the lung fields including the region behind the "
        "heart: that region is lung tissue, so a classifier's attention there is attention on the lungs, and the "
        "X-rays the audit and the dashboard mostly see are adult ones, whose only masks here follow it. On "
        "`crd_vp_` images the pixels between the two lungs (row by row) carry no loss, so the pediatric masks "
        "teach the outer lung borders without teaching that the lung behind the heart is background.",
        f"- Training: {config['epochs']} epochs of batch {config['batch_size']}, Adam at {config['learning_rate']:g} "
        "(cut on plateaus), keeping the weights of the lowest validation loss; "
        f"{config['training_minutes_this_run']:.0f} minutes on 2 CPU cores shared with other jobs (`history.csv` "
        "has each epoch).",
        "- Augmentation: one random rotation, shift and zoom for the X-ray and its mask together, and a "
        "random gamma; no flips (the heart sits on the patient's left). Loss: binary cross-entropy plus soft Dice.",
        "## Test split",
        _scores_table(test),
        "The `crd_vp_` Dice against its own masks is lowered by design where the segmenter takes in the region "
        "behind the heart; the column where the conventions agree leaves those pixels out. The `crd_vp_` "
        "X-rays are also X-rays of the classifiers' data set (Viral Pneumonia), and the `v7covid_` test "
        f"split is small ({test.get('v7covid', {}).get('n_images', 0)} X-rays).",
        *(_boxes_section(metrics["boxes"]) if "boxes" in metrics else []),
        *_targets_section(metrics),
        "## Limits",
        "- Mostly pediatric training X-rays; adult anatomy comes from the v7covid_ images only.",
        "- A device over the lungs (a pacemaker, tubes) or a dense opacity can bend the outline.",
        "- A mask is a model's guess: check it on the overlay. Speed on 2 CPU cores: `bench/README.md`.",
        "## Reproduce",
        f"`python -m pipeline train-lungs --data-dir DIR --boxes-dir LUNG_BOXES --epochs {config['epochs']} "
        f"--seed {config['seed']}` trains and writes this card; `python -m pipeline lungs-eval --data-dir DIR "
        "--boxes-dir LUNG_BOXES` recomputes the figures.",
    ]
    return "\n\n".join(lines) + "\n"


def read_lung_metrics(folder: str | Path) -> tuple[dict, dict]:
    """Config and metrics of a segmenter folder, for readers that do not load it."""
    folder = Path(folder)
    return artifacts.read_json(folder, CONFIG_FILE), artifacts.read_json(folder, METRICS_FILE, ("test",))
