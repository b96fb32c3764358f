"""Lung masks without TensorFlow: the lung-masks data set, its patient-aware split, and the
geometry of masks (Dice, IoU, one bounding box per lung).

The lung-masks folder holds ``images/<name>.png``, ``masks/<name>.png`` and ``manifest.csv``
(``name, source_set, ..., in_lung_boxes``). Two mask conventions: ``crd_vp_`` masks leave the heart
out, ``v7covid_`` masks take in the lung behind it. The segmenter learns the second one (see
:func:`convention_weights`).
"""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from .config import DEFAULT_SPLIT, IMAGE_EXTENSIONS, LUNG_MIN_PART_SHARE, LUNG_SOURCES, MANIFEST_NAME, SPLIT_FILE
from .data import split_indices
from .errors import ArtifactError, DataError

log = logging.getLogger(__name__)

# The Viral Pneumonia class of covid19-radiography-subset holds the same X-rays as ``crd_vp_``,
# with a ``patient`` column: looked up beside the lung-masks folder to keep a patient in one split.
PATIENT_MANIFEST = Path("..") / "covid19-radiography-subset" / MANIFEST_NAME


@dataclass(frozen=True)
class MaskPair:
    name: str
    image: Path
    mask: Path
    source: str  # one of LUNG_SOURCES
    patient: str


def source_of(name: str) -> str:
    """``crd_vp`` or ``v7covid``, from the file name's prefix."""
    source = next((s for s in LUNG_SOURCES if name.startswith(s + "_")), None)
    if source is None:
        raise DataError(f"{name!r}: unknown lung-mask source; names start with one of "
                        f"{', '.join(s + '_' for s in LUNG_SOURCES)}")
    return source


def _read_csv(path: Path) -> list[dict]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc


def _patients(folder: Path) -> dict[str, str]:
    """original image path (``Viral Pneumonia/images/...png``) -> patient, where known."""
    path = folder / PATIENT_MANIFEST
    if not path.is_file():
        log.warning("%s not found: crd_vp_ X-rays are split one image per patient", path)
        return {}
    return {row["original_path"]: row["patient"] for row in _read_csv(path) if row.get("patient")}


def _figure(name: str) -> str:
    """v7covid_ images have no patient ID; panels of one published figure (``-a``, ``-b``,
    ``_a``...) are kept together as one patient."""
    return re.sub(r"[-_][a-z0-9]$", "", name)


def read_lung_masks(folder: str | Path, include_lung_boxes: bool = False) -> list[MaskPair]:
    """The image/mask pairs of a lung-masks folder, without the X-rays that are also in lung-boxes."""
    folder = Path(folder)
    manifest = folder / MANIFEST_NAME
    if not manifest.is_file():
        raise DataError(f"{str(folder)!r} is not a lung-masks folder: {MANIFEST_NAME} is missing "
                        "(expected images/, masks/ and manifest.csv with name, in_lung_boxes)")
    patients = _patients(folder)
    pairs = []
    for row in _read_csv(manifest):
        if row.get("in_lung_boxes") == "1" and not include_lung_boxes:
            continue
        name = row["name"]
        image, mask = folder / "images" / f"{name}.png", folder / "masks" / f"{name}.png"
        if not (image.is_file() and mask.is_file()):
            log.warning("%s: image or mask missing, skipped", name)
            continue
        patient = patients.get(row.get("original_image_path", ""), _figure(name))
        pairs.append(MaskPair(name, image, mask, source_of(name), patient))
    if not pairs:
        raise DataError(f"no image/mask pairs in {str(folder)!r}")
    return pairs


def find_xrays(data_dir: str | Path) -> list[Path]:
    """Every PNG, JPEG or DICOM file under ``data_dir``, sorted."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"--data-dir {str(data_dir)!r} is not a folder")
    files = sorted(p for p in data_dir.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise DataError(f"no X-rays in {str(data_dir)!r}: expected files ending in {', '.join(IMAGE_EXTENSIONS)}")
    return files


def split_pairs(pairs: list[MaskPair], seed: int, fractions=DEFAULT_SPLIT) -> dict[str, list[MaskPair]]:
    """Train/val/test with every patient in one split, each source in the same proportions."""
    labels = np.array([LUNG_SOURCES.index(p.source) for p in pairs])
    indices = split_indices(labels, [p.patient for p in pairs], tuple(fractions), seed)
    return {split: [pairs[i] for i in index] for split, index in indices.items()}


def convention_weights(mask: np.ndarray, source: str) -> np.ndarray:
    """Per-pixel loss weights that reconcile the two conventions.

    The segmenter learns the lung fields with the region behind the heart (``v7covid``). A
    ``crd_vp`` mask calls that region background, so on those images the pixels between the two
    lungs, row by row, weigh nothing: the mediastinum is learnt from the v7covid masks alone.
    """
    weights = np.ones(mask.shape, np.float32)
    if source == "crd_vp":
        inside = mask > 0
        between = np.maximum.accumulate(inside, axis=1) & np.maximum.accumulate(inside[:, ::-1], axis=1)[:, ::-1]
        weights[between & ~inside] = 0.0
    return weights


def dice(predicted: np.ndarray, truth: np.ndarray) -> float:
    """2|A n B| / (|A| + |B|); 1 for two empty masks."""
    total = predicted.sum() + truth.sum()
    return 1.0 if total == 0 else float(2 * (predicted & truth).sum() / total)


def iou(predicted: np.ndarray, truth: np.ndarray) -> float:
    union = (predicted | truth).sum()
    return 1.0 if union == 0 else float((predicted & truth).sum() / union)


Box = tuple[float, float, float, float]  # x_min, y_min, x_max, y_max in pixel corners


def lung_boxes(mask: np.ndarray) -> dict[str, Box]:
    """The bounding box of each lung: the two largest connected parts of ``mask``, leaving out specks
    (parts smaller than LUNG_MIN_PART_SHARE of the largest).

    The part whose centre lies further left in the image is the patient's right lung. A mask
    with one part (lungs merged, or one missed) gives the lung on its side of the image centre.
    """
    labelled, count = ndimage.label(mask)
    if count == 0:
        return {}
    sizes = ndimage.sum_labels(mask, labelled, index=range(1, count + 1))
    largest = [i for i in np.argsort(sizes)[::-1][:2] if sizes[i] >= LUNG_MIN_PART_SHARE * sizes.max()]
    parts = [ndimage.find_objects(labelled)[i] for i in largest]
    boxes = [(float(s[1].start), float(s[0].start), float(s[1].stop), float(s[0].stop)) for s in parts]
    if len(boxes) == 1:
        centre = (boxes[0][0] + boxes[0][2]) / 2
        return {"right" if centre < mask.shape[1] / 2 else "left": boxes[0]}
    boxes.sort(key=lambda box: box[0] + box[2])
    return {"right": boxes[0], "left": boxes[1]}


def box_iou(a: Box, b: Box) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def write_split(folder: Path, splits: dict[str, list[MaskPair]]) -> None:
    with (folder / SPLIT_FILE).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "source", "patient", "split"])
        for split, pairs in splits.items():
            writer.writerows([p.name, p.source, p.patient, split] for p in pairs)


def read_split(folder: str | Path) -> dict[str, str]:
    """name -> split, as the segmenter was trained."""
    path = Path(folder) / SPLIT_FILE
    if not path.is_file():
        raise ArtifactError(f"{folder}: {SPLIT_FILE} is missing")
    with path.open(newline="", encoding="utf-8") as handle:
        return {row["name"]: row["split"] for row in csv.DictReader(handle)}
