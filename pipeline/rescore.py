"""Recompute a saved model's metrics and card from its predictions.csv (test split) and
val_predictions.csv (validation split, where training kept one), without running it.

After a change in how a metric is defined, this refreshes every shipped model the same way
without retraining: the predictions are the model's, only the arithmetic is new."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from . import artifacts, card, metrics
from .config import CHAIN_COLUMN, METRICS_FILE, PREDICTIONS_FILE, VAL_PREDICTIONS_FILE
from .errors import ArtifactError

FIXED_COLUMNS = ("path", "label", "predicted", "source", CHAIN_COLUMN)
# Figures that come from running the model, not from its test predictions: kept as they are.
KEPT_KEYS = ("inference_ms_per_image", "lung_attention", "faithfulness")


def read_predictions(
    folder: Path, classes: list[str], file_name: str = PREDICTIONS_FILE
) -> tuple[np.ndarray, np.ndarray, list[str], list[dict], list[str] | None]:
    """Labels, probabilities, sources, subgroups and chains (None without a chain column) of the
    images in ``folder/file_name``."""
    path = folder / file_name
    if not path.is_file():
        raise ArtifactError(f"{folder}: {file_name} is missing")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise ArtifactError(f"{folder}: {file_name} has no rows")
    wanted = ["label"] + [f"p_{name}" for name in classes]
    missing = [column for column in wanted if column not in rows[0]]
    if missing:
        raise ArtifactError(f"{folder}: {file_name} lacks the columns {', '.join(missing)}")
    unknown = sorted({row["label"] for row in rows} - set(classes))
    if unknown:
        raise ArtifactError(f"{folder}: {file_name} has labels {unknown}; the model's classes are {classes}")
    subgroup_columns = [c for c in rows[0] if c not in FIXED_COLUMNS and not c.startswith("p_")]
    try:
        probs = np.array([[float(row[f"p_{name}"]) for name in classes] for row in rows])
    except ValueError as exc:
        raise ArtifactError(f"{folder}: {file_name} has a probability that is not a number ({exc})") from exc
    labels = np.array([classes.index(row["label"]) for row in rows])
    sources = [row.get("source") or "unknown" for row in rows]
    subgroups = [{c: row[c] for c in subgroup_columns if row.get(c)} for row in rows]
    chains = [row[CHAIN_COLUMN] or "unknown" for row in rows] if CHAIN_COLUMN in rows[0] else None
    return labels, probs, sources, subgroups, chains


def _score(folder: Path, classes: list[str], name: str) -> dict:
    labels, probs, sources, subgroups, chains = read_predictions(folder, classes, name)
    has_sources = any(s != "unknown" for s in sources)
    return metrics.score_predictions(labels, probs, classes, sources if has_sources else None, subgroups, chains)


def rescored_metrics(model_dir: str | Path) -> dict:
    """The metrics the current definitions give for the saved predictions (nothing is written)."""
    folder = Path(model_dir)
    config, old = artifacts.check_model_dir(folder)
    classes = list(config["classes"])
    result = _score(folder, classes, PREDICTIONS_FILE)
    if (folder / VAL_PREDICTIONS_FILE).is_file():
        result["validation"] = metrics.validation_summary(_score(folder, classes, VAL_PREDICTIONS_FILE))
    result.update({key: old[key] for key in KEPT_KEYS if key in old})
    return result


def rescore_model_dir(model_dir: str | Path) -> dict:
    """Rewrite ``metrics.json`` and the model card from the saved predictions; return the metrics."""
    folder = Path(model_dir)
    result = rescored_metrics(folder)
    artifacts.replace_json(folder, METRICS_FILE, result)
    card.write_card(folder, artifacts.read_config(folder), result)
    return result
