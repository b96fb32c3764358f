"""Which test-split targets a saved model meets, and how its training ended (no TensorFlow)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from .config import HISTORY_FILE, RANDOM_WEIGHTS, TARGETS


@dataclass(frozen=True)
class TargetResult:
    name: str  # e.g. "macro-F1" or "COVID recall"
    minimum: float
    reached: float
    interval: list[float] | None  # 95% bootstrap interval of ``reached``

    @property
    def met(self) -> bool:
        return self.reached >= self.minimum


def start_kind(config: dict) -> str:
    """ "from scratch" for a model that started from random weights, else "pretrained"."""
    return "from scratch" if config.get("weights") == RANDOM_WEIGHTS else "pretrained"


def check_targets(config: dict, metrics: dict) -> list[TargetResult]:
    """The targets for how ``config`` started, with what ``metrics`` reached (absent classes are skipped)."""
    results, ci = [], metrics.get("ci95", {})
    for metric, cls, minimum in TARGETS[start_kind(config)]:
        if cls is None:
            results.append(TargetResult("macro-F1" if metric == "macro_f1" else metric, minimum,
                                        metrics[metric], ci.get(metric)))
        elif cls in metrics["per_class"]:
            intervals = ci.get(metric) or []
            index = list(metrics["per_class"]).index(cls)
            results.append(TargetResult(f"{cls} {metric}", minimum, metrics["per_class"][cls][metric],
                                        intervals[index] if index < len(intervals) else None))
    return results


def read_epochs(path: str | Path) -> list[dict]:
    """Rows of a Keras CSVLogger file, one per epoch (a row logged twice across a restart is kept
    once); [] where the file is missing or unreadable."""
    try:
        with Path(path).open(newline="", encoding="utf-8") as handle:
            rows = {row.get("epoch"): row for row in csv.DictReader(handle)}
    except (OSError, UnicodeDecodeError, csv.Error):
        return []
    return list(rows.values())


def read_history(folder: str | Path) -> list[dict]:
    """Rows of a model folder's history.csv, one per epoch ([] where it is missing or unreadable)."""
    return read_epochs(Path(folder) / HISTORY_FILE)


def validation_accuracy(history: list[dict]) -> list[float]:
    """Validation accuracy of each epoch that logged one; [] where a value is not a number."""
    try:
        return [float(row["val_accuracy"]) for row in history if row.get("val_accuracy")]
    except ValueError:
        return []


def how_training_ended(config: dict, history: list[dict]) -> str | None:
    """One sentence: whether validation loss was still falling when training ended, and what ended it."""
    history = [row for row in history if row.get("val_loss")]
    try:
        losses = [float(row["val_loss"]) for row in history]
    except ValueError:  # a hand-edited or damaged history.csv: say nothing rather than guess
        return None
    if not losses:
        return None
    run, asked = config.get("epochs_run", {}), config.get("epochs_requested", {})
    early = any(0 < run.get(phase, 0) < asked.get(phase, 0) for phase in run)
    ended_by = "early stopping" if early else "the epoch budget"
    best = losses.index(min(losses)) + 1
    if best == len(losses):
        return (f"Validation loss was still falling at the last of {len(losses)} epochs when {ended_by} ended "
                "training: more epochs may help.")
    later = len(losses) - best
    sentence = (f"Validation loss was lowest at epoch {best} of {len(losses)} ({later} later "
                f"epoch{'s' * (later > 1)} did not improve on it), and {ended_by} ended training.")
    kept = _kept_epoch(config, history, losses)
    if kept != best:
        sentence += f" The saved weights are those of epoch {kept}."
    return sentence


def _kept_epoch(config: dict, history: list[dict], losses: list[float]) -> int:
    """The 1-based epoch whose weights were saved. Training records it (the lowest validation loss of
    the run); folders written before it did kept the lowest validation loss of their last phase."""
    if config.get("kept_epoch"):
        return config["kept_epoch"]["epoch"]
    last = history[-1].get("phase")
    start = next(i for i, row in enumerate(history) if row.get("phase") == last)
    return start + losses[start:].index(min(losses[start:])) + 1
