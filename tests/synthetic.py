"""Small generated X-ray-like images in the Kaggle layout, and tiny models trained on them, for fast tests."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("COVID", "Normal", "Viral Pneumonia")
# Input size per tiny model. SmallCNN's Grad-CAM grid is 7 x 7 at 112 px, so its maps have structure
# to compare; MobileNet's is 1 x 1 at 32 px (its maps are constant: it checks the plumbing only).
TINY_SIZES = {"MobileNet": 32, "SmallCNN": 112}
TINY_BACKBONES = tuple(TINY_SIZES)


def class_image(label: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """A grayscale picture whose bright region tells its class: easy to learn in one epoch."""
    image = rng.normal(70, 12, (size, size))
    half = size // 2
    region = [(slice(None), slice(0, half)), (slice(0, half), slice(None)), (slice(half, None), slice(None))][label % 3]
    image[region] += 110
    return np.clip(image, 0, 255).astype(np.uint8)


def make_image_folder(
    root: Path,
    classes: tuple[str, ...] = CLASSES,
    per_class: int = 24,
    size: int = 48,
    kaggle_layout: bool = True,
    manifest: bool = True,
    seed: int = 0,
) -> Path:
    """Write ``per_class`` PNGs per class (every third pair shares a group) and a manifest."""
    rng = np.random.default_rng(seed)
    rows = []
    for label, name in enumerate(classes):
        folder = root / name / "images" if kaggle_layout else root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            path = folder / f"{name}-{i}.png"
            Image.fromarray(class_image(label, size, rng)).save(path)
            group = f"{name}-g{i // 2}" if i % 3 == 0 else f"{name}-s{i}"
            rows.append({"path": path.relative_to(root).as_posix(), "label": name,
                         "source": f"source-{i % 2}", "group": group, "kermany_pediatric": str(int(i % 4 == 0))})
    if manifest:
        with (root / "manifest.csv").open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return root


def train_tiny_models(out: Path, data: Path, checkpoints: Path) -> Path:
    """A saved_models folder ``out`` with a tiny model of each of ``TINY_BACKBONES``, trained by the pipeline."""
    from pipeline.train import TrainOptions, train

    for backbone in TINY_BACKBONES:
        train(TrainOptions(backbone=backbone, data_dir=str(data), weights=None, epochs=1, fine_tune_epochs=1,
                           batch_size=8, image_size=TINY_SIZES[backbone], schedule="plateau", out=str(out),
                           checkpoint_dir=str(checkpoints)))
    return out
