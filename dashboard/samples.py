"""Example images: the X-rays shipped with the dashboard, and a few files of a training data folder."""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.audit import region_from_boxes, resize_region
from pipeline.config import IMAGE_EXTENSIONS
from pipeline.data import canonical_class, find_class_root
from pipeline.errors import DataError

from .lungs import LungRegion
from .overlay import Box

log = logging.getLogger(__name__)

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"
SAMPLES_INDEX = SAMPLES_DIR / "samples.json"


@dataclass(frozen=True)
class LungBoxes(LungRegion):
    """A coarse box per lung (not a lung mask), in pixels of the sample at ``size`` (width, height)."""

    size: tuple[int, int]
    right: Box  # the patient's right lung, on the left of the image
    left: Box
    source: str  # credit line

    @property
    def boxes(self) -> tuple[Box, Box]:
        return self.right, self.left

    def region(self, size: int) -> np.ndarray:
        """Bool (size, size) mask of the boxes, squashed to a square as the model input and its maps are."""
        width, height = self.size
        return resize_region(region_from_boxes(list(self.boxes), height, width), size)


@dataclass(frozen=True)
class Sample:
    path: Path
    title: str
    finding: str
    label: str | None  # the model class it corresponds to, if any
    source: str
    url: str
    licence: str
    licence_url: str
    lungs: LungBoxes | None = None

    @property
    def credit(self) -> str:
        """Markdown line naming the source and the licence."""
        return f"{self.title}. Source: [{self.source}]({self.url}). Licence: [{self.licence}]({self.licence_url})."


def shipped_samples(index: Path = SAMPLES_INDEX) -> list[Sample]:
    """The samples listed in ``samples.json`` whose files exist."""
    try:
        entries = json.loads(index.read_text(encoding="utf-8"))["samples"]
    except (OSError, ValueError, KeyError) as exc:
        log.warning("cannot read %s: %s", index, exc)
        return []
    samples = [
        Sample(index.parent / item["file"], item["title"], item["finding"], item.get("class"), item["source"],
               item["url"], item["licence"], item["licence_url"], lung_boxes(item))
        for item in entries
    ]
    return [sample for sample in samples if sample.path.is_file()]


def lung_boxes(item: dict) -> LungBoxes | None:
    """The ``lung_boxes`` of a ``samples.json`` entry; None when it has none, or (after a warning) a malformed one.

    Expected: ``"lung_boxes": {"size": [width, height], "right": [x_min, y_min, x_max, y_max], "left": [...]}``
    and a ``"lung_boxes_source"`` credit line.
    """
    if "lung_boxes" not in item:
        return None
    try:
        boxes, source = item["lung_boxes"], item.get("lung_boxes_source")
        if not isinstance(source, str) or not source.strip():
            raise ValueError("lung_boxes_source (the credit line) is missing")
        width, height = _numbers(boxes["size"], 2)
        if not (width.is_integer() and height.is_integer() and min(width, height) > 0):
            raise ValueError(f"size must be two positive whole numbers, got {boxes['size']!r}")
        size = (int(width), int(height))
        return LungBoxes(size, _box(boxes["right"], size), _box(boxes["left"], size), source)
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("lung boxes of %s ignored: %s", item.get("file"), exc)
        return None


def _numbers(values: object, count: int) -> tuple[float, ...]:
    if not (isinstance(values, list) and len(values) == count
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)):
        raise ValueError(f"expected a list of {count} numbers, got {values!r}")
    return tuple(float(v) for v in values)


def _box(values: object, size: tuple[int, int]) -> Box:
    x_min, y_min, x_max, y_max = _numbers(values, 4)
    if not (0 <= x_min < x_max <= size[0] and 0 <= y_min < y_max <= size[1]):
        raise ValueError(f"box {values!r} is not a box inside a {size[0]}x{size[1]} image")
    return x_min, y_min, x_max, y_max


def class_images(data_path: str | None, per_class: int, seed: int = 0) -> dict[str, list[Path]]:
    """Up to ``per_class`` image files per class folder of a training data folder, drawn with ``seed``.

    Empty when the folder is not on this machine or holds no class folders.
    """
    if not data_path or not Path(data_path).is_dir():
        return {}
    try:
        root = find_class_root(data_path)
    except DataError as exc:
        log.info("no sample images from %s: %s", data_path, exc)
        return {}
    chosen: dict[str, list[Path]] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        name = canonical_class(folder.name)
        if name is None:
            continue
        images = folder / "images" if (folder / "images").is_dir() else folder
        files = sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        if files:
            chosen[name] = random.Random(f"{seed}-{name}").sample(files, min(per_class, len(files)))
    return chosen
