"""Which targets a saved model meets, and how its training ended (no TensorFlow)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from .config import AUDIT_TARGET_DATA, HISTORY_FILE, MIN_SUBGROUP_SUPPORT, TARGETS
from .shortcuts import audit_recall, chain_recalls, per_chain


@dataclass(frozen=True)
class TargetResult:
    name: str  # e.g. "macro-F1" or "Normal recall in chain `kermany`"
    minimum: float
    reached: float | None  # None: not measured (``missing`` says why)
    interval: list[float] | None = None  # 95% bootstrap interval of ``reached``
    support: int | None = None  # images behind ``reached`` where it is a recall of a part of the data
    missing: str = ""

    @property
    def met(self) -> bool:
        return self.reached is not None and self.reached >= self.minimum


def _macro_f1(metrics: dict, _: str | None, minimum: float) -> list[TargetResult]:
    return [TargetResult("macro-F1", minimum, metrics["macro_f1"], metrics.get("ci95", {}).get("macro_f1"))]


def _chain_recall(metrics: dict, name: str, minimum: float) -> list[TargetResult]:
    """One result per chain of the test split: a chain with too few images of ``name`` is not measured
    (and so not met), since the target asks for the recall inside every chain."""
    chains = per_chain(metrics)
    if not chains:
        return [TargetResult(f"{name} recall in each processing chain", minimum, None,
                             missing="the test split records no source or chain")]
    recalls = chain_recalls(metrics, name, MIN_SUBGROUP_SUPPORT)
    results = []
    for chain, figures in chains.items():
        label = f"{name} recall in chain `{chain}`"
        if chain in recalls:
            results.append(TargetResult(label, minimum, recalls[chain][0], support=recalls[chain][1]))
        else:
            images = figures.get("support", {}).get(name, 0)
            results.append(TargetResult(label, minimum, None, missing=f"{images} test images of {name} there, "
                                                                       f"fewer than {MIN_SUBGROUP_SUPPORT}"))
    return results


def _audit_recall(metrics: dict, name: str, minimum: float) -> list[TargetResult]:
    found = audit_recall(metrics, name)
    label = f"{name} recall on the `{AUDIT_TARGET_DATA}` X-rays"
    if found is None:
        return [TargetResult(label, minimum, None, missing=f"not audited on `{AUDIT_TARGET_DATA}`")]
    return [TargetResult(label, minimum, found[0], support=found[1])]


MEASURES = {"macro_f1": _macro_f1, "chain_recall": _chain_recall, "audit_recall": _audit_recall}


def check_targets(config: dict, metrics: dict) -> list[TargetResult]:
    """Every target of ``config``'s backbone, with what ``metrics`` reached (a target on a class the
    model lacks is skipped; one that was not measured has ``reached`` None)."""
    results = []
    for metric, name, minimums in TARGETS:
        if name is None or name in metrics["per_class"]:
            minimum = minimums.get(str(config.get("backbone")), minimums["*"])
            results += MEASURES[metric](metrics, name, minimum)
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
