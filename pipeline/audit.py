"""Is the model looking at the lungs? A lung-attention audit of the Grad-CAM family of maps.

For each image with a lung reference, the map of the predicted class is scored by the share of
its energy inside the lungs and by the pointing game (is its peak inside?), beside the share a
uniform map would get (the baseline). Two kinds of reference: a lung mask per image (the full
COVID-19 Radiography Database ships ``<Class>/masks/``: exact) or a box per lung (``boxes.csv``
with ``path, lung, x_min, y_min, x_max, y_max`` in pixels: coarse).
"""

from __future__ import annotations

import csv
import logging
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .config import IMAGE_EXTENSIONS, LUNG_INPUT_SIZE
from .data import find_class_root
from .errors import DataError
from .images import ImageInputError, image_size

log = logging.getLogger(__name__)

BOXES_FILE = "boxes.csv"
PLURAL = {"box": "boxes", "mask": "masks", "predicted": "masks predicted by the lung segmenter"}
BOX_COLUMNS = ("x_min", "y_min", "x_max", "y_max")


@dataclass(frozen=True)
class LungReference:
    path: Path  # the X-ray
    region: np.ndarray  # bool (height, width) at the image's own size: True inside the lungs
    kind: str  # "mask" (exact), "box" (coarse) or "predicted" (the lung segmenter's, at its input size)
    label: str | None = None  # the image's own finding: boxes.csv ``label``, or its class folder


def reference_class(label: str | None, classes: list[str]) -> str | None:
    """The model class a reference label names ("COVID-19" -> "COVID"; "No Finding" -> None)."""
    key = re.sub(r"[^a-z]", "", (label or "").lower())
    return next((c for c in classes if key and key.startswith(re.sub(r"[^a-z]", "", c.lower()))), None)


def region_from_boxes(boxes: list[tuple[float, float, float, float]], height: int, width: int) -> np.ndarray:
    """Union of (x_min, y_min, x_max, y_max) boxes: pixels whose centre lies inside one."""
    ys, xs = np.mgrid[0:height, 0:width] + 0.5
    region = np.zeros((height, width), dtype=bool)
    for x_min, y_min, x_max, y_max in boxes:
        region |= (xs >= x_min) & (xs < x_max) & (ys >= y_min) & (ys < y_max)
    return region


def resize_region(region: np.ndarray, size: int) -> np.ndarray:
    """A reference region squashed to ``size`` x ``size``, as the model input is."""
    image = Image.fromarray(region.astype(np.uint8) * 255).resize((size, size), Image.Resampling.NEAREST)
    return np.asarray(image) > 127


