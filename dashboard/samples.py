"""Example images: the X-rays shipped with the dashboard, and a few files of a training data folder."""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import IMAGE_EXTENSIONS
from pipeline.data import canonical_class, find_class_root
from pipeline.errors import DataError

log = logging.getLogger(__name__)

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"
SAMPLES_INDEX = SAMPLES_DIR / "samples.json"


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
               item["url"], item["licence"], item["licence_url"])
        for item in entries
    ]
    return [sample for sample in samples if sample.path.is_file()]


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
