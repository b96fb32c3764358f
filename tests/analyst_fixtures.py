"""Model folders with chosen test predictions, for the comparison page's operating point and paired comparison.

Each folder is a copy of a tiny trained model (so it loads and explains) whose predictions.csv and
metrics.json are replaced by outputs built here: what the figures must be is then known exactly.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np

from pipeline.config import METRICS_FILE, PREDICTIONS_FILE, VAL_PREDICTIONS_FILE
from pipeline.metrics import score_predictions

CLASSES = ("COVID", "Normal", "Viral Pneumonia")
PER_CLASS = 20


def outputs(shift: int, offset: float = 0.0) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Paths, labels and outputs of ``PER_CLASS`` images per class: the class ``label + shift`` gets a graded
    top output from 0.4 to 0.95 (so a threshold on it moves the 2x2 table step by step), the others share the rest."""
    paths, labels, rows = [], [], []
    for label, name in enumerate(CLASSES):
        for i in range(PER_CLASS):
            top = 0.4 + 0.55 * (((i + 0.5) / PER_CLASS + offset) % 1.0)
            row = np.full(len(CLASSES), (1 - top) / 2)
            row[(label + shift) % len(CLASSES)] = top
            paths.append(f"{name}/images/{name}-{i}.png")
            labels.append(label)
            rows.append(row)
    return paths, np.array(labels), np.array(rows)


def write_predictions(path: Path, paths: list[str], labels: np.ndarray, probs: np.ndarray) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "predicted", "source", *(f"p_{name}" for name in CLASSES)])
        for p, y, row in zip(paths, labels, probs):
            writer.writerow([p, CLASSES[y], CLASSES[int(row.argmax())], f"source-{y % 2}", *np.round(row, 6)])


def model_folder(template: Path, folder: Path, shift: int, validation: bool) -> None:
    shutil.copytree(template, folder)
    (folder / VAL_PREDICTIONS_FILE).unlink(missing_ok=True)
    paths, labels, probs = outputs(shift)
    write_predictions(folder / PREDICTIONS_FILE, paths, labels, probs)
    sources = [f"source-{y % 2}" for y in labels]
    metrics = json.loads((folder / METRICS_FILE).read_text())
    metrics.update(score_predictions(labels, probs, CLASSES, sources))
    (folder / METRICS_FILE).write_text(json.dumps(metrics))
    if validation:
        write_predictions(folder / VAL_PREDICTIONS_FILE, *outputs(shift, offset=0.3))


def paired_models(models_dir: Path, out: Path) -> Path:
    """Perfect (always right), Twin (the same outputs) and Worse (always wrong), on one test split of 60 images;
    only Perfect has validation predictions."""
    template = models_dir / "SmallCNN"
    model_folder(template, out / "Perfect", 0, validation=True)
    model_folder(template, out / "Twin", 0, validation=False)
    model_folder(template, out / "Worse", 1, validation=False)
    return out
