"""Recompute a saved model's test metrics and card from its predictions.csv, without running it.

After a change in how a metric is defined, this refreshes every shipped model the same way
without retraining: the predictions are the model's, only the arithmetic is new."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from . import artifacts, card, metrics
from .config import METRICS_FILE, PREDICTIONS_FILE
from .errors import ArtifactError

FIXED_COLUMNS = ("path", "label", "predicted", "source")
# Figures that come from running the model, not from its test predictions: kept as they are.
KEPT_KEYS = ("inference_ms_per_image", "lung_attention", "faithfulness")


def read_predictions(folder: Path, classes: list[str]) -> tuple[np.ndarray, np.ndarray, list[str], list[dict]]:
    """Labels, probabilities, sources and subgroups of the test images in ``folder/predictions.csv``."""
    path = folder / PREDICTIONS_FILE
    if not path.is_file():
        raise ArtifactError(f"{folder}: {PREDICTIONS_FILE} is missing")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise ArtifactError(f"{folder}: {PREDICTIONS_FILE} has no rows")
    wanted = ["label"] + [f"p_{name}" for name in classes]
    missing = [column for column in wanted if column not in rows[0]]
    if missing:
        raise ArtifactError(f"{folder}: {PREDICTIONS_FILE} lacks the columns {', '.join(missing)}")
    unknown = sorted({row["label"] for row in rows} - set(classes))
    if unknown:
        raise ArtifactError(f"{folder}: {PREDICTIONS_FILE} has labels {unknown}; the model's classes are {classes}")
    subgroup_columns = [c for c in rows[0] if c not in FIXED_COLUMNS and not c.startswith("p_")]
    try:
        probs = np.array([[float(row[f"p_{name}"]) for name in classes] for row in rows])
    except ValueError as exc:
        raise ArtifactError(f"{folder}: {PREDICTIONS_FILE} has a probability that is not a number ({exc})") from exc
    labels = np.array([classes.index(row["label"]) for row in rows])
    sources = [row.get("source") or "unknown" for row in rows]
    subgroups = [{c: row[c] for c in subgroup_columns if row.get(c)} for row in rows]
    return labels, probs, sources, subgroups


def rescored_metrics(model_dir: str | Path) -> dict:
    """The metrics the current definitions give for the saved predictions (nothing is written)."""
    folder = Path(model_dir)
    config, old = artifacts.check_model_dir(folder)
    labels, probs, sources, subgroups = read_predictions(folder, list(config["classes"]))
    has_sources = any(s != "unknown" for s in sources)
    result = metrics.score_predictions(labels, probs, config["classes"], sources if has_sources else None, subgroups)
    result.update({key: old[key] for key in KEPT_KEYS if key in old})
    return result


def rescore_model_dir(model_dir: str | Path) -> dict:
    """Rewrite ``metrics.json`` and the model card from the saved predictions; return the metrics."""
    folder = Path(model_dir)
    result = rescored_metrics(folder)
    artifacts.replace_json(folder, METRICS_FILE, result)
    card.write_card(folder, artifacts.read_config(folder), result)
    return result