def _image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) of a readable X-ray as the model sees it, else None after a warning."""
    try:
        return image_size(path)
    except ImageInputError as exc:
        log.warning("unreadable X-ray %s skipped (%s)", path, exc.problem)
        return None


def read_box_references(folder: Path) -> list[LungReference]:
    boxes: dict[str, list[tuple[float, float, float, float]]] = defaultdict(list)
    labels: dict[str, str | None] = {}
    path, line = folder / BOXES_FILE, 1
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            for line, row in enumerate(csv.DictReader(handle), start=2):
                boxes[row["path"]].append(tuple(float(row[k]) for k in BOX_COLUMNS))
                labels[row["path"]] = row.get("label")
    except (KeyError, TypeError, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}, line {line}: expected columns path, {', '.join(BOX_COLUMNS)} with numbers "
                        f"in pixels ({type(exc).__name__}: {exc})") from exc
    references = []
    for name, image_boxes in sorted(boxes.items()):
        path = folder / name
        if not path.is_file():
            log.warning("%s names %s, which is missing: skipped", BOXES_FILE, path)
            continue
        size = _image_size(path)
        if size is None:
            continue
        width, height = size
        references.append(LungReference(path, region_from_boxes(image_boxes, height, width), "box", labels[name]))
    return references


def read_mask_references(folder: Path) -> list[LungReference]:
    """``<Class>/images/<name>`` with ``<Class>/masks/<name>`` (the Kaggle layout)."""
    references = []
    for images in sorted(find_class_root(folder).glob("*/images")):
        for path in sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS):
            mask_path = images.parent / "masks" / path.name
            if mask_path.is_file() and _image_size(path) is not None:
                try:
                    with Image.open(mask_path) as mask:
                        region = np.asarray(mask.convert("L")) > 127
                except (OSError, ValueError) as exc:
                    log.warning("unreadable lung mask %s skipped (%s)", mask_path, exc)
                    continue
                references.append(LungReference(path, region, "mask", images.parent.name))
    return references


def predicted_references(folder: Path, masker) -> list[LungReference]:
    """Every X-ray under ``folder`` with the lung mask ``masker(path, size)`` predicts for it."""
    from .lung_data import find_xrays

    log.info("%s has neither %s nor masks: the lungs are the lung segmenter's predicted masks", folder, BOXES_FILE)
    return [LungReference(path, masker(path, LUNG_INPUT_SIZE), "predicted") for path in find_xrays(folder)]


def _masks_or_predicted(folder: Path, masker) -> list[LungReference]:
    try:
        references = read_mask_references(folder)
    except DataError:  # no class folders
        if masker is None:
            raise
        references = []
    return references or (predicted_references(folder, masker) if masker is not None else [])


def find_references(folder: str | Path, masker=None) -> list[LungReference]:
    """Boxes when the folder has ``boxes.csv``, else masks beside the images, else (given a
    ``pipeline.lungs.file_masker``) the lung segmenter's masks of every X-ray in it."""
    folder = Path(folder)
    references = (read_box_references(folder) if (folder / BOXES_FILE).is_file()
                  else _masks_or_predicted(folder, masker) if folder.is_dir() else [])
    if not references:
        raise DataError(f"no lung references in {str(folder)!r}: expected {BOXES_FILE} or "
                        "<Class>/masks/ beside <Class>/images/, or X-rays and the lung segmenter "
                        f"(python -m pipeline train-lungs) in the models folder")
    return references


def energy_inside(cam: np.ndarray, region: np.ndarray) -> float | None:
    """Share of the map's total (non-negative) energy inside ``region``; None for an empty map."""
    total = float(cam.sum())
    return float(cam[region].sum()) / total if total > 0 else None


def pointing_hit(cam: np.ndarray, region: np.ndarray) -> bool | None:
    """Whether the map's peak lies inside ``region``; None for an empty map."""
    if not cam.max() > 0:
        return None
    return bool(region.flat[int(np.argmax(cam))])


def summarise(rows: list[dict], methods: tuple[str, ...]) -> dict:
    """Mean energy inside, pointing-game hit rate and the uniform baseline over ``rows``."""
    out = {"n_images": len(rows), "baseline_share": float(np.mean([r["baseline"] for r in rows]))}
    for method in methods:
        energies = [r[method]["energy"] for r in rows if r[method]["energy"] is not None]
        hits = [r[method]["hit"] for r in rows if r[method]["hit"] is not None]
        out[method] = {"energy_inside": float(np.mean(energies)) if energies else None,
                       "pointing_hit_rate": float(np.mean(hits)) if hits else None,
                       "empty_maps": len(rows) - len(energies)}
    if rows and "lungs_baseline" in rows[0]:  # the lung segmenter's masks, beside the folder's own reference
        out["predicted_lungs_baseline_share"] = float(np.mean([r["lungs_baseline"] for r in rows]))
        for method in methods:
            shares = [r[method]["energy_predicted"] for r in rows if r[method]["energy_predicted"] is not None]
            out[method]["energy_inside_predicted_lungs"] = float(np.mean(shares)) if shares else None
    return out


def audit(attention, classes: list[str], references: list[LungReference], load_image, masker=None) -> dict:
    """Score the maps of each reference image's predicted class; overall and per predicted class.

    ``attention`` is a ``pipeline.attention.AttentionModel``, whose maps come at the model input's
    size with each CAM cell on the pixels it covers (``pipeline.upsample``), where the references
    are squashed too; ``load_image(path, size)`` returns the model input (size, size, 3) RGB 0-255,
    as training feeds it. With ``masker`` (a
    ``pipeline.lungs.file_masker``), each map is also scored inside the segmenter's lungs.
    """
    size, methods = attention.input_size, attention.methods
    rows = []
    for reference in references:
        image = load_image(reference.path, size)
        predicted = int(np.argmax(attention.probabilities(image)))
        region = resize_region(reference.region, size)
        maps = attention.maps(image, predicted)
        rows.append({"predicted": classes[predicted], "baseline": float(region.mean()),
                     "labelled": reference_class(reference.label, classes),
                     **{m: {"energy": energy_inside(maps[m], region), "hit": pointing_hit(maps[m], region)}
                        for m in methods}})
        if masker is not None and reference.kind != "predicted":
            lungs = masker(reference.path, size)
            rows[-1]["lungs_baseline"] = float(lungs.mean())
            for m in methods:
                rows[-1][m]["energy_predicted"] = energy_inside(maps[m], lungs)
    by_class = defaultdict(list)
    for row in rows:
        by_class[row["predicted"]].append(row)
    kinds = sorted({PLURAL[r.kind] for r in references})
    return {"reference": " and ".join(kinds), "methods": list(methods), "overall": summarise(rows, methods),
            "per_predicted_class": {c: summarise(by_class[c], methods) for c in classes if by_class[c]},
            "recall_by_label": recall_by_label(rows, classes)}


def recall_by_label(rows: list[dict], classes: list[str]) -> dict:
    """Per class named by the reference images' own labels: how many, and the share predicted as it.

    Reference sets often come from other sources than the training data, so this is a check on
    images the model never saw from sources it may never have seen."""
    result = {}
    for name in classes:
        hits = [row["predicted"] == name for row in rows if row["labelled"] == name]
        if hits:
            result[name] = {"n_images": len(hits), "recall": float(np.mean(hits))}
    return result


def lung_masker(model_dir: str | Path, lungs_dir: str | Path | None = None):
    """A ``file_masker`` of the lung segmenter in ``lungs_dir``, else of the one beside the model
    (``<models>/lungs``), else None (logged): then only the folder's own references count."""
    from .config import LUNGS_DIR_NAME
    from .errors import ArtifactError
    from .lungs import file_masker

    if lungs_dir is not None:
        return file_masker(lungs_dir)
    try:
        return file_masker(Path(model_dir).parent / LUNGS_DIR_NAME)
    except ArtifactError as exc:
        log.info("no lung segmenter (%s): only the folder's own lung references count", exc)
        return None


def audit_model_dir(model_dir: str | Path, data_dir: str | Path, faithfulness_images: int = 24,
                    lungs_dir: str | Path | None = None) -> dict:
    """Audit a saved model on a folder of lung references (boxes, masks, or else the lung
    segmenter's masks), and the faithfulness of its maps on the first ``faithfulness_images`` of
    them; store both in its metrics and card."""
    from . import artifacts, card, faithfulness
    from .attention import AttentionModel
    from .config import METRICS_FILE
    from .images import file_to_model_input
    from .model import load_trained_model

    config, _ = artifacts.check_model_dir(model_dir)
    masker = lung_masker(model_dir, lungs_dir)
    references = find_references(data_dir, masker)
    model, classes = load_trained_model(model_dir)
    attention = AttentionModel(model, artifacts.gradcam_layer(config, model_dir))
    result = audit(attention, classes, references, file_to_model_input, masker)
    result["data_dir"] = Path(data_dir).name
    artifacts.update_json(Path(model_dir), METRICS_FILE, "lung_attention", result)
    if faithfulness_images:
        images = [file_to_model_input(r.path, attention.input_size) for r in references[:faithfulness_images]]
        result["faithfulness"] = {**faithfulness.evaluate(attention, images), "data_dir": Path(data_dir).name}
    metrics = artifacts.update_json(Path(model_dir), METRICS_FILE, "faithfulness", result.get("faithfulness"))
    card.write_card(model_dir, config, metrics)
    return result
